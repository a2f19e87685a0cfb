"""Tests of the real-kernel validation harness (scripts/kernel_check).

Unmarked tests (default run, no VM): the trace -> shell translation, the VM
output parser, the comparison and tolerance rules, the initramfs writer.
``@pytest.mark.kernel`` tests boot the Debian kernel under qemu (run with
``pytest -m kernel``): every scenario of tests/kernel_scenarios must agree
with the model, except the disagreements listed in scripts/kernel_check/known.py,
which docs/kernel-validation.md explains and which must still disagree exactly
where listed (so a model fix shows up as a failure asking to update both); and
the boots refresh tests/kernel_records/, which the default run compares the model
with (tests/test_kernel_records.py), reporting drift from the build recorded before.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import TraceError
from scripts.kernel_check import compare, initramfs, parse, translate
from scripts.kernel_check.run import scenario_paths
from scripts.kernel_check.simulate import SimRun

HEAD = ("time_us", "machine", "op", "cgroup", "task", "object", "offset", "bytes", "flags")


def rows(*items: tuple) -> list[dict]:
    """Trace rows from positional tuples in schema column order."""
    return [dict(zip(HEAD, it)) for it in items]


def shells(script: translate.Script) -> list[str]:
    return [s.shell for s in script.steps]


# ---------------------------------------------------------------- translation
def test_translate_maps_every_supported_op_to_a_vm_command() -> None:
    script = translate.translate(rows(
        (0, "m", "mkdir", "/a", None, None, None, None, None),
        (1, "m", "task_start", "/a", "job-1", None, None, None, None),
        (2, "m", "file_create", None, None, "vol", None, None, "shmem"),
        (3, "m", "file_create", None, None, "lib", None, 8192, None),
        (4, "m", "file_write", None, "job-1", "vol", 4096, 8192, None),
        (5, "m", "file_read", None, "job-1", "lib", None, None, None),
        (6, "m", "file_map", None, "job-1", "lib", 0, 4096, None),
        (7, "m", "anon_alloc", None, "job-1", "heap", None, 65536, None),
        (8, "m", "pin", None, "job-1", "heap", 0, 4096, "mlock"),
        (9, "m", "swap_on", None, None, None, None, 64 << 20, None),
        (10, "m", "reclaim", "/a", None, None, None, 1 << 20, None),
        (11, "m", "set_limit", "/a", None, None, None, None, "high"),
        (12, "m", "task_move", "/", "job-1", None, None, None, None),
        (13, "m", "file_unmap", None, "job-1", "lib", None, None, None),
        (14, "m", "task_exit", None, "job-1", None, None, None, None),
        (15, "m", "rmdir", "/a", None, None, None, None, None),
        (16, "m", "file_delete", None, None, "vol", None, None, None),
        (17, "m", "sync", None, None, None, None, None, None),
        (18, "m", "drop_caches", None, None, None, None, None, None),
        (19, "m", "swap_off", None, None, None, None, None, None),
        (20, "m", "task_start", "/", "job-2", None, None, None, None),
        (21, "m", "sock_open", None, "job-2", "conn", None, None, None),
        (22, "m", "sock_close", None, None, "conn", None, None, None),
    ), "t.csv")
    assert shells(script) == [
        "kc_mkdir /a",
        "kc_task_start t0 /a",
        "kc_sh truncate -s 0 /mnt/tmpfs/o0",
        "kc_sh test -f /mnt/disk/o1",
        "kc_cmd t0 write /mnt/tmpfs/o0 4096 8192",
        "kc_cmd t0 read /mnt/disk/o1 0 -1",
        "kc_cmd t0 map /mnt/disk/o1 0 4096",
        "kc_cmd t0 anon a2 65536",
        "kc_cmd t0 mlock a2 0 4096",
        "kc_swapon 65536",
        "kc_write /a/memory.reclaim 1048576",
        "kc_write /a/memory.high max",
        "kc_task_move t0 /",
        "kc_cmd t0 unmap /mnt/disk/o1",
        "kc_task_exit t0",
        "kc_rmdir /a",
        "kc_sh rm -f /mnt/tmpfs/o0",
        "kc_sh sync",
        "kc_drop_caches",
        "kc_swapoff",
        "kc_task_start t1 /",
        "kc_holder; kc_cmd t1 sock s3 /run/kc/holder.sock",
        "kc_sh /bin/helper sockclose s3 /run/kc/holder.sock",
    ]
    assert script.swap_bytes == 64 << 20
    assert script.cgroups == ["/a", "/"]
    rendered = script.render()
    assert "kc_step 0\nkc_mkdir /a\nkc_done 0\n" in rendered
    assert rendered.count("kc_done") == 23


def test_translate_sleeps_through_gaps_of_a_second_or_more() -> None:
    script = translate.translate(rows(
        (0, "m", "mkdir", "/a", None, None, None, None, None),
        (999_999, "m", "sync", None, None, None, None, None, None),
        (2_500_000, "m", "sync", None, None, None, None, None, None),
        (60_000_000, "m", "rmdir", "/a", None, None, None, None, None),
    ), "t.csv")
    assert shells(script) == ["kc_mkdir /a", "kc_sh sync", "sleep 2; kc_sh sync", "sleep 10; kc_rmdir /a"]
    assert script.steps[2].label.startswith("(after 2 s)")


@pytest.mark.parametrize("bad, field", [
    ((0, "m", "kmem_alloc", None, "t", "k", None, 4096, "slab"), "op"),
    ((0, "m", "pin", None, "t", "x", None, 4096, None), "flags"),
    ((0, "m", "file_read", None, "t", "never-created", None, None, None), "object"),
    ((0, "m", "mkdir", "/a b", None, None, None, None, None), "cgroup"),
    ((0, "m", "mkdir", "/a;reboot", None, None, None, None, None), "cgroup"),
    ((0, "m", "swap_on", None, None, None, None, 4096, None), "bytes"),
    ((0, "m", "sock_open", None, "t", "s", None, 4096, None), "bytes"),
    ((0, "m", "memory", None, None, None, None, 1 << 30, None), "op"),
    ((0, "m", "nonsense", None, None, None, None, None, None), "op"),
])
def test_translate_rejects_what_the_vm_cannot_reproduce(bad: tuple, field: str) -> None:
    pre = rows((0, "m", "task_start", "/", "t", None, None, None, None),
               (0, "m", "anon_alloc", None, "t", "x", None, 4096, None))
    with pytest.raises(TraceError) as info:
        translate.translate(pre + rows(bad), "bad.csv")
    assert (info.value.source, info.value.row, info.value.field) == ("bad.csv", 3, field)


def test_translate_refuses_a_second_machine() -> None:
    with pytest.raises(TraceError, match="one machine") as info:
        translate.translate(rows((0, "m1", "mkdir", "/a", None, None, None, None, None),
                                 (1, "m2", "mkdir", "/b", None, None, None, None, None)), "two.csv")
    assert info.value.row == 2 and info.value.field == "machine"


def test_every_suite_scenario_translates() -> None:
    from traces.io import read_trace

    paths = scenario_paths()
    assert len(paths) >= 10
    for p in paths:
        script = translate.translate(read_trace(p).to_pylist(), str(p))
        assert len(script.steps) == read_trace(p).num_rows


# ---------------------------------------------------------------- VM output parser
VM_TEXT = """\
noise from the console
KC-BEGIN 6.1.0-56-cloud-amd64
KC-INFO lru_gen 0x0000
KC-INFO mem 460369920 860 1031
KC -1 / nr_dying_descendants 0
KC -1 / rc 0
KC 0 /a memory.current 4096\r
KC 0 /a anon 4096
KC 0 / nr_dying_descendants 0
KC 0 / rc 1
KC-LOG 0 t0 anon a0 4096 -> err 12
KC-END
"""


def test_parse_output_groups_stats_by_step_and_cgroup() -> None:
    run = parse.parse_output(VM_TEXT)
    assert run.release == "6.1.0-56-cloud-amd64"
    assert run.steps[0]["/a"] == {"memory.current": 4096, "anon": 4096}
    assert run.steps[0]["/"] == {"nr_dying_descendants": 0}
    assert run.rc == {-1: 0, 0: 1}
    assert run.logs == ["0 t0 anon a0 4096 -> err 12"]
    assert (run.mem_free, run.wmark_low, run.wmark_high) == (460369920, 860, 1031)


def test_the_vm_reports_the_free_pages_on_its_per_cpu_lists() -> None:
    # MemFree leaves out the free pages on the per-CPU lists, and how many there are varies from boot
    # to boot (6.12.118: 1.9-11.1 MB over 76 boots, MemFree plus them 464.70-465.10 MB): a 4th field
    run = parse.parse_output(VM_TEXT.replace("KC-INFO mem 460369920 860 1031", "KC-INFO mem 454410240 887 1057 10596352"))
    assert (run.mem_free, run.wmark_low, run.wmark_high, run.pcp_free) == (454410240, 887, 1057, 10596352)
    assert run.free_bytes == 454410240 + 10596352
    assert parse.parse_output(VM_TEXT).pcp_free == 0  # an older boot's line: MemFree only
    with pytest.raises(parse.VmOutputError, match="FREE LOW HIGH"):
        parse.parse_output(VM_TEXT.replace("KC-INFO mem 460369920 860 1031", "KC-INFO mem 1 2 3 lots"))


def test_the_model_machine_is_what_the_vm_had_free_with_its_per_cpu_lists(monkeypatch) -> None:
    # run.model_result sizes the model with MemFree plus the per-CPU lists' free pages, so the model
    # does not move with how many of them the boot happened to hold (global_reclaim_scrapes_zombie on
    # 6.12.118: its zombie's page cache after global reclaim moves 1 MiB per MB of machine size)
    from scripts.kernel_check import run as run_mod

    seen = []
    monkeypatch.setattr(run_mod, "simulate", lambda table, src, kernel, mem, **kw: seen.append(mem))
    monkeypatch.setattr(run_mod, "compare", lambda *a, **kw: compare.ScenarioResult("x", "r", "6.12.118"))
    path = scenario_paths(["anon_moved_task"])[0]
    observed = parse.VmRun(release="6.12.118+deb12-cloud-amd64", mem_free=454410240 + 100, pcp_free=10596352)
    run_mod.model_result(path, observed, "6.12.118", True)
    assert seen == [(454410240 + 100 + 10596352) // 4096 * 4096]


def test_the_model_machine_is_sized_to_what_the_vm_had_free() -> None:
    from scripts.kernel_check.simulate import machine_config
    cfg = machine_config("6.12", 460369920 // 4096 * 4096, True, (860, 1031))
    pages = 460369920 // 4096
    assert cfg.mem_bytes == pages * 4096 and cfg.lru_gen
    assert (cfg.watermark_low, cfg.watermark_high) == (860 / pages, 1031 / pages)
    assert machine_config("6.1", 1 << 29, False).watermark_low == 0.01  # no watermarks seen: the defaults


@pytest.mark.parametrize("text, message", [
    ("", "never reached"),
    ("KC-BEGIN 6.1\nKC 0 / rc 0\n", "stopped after step 0"),
    ("KC-BEGIN 6.1\nKC-FATAL mount ext4 /dev/vda\n", "mount ext4"),
    ("KC-BEGIN 6.1\nKC 0 / anon lots\nKC-END\n", "line 2"),
])
def test_parse_output_reports_incomplete_runs(text: str, message: str) -> None:
    with pytest.raises(parse.VmOutputError, match=message):
        parse.parse_output(text, console="kernel panic here")


# ---------------------------------------------------------------- comparison
def test_tolerance_is_five_percent_or_256k() -> None:
    assert compare.tolerance(0) == 256 * 1024
    assert compare.tolerance(100 << 20) == 5 << 20
    assert compare.tolerance(0, extra=1) == 256 * 1024 + 1


def _stats(**kw: int) -> dict[str, int]:
    base = {k: 0 for k in (*compare.USAGE_KEYS, "memory.current", "kernel", "nr_dying_descendants")}
    base.update({k.replace("__", "."): v for k, v in kw.items()})
    return base


def test_step_checks_subtract_kernel_memory_and_flag_real_differences() -> None:
    mib = 1 << 20
    vm = {"/": _stats(nr_dying_descendants=1),
          "/a": _stats(anon=8 * mib + 40960, memory__current=8 * mib + 300000, kernel=200000)}
    sim = {"/": _stats(nr_dying_descendants=1), "/a": _stats(anon=8 * mib, memory__current=8 * mib)}
    assert all(c.ok for c in compare.step_checks(3, vm, sim, ["/a"]))
    sim["/"]["nr_dying_descendants"] = 0
    sim["/a"]["anon"] = 4 * mib
    bad = {(c.cgroup, c.key) for c in compare.step_checks(3, vm, sim, ["/a"]) if not c.ok}
    assert bad == {("/", "nr_dying_descendants"), ("/a", "anon")}


def test_step_checks_report_a_cgroup_online_on_one_side_only() -> None:
    checks = compare.step_checks(0, {"/": _stats()}, {"/": _stats(), "/a": _stats()}, ["/a"])
    failed = [c for c in checks if not c.ok]
    assert [(c.cgroup, c.key, c.kernel, c.model) for c in failed] == [("/a", "online", 0, 1)]


def test_compare_counts_failed_steps_and_renders_the_table() -> None:
    script = translate.translate(rows((0, "m", "mkdir", "/a", None, None, None, None, None),
                                      (1, "m", "rmdir", "/a", None, None, None, None, None)), "s.csv")
    vm = parse.VmRun("6.1.0", {0: {"/": _stats(), "/a": _stats()}, 1: {"/": _stats(nr_dying_descendants=1)}},
                     {0: 0, 1: 0})
    sim = SimRun("6.1", {0: {"/": _stats(), "/a": _stats()}, 1: {"/": _stats()}}, {0: {}, 1: {}})
    res = compare.compare("s", script, vm, sim)
    assert not res.agrees and res.steps_agreeing == 1
    assert "/ nr_dying_descendants: kernel 1 model 0" in res.table()


def test_a_memory_max_write_that_oom_kills_is_not_a_failed_step() -> None:
    # random-3-49: memory_max_write() returns success after mem_cgroup_out_of_memory() killed a task
    script = translate.translate(rows((0, "m", "mkdir", "/a", None, None, None, None, None),
                                      (1, "m", "set_limit", "/a", None, None, None, 2 << 20, "max")), "s.csv")
    vm = parse.VmRun("6.1.0", {0: {"/": _stats(), "/a": _stats()}, 1: {"/": _stats(), "/a": _stats()}}, {0: 0, 1: 0})
    sim = SimRun("6.1", {0: {"/": _stats(), "/a": _stats()}, 1: {"/": _stats(), "/a": _stats()}},
                 {0: {}, 1: {"oom_kills": 1}})
    assert compare.compare("s", script, vm, sim).agrees
    sim.counters[1] = {"charge_failed": 1}  # anything else the model reports still counts
    assert not compare.compare("s", script, vm, sim).agrees


def test_results_name_the_exact_kernel_build() -> None:
    from scripts.kernel_check.fetch import Artifacts, upstream_version
    from scripts.kernel_check.run import markdown_table, text_table

    assert upstream_version("6.12.118-1~deb12u1") == "6.12.118"
    assert upstream_version("6.1.192-3") == "6.1.192"
    assert upstream_version("1:6.1.192-3+b1") == "6.1.192"
    art = Artifacts(Path("/k/boot/vmlinuz-6.12.118+deb12-cloud-amd64"), Path("/m"), "6.12.118+deb12-cloud-amd64",
                    Path("/b"), Path("/h"), "linux-image-6.12.118+deb12-cloud-amd64", "6.12.118-1~deb12u1")
    assert art.upstream == "6.12.118"
    assert art.build == "6.12.118+deb12-cloud-amd64 (6.12.118-1~deb12u1)"
    res = compare.ScenarioResult("s", art.release, art.upstream, build=art.build)
    assert "6.12.118+deb12-cloud-amd64 (6.12.118-1~deb12u1)  s" in text_table([res])
    assert "| 6.12.118+deb12-cloud-amd64 (6.12.118-1~deb12u1) | `s` | 0/0 | 0/0 | agree |" in markdown_table([res])


def test_kernel_accepts_a_series_or_an_exact_image_package(tmp_path) -> None:
    from scripts.kernel_check.fetch import kernel_package

    assert kernel_package("linux-image-6.12.117+deb12-cloud-amd64", tmp_path) == \
        "linux-image-6.12.117+deb12-cloud-amd64"
    with pytest.raises(ValueError, match="series"):
        kernel_package("6.13", tmp_path)


# ---------------------------------------------------------------- initramfs
def test_cpio_is_deterministic_newc_with_device_nodes() -> None:
    a = initramfs.cpio({"init": b"#!/bin/sh\n", "bin/x": b"12345"}, ["bin"], {"dev/console": (5, 1)})
    assert a == initramfs.cpio({"bin/x": b"12345", "init": b"#!/bin/sh\n"}, ["bin"], {"dev/console": (5, 1)})
    assert a.startswith(b"070701") and a.count(b"070701") == 5  # dir, device, 2 files, trailer
    assert len(a) % 4 == 0 and b"TRAILER!!!" in a
    # the device entry carries rdev major 5 minor 1 (fields 10 and 11 of the header)
    dev = a[a.index(b"dev/console") - 110 + 6:]
    assert dev[9 * 8:11 * 8] == b"0000000500000001"


def test_module_depends_reads_the_modinfo_field(tmp_path) -> None:
    ko = tmp_path / "virtio_blk.ko"
    ko.write_bytes(b"\x7fELF junk\0license=GPL\0depends=virtio,virtio_ring\0intree=Y\0")
    assert initramfs.module_depends(ko) == ["virtio", "virtio_ring"]
    (tmp_path / "virtio.ko").write_bytes(b"\0depends=virtio_ring\0")
    (tmp_path / "virtio_ring.ko").write_bytes(b"\0depends=\0")
    order = [p.name for p in initramfs.module_order(tmp_path, ("virtio_blk",))]
    assert order == ["virtio_ring.ko", "virtio.ko", "virtio_blk.ko"]
    assert gzip.decompress(gzip.compress(b"x", mtime=0)) == b"x"


# ---------------------------------------------------------------- the real kernel
def _can_boot() -> bool:
    return shutil.which("qemu-system-x86_64") is not None or os.geteuid() == 0


@pytest.fixture(scope="module")
def suite_results() -> dict:
    """Every scenario on each kernel of $MEMCG_REPLAY_KC_KERNELS (series or image packages)."""
    from scripts.kernel_check.run import run_suite

    if not _can_boot():
        pytest.skip("needs qemu-system-x86_64 (or root to apt-get install it)")
    kernels = os.environ.get("MEMCG_REPLAY_KC_KERNELS", "6.1,6.12").split(",")
    jobs = int(os.environ.get("MEMCG_REPLAY_KC_JOBS", "0")) or None  # parallel VMs (default: one per core)
    return {(k, r.name): r for k in kernels for r in run_suite(scenario_paths(), k, jobs=jobs)}


#: the suite fixture boots every scenario on both kernels inside the first test that uses it: with one VM
#: at a time (MEMCG_REPLAY_KC_JOBS=1) under TCG that took 590 s and 700+ s on 2026-12-07, past the default
#: run's 600 s limit (pyproject.toml), which then stopped a healthy check
SUITE_TIMEOUT_S = 3600


@pytest.mark.kernel
@pytest.mark.timeout(SUITE_TIMEOUT_S)
def test_every_scenario_matches_the_kernel(suite_results: dict) -> None:
    """Agreement, except the disagreements of scripts/kernel_check/known.py, exactly where listed."""
    from scripts.kernel_check.known import expected_disagreement, verdict_ok

    problems = []
    for (_, name), res in sorted(suite_results.items()):
        entry = expected_disagreement(name, res.kernel)  # res.kernel: the build's upstream release
        expected = set(entry.steps) if entry else set()
        # a timing or flaky entry may agree on a fresh boot (known.py says why)
        if not verdict_ok(entry, res.failed_steps):
            problems.append(f"{name} on {res.build}: disagreeing steps {sorted(res.failed_steps)}, "
                            f"listed {sorted(expected)}\n{res.table()}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.kernel
@pytest.mark.timeout(SUITE_TIMEOUT_S)
def test_the_boots_refresh_the_kernel_records(suite_results: dict) -> None:
    """Write what each build showed to tests/kernel_records/ (or $MEMCG_REPLAY_KC_RECORDS), report drift.

    Drift between builds is reported (stdout, ``-s``), not failed: a stable update may change
    the kernel; the default run then compares the model with the new records.
    """
    from scripts.kernel_check.records import RECORD_DIR, load_records, refresh

    root = Path(os.environ.get("MEMCG_REPLAY_KC_RECORDS", RECORD_DIR))
    results = list(suite_results.values())
    report = refresh(results, scenario_paths(), root)
    print("\n" + (report or "no earlier records to compare"))
    mine = {(r.build.label, r.scenario) for r in load_records(root)}
    assert {(r.build, r.name) for r in results} <= mine


#: the seeded random batch of ``pytest -m kernel``: traces RANDOM_START .. +RANDOM_N of seed RANDOM_SEED
#: (scripts/kernel_check/randomized.py), which agreed on 6.1.192 and 6.12.118 in the run of 2026-12-06
#: (their records are in tests/kernel_random/; docs/kernel-validation.md, Random differential testing)
RANDOM_SEED, RANDOM_START, RANDOM_N = 3, 0, 6


@pytest.mark.kernel
@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_a_seeded_random_batch_matches_the_kernel(series: str, tmp_path: Path) -> None:
    """A few random traces in one boot, compared step by step (not shrunk: tmp_path gets nothing)."""
    from scripts.kernel_check.randomized import run_random

    summary, results = run_random(RANDOM_N, RANDOM_SEED, series, per_boot=RANDOM_N, shrink_rounds=0,
                                  out_dir=tmp_path, start=RANDOM_START, log=lambda *a: None)
    assert summary.traces == RANDOM_N and summary.steps > 0
    assert not summary.disagreeing, "\n\n".join(r.table() for r in results if not r.agrees)


def test_a_boot_holds_its_work_directory_so_two_runs_never_share_disk_images(tmp_path, monkeypatch) -> None:
    # two kernel_check processes on one series share work/<series>: one rewrote the other's disk.img
    # under a running VM. A boot must hold the directory's lock from writing the images to reading logs.
    from scripts.kernel_check import vm

    held = []

    def fake_boot(cmd: list[str], work: Path, timeout: float, idle_s: float | None = None) -> tuple[bool, float]:
        with pytest.raises(BlockingIOError):
            with vm.work_lock(work, blocking=False):
                pass
        held.append(work)
        return True, 0.0

    monkeypatch.setattr(vm, "_boot", fake_boot)
    monkeypatch.setattr(vm.initramfs, "build", lambda art, text: b"")
    monkeypatch.setattr(vm, "_make_disks", lambda work, swap, files=None: (work / "disk.img", work / "swap.img"))
    monkeypatch.setattr(vm, "qemu_command", lambda *a, **k: ["true"])
    art = vm.Artifacts(Path("vmlinuz"), Path("modules"), "test", Path("busybox"), Path("helper"))
    res = vm._run_once(art, translate.Script("probe"), tmp_path / "w", "tcg", 1.0)
    assert held == [tmp_path / "w"] and res.output == ""
    with vm.work_lock(tmp_path / "w", blocking=False):  # released after the boot
        pass


def test_a_boot_that_prints_nothing_for_idle_s_is_stopped(tmp_path: Path) -> None:
    # a guest hung in a step: stopped after idle_s of silent serial logs, not at the boot's timeout
    from scripts.kernel_check import vm

    hung = [sys.executable, "-c", "import time; time.sleep(60)"]
    t0 = time.monotonic()
    ok, secs = vm._boot(hung, tmp_path, timeout=50.0, idle_s=1.5)
    assert not ok and secs < 20 and time.monotonic() - t0 < 20
    # one that keeps printing (to its console log) runs to its end, however long that is past idle_s
    talks = [sys.executable, "-c",
             "import time\nfor i in range(8):\n    open(%r, 'a').write('x')\n    time.sleep(0.4)"
             % str(tmp_path / "console.log")]
    ok, secs = vm._boot(talks, tmp_path, timeout=50.0, idle_s=1.5)
    assert ok and secs >= 3.0


def _busybox() -> str | None:
    from scripts.kernel_check.fetch import default_cache

    found = shutil.which("busybox")
    cached = default_cache() / "pkgs" / "busybox-static" / "bin" / "busybox"
    return found or (str(cached) if cached.exists() else None)


def _init_functions(*names: str) -> str:
    # the named shell functions of init.sh, verbatim (each ends at the first "}" in column 0)
    text = (Path(__file__).resolve().parents[1] / "scripts" / "kernel_check" / "init.sh").read_text()
    out = []
    for name in names:
        start = text.index(f"\n{name}() {{") + 1
        out.append(text[start:text.index("\n}\n", start) + 3])
    return "".join(out)


@pytest.mark.skipif(_busybox() is None, reason="needs busybox (apt busybox-static; .ci/run installs it)")
def test_an_ack_whose_open_a_signal_interrupts_is_read_again(tmp_path: Path) -> None:
    # busybox ash, as in the VM: another child's SIGCHLD interrupts the open of the helper's ack FIFO
    # (EINTR). The answer then still comes, and a one-shot read left it for the next command, so a
    # task's later steps read each other's answers (a 6.12.118 boot of 2026-12-06 printed every step
    # one off). kc_ack reads again while the helper lives, and gives up when it is dead.
    script = _init_functions("kc_dead", "kc_ack") + f"""
mkfifo {tmp_path}/a.ack {tmp_path}/b.ack
( sleep 0.6; echo ok > {tmp_path}/a.ack ) &
live=$!
sleep 0.1 &
kc_ack {tmp_path}/a.ack $live
echo "live: $ack"
( sleep 0.3; exit 0 ) &
kc_ack {tmp_path}/b.ack $!
echo "dead: $ack"
"""
    out = subprocess.run([_busybox(), "ash", "-c", script], capture_output=True, text=True, timeout=20)
    assert out.stdout.splitlines() == ["live: ok", "dead: none: the task died (OOM kill)"], out


def _read_ack(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> str:
    # the helper's answer on its ack FIFO, without blocking on a helper that never answers
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline, got = time.monotonic() + timeout, b""
        while not got.endswith(b"\n") and time.monotonic() < deadline:
            try:
                got += os.read(fd, 64)
            except BlockingIOError:
                pass
            if not got and proc.poll() is not None:
                break
            time.sleep(0.01)
        return got.decode().strip() or f"none (exit {proc.poll()})"
    finally:
        os.close(fd)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (as the VM's helper does)")
def test_the_helper_joins_the_task_cgroup_only_after_its_own_pages(tmp_path: Path) -> None:
    # the helper starts in init's cgroup, faults and mlocks its own stack and data there, and
    # then writes 0 to the task's cgroup.procs before its first answer: the trace's cgroup is
    # not charged with the helper's pages, which would keep a cgroup the task moved out of dying
    # (anon_swapped_owner_died_swapoff, 2026-12-07: 64 KiB of them, unevictable, in /a after
    # swapoff). A cgroup.procs it cannot write is an error answer, and the helper stops.
    from scripts.kernel_check.fetch import build_helper

    helper = build_helper(tmp_path)
    procs = tmp_path / "cgroup.procs"
    procs.write_text("")
    cmd, ack = tmp_path / "t.cmd", tmp_path / "t.ack"
    os.mkfifo(cmd)
    os.mkfifo(ack)
    proc = subprocess.Popen([str(helper), "serve", str(cmd), str(ack), str(procs)])
    try:
        assert _read_ack(ack, proc) == "ok"
        assert procs.read_text() == "0"
        cmd.write_text("exit\n")
        assert _read_ack(ack, proc) == "ok" and proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    proc = subprocess.Popen([str(helper), "serve", str(cmd), str(ack), str(tmp_path / "gone" / "cgroup.procs")])
    try:
        assert _read_ack(ack, proc) == "err 2" and proc.wait(timeout=10) == 2
    finally:
        proc.kill()
        proc.wait()


def test_probe_steps_follow_the_trace_and_report_the_dying_count() -> None:
    # --then: each shell is a step numbered after the trace's last row; the rows read the root's
    # nr_dying_descendants and the cgroups after the last row and after every probe
    from scripts.kernel_check.probe import _sleep_seconds, probe_rows, render_with_probes

    rows = [{"time_us": 0, "machine": "m0", "op": "mkdir", "cgroup": "/a"},
            {"time_us": 10, "machine": "m0", "op": "rmdir", "cgroup": "/a"}]
    script = translate.translate(rows, "probe.csv")
    text, numbers = render_with_probes(script, ["sleep 30; kc_drop_caches 3", "sync"])
    assert numbers == [2, 3]
    assert text.endswith("kc_step 2\nsleep 30; kc_drop_caches 3\nkc_done 2\nkc_step 3\nsync\nkc_done 3\n")
    out = "\n".join(["KC-BEGIN 6.1.0-test", "KC -1 / nr_dying_descendants 0", "KC -1 / rc 0",
                     "KC 0 / nr_dying_descendants 0", "KC 0 /a nr_dying_descendants 0", "KC 0 / rc 0",
                     "KC 1 / nr_dying_descendants 1", "KC 1 / rc 0", "KC-LOG 2 waited",
                     "KC 2 / nr_dying_descendants 0", "KC 2 / rc 0", "KC 3 / nr_dying_descendants 0",
                     "KC 3 / rc 0", "KC-END"]) + "\n"
    observed = parse.parse_output(out)
    got = probe_rows(script, ["sleep 30; kc_drop_caches 3", "sync"], numbers, observed)
    assert [(s, d, c) for s, _, d, c in got] == [(1, 1, ["/"]), (2, 0, ["/"]), (3, 0, ["/"])]
    assert got[1][1] == "sleep 30; kc_drop_caches 3" and observed.logs == ["2 waited"]
    assert _sleep_seconds("sleep 30; kc_drop_caches 3; sleep 1.5") == 31.5
    # a probe step the VM did not finish is an error, not a silent gap
    cut = out.replace("KC 3 / nr_dying_descendants 0\nKC 3 / rc 0\n", "")
    with pytest.raises(parse.VmOutputError, match="step 3"):
        probe_rows(script, ["a", "b"], numbers, parse.parse_output(cut))


def test_then_probes_exactly_one_scenario(capsys) -> None:
    from scripts.kernel_check.__main__ import main

    assert main(["--then", "sync"]) == 2
    assert "exactly one" in capsys.readouterr().err
