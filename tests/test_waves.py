"""A fleet in waves: fleet parts merge exactly, outputs stream from the waves' files with the bytes
one table gives, and a finished wave's file is checked before a resumed run reuses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics import expand_columns
from replay import outputs
from replay.app import WAVES_PREFIX, run
from replay.columns import FLEET_PERCENTILES, TIME, ZOMBIES
from replay.coordinator import sort_parts
from replay.fleet import fleet_part, fleet_rows, fleet_table, merge_parts
from replay.outputs import stream_parquet
from replay.shard import concat_samples
from tests.test_replay_run import QUICK, Interrupt, _files, dying_at


def _samples(rng: np.random.Generator, machines: int, times: int) -> dict[str, np.ndarray]:
    m = np.repeat(np.arange(machines, dtype=np.int32), times)
    t = np.tile(np.arange(times, dtype=np.int64) * 60_000_000, machines)
    keep = rng.random(len(m)) < 0.8  # machines missing some times
    return {"machine": m[keep], TIME: t[keep], ZOMBIES: rng.integers(0, 9, len(m))[keep],
            "anon_bytes": rng.integers(0, 1 << 40, len(m))[keep],
            "zombie_age_max_s": rng.random(len(m))[keep], "zombie_age_p50_s": rng.random(len(m))[keep]}


def _reference(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # what the fleet table means: per time, sums, maxima and nearest-rank percentiles of sorted counts
    times = np.unique(s[TIME])
    out: dict[str, list] = {TIME: list(times), "machines": [], ZOMBIES: [], "anon_bytes": [], "zombie_age_max_s": []}
    out.update({k: [] for k in FLEET_PERCENTILES})
    for t in times:
        at = s[TIME] == t
        z = np.sort(s[ZOMBIES][at])
        out["machines"].append(int(at.sum()))
        out[ZOMBIES].append(int(z.sum()))
        out["anon_bytes"].append(int(s["anon_bytes"][at].sum()))
        out["zombie_age_max_s"].append(float(s["zombie_age_max_s"][at].max()))
        for k, q in FLEET_PERCENTILES.items():
            out[k].append(int(z[max(0, int(np.ceil(q / 100 * len(z))) - 1)]))
    return {k: np.asarray(v) for k, v in out.items()}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), machines=st.integers(1, 12), times=st.integers(1, 9),
       cuts=st.lists(st.integers(0, 12), max_size=4))
def test_fleet_parts_of_any_split_of_the_machines_merge_into_the_whole_fleets_table(seed, machines, times, cuts):
    s = _samples(np.random.default_rng(seed), machines, times)
    whole = fleet_rows(s)
    ref = _reference(s)
    assert set(whole) == set(ref)
    for k in ref:
        assert whole[k].tolist() == ref[k].tolist(), k
    bounds = sorted({0, machines, *(c for c in cuts if c < machines)})
    parts = [fleet_part({k: v[(s["machine"] >= lo) & (s["machine"] < hi)] for k, v in s.items()})
             for lo, hi in zip(bounds, bounds[1:])]
    merged = fleet_table(merge_parts(parts[::-1]))  # any order
    assert {k: v.tolist() for k, v in merged.items()} == {k: v.tolist() for k, v in whole.items()}
    assert {k: v.dtype for k, v in merged.items()} == {k: v.dtype for k, v in whole.items()}


def test_sorting_parts_a_column_at_a_time_is_sorting_their_concatenation():
    rng = np.random.default_rng(3)
    parts = [{"machine": rng.integers(0, 5, 20).astype(np.int32), TIME: rng.integers(0, 9, 20), "v": rng.random(20)}
             for _ in range(4)]
    whole = concat_samples(parts)
    order = np.lexsort((whole[TIME], whole["machine"]))
    expect = {k: v[order] for k, v in whole.items()}
    got = sort_parts(parts)
    assert {k: v.tolist() for k, v in got.items()} == {k: v.tolist() for k, v in expect.items()}
    assert all(not p for p in parts)  # the parts gave their columns away


def _compact(rng: np.random.Generator, machine: int, rows: int) -> dict[str, np.ndarray]:
    reps = rng.integers(1, 5, rows)
    t0 = (np.cumsum(reps) - reps) * 60_000_000
    z = np.zeros(rows, dtype=np.int64)
    return {"machine": np.full(rows, machine, np.int32), TIME: t0, ZOMBIES: rng.integers(0, 4, rows),
            "zombie_age_p50_s": np.zeros(rows), "zombie_age_max_s": np.zeros(rows),
            "_reps": reps, "_interval": np.full(rows, 60_000_000), "_nd": z, "_lo": z, "_hi": z,
            "_oldest": z, "_fresh": np.ones(rows, dtype=bool)}


@pytest.mark.parametrize("compact", [True, False])
def test_a_table_streamed_in_parts_has_the_bytes_of_the_whole(monkeypatch, compact):
    monkeypatch.setattr(outputs, "ROW_GROUP", 7)  # parts that end inside and across row groups
    rng = np.random.default_rng(5)
    parts = [_compact(rng, m, n) for m, n in enumerate((3, 0, 11, 1, 6))]
    if not compact:
        parts = [expand_columns(p) for p in parts]
    whole = concat_samples(parts)
    assert stream_parquet(parts) == outputs.parquet_bytes(whole)
    assert stream_parquet([]) == outputs.parquet_bytes({})
    empty = {k: v[:0] for k, v in parts[0].items()}
    assert stream_parquet([empty]) == outputs.parquet_bytes(empty)  # no rows, still its columns


def test_job_waves_read_as_arrow_tables_write_the_bytes_of_their_columns(monkeypatch, tmp_path):
    """The job table's spilled waves are written from the Arrow tables in their files (``outputs._job_parts``):
    the bytes the same columns give as numpy arrays and Python strings, across waves of any size (none too)."""
    import pyarrow as pa

    from replay.coordinator import Collected
    from replay.waves import spill

    monkeypatch.setattr(outputs, "ROW_GROUP", 7)
    rng = np.random.default_rng(6)
    names = [f"m-{i:03d}" for i in range(20)]
    waves = []
    for n in (5, 0, 16, 3):
        jobs = {"machine": np.sort(rng.integers(0, 20, n)).astype(np.int32),
                "cgroup": np.array([f"/job/{rng.integers(1 << 30)}" for _ in range(n)], dtype=object),
                "born_us": rng.integers(0, 1 << 40, n)}
        waves.append(jobs)
    spilled = [spill(Collected({}, {}, [], dict(w), 0, 0.0), str(tmp_path / f"w{k}")) for k, w in enumerate(waves)]
    c = Collected({}, {}, [], {}, 0, 0.0, spilled=[p for s in spilled for p in s.spilled])
    parts = list(outputs._job_parts(c, names))
    assert all(isinstance(p, pa.Table) for p in parts)
    assert stream_parquet(parts) == outputs.parquet_bytes(outputs._named(concat_samples(waves), names))
    assert stream_parquet(parts[1:2]) == outputs.parquet_bytes(outputs._named(waves[1], names))  # no rows
    assert stream_parquet([pa.table({})]) == outputs.parquet_bytes({})  # a wave without a job table


def test_a_finished_waves_file_is_checked_before_a_resumed_run_reuses_it(compose_replay):
    whole = run(compose_replay(*QUICK, "store.cache=false", output="whole"))
    steps: list[int] = []
    die_in_wave_2 = dying_at(10, steps)  # 6 rounds in wave 1, then the fourth of wave 2
    with pytest.raises(Interrupt):
        run(compose_replay(*QUICK, "executor.wave_machines=2", output="cut"), on_step=die_in_wave_2)
    [folder] = Path(whole.run_dir).parent.joinpath("cut").glob(WAVES_PREFIX + "*")
    [machines] = folder.glob("*.machines.arrow")  # wave 1's tables wait on disk, not in the store
    machines.write_bytes(machines.read_bytes()[:-1] + b"\0")  # damaged: wave 1 must run again
    steps.clear()
    resumed = run(compose_replay(*QUICK, "executor.wave_machines=2", output="cut"), on_step=die_in_wave_2)
    # wave 1 again (from its last commit: 2 rounds), then wave 2 from its checkpoint (2 rounds); with
    # its file intact, wave 1 would be taken as it was and only wave 2's 2 rounds run
    assert len(steps) == 4
    assert _files(resumed.run_dir) == _files(whole.run_dir)
    assert not list(Path(resumed.run_dir).glob(WAVES_PREFIX + "*"))  # gone once the files are written


def test_narrowed_rows_write_the_same_bytes_and_last_rows(monkeypatch):
    """The driver keeps a wave's rows in the smallest integer types that hold them
    (``coordinator.narrow``); what is written and summed from them is what the int64 rows give,
    with no narrow product overflowing (a stored row's last sample time is ~10^12 us)."""
    from replay.coordinator import last_samples, narrow

    monkeypatch.setattr(outputs, "ROW_GROUP", 5)
    rng = np.random.default_rng(8)
    parts = [_compact(rng, m, n) for m, n in enumerate((4, 9, 2))]
    for p in parts:
        p["_reps"] = p["_reps"] * 1000  # 1000s of 60 s samples: a month
    small = [narrow(p) for p in parts]
    assert small[0][ZOMBIES].dtype == np.int8 and small[0]["_interval"].dtype == np.int32
    assert stream_parquet(small) == outputs.parquet_bytes(concat_samples(parts))
    a, b = last_samples(concat_samples(small)), last_samples(concat_samples(parts))
    assert {k: (v.tolist(), v.dtype) for k, v in a.items()} == {k: (v.tolist(), v.dtype) for k, v in b.items()}
    assert int(a[TIME][0]) > 2**31


def test_a_shard_gives_back_the_memory_arrow_kept_from_loading_its_events(monkeypatch, compose_replay, tmp_path):
    """Arrow's pool and glibc's heap keep the memory that generating or reading the events freed
    (a Google-2011-shaped shard of 500 machines x 29 days: 3.3 GiB resident, 1.6 GiB once given back)."""
    from replay import shard as shard_mod
    from replay.app import shard_specs
    from replay.plan import make_plans

    released: list[int] = []

    class Pool:
        def release_unused(self) -> None:
            released.append(len(shard.batches) if shard is not None else -1)

    class Libc:
        def malloc_trim(self, pad: int) -> None:
            released.append(-pad - 1)

    shard = None
    monkeypatch.setattr(shard_mod.pa, "default_memory_pool", lambda: Pool())
    monkeypatch.setattr(shard_mod, "_LIBC", Libc())
    cfg = compose_replay(*QUICK, "store.cache=false")
    [plan] = make_plans(cfg, lambda n: 1, str(tmp_path))
    spec = shard_specs(plan, cfg, "none", "r", None)[0]

    class Probe(shard_mod.Shard):
        def _load_events(self):
            nonlocal shard
            shard = self
            got = super()._load_events()
            self.batches = got
            return got

    Probe(spec)
    assert released == [len(spec.machines), -1]  # once each, after the events were loaded


def test_outputs_too_big_for_the_cache_are_written_but_not_cached(monkeypatch, compose_replay, capsys):
    from replay import app

    monkeypatch.setattr(app, "CACHE_MAX_BYTES", 100)
    first = run(compose_replay(*QUICK, "progress=true", output="a"))
    cap = capsys.readouterr()
    assert "not cached in the run store" in cap.err + cap.out
    again = run(compose_replay(*QUICK, output="b"))
    assert first.cached == [] and again.cached == []  # replayed, not served from the store
    assert _files(first.run_dir) == _files(again.run_dir)
    monkeypatch.setattr(app, "CACHE_MAX_BYTES", 1 << 30)
    run(compose_replay(*QUICK, output="c"))
    assert run(compose_replay(*QUICK, output="d")).cached == ["none"]


def test_a_shard_generating_its_machines_in_chunks_gets_the_whole_tables_batches(compose_replay, tmp_path):
    import dataclasses

    from replay.app import shard_specs
    from replay.plan import make_plans
    from replay.shard import Shard
    from traces.batches import machine_batches

    cfg = compose_replay(*QUICK, "store.cache=false")
    [plan] = make_plans(cfg, lambda n: 1, "")
    spec = shard_specs(plan, cfg, "none", "r", None)[0]
    assert spec.synth is not None and not spec.trace_path and len(spec.machines) == 3
    shard = Shard.__new__(Shard)
    shard.spec = spec
    whole = list(machine_batches(shard._synthetic_table(), f"synthetic seed {spec.seed}"))
    chunked = list(shard._synthetic_batches(chunk=2))  # a chunk of 2 machines, then 1
    assert [m for m, _ in chunked] == [m for m, _ in whole]
    for (_, a), (_, b) in zip(chunked, whole):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and np.array_equal(x, y), f.name
            elif f.compare:
                assert x == y, f.name
    assert int(chunked[-1][1].row[0]) > len(chunked[0][1].row)  # numbered as in the whole table


def test_a_spilled_wave_is_read_back_as_views_of_one_record_batch(tmp_path):
    """A wave's tables go to disk as one record batch each (``waves.spill``), so that reading one back gives
    numpy views of Arrow's arrays: a file of several batches (64K rows each by default) had every column
    copied into a new array, ~1 s of the writer's time per 1,000-machine wave. Same columns either way."""
    import pyarrow as pa

    from replay.coordinator import Collected
    from replay.waves import read_spilled, spill

    rng = np.random.default_rng(5)
    n = 70_000  # more rows than one default batch holds
    machines = {"machine": np.sort(rng.integers(0, 50, n)).astype(np.int32), TIME: rng.integers(0, 1 << 40, n),
                ZOMBIES: rng.integers(0, 9, n).astype(np.int8)}
    jobs = {"machine": np.arange(n, dtype=np.int32), "cgroup": np.array([f"/job/{i}" for i in range(n)], dtype=object),
            "born_us": rng.integers(0, 1 << 40, n)}
    want = {"machines": {k: v.copy() for k, v in machines.items()}, "jobs": {k: v.copy() for k, v in jobs.items()}}
    got = spill(Collected(machines, {}, [], jobs, 0, 0.0), str(tmp_path / "wave"))
    for table, cols in want.items():
        path = f"{got.spilled[0]}.{table}.arrow"
        assert pa.ipc.open_file(path).num_record_batches == 1
        back = read_spilled(got.spilled[0], table)
        def as_lists(d: dict) -> dict:
            return {k: (v.dtype, v.tolist()) for k, v in d.items()}

        assert as_lists(back) == as_lists(cols)
        assert all(not v.flags.owndata for k, v in back.items() if v.dtype != object)  # views, not copies
