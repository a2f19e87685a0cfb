"""Issue 14 item 7: importer bugs found on trace data the project had never seen.

Each test is one real-format input that crashed or was misread (Google 2019 and 2011
importers, the rejects file), plus the fixes the fuzzing harness found in the row parsers.
"""

from __future__ import annotations

import csv
import json

import pyarrow.compute as pc
import pytest

from core.errors import TraceError
from traces.importers.alibaba2018 import import_alibaba2018
from traces.importers.google2011 import Params as P2011
from traces.importers.google2011 import import_google2011
from traces.importers.google2019 import Params as P2019
from traces.importers.google2019 import import_google2019
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK
from traces.validate import validate_table

NEVER = (1 << 63) - 1
S = 1_000_000
ORIGIN = 600 * S


def _json(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _csv(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    return str(path)


def _no_agent(table):
    """The table without the machine agent's rows (its cgroup and task: docs/importers.md, "Sharing rules")."""
    return table.filter(pc.invert(pc.fill_null(pc.or_kleene(pc.equal(table.column("task"), AGENT_TASK),
                                                             pc.equal(table.column("cgroup"), AGENT_CGROUP)), False)))


def _where(table, **eq):
    table = _no_agent(table)  # these tests are about runs; the agent is tested in test_import_sharing
    for k, v in eq.items():
        table = table.filter(pc.equal(table.column(k), v))
    return table


def _ie(t, typ, cid, idx=0, machine=None, mem=None, alloc=None, ctype=None):
    """One instance_events row in BigQuery's JSON export form (int64s as strings, defaults omitted)."""
    r = {"time": str(t), "type": str(typ), "collection_id": str(cid), "instance_index": str(idx)}
    if machine is not None:
        r["machine_id"] = str(machine)
    if mem is not None:
        r["resource_request"] = {"cpus": 0.1, "memory": mem}
    if alloc is not None:
        r["alloc_collection_id"] = str(alloc)
    if ctype is not None:
        r["collection_type"] = str(ctype)
    return r


# ---------------------------------------------------------------- Google 2019

def test_2019_single_schedule_row_in_an_alloc_without_alloc_instances(tmp_path):
    # IndexError on main: no alloc instance in the input at all
    ev = _json(tmp_path, "ie.json", [_ie(ORIGIN, 3, 200, machine=4000, mem=0.05, alloc=100)])
    table, report, _ = import_google2019([ev])
    assert validate_table(table) == []
    assert "/alloc-100-0.implicit/task-200-0.0" in _where(table, op="mkdir").column("cgroup").to_pylist()
    table, _, _ = import_google2019([_json(tmp_path, "one.json", [_ie(ORIGIN, 3, 200, machine=4000)])])
    assert _where(table, op="task_start").num_rows == 1


def test_2019_unknown_event_type_is_a_bad_row_not_an_update(tmp_path):
    ev = _json(tmp_path, "ie.json", [_ie(ORIGIN, 3, 300, 5, machine=8000, mem=0.01),
                                     _ie(ORIGIN + S, 11, 300, 5, machine=8000, mem=0.5)])
    with pytest.raises(TraceError) as err:
        import_google2019([ev])
    assert (err.value.source, err.value.row, err.value.field) == (ev, 2, "type")
    table, report, rejects = import_google2019([ev], lenient=True)
    assert report.rows_rejected == 1
    assert _where(table, op="set_limit").column("bytes").to_pylist() == [int(0.01 * P2019().machine_bytes)]


def test_2019_update_running_does_not_limit_a_task_inside_an_alloc(tmp_path):
    ev = _json(tmp_path, "ie.json", [_ie(0, 3, 100, machine=4000, mem=0.25, ctype=1),
                                     _ie(0, 3, 200, machine=4000, mem=0.05, alloc=100),
                                     _ie(ORIGIN + S, 10, 200, machine=4000, mem=0.2, alloc=100)])
    table, _, _ = import_google2019([ev])
    assert validate_table(table) == []
    limits = _where(table, op="set_limit")
    assert limits.column("cgroup").to_pylist() == ["/alloc-100-0.0"]  # the alloc's; none on its task


def test_2019_last_known_capacity_follows_time_not_file_order(tmp_path):
    me = _json(tmp_path, "me.json", [
        {"time": str(ORIGIN + 10 * S), "machine_id": "7", "type": "3", "capacity": {"memory": 0.5}},
        {"time": "0", "machine_id": "7", "type": "1", "capacity": {"memory": 0.25}}])
    _, report, _ = import_google2019([], [me])
    assert report.machines["7"] == int(0.5 * P2019().machine_bytes)


def test_2019_task_seen_only_through_update_running_is_imported(tmp_path):
    ev = _json(tmp_path, "ie.json", [_ie(ORIGIN + 5 * S, 10, 300, 1, machine=8000, mem=0.02),
                                     _ie(ORIGIN + 9 * S, 6, 300, 1, machine=8000)])
    table, report, _ = import_google2019([ev])
    assert validate_table(table) == []
    start = _where(table, op="task_start")
    assert start.column("task").to_pylist() == ["300-1.0"] and start.column("time_us").to_pylist() == [0]
    assert report.notes["update without start in the window (implicit start)"] == 1
    # the run's limit from the start is the only one known: the update's request
    assert _where(table, op="set_limit").column("time_us").to_pylist() == [0, 5 * S]
    assert _where(table, op="task_exit").column("time_us").to_pylist() == [9 * S]


@pytest.mark.parametrize("mem", [-0.1, 1.5])
def test_2019_request_outside_0_1_is_flagged(tmp_path, mem):
    ev = _json(tmp_path, "ie.json", [_ie(ORIGIN, 3, 300, 5, machine=8000, mem=0.01),
                                     _ie(ORIGIN + S, 10, 300, 5, machine=8000, mem=mem)])
    with pytest.raises(TraceError) as err:
        import_google2019([ev])
    assert (err.value.row, err.value.field) == (2, "resource_request.memory")
    assert "outside [0, 1]" in str(err.value)


# ---------------------------------------------------------------- Google 2011

def _te(t, job, idx, machine, etype, mem=""):
    """One task_events row (13 columns)."""
    return [t, "", job, idx, machine, etype, "u", 0, 0, 0.01, mem, 0, ""]


def test_2011_machine_events_after_the_window_are_not_events(tmp_path):
    me = _csv(tmp_path, "me.csv", [[0, 5, 0, "p", 0.5, 0.5], [NEVER, 6, 0, "p", 0.5, 0.25],
                                   [NEVER, 5, 1, "", "", ""]])
    te = _csv(tmp_path, "te.csv", [_te(ORIGIN, 1, 0, 5, 1, 0.01)])
    table, report, _ = import_google2011([te], me)
    assert max(table.column("time_us").to_pylist()) < NEVER
    assert validate_table(table) == []  # on main: an event at 2^63-1 (E211 now)
    assert report.skipped["machine event after the window (time 2^63-1)"] == 2
    assert report.machines["6"] == int(0.25 * P2011().machine_bytes)  # its capacity is still known


def test_2011_exit_on_another_machine_across_a_missing_part_file(tmp_path):
    # part 0: SCHEDULE on machine 5; part 2: FINISH on machine 6 (the EVICT and the SCHEDULE on 6 were
    # in the part left out). On main the run on machine 5 took machine 6's exit and 6 had nothing.
    p0 = _csv(tmp_path, "part-00000.csv", [_te(ORIGIN + 10 * S, 1, 0, 5, 1, 0.01)])
    p2 = _csv(tmp_path, "part-00002.csv", [_te(ORIGIN + 30 * S, 1, 0, 6, 4)])
    table, report, _ = import_google2011([p0, p2])
    assert validate_table(table) == []
    starts = _where(table, op="task_start")
    exits = _where(table, op="task_exit")
    assert list(zip(starts.column("machine").to_pylist(), starts.column("time_us").to_pylist())) == [
        ("5", 10 * S), ("6", 20 * S)]
    assert list(zip(exits.column("machine").to_pylist(), exits.column("time_us").to_pylist())) == [
        ("5", 20 * S), ("6", 30 * S)]
    assert report.notes["exit on another machine than its start (events missing between: moved halfway)"] == 1
    assert report.notes["start while running (earlier run ended at the restart)"] == 0


def test_2011_kill_without_machine_ends_a_running_task(tmp_path):
    # the docs said such a KILL means "pending"; the code (right) ends the run
    te = _csv(tmp_path, "te.csv", [_te(ORIGIN, 1, 0, 5, 1, 0.01), _te(ORIGIN + 4 * S, 1, 0, "", 5),
                                   _te(ORIGIN + 5 * S, 2, 0, "", 5)])
    table, report, _ = import_google2011([te])
    assert _where(table, op="task_exit").column("time_us").to_pylist() == [4 * S]
    assert report.skipped["exit of a task that was not running"] == 1  # job 2: killed while pending


def test_2011_bad_times_are_bad_rows(tmp_path):
    te = _csv(tmp_path, "te.csv", [_te(ORIGIN, 1, 0, 5, 1, 0.01), _te(2**62, 1, 1, 5, 1, 0.01)])
    with pytest.raises(TraceError) as err:
        import_google2011([te])
    assert (err.value.source, err.value.row, err.value.field) == (te, 2, "time")


# ---------------------------------------------------------------- rejects file, row parsers

def test_rejects_file_has_the_text_of_every_rejected_row(tmp_path):
    rows = [_te(ORIGIN, 1, 0, 5, 1, 0.01), _te(ORIGIN, "", 1, 5, 1, 0.01), _te(ORIGIN, 1, 2, 5, 9, 0.01),
            _te(ORIGIN, 1, 3, 5, 1, "lots")]
    te = _csv(tmp_path, "te.csv", rows)
    for files in ([te], [_csv(tmp_path, "fast.csv", rows[:3])]):  # slow path, fast path
        _, report, rejects = import_google2011(files, lenient=True)
        out = tmp_path / "r.csv"
        rejects.write(out)
        got = list(csv.DictReader(out.open()))
        lines = open(files[0]).read().splitlines()
        assert got and all(r["text"] == lines[int(r["row"]) - 1] for r in got), got


def test_nan_and_infinity_are_bad_cells_on_both_read_paths(tmp_path):
    for value in ("nan", "inf"):
        te = _csv(tmp_path, f"{value}.csv", [_te(ORIGIN, 1, 0, 5, 1, value)])
        with pytest.raises(TraceError) as err:
            import_google2011([te])
        assert (err.value.row, err.value.field) == (1, "memory_request")


def test_alibaba_bad_time_stamps_and_empty_files(tmp_path):
    cm = _csv(tmp_path, "cm.csv", [["c_1", "m_1", -3, "app_1", "started", 400, 400, 1.5]])
    with pytest.raises(TraceError) as err:
        import_alibaba2018(None, [cm])
    assert (err.value.row, err.value.field) == (1, "time_stamp")
    empty = _csv(tmp_path, "bi.csv", [])
    mu = _csv(tmp_path, "mu.csv", [])
    from traces.importers.alibaba2018 import Params

    table, _, _ = import_alibaba2018(None, [], [empty], [mu], params=Params(background_fraction=0.1))
    assert table.num_rows == 0  # on main: ArrowInvalid (a null-typed empty column)


def test_machine_capacity_outside_0_1_is_a_bad_row(tmp_path):
    # found by the long fuzzing budget: a capacity of 1e300 overflowed int64 (OverflowError)
    me = _json(tmp_path, "me.json", [{"time": "0", "machine_id": "7", "type": "1", "capacity": {"memory": 1e300}}])
    with pytest.raises(TraceError) as err:
        import_google2019([], [me])
    assert (err.value.row, err.value.field) == (1, "capacity.memory")
    _, report, _ = import_google2019([], [me], lenient=True)
    assert report.rows_rejected == 1 and report.machines == {}


def test_usage_window_at_2_63_is_a_bad_row(tmp_path):
    # found by the long fuzzing budget: a task_usage window starting at 2^63-1 became a sample there (E211)
    te = _csv(tmp_path, "te.csv", [_te(ORIGIN, 1, 0, 5, 1, 0.01)])
    us = _csv(tmp_path, "us.csv", [[NEVER, NEVER, 1, 0, 5, 0, 0.1, 0.1, 0.01, 0.02, 0.1] + [""] * 9])
    with pytest.raises(TraceError) as err:
        import_google2011([te], task_usage=[us])
    assert (err.value.source, err.value.row, err.value.field) == (us, 1, "start_time")
    table, _, _ = import_google2011([te], task_usage=[us], lenient=True)
    assert validate_table(table) == []


def test_exit_at_2_63_on_another_machine_is_no_handover(tmp_path):
    # found by the long fuzzing budget: the handover "halfway" to an exit at 2^63-1 was at 2^62 (E211)
    te = _csv(tmp_path, "te.csv", [_te(ORIGIN, 1, 0, 5, 1, 0.01), _te(NEVER, 1, 0, 6, 4)])
    table, _, _ = import_google2011([te])
    assert validate_table(table) == []
