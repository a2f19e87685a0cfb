"""The fault path's one-hole shortcut (``core.memory._fault_hole``) ends where the general path does.

A fault on a range that no run of the object overlaps (an anon allocation, an append, a first
read) skips ``_charge_range``'s dict of payers and list of segments. Here random machines are
built by random ops (tight memory.max and memory.high limits, small memory, swap on or off, so
that the charge reclaims and often moves runs of the very object being faulted), copied, and
one hole of one object is faulted on each copy: by ``fault_range`` (the shortcut) and by the
general steps called one by one. Both copies must end identical: every run column, every memcg
column, the counters and the answer. Both builds run it (the functions are cpdef).
"""

from __future__ import annotations

import pickle
import random

import pytest

import core.memory as mm
from tests.simkit import MiB, Sim, object_runs


def _general(m, t: int, o: int, lo: int, hi: int, mayfail: bool, dirty: int) -> bool:
    """``fault_range``'s general steps after its touch-only checks, for a hole: ``_charge_range``'s dict of
    payers and list of segments, then ``_settle`` (what the shortcut does inline)."""
    charged = mm._charge_range(m, t, o, lo, hi, mayfail, True)
    if charged is None:
        return False
    if isinstance(charged, mm._Pieces):
        return mm._fault_chunks(m, t, o, lo, hi, mayfail, True, dirty, charged)
    return mm._settle(m, o, lo, hi, True, dirty, charged)  # materialize, coalesce, memory.high, the stamp


def _state(m) -> tuple:
    """Everything the fault may change, independent of run slot numbers."""
    R, mem = m.runs, m.mem
    runs = {o: [(R.start[r], R.npages[r], R.state[r], R.memcg[r], R.origin[r], R.mapc[r], R.pinc[r], R.age[r],
                 R.rflags[r], R.dirty[r]) for r in rs] for o, rs in enumerate(R.obj_runs) if rs}
    cols = {k: list(getattr(mem, k)) for k in ("usage", "anon", "file", "shmem", "swap", "pgscan", "pgsteal")}
    return runs, cols, dict(m.counters), m.reserved, m.resident, m.swap_used


def _random_machine(rng: random.Random) -> tuple[Sim, list[tuple[str, str]]]:
    """A machine after random writes, reads and anon allocations of two tasks under tight limits."""
    swap = rng.random() < 0.5
    sim = Sim(mem_bytes=rng.choice((48, 64, 96)) * MiB, **({"swap_bytes": 64 * MiB} if swap else {}))
    sim.mkdir("a", "b").start("ta", "a").start("tb", "b")
    sim.limit("a", rng.choice((8, 16, 24)) * MiB)
    if rng.random() < 0.5:
        sim.limit("b", rng.choice((8, 12)) * MiB, high=True)
    objs = [("f0", "file"), ("f1", "file"), ("s0", "shmem")]
    for name, kind in objs:
        sim.create(name, shmem=kind == "shmem")
    for _ in range(rng.randint(4, 14)):
        task = rng.choice(("ta", "tb"))
        what = rng.random()
        if what < 0.6:
            name, _ = rng.choice(objs)
            sim.write(task, name, rng.randint(1, 6) * MiB, offset=rng.randint(0, 24) * MiB)
        elif what < 0.8:
            sim.anon(task, f"{task}-r{rng.randint(0, 2)}", rng.randint(1, 4) * MiB, mayfail=True)
        else:
            name, _ = rng.choice(objs)
            sim.read(task, name, rng.randint(1, 4) * MiB, offset=rng.randint(0, 24) * MiB, mayfail=True)
    return sim, objs


def _a_hole(m, o: int, rng: random.Random) -> tuple[int, int] | None:
    """A random page range of ``o`` that no run overlaps (between runs, or past the last one)."""
    R = m.runs
    runs = sorted((R.start[r], R.start[r] + R.npages[r]) for r in object_runs(R, o))
    gaps, pos = [], 0
    for s, e in runs:
        if s > pos:
            gaps.append((pos, s))
        pos = max(pos, e)
    gaps.append((pos, pos + rng.randint(1, 3000)))
    lo, hi = rng.choice(gaps)
    a = rng.randint(lo, hi - 1)
    return a, rng.randint(a + 1, hi)


@pytest.mark.parametrize("seed", range(60))
def test_a_hole_faults_as_the_general_path_does(seed: int) -> None:
    rng = random.Random(seed)
    sim, objs = _random_machine(rng)
    m = sim.m
    assert m.kernel_targets
    name, _ = rng.choice(objs)
    o, t = m.obj_by_name[name], m.task_by_name[rng.choice(("ta", "tb"))]
    lo, hi = _a_hole(m, o, rng)
    dirty = rng.choice((0, 0, 7))
    mayfail = rng.random() < 0.5
    fast, slow = pickle.loads(pickle.dumps(m)), pickle.loads(pickle.dumps(m))
    moved = slow.runs.mutations
    got_fast = mm.fault_range(fast, t, o, lo, hi, mayfail, True, dirty)
    got_slow = _general(slow, t, o, lo, hi, mayfail, dirty)
    assert got_fast == got_slow
    assert _state(fast) == _state(slow), f"seed {seed}: [{lo}, {hi}) of {name}, {slow.runs.mutations - moved} moves"


def test_the_random_holes_reach_the_reclaim_and_the_pieces() -> None:
    """The cases above include faults whose charge reclaimed (runs moved) and faults taken in pieces."""
    moved = pieces = 0
    for seed in range(60):
        rng = random.Random(seed)
        sim, objs = _random_machine(rng)
        m = sim.m
        name, _ = rng.choice(objs)
        o, t = m.obj_by_name[name], m.task_by_name[rng.choice(("ta", "tb"))]
        lo, hi = _a_hole(m, o, rng)
        rng.choice((0, 0, 7))
        mayfail = rng.random() < 0.5
        before = m.runs.mutations
        charged = mm._charge_range(m, t, o, lo, hi, mayfail, True)
        pieces += isinstance(charged, mm._Pieces)
        moved += m.runs.mutations != before
    assert moved >= 5 and pieces >= 1, (moved, pieces)
