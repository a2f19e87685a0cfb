"""End-to-end runs with the in-process executor: outputs, determinism, cache, interrupted resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from core.errors import TraceError
from replay import store as store_mod
from replay.app import run
from replay.outputs import partition_files

QUICK = ("trace=tiny", "+trace.params.duration_s=360", "policy=none", "executor=local", "executor.step_s=60",
         "executor.checkpoint_every_s=120", "executor.checkpoint_min_wall_s=0", "plots=false")


class Interrupt(Exception):
    """Stands for the driver process dying part-way."""


def dying_at(n: int, steps: list[int]):
    """A step hook that records each round in ``steps`` and dies (``Interrupt``) at the ``n``-th."""
    def hook(k, _executor):
        steps.append(k)
        if len(steps) == n:
            raise Interrupt
    return hook


def _files(run_dir: str, policy: str = "none", seed: int = 0) -> dict[str, bytes]:
    return {n: Path(run_dir, rel).read_bytes() for n, rel in partition_files(policy, seed).items()}


def test_run_writes_partitioned_outputs_and_summary(compose_replay):
    res = run(compose_replay("trace=tiny", "policy=none", "executor=local"))
    run_dir = Path(res.run_dir)
    for name in ("summary.json", "summary.md", "zombies.png", "cost.png", "holders.png"):
        assert (run_dir / name).stat().st_size > 0, name
    machines = pq.read_table(run_dir / "machines/policy=none/seed=0/part-0.parquet")
    fleet = pq.read_table(run_dir / "fleet/policy=none/seed=0/part-0.parquet")
    assert sorted(set(machines.column("machine").to_pylist())) == ["m-0000", "m-0001", "m-0002"]
    assert fleet.column("machines").to_pylist() == [3] * fleet.num_rows
    s = json.loads((run_dir / "summary.json").read_text())["policies"][0]
    assert s["policy"] == "none" and s["machines"] == 3 and s["events"] > 0
    assert s["zombies_final"] == fleet.column("memcgs_dying").to_pylist()[-1] > 0
    assert "| none |" in (run_dir / "summary.md").read_text()


def test_results_do_not_depend_on_shard_count_or_step_cuts_of_calls(compose_replay):
    one = run(compose_replay(*QUICK, "executor.shards=1", "store.cache=false", output="one"))
    three = run(compose_replay(*QUICK, "executor.shards=3", "store.cache=false", output="three"))
    assert _files(one.run_dir) == _files(three.run_dir)


def test_later_policies_replay_the_events_the_first_one_generated(compose_replay, monkeypatch):
    import replay.shard as shard_mod

    generated = []
    real = shard_mod.generate_machine
    monkeypatch.setattr(shard_mod, "generate_machine", lambda *a: generated.append(a) or real(*a))
    base = [q for q in QUICK if not q.startswith("policy=")] + ["store.cache=false", "executor.shards=2"]
    both = run(compose_replay(*base, "policy.names=[none,reparent]", output="both"))
    assert len(generated) == 3  # the tiny fleet's machines, once for both policies
    alone = run(compose_replay(*base, "policy.names=[reparent]", output="alone"))
    assert _files(both.run_dir, "reparent") == _files(alone.run_dir, "reparent")


def test_same_seed_same_bytes_other_seed_other_results(compose_replay):
    a = run(compose_replay(*QUICK, "store.cache=false", output="a"))
    b = run(compose_replay(*QUICK, "store.cache=false", output="b"))
    c = run(compose_replay(*QUICK, "store.cache=false", "seed=1", output="c"))
    assert _files(a.run_dir) == _files(b.run_dir)
    assert _files(a.run_dir)["machines.parquet"] != _files(c.run_dir, seed=1)["machines.parquet"]


def test_finished_run_is_served_from_the_cache(compose_replay):
    first = run(compose_replay(*QUICK, output="first"))
    again = run(compose_replay(*QUICK, output="again"))
    assert first.cached == [] and again.cached == ["none"]
    assert _files(first.run_dir) == _files(again.run_dir)


def test_interrupted_sweep_skips_finished_runs_and_resumes_the_rest(compose_replay):
    ref = run(compose_replay(*QUICK, "seed=2", "store.cache=false", output="ref"))

    def die_at_step_4(k, _executor):
        if k == 4:  # t = 300 s; the last commit was at 240 s
            raise Interrupt

    run(compose_replay(*QUICK, "seed=1", output="job0"))
    with pytest.raises(Interrupt):
        run(compose_replay(*QUICK, "seed=2", output="job1"), on_step=die_at_step_4)
    store_mod._EMBEDDED.stop()  # a new process: only the persisted store survives

    job0 = run(compose_replay(*QUICK, "seed=1", output="rerun0"))
    job1 = run(compose_replay(*QUICK, "seed=2", output="rerun1"))
    assert job0.cached == ["none"]
    assert job1.cached == [] and job1.resumed == {"none": 240_000_000}
    assert _files(job1.run_dir, seed=2) == _files(ref.run_dir, seed=2)


def test_invalid_trace_is_refused_with_the_validator_report(compose_replay, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time_us,machine,op,cgroup,task,object,offset,bytes,flags\n"
                   "0,m1,mkdir,/a,,,,,\n"
                   "5,m1,frobnicate,/a,,,,,\n")
    with pytest.raises(TraceError) as err:
        run(compose_replay("trace=file", f"trace.path={bad}", "executor=local"))
    assert "bad.csv:2" in str(err.value) and "op" in str(err.value)
    assert not any(Path(tmp_path, "run").rglob("policy=*"))


def test_packed_machines_give_the_same_results_and_resume(compose_replay):
    kept = run(compose_replay(*QUICK, "store.cache=false", "executor.pack_above=-1", output="kept"))
    packed = run(compose_replay(*QUICK, "store.cache=false", "executor.pack_above=0", output="packed"))
    assert _files(kept.run_dir) == _files(packed.run_dir)

    def die_at_step_4(k, _executor):
        if k == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(compose_replay(*QUICK, "executor.pack_above=0", output="cut"), on_step=die_at_step_4)
    resumed = run(compose_replay(*QUICK, "executor.pack_above=0", output="cut"))
    assert resumed.resumed["none"] > 0 and _files(resumed.run_dir) == _files(kept.run_dir)


def test_a_packing_shard_holds_blobs_between_rounds(compose_replay, tmp_path):
    import dataclasses

    from replay.app import shard_specs
    from replay.plan import make_plans
    from replay.shard import Shard

    cfg = compose_replay(*QUICK, "store.cache=false")
    [plan] = make_plans(cfg, lambda n: 1, str(tmp_path))
    spec = shard_specs(plan, cfg, "none", "r", None)[0]
    packed, kept = Shard(dataclasses.replace(spec, pack=True)), Shard(dataclasses.replace(spec, pack=False))
    a, b = packed.advance_to(120_000_000), kept.advance_to(120_000_000)
    assert all(isinstance(m, tuple) and isinstance(m[0], bytes) for m in packed.machines)
    assert not any(isinstance(m, tuple) for m in kept.machines)
    for k in b.samples:
        np.testing.assert_array_equal(a.samples[k], b.samples[k], err_msg=k)
    assert packed.finish(plan.t_end_us)["summaries"] == kept.finish(plan.t_end_us)["summaries"]


def test_a_shard_round_runs_with_the_cyclic_gc_paused_and_restores_it(compose_replay, tmp_path, monkeypatch):
    """``Shard.advance_to`` pauses the cyclic GC for its rounds (collections set off by a round's
    allocations rescanned every machine's state) and gives back the caller's setting, also on error."""
    import gc

    import replay.shard
    from replay.app import shard_specs
    from replay.plan import make_plans
    from replay.shard import Shard

    cfg = compose_replay(*QUICK, "store.cache=false")
    [plan] = make_plans(cfg, lambda n: 1, str(tmp_path))
    shard = Shard(shard_specs(plan, cfg, "none", "r", None)[0])
    seen = []
    real = replay.shard.points_columns
    monkeypatch.setattr(replay.shard, "points_columns", lambda *a: seen.append(gc.isenabled()) or real(*a))
    assert gc.isenabled()
    shard.advance_to(120_000_000)
    assert seen and not any(seen) and gc.isenabled()
    monkeypatch.setattr(replay.shard, "points_columns", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        shard.advance_to(240_000_000)
    assert gc.isenabled()


def test_packed_blobs_are_zstd_and_the_zlib_ones_of_earlier_versions_still_load():
    """``pack`` writes its header and a zstd frame; ``unpickle`` reads those and the zlib-compressed
    pickles that checkpoints, commits and waves held before (a run resumed across the change)."""
    import pickle
    import zlib

    from core.machine import Machine, MachineConfig
    from replay.shard import pack, thaw, unpickle

    m = Machine(MachineConfig(mem_bytes=1 << 30), machine_id="m", seed=0)
    blob = pack(("state", m, list(range(1000))))
    assert blob[:4] == b"MRz1" and blob[12:16] == b"\x28\xb5\x2f\xfd"  # the zstd frame's magic
    old = zlib.compress(pickle.dumps(("state", m, list(range(1000))), protocol=pickle.HIGHEST_PROTOCOL), 1)
    for b in (blob, old):
        tag, back, nums = unpickle(b)
        assert tag == "state" and nums == list(range(1000)) and back.machine_id == "m"
        assert pickle.dumps(back.summary()) == pickle.dumps(m.summary())
    assert thaw((pack(m), m.clock())).summary() == m.summary()


def test_a_fleet_in_waves_gives_the_same_results_and_resumes_in_its_wave(compose_replay):
    whole = run(compose_replay(*QUICK, "store.cache=false", output="whole"))
    waves = run(compose_replay(*QUICK, "store.cache=false", "executor.wave_machines=2", output="waves"))
    assert _files(whole.run_dir) == _files(waves.run_dir)

    steps: list[int] = []
    die_in_wave_2 = dying_at(10, steps)  # 6 rounds in wave 1, then the fourth of wave 2
    with pytest.raises(Interrupt):
        run(compose_replay(*QUICK, "executor.wave_machines=2", output="cut"), on_step=die_in_wave_2)
    steps.clear()
    resumed = run(compose_replay(*QUICK, "executor.wave_machines=2", output="cut"), on_step=die_in_wave_2)
    assert len(steps) < 7  # wave 1 came from the store; wave 2 resumed from its checkpoint
    assert _files(resumed.run_dir) == _files(whole.run_dir)


def test_a_generated_trace_file_replays_on_machines_of_its_generated_size(compose_replay, tmp_path):
    import dataclasses

    from traces.generate import PRESETS, generate
    from traces.io import write_trace

    params = dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=120.0)  # 2 GiB machines
    write_trace(generate(params, 1), tmp_path / "g.parquet")
    res = run(compose_replay("trace=file", f"trace.path={tmp_path / 'g.parquet'}", "policy=none",
                             "executor=local", "plots=false"))
    machines = pq.read_table(Path(res.run_dir, partition_files("none", 0)["machines.parquet"]))
    after = np.array(machines.column("time_us").to_pylist()) > 0  # a sample reflects the events before it
    free = np.array(machines.column("free_bytes").to_pylist())[after]
    assert len(free) and 0 < free.max() <= params.mem_bytes  # not the 64 GiB a trace without sizes gets


def test_an_unchanged_machine_is_pickled_once_for_every_checkpoint(compose_replay, tmp_path):
    """Checkpoints store an idle machine's pickle once and only its clock after (cost follows events),
    and a shard restored from such a checkpoint goes on exactly as the undisturbed one."""
    import dataclasses

    from replay.app import shard_specs
    from replay.plan import make_plans
    from replay.shard import Shard

    cfg = compose_replay(*QUICK, "store.cache=false")
    [plan] = make_plans(cfg, lambda n: 1, str(tmp_path))
    spec = dataclasses.replace(shard_specs(plan, cfg, "none", "r", None)[0], pack=True)
    shard = Shard(spec)
    end = int(shard.batches[0].time_us[-1])
    # past every event and the work they queued (writeback of dirty pages): the machines only sample now
    grid = (end // spec.step_us + 10) * spec.step_us
    shard.advance_to(grid)
    blobs = [f[0] for f in shard.machines]
    shard.advance_to(grid + 5 * spec.step_us)
    assert all(f[0] is b for f, b in zip(shard.machines, blobs))  # no machine was pickled again
    clocks = [f[1][0] for f in shard.machines]
    assert clocks == [grid + 5 * spec.step_us] * len(clocks)


def test_a_shard_reads_its_partition_with_the_string_columns_as_dictionaries(compose_replay, tmp_path, monkeypatch):
    """``traces.batches.read_parquet``: the shard batches Parquet's own dictionaries (no string hashed per row),
    and its machines get the batches a plain read gives."""
    import dataclasses

    import pyarrow as pa

    import replay.shard
    from replay.app import shard_specs
    from replay.plan import make_plans
    from replay.shard import Shard
    from traces.batches import STRING_COLUMNS, machine_batches
    from traces.generate import PRESETS, generate
    from traces.io import read_trace, write_trace

    params = dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=120.0)
    write_trace(generate(params, 1), tmp_path / "g.parquet")
    cfg = compose_replay("trace=file", f"trace.path={tmp_path / 'g.parquet'}", "policy=none", "executor=local")
    [plan] = make_plans(cfg, lambda n: 1, str(tmp_path / "work"))
    spec = shard_specs(plan, cfg, "none", "r", None)[0]
    seen = []

    def recording(table, *args, **kw):
        seen.append([table.schema.field(c).type for c in STRING_COLUMNS])
        return machine_batches(table, *args, **kw)

    monkeypatch.setattr(replay.shard, "machine_batches", recording)
    shard = Shard(spec)
    assert seen and all(pa.types.is_dictionary(t) for t in seen[0])
    plain = dict(machine_batches(read_trace(spec.trace_path), spec.trace_path))
    for mid, got in zip(spec.machines, shard.batches):
        want = plain[mid]
        assert (got.cgroups, got.tasks, got.objects) == (want.cgroups, want.tasks, want.objects)
        assert all(np.array_equal(getattr(got, f), getattr(want, f)) for f in ("time_us", "op", "obj", "row"))
