"""Sharing rules: who is charged for a shared image (docs/importers.md, "Sharing rules").

The default has the machine agent fill the page cache of ``image/<job>`` and ``libs/<user>``
before the tasks read them, as Borg's Borglet and container runtimes install packages and
layers: the tasks find the pages cached and are charged nothing (first touch owns). The old
default charged the group's first task for all of it, which OOM-killed first tasks on small
limits (276 of the 9,629 runs of the 600-1400 s excerpt of part 0). These tests pin the new
default and fail on the old one.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.machine import Machine, MachineConfig
from traces.batches import machine_batches
from traces.importers.emit import shared_bytes
from traces.importers.google2011 import Params, import_google2011
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK, DEFAULT_RULES, describe, parse_rules
from traces.validate import validate_table

MiB = 1 << 20
DATA = Path(__file__).parent / "data" / "google2011"
TASKS = DATA / "task_events-part-00000-head6000.csv.gz"
MACHINES = DATA / "machine_events-head3000.csv.gz"
OLD = ["job_image=first", "user_libs=first"]  #: the default before: the first task pays for the image

# job 7 (user u7) runs two tasks on machine 100, each with a request of 0.002 (131 MiB of 64 GiB):
# half of it anon, a quarter private cache, and the job's 256 MiB image and 64 MiB of libraries
SMALL_JOB = [
    "600000000,,7,0,100,1,u7,0,9,0.01,0.002,0,0",
    "600000001,,7,1,100,1,u7,0,9,0.01,0.002,0,0",
    "700000000,,7,0,100,4,u7,0,9,0.01,0.002,0,0",
    "700000001,,7,1,100,4,u7,0,9,0.01,0.002,0,0",
]


def _import(tmp_path: Path, share: list[str] | None = None, lines: list[str] = SMALL_JOB):
    path = tmp_path / "te.csv"
    path.write_text("\n".join(lines) + "\n")
    table, _, _ = import_google2011([str(path)], params=Params(rules=parse_rules(share)))
    assert validate_table(table) == []
    return table


def _replay(table: pa.Table) -> dict[str, Machine]:
    out = {}
    for mid, batch in machine_batches(table):
        m = Machine(MachineConfig(), machine_id=mid)
        m.apply(batch)
        out[mid] = m
    return out


def test_default_rules_have_the_agent_fill_images_and_libraries():
    owners = {r.name: r.owner for r in DEFAULT_RULES}
    assert owners == {"job_image": "agent", "user_libs": "agent", "pod_tmpfs": "first"}
    assert "job_image=256MiB:0.25:agent" in describe(DEFAULT_RULES)


@pytest.mark.parametrize("setting, owner, size", [
    ("job_image=first", "first", 256 * MiB),
    ("job_image=128MiB:0.5:first", "first", 128 * MiB),
    ("job_image=128MiB", "agent", 128 * MiB),  # the owner is kept when only the size changes
    ("job_image=agent", "agent", 256 * MiB),
])
def test_share_setting_names_the_owner(setting, owner, size):
    rule = {r.name: r for r in parse_rules([setting])}["job_image"]
    assert (rule.owner, rule.nbytes, rule.enabled) == (owner, size, True)


@pytest.mark.parametrize("setting", ["job_image=nobody", "job_image=64MiB:0.5:root", "pod_tmpfs=agent"])
def test_bad_owner_is_refused(setting):
    with pytest.raises(ValueError):
        parse_rules([setting])


def test_agent_reads_the_image_before_the_first_task(tmp_path):
    table = _import(tmp_path)
    rows = [r for r in table.to_pylist() if r["machine"] == "100" and r["op"] != "sync"]
    seq = [(r["op"], r["task"] or r["cgroup"], r["object"]) for r in rows]
    assert seq.index(("mkdir", AGENT_CGROUP, None)) < seq.index(("task_start", AGENT_TASK, None))
    # the agent creates nothing itself; it reads each file whole before any task reads or maps it
    for obj in ("image/7", "libs/u7"):
        uses = [(op, who) for op, who, o in seq if o == obj]
        assert uses == [("file_create", None), ("file_read", AGENT_TASK), ("file_read", "7-0.0"),
                        ("file_map", "7-0.0"), ("file_read", "7-1.0"), ("file_map", "7-1.0")]
    # the agent is never removed: it outlives every job
    assert ("rmdir", AGENT_CGROUP, None) not in seq and ("task_exit", AGENT_TASK, None) not in seq


def test_small_limits_are_not_oom_killed_for_the_image(tmp_path):
    m = _replay(_import(tmp_path))["100"]
    assert m.summary()["oom_kills"] == 0
    agent = m.stat(AGENT_CGROUP)
    assert agent["file"] >= (256 + 64) * MiB  # the image and the libraries are the agent's
    assert agent["file_mapped"] == 0  # it installed them; the tasks map them
    # each task is charged for its own memory only: anon and private cache, under its limit
    for k in (0, 1):
        s = m.stat(f"/job-7/task-{k}.0")
        assert s["dying"] and s["anon"] == 0 and s["file"] <= int(0.002 * Params().machine_bytes) // 4 + 4096


def test_old_default_oom_kills_the_first_task(tmp_path):
    m = _replay(_import(tmp_path, OLD))["100"]
    assert m.summary()["oom_kills"] >= 1
    with pytest.raises(KeyError):
        m.stat(AGENT_CGROUP)


def test_trace_page_cache_is_not_reduced_by_agent_files():
    # with usage rows, a task's page cache is what its cgroup was charged: agent-owned files are not in it,
    # so nothing is subtracted; a first-task-owned file is (docs/importers.md)
    cg = SimpleNamespace(keys={"job": pa.array(["7"]), "user": pa.array(["u7"])}, __len__=None)
    cg = type("Cg", (), {"keys": cg.keys, "__len__": lambda self: 1})()
    assert shared_bytes(cg, parse_rules(None))[0].tolist() == [0]
    assert shared_bytes(cg, parse_rules(OLD))[0].tolist() == [(256 + 64) * MiB]


def _small_limit_machines(table: pa.Table, count: int) -> list[str]:
    lim = table.filter(pc.and_(pc.equal(table.column("op"), "set_limit"),
                               pc.less(table.column("bytes"), 320 * MiB)))
    return sorted(set(lim.column("machine").to_pylist()))[:count]


def test_excerpt_first_tasks_on_small_limits_survive():
    """Machines of the real excerpt whose tasks have limits under the old image + libs: killed before, not now."""
    old, _, _ = import_google2011([str(TASKS)], str(MACHINES), params=Params(rules=parse_rules(OLD)))
    new, _, _ = import_google2011([str(TASKS)], str(MACHINES))
    machines = pa.array(_small_limit_machines(old, 12), pa.string())
    assert len(machines) == 12

    def kills(table):
        sub = table.filter(pc.is_in(table.column("machine").cast(pa.string()), value_set=machines))
        return sum(m.summary()["oom_kills"] for m in _replay(sub).values())

    assert kills(old) > 0
    assert kills(new) == 0
