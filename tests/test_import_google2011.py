"""Google ClusterData 2011 importer: real excerpt, quirks, bad input, usage, CLI, replay."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.errors import TraceError
from traces.cli import main as cli_main
from traces.importers.google2011 import Params, import_google2011
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK, parse_rules
from traces.io import read_trace
from traces.validate import validate_table

DATA = Path(__file__).parent / "data" / "google2011"
TASKS = DATA / "task_events-part-00000-head6000.csv.gz"
MACHINES = DATA / "machine_events-head3000.csv.gz"
NEVER = (1 << 63) - 1


def _no_agent(table):
    """The table without the machine agent's rows (its cgroup and task: docs/importers.md, "Sharing rules")."""
    return table.filter(pc.invert(pc.fill_null(pc.or_kleene(pc.equal(table.column("task"), AGENT_TASK),
                                                             pc.equal(table.column("cgroup"), AGENT_CGROUP)), False)))


def _rows(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.reader(f))


def _expected_runs(rows: list[list[str]]) -> tuple[int, int, set[tuple[str, str]]]:
    """Starts, exits and (machine, job) pairs by a plain state machine over the raw rows (time order)."""
    running: dict[tuple[str, str], tuple[str, str]] = {}  # task -> (machine, job)
    seen: set[tuple[str, str]] = set()
    starts = exits = 0
    pairs = set()
    for r in sorted(rows, key=lambda r: int(r[0])):
        task, etype, machine = (r[2], r[3]), int(r[5]), r[4]
        if etype == 1:
            if task in running:
                exits += 1
            running[task] = (machine, r[2])
            starts += 1
            pairs.add((machine, r[2]))
        elif 2 <= etype <= 6:
            if task in running:
                running.pop(task)
                exits += 1
            elif task not in seen and machine:
                starts += 1
                exits += 1
                pairs.add((machine, r[2]))
        if etype in (1, 2, 3, 4, 5, 6):
            seen.add(task)
    return starts, exits, pairs


@pytest.fixture(scope="module")
def excerpt():
    return import_google2011([str(TASKS)], str(MACHINES))


def test_excerpt_is_a_valid_trace(excerpt):
    table, report, _ = excerpt
    assert table.num_rows > 10_000
    assert validate_table(table, "google2011") == []


def test_counts_match_raw_rows(excerpt):
    table, report, _ = excerpt
    rows = _rows(TASKS)
    starts, exits, pairs = _expected_runs(rows)
    ops = Counter(table.column("op").to_pylist())
    agents = len({m for m, _ in pairs})  # the machine agent that installs images: one per machine with a run
    assert ops["task_start"] == starts + agents
    assert ops["task_exit"] == exits
    # a task cgroup per run, a job cgroup per (machine, job), the agent's cgroup per machine
    assert ops["mkdir"] == starts + len(pairs) + agents
    task_machines = {r[4] for r in rows if r[4]}
    machine_rows = _rows(MACHINES)
    all_machines = task_machines | {r[1] for r in machine_rows if r[2] == "0"}
    assert set(pc.unique(table.column("machine")).to_pylist()) == all_machines
    assert ops["sync"] == sum(r[2] == "0" for r in machine_rows)
    assert report.rows_read == len(rows) + len(machine_rows)
    assert report.rows_read == report.rows_imported + report.rows_rejected + report.rows_skipped
    assert report.skipped["SUBMIT/UPDATE_PENDING (not on a machine)"] == sum(r[5] in ("0", "7") for r in rows)


def test_limits_are_requests_in_bytes(excerpt):
    table, _, _ = excerpt
    mb = Params().machine_bytes
    first_schedule = next(r for r in _rows(TASKS) if r[5] == "1")
    task = f"{first_schedule[2]}-{first_schedule[3]}.0"
    path = f"/job-{first_schedule[2]}/task-{first_schedule[3]}.0"
    lim = table.filter(pc.and_(pc.equal(table.column("op"), "set_limit"), pc.equal(table.column("cgroup"), path)))
    assert lim.column("bytes").to_pylist() == [int(float(first_schedule[10]) * mb)]
    start = table.filter(pc.and_(pc.equal(table.column("op"), "task_start"), pc.equal(table.column("task"), task)))
    assert start.column("machine").to_pylist() == [first_schedule[4]]
    assert start.column("time_us").to_pylist() == [int(first_schedule[0]) - 600_000_000]


def test_import_is_deterministic(tmp_path):
    a, _, _ = import_google2011([str(TASKS)], str(MACHINES))
    b, _, _ = import_google2011([str(TASKS)], str(MACHINES))
    assert a.equals(b)
    assert cli_main(["import", "google2011", "--task-events", str(TASKS), "--out", str(tmp_path / "a.parquet"),
                     "--quiet"]) == 0
    assert cli_main(["import", "google2011", "--task-events", str(TASKS), "--out", str(tmp_path / "b.parquet"),
                     "--quiet"]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def _write(tmp_path: Path, name: str, lines: list[str]) -> str:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


QUIRKS = [
    "0,,1,0,100,1,u1,0,9,0.1,0.01,0,0",           # running at time 0 (initial state)
    "0,2,1,1,100,1,u1,0,9,0.1,,0,0",               # EXISTS_BUT_NO_CREATION, no memory request
    "600000000,,2,0,,0,u2,0,9,0.1,0.02,0,0",      # SUBMIT: not on a machine
    "650000000,,3,0,200,5,u3,0,9,0.1,0.02,0,0",   # KILL of a task whose start is before the window
    "700000000,,2,0,200,1,u2,0,9,0.1,0.02,0,0",   # SCHEDULE
    "710000000,,2,0,200,8,u2,0,9,0.1,0.04,0,0",   # UPDATE_RUNNING: new limit
    "720000000,,2,0,200,2,u2,0,9,0.1,0.02,0,0",   # EVICT
    "730000000,,2,0,300,1,u2,0,9,0.1,0.02,0,0",   # rescheduled elsewhere: a new incarnation
    "740000000,,4,0,,5,u4,0,9,0.1,0.02,0,0",      # KILL of a pending task (no machine)
    "750000000,,1,0,100,4,u1,0,9,0.1,0.01,0,0",   # FINISH of the time-0 task
    f"{NEVER},,1,1,100,4,u1,0,9,0.1,,0,0",         # after the window: no exit
]


def test_quirks(tmp_path):
    table, report, _ = import_google2011([_write(tmp_path, "te.csv", QUIRKS)])
    assert validate_table(table) == []
    ops = Counter(_no_agent(table).column("op").to_pylist())
    assert ops["task_start"] == 5  # 1-0, 1-1, 3-0 (implicit), 2-0 twice
    assert ops["task_exit"] == 3  # 3-0, 2-0.0, 1-0; 2-0.1 and 1-1 run on
    assert report.notes["exit without start in the window (implicit start)"] == 1
    assert report.skipped["exit of a task that was not running"] == 1
    starts = _no_agent(table).filter(pc.equal(_no_agent(table).column("op"), "task_start"))
    assert sorted(starts.column("task").to_pylist()) == ["1-0.0", "1-1.0", "2-0.0", "2-0.1", "3-0.0"]
    implicit = starts.filter(pc.equal(starts.column("task"), "3-0.0"))
    assert implicit.column("time_us").to_pylist() == [0]
    limits = table.filter(pc.and_(pc.equal(table.column("op"), "set_limit"),
                                  pc.equal(table.column("cgroup"), "/job-2/task-0.0")))
    mb = Params().machine_bytes
    assert limits.column("bytes").to_pylist() == [int(0.02 * mb), int(0.04 * mb)]
    nolimit = table.filter(pc.and_(pc.equal(table.column("op"), "set_limit"),
                                   pc.equal(table.column("cgroup"), "/job-1/task-1.0")))
    assert nolimit.num_rows == 0
    exits_1 = table.filter(pc.equal(table.column("task"), "1-1.0")).column("op").to_pylist()
    assert "task_exit" not in exits_1
    assert report.rows_read == report.rows_imported + report.rows_rejected + report.rows_skipped


def test_sharing_rules_can_be_turned_off(tmp_path):
    path = _write(tmp_path, "te.csv", QUIRKS)
    on, _, _ = import_google2011([path])
    off, _, _ = import_google2011([path], params=Params(rules=parse_rules(["job_image=off", "user_libs=off"])))
    objs_on = set(pc.unique(on.column("object")).to_pylist())
    objs_off = set(pc.unique(off.column("object")).to_pylist())
    assert {"image/2", "libs/u2"} <= objs_on
    assert not any(o and o.startswith(("image/", "libs/")) for o in objs_off)
    # two incarnations of job 2 on different machines: one image file per machine
    creates = on.filter(pc.and_(pc.equal(on.column("op"), "file_create"), pc.equal(on.column("object"), "image/2")))
    assert sorted(creates.column("machine").to_pylist()) == ["200", "300"]


USAGE = [
    # start,end,job,index,machine,cpu,canonical,assigned,unmapped,total,max, +9 more
    "700000000,710000000,2,0,200,0.01,0.010,0.02,0.001,0.002,0.011" + ",,,,,,,,," ,
    "710000000,720000000,2,0,200,0.01,0.020,0.02,0.001,0.004,0.021" + ",,,,,,,,,",
    "900000000,910000000,9,9,200,0.01,0.020,0.02,0.001,0.004,0.021" + ",,,,,,,,,",  # no such task
]


def test_usage_becomes_memory_events(tmp_path):
    te = _write(tmp_path, "te.csv", QUIRKS)
    tu = _write(tmp_path, "tu.csv", USAGE)
    params = Params(rules=parse_rules(["job_image=off", "user_libs=off"]))
    table, report, _ = import_google2011([te], task_usage=[tu], params=params)
    assert validate_table(table) == []
    mb = params.machine_bytes
    t = table.filter(pc.equal(table.column("task"), "2-0.0"))
    anon = t.filter(pc.equal(t.column("op"), "anon_alloc")).column("bytes").to_numpy()
    # anon = canonical - total page cache: 0.008 then 0.016 of the machine
    assert abs(int(anon.sum()) - int(0.016 * mb)) <= 2 * 4096
    reads = t.filter(pc.equal(t.column("op"), "file_read")).column("bytes").to_numpy()
    assert abs(int(reads.sum()) - int(0.004 * mb)) <= 2 * 4096
    maps = t.filter(pc.equal(t.column("op"), "file_map")).column("bytes").to_numpy()
    assert abs(int(maps.sum()) - int(0.003 * mb)) <= 2 * 4096  # total - unmapped
    assert report.skipped["usage row matching no running task"] == 1


def _as_written(table: pa.Table, tmp_path: Path, name: str) -> tuple[bytes, bytes]:
    from traces.io import write_trace
    write_trace(table, tmp_path / f"{name}.parquet")
    write_trace(table, tmp_path / f"{name}.csv")
    return (tmp_path / f"{name}.parquet").read_bytes(), (tmp_path / f"{name}.csv").read_bytes()


@pytest.mark.parametrize("chunk", [1, 997, 20_000])
def test_assembly_in_chunks_of_machines_makes_the_same_trace(tmp_path, monkeypatch, chunk):
    # the events are sorted and gathered a chunk of machines at a time; any chunk size gives the
    # table (cells, order, schema) and the files of the assembly in one piece
    from traces.importers import emit
    te, tu = _write(tmp_path, "te.csv", QUIRKS), _write(tmp_path, "tu.csv", USAGE)
    runs = {"excerpt": lambda: import_google2011([str(TASKS)])[0],
            "excerpt+machines": lambda: import_google2011([str(TASKS)], str(MACHINES))[0],
            "usage": lambda: import_google2011([te], task_usage=[tu])[0]}
    for name, run in runs.items():
        monkeypatch.setattr(emit, "CHUNK_EVENTS", 1 << 40)
        whole = run()
        monkeypatch.setattr(emit, "CHUNK_EVENTS", chunk)
        cut = run()
        assert whole.column("time_us").num_chunks == 1
        if name == "excerpt" and chunk < 20_000:
            assert cut.column("time_us").num_chunks > 1
        assert cut.schema.equals(whole.schema, check_metadata=True)
        assert cut.equals(whole)
        assert _as_written(cut, tmp_path, f"{name}-cut") == _as_written(whole, tmp_path, f"{name}-whole")


def test_machines_without_events_make_no_chunk(monkeypatch):
    # machine ids that a base names but no event uses (here "a", "b", "d") fall into chunks of
    # their own at small chunk sizes; those are skipped, not assembled empty
    from traces.importers import emit
    base = pa.array(["a", "b", "c", "d", "e"])
    rows = np.array([2, 2, 2, 4, 4, 4, 4], dtype=np.int64)
    part = emit._Part("mkdir", np.arange(7, dtype=np.int64), emit.P_MKDIR, 0, emit._Ref(base, rows),
                      cgroup=emit._Ref(base, rows))
    for size in (1, 2, 3, 1 << 40):
        monkeypatch.setattr(emit, "CHUNK_EVENTS", size)
        table, used = emit._assemble([part])
        assert used == ["c", "e"]
        assert table.column("machine").to_pylist() == ["c"] * 3 + ["e"] * 4
        assert table.column("cgroup").to_pylist() == ["c"] * 3 + ["e"] * 4


def test_codes_used_are_the_codes_an_ascending_column_holds():
    from traces.importers import emit
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 500):
        mcode = np.sort(rng.integers(3, 40, n))
        assert np.array_equal(emit._codes_used(mcode, 45), np.bincount(mcode, minlength=45) > 0)


def test_sort_keys_shift_int32_machine_codes_as_int64():
    # the machine codes per event are int32; packed above 40+ bits of time they must not wrap
    from traces.importers import emit
    m, t, ph = np.array([3, 5000], np.int32), np.array([0, 1 << 44], np.int64), np.array([1, 2], np.int64)
    key, _, tbits, pbits = emit._packed_keys([m], [t], [ph])
    assert (key >> (tbits + pbits)).tolist() == [3, 5000]
    assert ((key >> pbits) & ((1 << tbits) - 1)).tolist() == [0, 1 << 44]


def test_malformed_cell_names_file_row_field(tmp_path):
    lines = QUIRKS[:4] + ["660000000,,5,0,200,1,u5,0,9,0.1,lots,0,0"] + QUIRKS[4:]
    path = _write(tmp_path, "bad.csv", lines)
    with pytest.raises(TraceError) as e:
        import_google2011([path])
    assert (e.value.source, e.value.row, e.value.field) == (path, 5, "memory_request")
    table, report, rejects = import_google2011([path], lenient=True)
    assert report.rows_rejected == 1 and rejects.rows[0][1:3] == (5, "memory_request")
    assert validate_table(table) == []
    assert report.rows_read == len(lines)


def test_short_row_and_missing_required_field(tmp_path):
    path = _write(tmp_path, "short.csv", QUIRKS[:2] + ["600000000,,2,0,200"])
    with pytest.raises(TraceError) as e:
        import_google2011([path])
    assert e.value.row == 3 and "expected 13 fields" in str(e.value)
    path = _write(tmp_path, "missing.csv", QUIRKS[:2] + ["600000000,,,0,200,1,u,0,9,0.1,0.1,0,0"])
    with pytest.raises(TraceError) as e:
        import_google2011([path])
    assert (e.value.row, e.value.field) == (3, "job_id")


def test_truncated_gzip_names_the_row(tmp_path):
    data = gzip.compress(TASKS.read_bytes() and gzip.decompress(TASKS.read_bytes()))
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError) as e:
        import_google2011([str(cut)])
    assert e.value.source == str(cut) and e.value.row > 100 and "truncated" in str(e.value)
    table, report, rejects = import_google2011([str(cut)], lenient=True)
    assert validate_table(table) == []
    assert report.rows_rejected >= 1 and report.rows_read > 100


def test_cli_lenient_writes_rejects_and_report(tmp_path):
    path = _write(tmp_path, "bad.csv", QUIRKS + ["x,,1,0,100,1,u,0,9,0.1,0.1,0,0"])
    out = tmp_path / "t.parquet"
    assert cli_main(["import", "google2011", "--task-events", path, "--out", str(out), "--quiet"]) == 1
    assert not out.exists()
    assert cli_main(["import", "google2011", "--task-events", path, "--out", str(out), "--lenient", "--quiet"]) == 0
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["rows"]["rejected"] == 1 and report["rows"]["read"] == len(QUIRKS) + 1
    rejects = Path(f"{out}.rejects.csv").read_text().splitlines()
    assert len(rejects) == 2 and rejects[1].split(",")[1:3] == [str(len(QUIRKS) + 1), "time"]
    assert validate_table(read_trace(out)) == []


def test_excerpt_replays_on_the_model(excerpt):
    """Five machines of the excerpt replay cleanly and end where their events say they must."""
    from core.invariants import check
    from core.machine import Machine, MachineConfig
    from core.ops import Op
    from traces.batches import machine_batches
    from traces.transforms import sample_machines

    table, _, _ = excerpt
    busy = table.filter(pc.equal(table.column("op"), "task_start"))
    some = sample_machines(busy, count=5, seed=1)
    keep = pa.array(pc.unique(some.column("machine")).to_pylist(), pa.string())  # the column is dictionary-encoded
    sub = table.filter(pc.is_in(table.column("machine"), value_set=keep))
    removed = 0
    for mid, batch in machine_batches(sub):
        m = Machine(MachineConfig(mem_bytes=64 << 30), machine_id=mid)
        m.apply(batch)
        assert m.counters["events"] == len(batch) and check(m) == []
        ops, cg, tk = batch.op.tolist(), batch.cgroup.tolist(), batch.task.tolist()
        made = [batch.cgroups[c] for o, c in zip(ops, cg) if o == Op.MKDIR]
        gone = [batch.cgroups[c] for o, c in zip(ops, cg) if o == Op.RMDIR]
        exited = {batch.tasks[t] for o, t in zip(ops, tk) if o == Op.TASK_EXIT}
        anon = sum(-(-n // 4096) * 4096 for o, t, n in zip(ops, tk, batch.nbytes.tolist())
                   if o == Op.ANON_ALLOC and batch.tasks[t] not in exited)
        jobs, s = m.job_table(), m.summary()
        assert sorted(jobs["cgroup"]) == sorted(made)
        assert sorted(c for c, off in zip(jobs["cgroup"], jobs["offline_us"]) if off >= 0) == sorted(gone)
        # no memory pressure on 64 GiB: running tasks keep all their anon; a removed job's page cache
        # (its image layers) keeps every removed cgroup a zombie
        assert s["anon_bytes"] == anon and s["memcgs_dying"] == len(gone)
        removed += len(gone)
    assert removed > 0


@pytest.mark.benchmark
def test_bench_import_rate():
    """Prints rows/s of the 2011 task_events import (scripts/bench_import.py); asserts nothing about speed."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from bench_import import bench
    lines = bench(10)
    print("\n".join(lines))
    assert lines[0].startswith("google2011 task_events rows:")


def test_low_cardinality_columns_come_dictionary_encoded(excerpt, tmp_path):
    from traces.io import read_trace, write_trace
    from traces.schema import DICT_STRING
    table = excerpt[0]
    assert [table.schema.field(c).type for c in ("machine", "op", "flags")] == [DICT_STRING] * 3
    assert table.schema.field("cgroup").type == pa.string()  # a name per cgroup: plain strings write faster
    write_trace(table, tmp_path / "t.parquet")
    back = read_trace(tmp_path / "t.parquet")
    for c in ("machine", "op", "flags"):
        assert back.column(c).to_pylist() == table.column(c).to_pylist()
    assert Counter(back.column("op").to_pylist()) == Counter(excerpt[1].ops)
