"""Synthetic churn: determinism, validity, sharing, machine independence."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pyarrow.compute as pc
import pytest

from traces.generate import PRESETS, SYNTH_PARAMS_KEY, SynthParams, generate, generate_machine
from traces.io import write_trace
from traces.validate import validate_table


def _small(name: str) -> SynthParams:
    p = PRESETS[name]
    # 15 minutes, or long enough for about 100 pods on a preset with little churn (fb2019_host)
    return dataclasses.replace(p, machines=min(p.machines, 2),
                               duration_s=min(p.duration_s, max(900.0, 100 / p.pod_arrival_per_s)))


@pytest.fixture(scope="module")
def tiny():
    return generate(PRESETS["tiny"], seed=7)


def _rows(t, op):
    return t.filter(pc.equal(t.column("op"), op)).to_pylist()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid_at_small_scale(name):
    t = generate(_small(name), seed=1)
    assert t.num_rows > 1000
    assert validate_table(t, name) == []


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    p = dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=300.0)
    write_trace(generate(p, seed=5), tmp_path / "a.parquet")
    write_trace(generate(p, seed=5), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert not generate(p, seed=6).equals(generate(p, seed=5))


def test_machine_does_not_depend_on_fleet_size():
    p2 = dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=300.0)
    p5 = dataclasses.replace(p2, machines=5)
    t2, t5 = generate(p2, 3), generate(p5, 3)

    def m1(t):
        return t.filter(pc.equal(t.column("machine"), "m-0001"))

    assert m1(t2).equals(m1(t5))
    events = m1(t2).filter(pc.not_equal(m1(t2).column("op"), "memory"))  # the file's size row aside
    assert generate_machine(p2, 3, 1).equals(events)


def test_a_generated_file_sizes_its_machines_as_the_importers_do():
    p = dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=60.0, mem_bytes=3 << 30)
    t = generate(p, 0)
    rows = [(m, op, b, time) for m, op, b, time in zip(*(t.column(c).to_pylist()
                                                        for c in ("machine", "op", "bytes", "time_us")))]
    firsts = [r for i, r in enumerate(rows) if i == 0 or rows[i - 1][0] != r[0]]
    assert firsts == [("m-0000", "memory", 3 << 30, 0), ("m-0001", "memory", 3 << 30, 0)]
    assert sum(r[1] == "memory" for r in rows) == 2


def test_sorted_by_machine_then_time(tiny):
    m = np.array(tiny.column("machine").to_pylist())
    t = tiny.column("time_us").to_numpy()
    assert np.all(m[1:] >= m[:-1])
    same = m[1:] == m[:-1]
    assert np.all(t[1:][same] >= t[:-1][same])


def test_shared_image_files_are_used_by_many_pods(tiny):
    uses = [r for r in _rows(tiny, "file_map") + _rows(tiny, "file_read")
            if r["object"].startswith("/layers/") and r["machine"] == "m-0000"]
    pods_per_file = {}
    for r in uses:
        pods_per_file.setdefault(r["object"], set()).add(r["task"].split("c")[0])
    assert max(len(p) for p in pods_per_file.values()) >= 20  # Zipf head: most pods use it


def test_tmpfs_volume_written_by_one_container_and_used_by_another(tiny):
    writers = {r["object"]: r["task"] for r in _rows(tiny, "file_write") if r["object"].startswith("/dev/shm/")}
    users = [(r["object"], r["task"]) for r in _rows(tiny, "file_map") + _rows(tiny, "file_read")
             if r["object"] in writers]
    assert users and all(writers[o].split("t")[0] != t.split("t")[0] for o, t in users)


def _outliving(tiny, prefix: str, owner_cgroup) -> int:
    """How many objects under ``prefix`` are deleted after their owner's rmdir, or never."""
    m0 = tiny.filter(pc.equal(tiny.column("machine"), "m-0000"))
    rmdir = {r["cgroup"]: r["time_us"] for r in _rows(m0, "rmdir")}
    deleted = {r["object"]: r["time_us"] for r in _rows(m0, "file_delete")}
    created = [r["object"] for r in _rows(m0, "file_create") if r["object"].startswith(prefix)]
    ended = [o for o in created if owner_cgroup(o) in rmdir]
    return sum(1 for o in ended if deleted.get(o, 1 << 62) > rmdir[owner_cgroup(o)] + 1)


def test_some_tmpfs_and_logs_outlive_their_pod(tiny):
    # /var/log/pods/pod-N/ctr-J.log belongs to /pod-N/ctr-J; /dev/shm/pod-N/vol to /pod-N
    assert _outliving(tiny, "/var/log/pods/", lambda o: "/" + o.split("/")[4] + "/" + o.split("/")[5][:-4]) > 10
    assert _outliving(tiny, "/dev/shm/", lambda o: "/" + o.split("/")[3]) >= 1


def test_pins_swap_limits_kmem_present(tiny):
    ops = set(tiny.column("op").to_pylist())
    assert {"pin", "unpin", "swap_on", "set_limit", "kmem_alloc", "kmem_free", "anon_free"} <= ops
    assert {r["flags"] for r in _rows(tiny, "pin")} >= {"mlock", None}


def test_teardown_order_within_a_pod(tiny):
    rows = [r for r in tiny.filter(pc.equal(tiny.column("machine"), "m-0000")).to_pylist()
            if r["cgroup"] in ("/pod-3", "/pod-3/ctr-0") or (r["task"] or "").startswith("p3c0")]
    order = [(r["op"], r["cgroup"]) for r in rows if r["op"] in ("task_exit", "rmdir", "mkdir")]
    assert order[0] == ("mkdir", "/pod-3") and order[-1] == ("rmdir", "/pod-3")
    assert order.index(("rmdir", "/pod-3/ctr-0")) > max(i for i, o in enumerate(order) if o[0] == "task_exit")


def test_params_are_in_the_metadata(tiny):
    meta = json.loads(tiny.schema.metadata[SYNTH_PARAMS_KEY])
    assert meta == dataclasses.asdict(PRESETS["tiny"])


def test_swap_off_means_no_swap_on():
    t = generate(dataclasses.replace(PRESETS["tiny"], machines=1, duration_s=60.0, swap_bytes=0), 0)
    assert "swap_on" not in t.column("op").to_pylist()


def test_machine_day_rate_reaches_a_million_events():
    # two simulated hours stand in for the day: churn is stationary, so scale by 12
    p = dataclasses.replace(PRESETS["machine_day"], duration_s=7200.0)
    assert generate(p, 0).num_rows * 12 >= 1_000_000


def test_cli_generate_with_overrides(tmp_path, capsys):
    from traces.cli import main
    from traces.io import read_trace

    out = tmp_path / "g.csv.gz"
    assert main(["generate", "--preset", "tiny", "--machines", "1", "--duration-s", "120",
                 "--swap-bytes", "0", "--mem-bytes", "4e9", "--seed", "9", "--out", str(out)]) == 0
    t = read_trace(out)
    assert set(t.column("machine").to_pylist()) == {"m-0000"}
    assert t.column("time_us").to_numpy().max() < 120_000_000
    assert "swap_on" not in t.column("op").to_pylist()
    assert main(["info", str(out)]) == 0
    assert "machines" in capsys.readouterr().out


# ---------------------------------------------------------------- the compiled generator

from traces import synth_build
from traces.generate import machine_events

_built = pytest.mark.skipif(synth_build.module() is None, reason=f"generator {synth_build.describe()}")


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI builds the compiled generator; a checkout may not")
def test_ci_runs_the_compiled_generator():
    assert synth_build.module() is not None, synth_build.describe()


def _random_params(seed: int) -> SynthParams:
    """Parameters anywhere in their valid ranges, edges included, for a few simulated minutes."""
    r = np.random.default_rng(seed)
    p = _small(sorted(PRESETS)[seed % len(PRESETS)])
    return dataclasses.replace(
        p, duration_s=float(r.choice([60.0, 600.0, 1800.0])), pod_arrival_per_s=float(r.choice([0.05, 0.3, 1.0])),
        pod_lifetime_median_s=float(r.choice([0.5, 30.0, 900.0])), pod_lifetime_sigma=float(r.choice([0.0, 1.0, 3.0])),
        containers_per_pod_max=int(r.integers(1, 6)), tasks_per_container_max=int(r.integers(1, 4)),
        anon_steps=int(r.choice([0, 1, 3, 9])), anon_free_fraction=float(r.choice([0.0, 0.25])),
        shared_files=int(r.choice([1, 2, 16, 128])), shared_files_per_pod=int(r.choice([0, 1, 2, 6, 20])),
        shared_zipf_s=float(r.choice([0.0, 1.1, 3.0])), shared_map_fraction=float(r.random()),
        access_interval_s=float(r.choice([0.0, 0.5, 20.0])), tmpfs_fraction=float(r.choice([0.0, 0.6, 1.0])),
        tmpfs_outlive_fraction=float(r.random()), tmpfs_outlive_s=float(r.choice([0.0, 300.0])),
        log_bytes_median=int(r.choice([4096, 8 << 20])), log_keep_fraction=float(r.random()),
        log_keep_s=float(r.choice([0.0, 300.0])), pinned_fraction=float(r.choice([0.0, 0.2, 1.0])),
        slab_free_s=float(r.choice([0.0, 120.0])), socket_fraction=float(r.choice([0.0, 0.1, 1.0])),
        socket_linger_s=float(r.choice([0.0, 120.0])), limit_fraction=float(r.choice([0.0, 0.5, 1.0])),
        limit_headroom=float(r.choice([0.6, 1.33])))


def _same_events(p: SynthParams, seed: int, index: int) -> None:
    buf_c, names_c = machine_events(p, seed, index, compiled=True)
    buf_p, names_p = machine_events(p, seed, index, compiled=False)
    assert names_c == names_p
    assert buf_c.dtype == buf_p.dtype and np.array_equal(buf_c, buf_p)


@_built
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_compiled_generator_makes_the_pure_ones_events(name):
    for seed in (0, 1, 11):
        _same_events(_small(name), seed, seed % 3)


@_built
def test_compiled_buffers_given_back_are_reused_only_once_no_array_holds_them():
    # a machine's array gives its buffer back to the generator when it goes (traces/_synth.pyx,
    # _free_buffer): arrays still held keep their events, and the next machines' are still right
    p = _small("google2011_cell")
    want = [machine_events(p, 5, i, compiled=False)[0] for i in range(6)]
    held = [machine_events(p, 5, i, compiled=True)[0] for i in range(3)]
    for i in (3, 4, 5, 0, 1):  # each made after the one before has gone, in the buffer it gave back
        got, _ = machine_events(p, 5, i, compiled=True)
        assert np.array_equal(got, want[i])
        del got
    big = machine_events(PRESETS["machine_day"], 0, 0, compiled=True)[0]  # past the buffer kept: freed, not kept
    assert big.size > 1 << 20
    del big
    assert all(np.array_equal(h, want[i]) for i, h in enumerate(held))
    del held[1]
    assert np.array_equal(machine_events(p, 5, 2, compiled=True)[0], want[2])
    assert np.array_equal(held[0], want[0]) and np.array_equal(held[1], want[2])


@_built
@pytest.mark.parametrize("seed", range(40))
def test_compiled_generator_agrees_anywhere_in_the_parameter_space(seed):
    _same_events(_random_params(seed), seed, 1)


@_built
def test_compiled_generator_agrees_on_a_google2011_cell_machine_day():
    _same_events(dataclasses.replace(PRESETS["google2011_cell"], duration_s=86400.0), 0, 17)


def test_a_parameter_numpy_rejects_fails_alike_in_both_builds():
    p = dataclasses.replace(PRESETS["tiny"], machines=1, duration_s=120.0, anon_bytes_sigma=-1.0)
    for compiled in (None, False):
        with pytest.raises(ValueError):
            machine_events(p, 0, 0, compiled=compiled)


@_built
def test_a_generator_built_with_another_numpy_runs_pure(monkeypatch):
    """(An edited source and MEMCG_REPLAY_PURE: tests/test_build_check.py, for every compiled module.)"""
    monkeypatch.setattr(synth_build.BUILD, "_state", {})
    monkeypatch.setattr(synth_build.np, "__version__", "9.9.0")
    with pytest.warns(RuntimeWarning, match="built with numpy"):
        assert synth_build.module() is None
    assert "running 9.9" in synth_build.describe()


@_built
@pytest.mark.parametrize("seed", range(12))
def test_compiled_sort_makes_the_numpy_columns(seed):
    from traces.generate import _MEMORY, sorted_columns
    r = np.random.default_rng(seed)
    n = int(r.choice([0, 1, 7, 1000, 70_000]))
    span = int(r.choice([1, 3, 1 << 20, 1 << 40]))  # few distinct times (ties) .. wide ones (more passes)
    buf = r.integers(-5, 1 << 33, size=(n, 8), dtype=np.int64)
    buf[:, 0] = r.integers(-span // 4, span, size=n)
    buf[:, 2:5] = np.where(r.random((n, 3)) < 0.2, -1, buf[:, 2:5] % 100_000)
    buf[:, 1], buf[:, 7] = buf[:, 1] % 26, buf[:, 7] % 64
    buf = buf.reshape(-1)
    for horizon in (span // 2, span + 1):
        for memory in (0, 123 << 20):
            want = sorted_columns(buf, horizon, memory)
            got = synth_build.module().sorted_columns(buf, horizon, memory, _MEMORY)
            for w, g in zip(want, got):
                assert w.dtype == g.dtype and np.array_equal(w, g)


@_built
@pytest.mark.parametrize("seed", range(6))
def test_compiled_string_take_makes_arrows(seed):
    import pyarrow as pa

    from traces.generate import _take_names
    r = np.random.default_rng(seed)
    names = ["", "/pod-1", "kmem:p1c0t0:dentries", "é/ünïcode", "x" * 300, None] + [
        f"n{i}" for i in range(int(r.integers(0, 5000)))]
    for nulls in (0.0, 0.3, 1.0):
        ids = r.integers(0, len(names), size=int(r.choice([0, 1, 9, 10_000]))).astype(np.int32)
        ids[r.random(ids.size) < nulls] = -1
        got, = _take_names(synth_build.module(), names, [ids])
        want = pa.array(names, type=pa.string()).take(pa.array(ids, mask=ids < 0))
        got.validate(full=True)
        assert got.equals(want) and got.null_count == want.null_count
    with pytest.raises(IndexError):
        _take_names(synth_build.module(), names, [np.array([len(names)], dtype=np.int32)])
