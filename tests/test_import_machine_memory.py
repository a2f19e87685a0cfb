"""Imported traces carry each machine's RAM as a ``memory`` row before its first event."""

from __future__ import annotations

from core.machine import Machine, MachineConfig
from traces.batches import machine_batches
from traces.importers.machine_memory import with_machine_memory
from traces.validate import validate_table

from tests.tracehelp import ev, pod_rows, table


def test_a_memory_row_leads_each_sized_machine_and_nothing_else_moves():
    rows = pod_rows("m1", 5) + pod_rows("m2", 7) + pod_rows("m3", 9)
    t = with_machine_memory(table(rows), {"m1": 8 << 30, "m3": 2 << 30, "gone": 1 << 30})
    assert t.num_rows == len(rows) + 2
    got = list(zip(t.column("machine").to_pylist(), t.column("op").to_pylist(), t.column("bytes").to_pylist(),
                   t.column("time_us").to_pylist()))
    assert got[0] == ("m1", "memory", 8 << 30, 5)
    m3 = next(i for i, g in enumerate(got) if g[0] == "m3")
    assert got[m3] == ("m3", "memory", 2 << 30, 9)
    others = [g for g in got if g[1] != "memory"]
    assert others == [(r[1], r[2], r[7], r[0]) for r in rows]  # the original rows, in their order
    assert validate_table(t, "x") == []


def test_replay_takes_the_size_from_the_trace():
    t = with_machine_memory(table(pod_rows("m1")), {"m1": 3 << 30})
    m = Machine(MachineConfig(mem_bytes=64 << 30), machine_id="m1")
    for _, b in machine_batches(t, "x"):
        m.apply(b)
    assert m.mem_total == (3 << 30) // 4096


def test_no_sizes_no_change():
    t = table([ev(0, "mkdir", cg="/a")])
    assert with_machine_memory(t, {}).equals(t) and with_machine_memory(t, {"m1": 0}).equals(t)
