"""Random differential testing (scripts/kernel_check/randomized.py) without a VM.

The generator, the batch framing and its parser, and the shrinker (against a fake VM).
The VM run itself is ``pytest -m kernel`` (tests/test_kernel_check.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.kernel_check import randomized as R
from scripts.kernel_check.compare import Check, ScenarioResult
from scripts.kernel_check.simulate import simulate
from traces.io import read_trace


def test_generation_is_deterministic_and_ends_with_everything_removed() -> None:
    a, b = R.generate(7, 3), R.generate(7, 3)
    assert a == b and a != R.generate(7, 4) and a != R.generate(8, 3)
    ops = [r["op"] for r in a]
    starts = sum(op == "task_start" for op in ops)
    assert starts == sum(op == "task_exit" for op in ops)
    assert sum(op == "mkdir" for op in ops) == sum(op == "rmdir" for op in ops)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_generated_trace_runs_in_the_vm_harness_and_the_model(seed: int, tmp_path: Path) -> None:
    seen: set[str] = set()
    for i in range(100):
        t = R.Trace.make(f"r{i}", R.generate(seed, i), tmp_path)  # translate raises on anything the VM lacks
        run = simulate(read_trace(t.path), str(t.path), "6.12.118", 460 << 20, lru_gen=True)
        assert len(run.steps) == len(t.rows) + 1
        seen |= {r["op"] for r in t.rows}
    names = {"pin": "mlock", "unpin": "munlock"}
    missing = set(R.WEIGHTS) - {names.get(op, op) for op in seen}
    assert not missing, f"ops never generated: {missing}"


def test_batch_output_is_cut_per_trace_and_a_failed_reset_drops_the_rest() -> None:
    text = """KC-BEGIN 6.1.0-57-cloud-amd64
KC -1 / nr_dying_descendants 0
KC -1 / rc 0
KC-TRACE 0
KC-INFO mem 1000 1 2
KC -1 / nr_dying_descendants 0
KC -1 / rc 0
KC 0 / nr_dying_descendants 0
KC 0 / rc 0
KC-TRACE-END 0
KC-TRACE 1
KC-INFO mem 900 1 2
KC -1 / rc 0
KC 0 / rc 1
KC-RESET-FAIL 1 nr_dying_descendants 1
KC-END
"""
    release, parts = R.split_output(text)
    assert release == "6.1.0-57-cloud-amd64" and list(parts) == [0]
    from scripts.kernel_check.parse import parse_output
    run = parse_output(parts[0])
    assert run.mem_free == 1000 and run.rc == {-1: 0, 0: 0} and run.release == release


def test_render_batch_frames_each_trace(tmp_path: Path) -> None:
    ts = [R.Trace.make(f"r{i}", R.generate(0, i, steps=5), tmp_path) for i in range(2)]
    text = R.render_batch(ts)
    assert text.count("kc_trace_begin") == 2 and "kc_trace_end 1\n" in text
    assert text.index("kc_trace_begin 1") > text.index("kc_trace_end 0")


def test_removing_a_row_takes_its_dependents_and_keeps_the_trace_valid(tmp_path: Path) -> None:
    rows = R.generate(3, 0)
    for cand in R.candidates(rows, limit=1000):
        t = R.Trace.make("c", cand, tmp_path)
        simulate(read_trace(t.path), str(t.path), "6.1.192", 460 << 20)
    start = next(i for i, r in enumerate(rows) if r["op"] == "task_start")
    task = rows[start]["task"]
    assert {rows[j]["task"] for j in R._deps(rows, start)} == {task}


def _fake_result(name: str, rows: list[dict], bad: bool) -> ScenarioResult:
    res = ScenarioResult(name, "fake", "6.1")
    res.steps = [(i, r["op"]) for i, r in enumerate(rows)]
    step = len(rows) - 1
    res.checks = [Check(step, "/", "nr_dying_descendants", 1 if bad else 0, 0, 0)]
    return res


def test_shrink_finds_the_rows_a_disagreement_needs(tmp_path: Path) -> None:
    # a fake kernel that disagrees whenever a socket is opened by a task and the task's cgroup removed
    def disagrees(rows: list[dict]) -> bool:
        ops = [r["op"] for r in rows]
        return "sock_open" in ops and "rmdir" in ops

    def run(traces: list[R.Trace]) -> dict[str, ScenarioResult]:
        return {t.name: _fake_result(t.name, t.rows, disagrees(t.rows)) for t in traces}

    seed = next(s for s in range(200) if disagrees(R.generate(s, 0)))
    rows = R.generate(seed, 0)
    first = run([R.Trace.make("orig", rows, tmp_path)])["orig"]
    small, res = R.shrink("orig", rows, first, run, tmp_path, max_rounds=40, log=lambda *a: None)
    assert disagrees(small) and not res.agrees
    assert len(small) <= 5, R.to_csv(small)
    assert [r["op"] for r in small].count("sock_open") == 1


def test_the_scenario_name_picks_the_mount_option_for_the_vm_and_the_model() -> None:
    from scripts.kernel_check.simulate import machine_config
    from scripts.kernel_check.translate import mount_option, translate

    assert mount_option("tests/kernel_scenarios/ext4_reader_removed.csv") == "relatime"
    assert mount_option("x/ext4_reader_removed_noatime.csv") == "noatime"
    assert mount_option("lazytime_but_not_last.csv") == "relatime"
    rows = R.generate(0, 0, steps=3)
    assert "kc_mount_disk lazytime" in translate(rows, "a_lazytime.csv").render()
    assert "kc_mount_disk" not in translate(rows, "a.csv").render()
    assert machine_config("6.1", 1 << 30, False, atime="noatime").atime == "noatime"


def test_disk_files_go_on_the_image_one_directory_per_trace_of_a_batch(tmp_path: Path) -> None:
    rows = [dict(zip(R.HEAD, r)) for r in [(0, "m0", "file_create", None, None, "f", None, 8192, None),
                                           (10, "m0", "file_create", None, None, "g", None, None, None)]]
    t = R.Trace.make("x", rows, tmp_path)
    assert t.script.disk_files == {"/mnt/disk/o0": 8192, "/mnt/disk/o1": 0}
    assert [s.shell for s in t.script.steps] == ["kc_sh test -f /mnt/disk/o0", "kc_sh test -f /mnt/disk/o1"]
    u = R.Trace.make("y", rows, tmp_path)
    assert R.batch_files([t, u]) == {"/mnt/disk/0/o0": 8192, "/mnt/disk/0/o1": 0,
                                     "/mnt/disk/1/o0": 8192, "/mnt/disk/1/o1": 0}
    assert "test -f /mnt/disk/1/o0" in R.render_batch([t, u])


def test_the_disk_image_holds_the_files_uncached_and_sparse(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from scripts.kernel_check import vm

    if not (shutil.which("mkfs.ext4") and shutil.which("debugfs")):
        pytest.skip("e2fsprogs not installed")
    disk, _ = vm._make_disks(tmp_path, 0, {"/mnt/disk/3/o1": 1 << 20})
    out = subprocess.run(["debugfs", "-R", "stat /3/o1", str(disk)], capture_output=True, text=True,
                         check=True).stdout
    assert "Size: 1048576" in out


def test_each_live_helper_past_the_first_widens_the_anon_tolerance() -> None:
    # random-1-10 on 6.1.192: five helpers in /c2 held 2.81 MiB of anon, the model's trace 2.53 MiB
    from scripts.kernel_check.compare import step_checks
    from scripts.kernel_check.translate import translate

    rows = [dict(zip(R.HEAD, (i * 10, "m0", "task_start", "/a" if i < 4 else "/a/b", f"t{i}", None, None,
                              None, None))) for i in range(5)]
    rows.insert(0, dict(zip(R.HEAD, (0, "m0", "mkdir", "/a", None, None, None, None, None))))
    script = translate(rows, "t.csv")
    assert script.helpers[5] == {"/": 5, "/a": 5, "/a/b": 1}
    model = {"anon": 2_650_000, "memory.current": 2_650_000, "kernel": 0}
    kernel = {"anon": 2_950_000, "memory.current": 2_950_000, "kernel": 0}
    vm, sim = {"/a": kernel}, {"/a": model}
    assert any(not c.ok for c in step_checks(5, vm, sim, ["/a"]))
    assert all(c.ok for c in step_checks(5, vm, sim, ["/a"], script.helpers[5]))


def test_a_saved_random_trace_is_replayed_without_a_vm(tmp_path: Path) -> None:
    # --save keeps each trace beside what the kernel showed of it; --replay-saved compares the model
    # with it later (here a committed scenario record stands in for a random trace's boot)
    from scripts.kernel_check.records import RECORD_DIR, load_record

    rec = load_record(next(RECORD_DIR.glob("6.12.118*/reclaim_partial_live.json")))
    rows = read_trace(Path(__file__).parent / "kernel_scenarios" / "reclaim_partial_live.csv").to_pylist()
    trace = R.Trace.make("random-5-7", rows, tmp_path / "work")
    res = ScenarioResult("random-5-7", rec.build.label, rec.build.upstream)
    res.observed, res.kernel_build = rec.observed, rec.build
    csv = R.save_result(res, trace, tmp_path / "saved")
    assert csv == tmp_path / "saved" / rec.build.name / "random-5-7.csv"
    (got,) = R.replay_saved(tmp_path / "saved")
    assert got.name == "random-5-7" and got.agrees and got.build == rec.build.label
    assert R.replay_saved(tmp_path / "saved", ["6.1"]) == []


def test_no_cgroup_a_live_task_has_been_in_is_removed() -> None:
    # the task's helper process charges its own stack and data where it starts (and where it
    # faults after a move); removing that cgroup while the task lives left it dying (random-2-14)
    for i in range(300):
        homes: dict[str, set[str]] = {}
        for r in R.generate(3, i):
            if r["op"] == "task_start":
                homes[r["task"]] = {r["cgroup"]}
            elif r["op"] == "task_move":
                homes[r["task"]].add(r["cgroup"])
            elif r["op"] == "task_exit":
                del homes[r["task"]]
            elif r["op"] == "rmdir":
                assert not any(r["cgroup"] in h for h in homes.values()), (i, r)
