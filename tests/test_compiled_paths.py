"""The compiled build's C paths keep the pure model's semantics where C could differ from Python.

In: ``core.pages.RunTable`` (compiled or pure, whichever this process loaded) and the pure model run
with Cython made unimportable. Out: assertions that a value out of an int32 column's range, or a
sum that leaves it, raises OverflowError in either build (C arithmetic never wraps silently:
``overflowcheck`` in setup.py), that the buffer-pointer paths leave the same runs as the pure
ones, that a batch's columns of other integer widths replay as the usual ones and a value its
column cannot hold is a TraceError, and that the pure model needs nothing of Cython (``core/_cyshim.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest

import core
from core.errors import TraceError
from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.ops import Op
from core.pages import RunTable, St

ROOT = Path(__file__).resolve().parent.parent
INT32_MAX = 2**31 - 1
RESIDENT = int(St.RESIDENT)


def _table_of(*lengths: int) -> RunTable:
    """Object 0 as consecutive resident runs of these lengths, all fields equal but the ranges."""
    R = RunTable()
    pos = 0
    for n in lengths:
        R.link(R.new(0, pos, n, RESIDENT, 1, 1, 0, 0, 5, 1))
        pos += n
    return R


def test_a_value_out_of_an_int32_column_raises_overflow_error():
    R = RunTable()
    with pytest.raises(OverflowError):
        R.new(0, 0, INT32_MAX + 1, RESIDENT, 1, 1, 0, 0, 0, 1)
    with pytest.raises(OverflowError):
        R.new(0, 0, 1, 128, 1, 1, 0, 0, 0, 1)  # state is int8


def test_merging_runs_whose_length_leaves_int32_raises_overflow_error():
    R = _table_of(INT32_MAX - 10, 20)
    with pytest.raises(OverflowError):
        R.coalesce(0, 0, INT32_MAX)


def test_merging_and_splitting_through_the_buffers_gives_the_pure_runs():
    R = _table_of(3, 4, 5)
    R.coalesce(0, 0, 12)
    assert [(R.start[r], R.npages[r]) for r in R.obj_runs[0]] == [(0, 12)]
    x = R.touch(R.obj_runs[0][0], 2, 6, 9, 3)  # pages [2, 6) aged to 9 and stamped dirty
    runs = R.obj_runs[0]
    assert [(R.start[r], R.npages[r], R.age[r], R.dirty[r]) for r in runs] == [(0, 2, 5, 0), (2, 4, 9, 3),
                                                                              (6, 6, 5, 0)]
    assert runs[1] == x and R.pieces(0, 1, 7) == [(runs[0], 1, 2), (x, 2, 6), (runs[2], 6, 7)]
    assert R.pieces(0, 10, 14) == [(runs[2], 10, 12), (-1, 12, 14)]


def _differential(seeds: int, hide_cython: bool) -> dict:
    """``tests.differential``'s digests, pure build, with ``import cython`` failing if ``hide_cython``."""
    code = ("import sys, runpy\n"
            + ("sys.modules['cython'] = None\n" if hide_cython else "")
            + f"sys.argv = ['differential', '--seeds', '{seeds}']\n"
            + "runpy.run_module('tests.differential', run_name='__main__')\n")
    env = dict(os.environ, MEMCG_REPLAY_PURE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_the_pure_model_runs_without_cython_and_gives_the_same_replays():
    assert _differential(2, hide_cython=True) == _differential(2, hide_cython=False)


def _batch_rows() -> list[tuple]:
    """A small machine's events: a cgroup, a task, a file written then read, the task's exit."""
    return [(0, Op.MKDIR, "/j", None, None, None, None, 0),
            (10, Op.TASK_START, "/j", "t", None, None, None, 0),
            (20, Op.FILE_CREATE, None, None, "f", None, None, 0),
            (30, Op.FILE_WRITE, None, "t", "f", 0, 40_000, 0),
            (40, Op.FILE_READ, None, "t", "f", 4096, 8192, 0),
            (50, Op.TASK_EXIT, None, "t", None, None, None, 0)]


def _replayed(batch: EventBatch) -> dict:
    m = Machine(MachineConfig(mem_bytes=1 << 30), machine_id="m", seed=0)
    m.apply(batch)
    m.advance_to(60)
    return m.summary()


def test_batch_columns_of_other_integer_widths_replay_as_the_usual_ones():
    usual = EventBatch.from_rows(_batch_rows(), source="b.csv")
    wide = dataclasses.replace(usual, op=usual.op.astype(np.int64), cgroup=usual.cgroup.astype(np.int64),
                               task=usual.task.astype(np.int64), obj=usual.obj.astype(np.int16),
                               flags=usual.flags.astype(np.int64), time_us=usual.time_us.astype(np.int32),
                               row=None)
    assert _replayed(wide) == _replayed(usual)


def test_a_batch_value_its_column_cannot_hold_is_a_trace_error_naming_row_and_field():
    usual = EventBatch.from_rows(_batch_rows(), source="b.csv")
    op = usual.op.astype(np.int64)
    op[4] = 300  # no op has that code, and it does not fit the loop's uint8 column
    m = Machine(MachineConfig(mem_bytes=1 << 30), machine_id="m", seed=0)
    with pytest.raises(TraceError, match=r"b\.csv:5: op: 300"):
        m.apply(dataclasses.replace(usual, op=op))


def test_insert_i32_inserts_and_refuses_what_array_insert_would_clamp():
    if "run_index" in core.COMPILED:  # the C version is inlined into the compiled modules: reach it through one
        R = _table_of(3, 4)
        R.split(R.obj_runs[0][1], 5)  # inserts into the object's run ids and starts
        assert list(R.obj_starts[0]) == [0, 3, 5] and len(R.obj_runs[0]) == 3
        return
    from core.run_index import insert_i32

    a = array("i", [1, 3])
    insert_i32(a, 1, 2)
    insert_i32(a, 3, 4)
    insert_i32(a, 0, 0)
    assert a.tolist() == [0, 1, 2, 3, 4]
    for bad in (-1, 6):
        with pytest.raises(IndexError):
            insert_i32(a, bad, 9)
    with pytest.raises(OverflowError):
        insert_i32(a, 0, INT32_MAX + 1)
    assert a.tolist() == [0, 1, 2, 3, 4]


def test_the_run_index_searches_are_the_bisect_modules():
    import bisect
    import random

    from core.run_index import starts_left, starts_right

    rng = random.Random(5)
    for _ in range(500):
        starts = array("i", sorted(rng.sample(range(-50, 5000), rng.randint(0, 40))))
        for x in [rng.randint(-60, 5010) for _ in range(20)] + list(starts[:3]):
            assert starts_right(starts, x) == bisect.bisect_right(starts, x)
            assert starts_left(starts, x) == bisect.bisect_left(starts, x)


def test_appended_slots_hold_their_values_and_refuse_what_their_column_cannot():
    from core.memcg import MemcgTable

    mem = MemcgTable()
    _, a = mem.mkdir("/a", 5)
    _, b = mem.mkdir("/a/b", 1 << 40)  # born_us is an int64 column
    assert (mem.parent[b], mem.born_us[a], mem.born_us[b], mem.max[b]) == (a, 5, 1 << 40, mem.max[a])
    with pytest.raises(OverflowError):
        mem.mkdir("/a/c", 1 << 70)
    R = _table_of(3)
    r = R.new(0, 10, 2, RESIDENT, 7, 7, 0, 0, -3, 1, -128, 5)  # an appended run slot (no free slot)
    assert (R.start[r], R.npages[r], R.memcg[r], R.age[r], R.rflags[r], R.dirty[r]) == (10, 2, 7, -3, -128, 5)


def test_the_clock_is_int64_in_either_build():
    """``now_us`` is a C long long compiled: a time past int64 is refused with OverflowError by both builds
    (the pure clock would hold it), and the config a fault reads per event is copied onto the state."""
    cfg = MachineConfig(age_quantum_us=7_000_000, dirty_expire_us=11_000_000, kernel="5.10")
    m = Machine(cfg, seed=0)
    m.advance_to((1 << 63) - 1 - cfg.sample_interval_us)
    with pytest.raises(OverflowError, match="int64"):
        m.advance_to(1 << 63)
    assert (m.age_quantum_us, m.dirty_expire_us) == (7_000_000, 11_000_000)
    assert (m.slab_reparented, m.kmem_reparented) == (True, False)  # v5.9+ and v5.13+


def test_the_event_count_is_whole_after_a_batch_a_sample_or_an_error():
    """``apply`` counts events in a C field and hands them to ``counters["events"]`` at each sample and
    when the batch ends, also when a row raises: the count is then the rows applied before it."""
    rows = _batch_rows()
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), machine_id="m", seed=0)
    m.apply(EventBatch.from_rows(rows[:3], source="b.csv"))
    assert m.counters["events"] == 3 and m.pending_events == 0
    m.apply(EventBatch.from_rows(rows[3:], source="b.csv"))  # samples at 25 and 50 see 3 and 5 events
    taken = m.sampler.take()
    assert list(taken["events"][-2:]) == [3, 5] and m.counters["events"] == 6
    bad = [(70, Op.MKDIR, "/k", None, None, None, None, 0), (80, Op.FILE_READ, None, "nobody", "f", 0, 4096, 0)]
    with pytest.raises(TraceError, match="nobody"):
        m.apply(EventBatch.from_rows(bad, source="b.csv"))
    assert m.counters["events"] == 7 and m.pending_events == 0


def test_the_cyclic_gc_is_paused_while_a_batch_runs_and_restored_after(monkeypatch):
    """``apply`` and ``advance_to`` pause the cyclic GC (collections rescanned the machine's
    containers every few hundred allocations) and restore what the caller had, also when a row
    raises; a caller that had paused it keeps it paused."""
    import gc

    from core.policy import make_policy

    seen = []
    policy = make_policy("none")
    monkeypatch.setattr(policy, "css_offline", lambda machine, m: seen.append(gc.isenabled()))
    rows = [(10, Op.MKDIR, "/a", None, None, None, None, 0), (20, Op.RMDIR, "/a", None, None, None, None, 0)]
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), policy, machine_id="m", seed=0)
    assert gc.isenabled()
    m.apply(EventBatch.from_rows(rows, source="b.csv"))
    assert seen == [False] and gc.isenabled()
    m.queue.append((30, 0, lambda machine: seen.append(gc.isenabled()), ()))  # queued work runs in advance_to
    m.advance_to(40)
    assert seen == [False, False] and gc.isenabled()
    with pytest.raises(TraceError):
        m.apply(EventBatch.from_rows([(50, Op.FILE_READ, None, "nobody", "f", 0, 4096, 0)], source="b.csv"))
    assert gc.isenabled()
    gc.disable()
    try:
        m.apply(EventBatch.from_rows([(60, Op.MKDIR, "/b", None, None, None, None, 0)], source="b.csv"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_batch_and_its_slices_decode_their_name_tables_once():
    """A shard applies a machine's batch a round at a time: the slices share the decoded name tables
    (cgroup paths made canonical once, not once per slice), and replay as the whole batch does."""
    rows = [(10, Op.MKDIR, "/a//", None, None, None, None, 0), (20, Op.TASK_START, "/a", "t", None, 0, 0, 0),
            (30, Op.FILE_CREATE, None, "t", "f", 0, 0, 0), (40, Op.FILE_WRITE, None, "t", "f", 0, 8192, 0),
            (50, Op.TASK_EXIT, None, "t", None, 0, 0, 0), (60, Op.RMDIR, "/a/", None, None, None, None, 0)]
    whole, cut = (Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), machine_id="m", seed=0)
                  for _ in range(2))
    whole.apply(EventBatch.from_rows(rows, source="b.csv"))
    b = EventBatch.from_rows(rows, source="b.csv")
    parts = [b.slice(0, 2), b.slice(2, 5), b.slice(5, 6)]
    assert b.names == [] and all(p.names is b.names for p in parts)
    cut.apply(parts[0])
    assert b.names[0] == ["/a", "/a", "/a", None] and parts[2].names is b.names  # (three spellings of /a)
    for p in parts[1:]:
        cut.apply(p)
    assert cut.summary() == whole.summary() and cut.summary()["memcgs_dying"] == 1  # (its page cache holds it)
    # apply(batch, start, stop): the same rounds without slicing; the batch's columns are kept after the first
    ranged, again = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), machine_id="m", seed=0), b
    for lo, hi in ((0, 2), (2, 2), (2, 5), (5, -1)):
        ranged.apply(again, lo, hi)
        assert again.columns and again.columns[0][0] is (again.time_us if core.COMPILED else again.columns[0][0])
    assert ranged.summary() == whole.summary()
    until = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), machine_id="m", seed=0)
    assert until.apply(b, 0, until_us=35) == 3 and until.counters["events"] == 3  # rows at 10, 20, 30
    changes = until.changes
    assert until.apply(b, 3, until_us=35) == 3 and until.now_us == 30  # nothing before 35 left
    assert until.changes == changes  # nothing applied: the next sample may repeat the last one
    assert until.apply(b, 3) == 6 and until.summary() == whole.summary()
    with pytest.raises(ValueError, match="start"):
        ranged.apply(again, -1, 2)
    # columns of other widths are converted per call, rows [start, stop) only: a bad value outside them waits
    wide = EventBatch.from_rows(rows + [(70, Op.FILE_READ, None, "t", "f", 0, 4096, 0)], source="w.csv")
    wide.flags = wide.flags.astype(np.int64)
    wide.flags[-1] = 1 << 40
    other = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=25), machine_id="m", seed=0)
    other.apply(wide, 0, 6)
    assert other.summary() == whole.summary() and not wide.columns
    with pytest.raises(TraceError, match="flags"):
        other.apply(wide, 6)
