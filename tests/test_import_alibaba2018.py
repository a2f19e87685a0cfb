"""Alibaba cluster-trace-v2018 importer: hand-written rows always; the real excerpt when ../shared exists."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from core.errors import TraceError
from traces.importers.alibaba2018 import Params, import_alibaba2018
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK
from traces.validate import validate_table

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "alibaba-cluster-trace-v2018"

CONTAINERS = [
    "c_1,m_1,0,app_1,started,400,400,1.56",
    "c_1,m_1,300,app_1,started,400,400,1.56",
    "c_2,m_1,100,app_1,started,400,400,3.13",
    "c_2,m_1,400,app_1,started,400,400,3.13",
    "c_3,m_2,200,app_7,started,400,400,1.56",
    "c_3,m_2,1500,app_7,started,400,400,1.56",
]
BATCH = [
    "ins_1,M1,j_1,1,Terminated,100,400,m_1,1,1,50,60,0.5,0.8",
    "ins_2,M1,j_1,1,Terminated,150,300,m_1,1,1,50,60,0.4,0.8",
    "ins_3,M1,j_1,1,Waiting,0,0,,1,1,,,,",
    "ins_4,R2_1,j_1,1,Running,900,0,m_2,1,1,50,60,0.4,0.8",
    "ins_1,M1,j_1,1,Terminated,500,600,m_1,2,2,50,60,0.5,0.8",
]


def _write(tmp_path: Path, name: str, lines: list[str]) -> str:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def _no_agent(table):
    """The table without the machine agent's rows (its cgroup and task: docs/importers.md, "Sharing rules")."""
    return table.filter(pc.invert(pc.fill_null(pc.or_kleene(pc.equal(table.column("task"), AGENT_TASK),
                                                             pc.equal(table.column("cgroup"), AGENT_CGROUP)), False)))


def _sel(table, **eq):
    for k, v in eq.items():
        table = table.filter(pc.equal(table.column(k), v))
    return table


def test_containers_and_batch_instances(tmp_path):
    table, report, _ = import_alibaba2018(None, [_write(tmp_path, "c.csv", CONTAINERS)],
                                          [_write(tmp_path, "b.csv", BATCH)])
    assert validate_table(table) == []
    ops = Counter(_no_agent(table).column("op").to_pylist())
    containers = {(r.split(",")[0], r.split(",")[1]) for r in CONTAINERS}
    placed = [r for r in BATCH if r.split(",")[7]]
    assert ops["task_start"] == len(containers) + len(placed)
    # a container exits one interval after its last snapshot unless that is the end of the file
    exits = _sel(table, op="task_exit")
    assert dict(zip(exits.column("task").to_pylist(), exits.column("time_us").to_pylist()))["c_1"] == 600_000_000
    assert "c_3" not in exits.column("task").to_pylist()
    # the same instance name run twice on one machine: two distinct cgroups
    mk = _sel(table, op="mkdir", machine="m_1").column("cgroup").to_pylist()
    assert "/batch-j_1/M1.ins_1.0" in mk and "/batch-j_1/M1.ins_1.1" in mk
    lim = _sel(table, op="set_limit", cgroup="/app-app_1/c_2").column("bytes").to_pylist()
    assert lim == [int(3.13 / 100 * Params().machine_bytes)]
    # no page cache in the trace: the shared image per app/job comes from the sharing rule
    creates = _sel(table, op="file_create", machine="m_1").column("object").to_pylist()
    assert "image/app_1" in creates and "image/j_1" in creates
    assert report.skipped["batch instance without machine (never placed)"] == 1
    assert report.rows_read == report.rows_imported + report.rows_rejected + report.rows_skipped


def test_bad_row_names_field(tmp_path):
    path = _write(tmp_path, "c.csv", CONTAINERS[:2] + ["c_9,m_1,abc,app_1,started,1,1,1"])
    with pytest.raises(TraceError) as e:
        import_alibaba2018(None, [path])
    assert (e.value.row, e.value.field) == (3, "time_stamp")
    table, report, _ = import_alibaba2018(None, [path], lenient=True)
    assert report.rows_rejected == 1 and validate_table(table) == []


@pytest.mark.skipif(not SHARED.exists(), reason="../shared Alibaba excerpts not present")
def test_real_machine_meta_and_usage(tmp_path):
    meta = SHARED / "machine_meta.csv"
    usage = SHARED / "excerpt-machines-m_1932-m_1934" / "machine_usage.csv"
    table, report, _ = import_alibaba2018(str(meta), [_write(tmp_path, "c.csv", [
        r.replace("m_1,", "m_1932,").replace("m_2,", "m_1933,") for r in CONTAINERS])], [],
        [str(usage)], Params(background_fraction=0.1))
    assert validate_table(table) == []
    with open(meta) as f:
        meta_rows = list(csv.reader(f))
    with open(usage) as f:
        usage_rows = list(csv.reader(f))
    assert Counter(table.column("op").to_pylist())["sync"] == len(meta_rows)
    assert len(report.machines) == len({r[0] for r in meta_rows})
    assert report.rows_read == len(meta_rows) + len(usage_rows) + len(CONTAINERS)
    bg = _sel(table, cgroup="/background", op="mkdir")
    assert sorted(bg.column("machine").to_pylist()) == sorted({r[0] for r in usage_rows})
