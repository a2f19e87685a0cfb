"""Google ClusterData 2019 importer: real machine_events excerpt, hand-written instance rows."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from core.errors import TraceError
from traces.cli import main as cli_main
from traces.importers.google2019 import Params, import_google2019
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK
from traces.validate import validate_table

DATA = Path(__file__).parent / "data" / "google2019"
MACHINES = DATA / "machine_events-mod4-head2000.json.gz"
EVENTS = DATA / "handwritten" / "instance_events.json"
USAGE = DATA / "handwritten" / "instance_usage.json"


def _no_agent(table):
    """The table without the machine agent's rows (its cgroup and task: docs/importers.md, "Sharing rules")."""
    return table.filter(pc.invert(pc.fill_null(pc.or_kleene(pc.equal(table.column("task"), AGENT_TASK),
                                                             pc.equal(table.column("cgroup"), AGENT_CGROUP)), False)))


def _ops(table, **eq) -> list:
    t = _no_agent(table)  # these tests are about runs and allocs; the agent is tested in test_import_sharing
    for k, v in eq.items():
        t = t.filter(pc.equal(t.column(k), v))
    return t


def test_machine_events_excerpt_markers_and_capacity():
    table, report, _ = import_google2019([], [str(MACHINES)])
    rows = [json.loads(line) for line in gzip.open(MACHINES, "rt")]
    adds = [r for r in rows if r.get("type") == "1"]
    with_cap = {r["machine_id"]: r["capacity"]["memory"] for r in rows if "memory" in r.get("capacity", {})}
    sized = {m for m in {r["machine_id"] for r in adds} if with_cap.get(m, 0) > 0}
    assert table.num_rows == len(adds) + len(sized)  # a marker per ADD, a memory row per sized machine
    assert set(table.column("op").to_pylist()) == {"sync", "memory"}
    assert set(pc.unique(table.column("machine")).to_pylist()) == {r["machine_id"] for r in adds}
    some = next(iter(sized))
    assert report.machines[some] == int(with_cap[some] * Params().machine_bytes)
    mem = _ops(table, op="memory", machine=some)
    assert mem.column("bytes").to_pylist() == [report.machines[some]]
    assert mem.column("time_us")[0].as_py() == _ops(table, machine=some).column("time_us")[0].as_py()
    assert report.ops["memory"] == len(sized)
    assert validate_table(table) == []


def test_alloc_sets_become_parent_cgroups():
    table, report, _ = import_google2019([str(EVENTS)], [str(MACHINES)], [str(USAGE)])
    assert validate_table(table) == []
    mk = _ops(table, op="mkdir", machine="4000").column("cgroup").to_pylist()
    assert mk == ["/alloc-100-0.0", "/alloc-100-0.0/task-200-0.0", "/alloc-100-0.0/task-200-1.0"]
    # the alloc's request is the shared limit; its tasks get none of their own
    limits = _ops(table, op="set_limit", machine="4000")
    assert limits.column("cgroup").to_pylist() == ["/alloc-100-0.0"]
    assert limits.column("bytes").to_pylist() == [int(0.25 * Params().machine_bytes)]
    # children are removed before the alloc, which ends with its own FINISH (1100 s -> 500 s native)
    rm = _ops(table, op="rmdir", machine="4000")
    assert rm.column("cgroup").to_pylist()[-1] == "/alloc-100-0.0"
    assert rm.column("time_us").to_pylist()[-1] == 500_000_000
    # the pod's tmpfs volume: written by the first task, mapped by the second, deleted with the pod
    tmpfs = _ops(table, object="tmpfs/alloc-100-0.0")
    assert tmpfs.column("op").to_pylist() == ["file_create", "file_write", "file_map", "file_delete"]
    assert tmpfs.column("task").to_pylist()[1:3] == ["200-0.0", "200-1.0"]


def test_implicit_alloc_restart_update_and_counts():
    table, report, _ = import_google2019([str(EVENTS)], [], [str(USAGE)])
    rows = [json.loads(line) for line in open(EVENTS)]
    schedules = sum(r.get("type") == "3" and r.get("collection_type", "0") == "0" for r in rows)
    ops = Counter(_no_agent(table).column("op").to_pylist())
    assert ops["task_start"] == schedules + 1  # + the implicit start of instance 400/2 (KILL only)
    assert report.notes["task in an alloc whose instance has no events (implicit alloc cgroup)"] == 1
    assert "/alloc-600-3.implicit/task-500-0.0" in _ops(table, op="mkdir").column("cgroup").to_pylist()
    # 300/5 runs twice, on two machines; UPDATE_RUNNING raised its limit
    starts = _ops(table, op="task_start")
    assert sorted(starts.filter(pc.starts_with(starts.column("task"), "300-5")).column("machine").to_pylist()) == [
        "8000", "8004"]
    lim = _ops(table, op="set_limit", cgroup="/job-300/task-5.0").column("bytes").to_pylist()
    assert lim == [int(0.01 * Params().machine_bytes), int(0.02 * Params().machine_bytes)]
    assert report.skipped["instance_usage row of an alloc instance"] == 1
    assert report.skipped["usage row matching no running task"] == 1
    assert report.rows_read == report.rows_imported + report.rows_rejected + report.rows_skipped


def test_usage_includes_cache_switch():
    a, _, _ = import_google2019([str(EVENTS)], [], [str(USAGE)])
    b, _, _ = import_google2019([str(EVENTS)], [], [str(USAGE)], Params(usage_includes_cache=False))
    anon = [int(pc.sum(_ops(t, op="anon_alloc", task="300-5.0").column("bytes")).as_py()) for t in (a, b)]
    mb = Params().machine_bytes
    assert abs(anon[0] - int(0.0008 * mb)) <= 4096 and abs(anon[1] - int(0.001 * mb)) <= 4096


def test_bad_json_names_file_row_field(tmp_path):
    lines = open(EVENTS).read().splitlines()
    bad = tmp_path / "bad.json"
    bad.write_text("\n".join(lines[:3] + ['{"time":"1","collection_id":"x1"}'] + lines[3:]) + "\n")
    with pytest.raises(TraceError) as e:
        import_google2019([str(bad)])
    assert (e.value.source, e.value.row, e.value.field) == (str(bad), 4, "collection_id")
    bad.write_text("\n".join(lines[:2] + ['{"time":"1",'] + lines[2:]) + "\n")
    with pytest.raises(TraceError) as e:
        import_google2019([str(bad)])
    assert e.value.row == 3
    table, report, rejects = import_google2019([str(bad)], lenient=True)
    assert report.rows_rejected == 1 and validate_table(table) == []


def test_cli(tmp_path):
    out = tmp_path / "g.csv"
    assert cli_main(["import", "google2019", "--instance-events", str(EVENTS), "--instance-usage", str(USAGE),
                     "--machine-events", str(MACHINES), "--out", str(out), "--quiet"]) == 0
    assert json.loads(Path(f"{out}.report.json").read_text())["tasks"] == 6
