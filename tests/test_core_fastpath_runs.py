"""The lazy run paths (``pieces`` + ``isolate``, ``add_resident``) leave exactly the runs of the eager ones.

The eager form splits a range's end runs up front (``segments``), changes fields and lets
``coalesce`` merge the unchanged halves back; the lazy form splits only what changes. Both
must end in the same partition of pages into runs (run ids may differ), including where
``coalesce`` merges neighbours that were equal but unmerged before (after a sync, say).
"""

from __future__ import annotations

import random

import pytest

from core.pages import RunTable, St
from tests.simkit import object_runs

FIELDS = ("state", "memcg", "origin", "mapc", "pinc", "age", "rflags", "dirty")


def _partition(R: RunTable, o: int) -> list[tuple]:
    return [(R.start[r], R.npages[r], *(getattr(R, f)[r] for f in FIELDS)) for r in object_runs(R, o)]


def _seed_table(rng: random.Random) -> RunTable:
    """One object of random runs and holes, neighbours often equal but unmerged."""
    R = RunTable()
    pos = 0
    for _ in range(rng.randint(1, 12)):
        pos += rng.choice((0, 0, 0, rng.randint(1, 5)))
        n = rng.randint(1, 8)
        r = R.new(0, pos, n, int(St.RESIDENT) if rng.random() < 0.8 else int(St.EVICTED), rng.randint(0, 1),
                  rng.randint(0, 1), rng.randint(0, 1), 0, rng.randint(0, 2), 0, 0, rng.randint(0, 1))
        R.link(r)
        pos += n
    return R


def _eager_set(R: RunTable, lo: int, hi: int, col: str, v: int) -> None:
    for r, _, _ in R.segments(0, lo, hi):
        if r >= 0 and R.state[r] == St.RESIDENT:
            getattr(R, col)[r] = v
    R.coalesce(0, lo, hi)


def _lazy_set(R: RunTable, lo: int, hi: int, col: str, v: int) -> None:
    c = getattr(R, col)
    for r, s, e in R.pieces(0, lo, hi):
        if r >= 0 and R.state[r] == St.RESIDENT and c[r] != v:
            c[R.isolate(r, s, e)] = v
    R.coalesce(0, lo, hi)


def _eager_fill(R: RunTable, lo: int, hi: int, memcg: int, age: int) -> None:
    for r, s, e in R.segments(0, lo, hi):
        if r < 0:
            R.link(R.new(0, s, e - s, int(St.RESIDENT), memcg, memcg, 0, 0, age, 0))
    R.coalesce(0, lo, hi)


def _lazy_fill(R: RunTable, lo: int, hi: int, memcg: int, age: int) -> None:
    for r, s, e in R.pieces(0, lo, hi):
        if r < 0:
            R.add_resident(0, s, e - s, memcg, 0, age, 0)
    R.coalesce(0, lo, hi)


@pytest.mark.parametrize("seed", range(300))
def test_lazy_paths_leave_the_runs_of_the_eager_paths(seed: int) -> None:
    rng = random.Random(seed)
    eager = _seed_table(random.Random(seed))
    lazy = _seed_table(random.Random(seed))
    end = _partition(eager, 0)[-1][0] + 10
    for _ in range(6):
        lo = rng.randint(0, end)
        hi = lo + rng.randint(1, 12)
        if rng.random() < 0.3:
            memcg, age = rng.randint(0, 1), rng.randint(0, 2)
            _eager_fill(eager, lo, hi, memcg, age)
            _lazy_fill(lazy, lo, hi, memcg, age)
        else:
            col, v = rng.choice(("age", "dirty")), rng.randint(0, 2)
            _eager_set(eager, lo, hi, col, v)
            _lazy_set(lazy, lo, hi, col, v)
        assert _partition(lazy, 0) == _partition(eager, 0)
        for m in range(4):  # every memcg owns the same resident page ranges either way
            assert {(lazy.start[r], lazy.npages[r]) for r in lazy.resident_ids(m).tolist()} == \
                   {(eager.start[r], eager.npages[r]) for r in eager.resident_ids(m).tolist()}


def _runs_of(m) -> dict:
    R = m.runs
    return {o: [(R.start[r], R.npages[r], *(getattr(R, f)[r] for f in FIELDS)) for r in rs]
            for o, rs in enumerate(R.obj_runs) if rs}


@pytest.mark.parametrize("seed", [0, 3])
def test_write_stamped_in_the_fault_leaves_the_runs_of_a_separate_stamp(seed: int, monkeypatch) -> None:
    """A file write stamps dirty inside the fault when no memory.high reclaim is due; forcing the
    separate stamp after the fault (as mark_dirty did) must leave the very same runs and results."""
    import dataclasses

    from core.machine import Machine, MachineConfig
    from core.policy import make_policy
    from traces.batches import machine_batches
    from traces.generate import PRESETS, generate_machine

    params = dataclasses.replace(PRESETS["tiny"], duration_s=600.0)
    table = generate_machine(params, seed, 0)

    def replay() -> tuple[dict, dict]:
        m = Machine(MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes),
                    make_policy("none"), machine_id="m-0000", seed=seed)
        for _, batch in machine_batches(table, max_rows=5000):
            m.apply(batch)
        return _runs_of(m), m.summary()

    fused = replay()
    import core.memory

    monkeypatch.setattr(core.memory, "over_high_any", lambda machine, have: True)  # never fuse
    separate = replay()
    assert fused[1] == separate[1]
    assert fused[0] == separate[0]


def test_object_index_is_a_list_by_object_slot_and_survives_a_pickle():
    """The per-object index holds an entry per object slot (None without runs): lookups of an object past
    its end or without runs find nothing, ``drop_object`` clears the slot for reuse, and a pickle (which
    packs only objects with a list, renumbering run ids) restores the same runs per object."""
    import pickle

    R = RunTable()
    for o, start in ((5, 0), (5, 8), (2, 3)):
        R.link(R.new(o, start, 4, int(St.RESIDENT), 1, 1, 0, 0, 0, 0))
    assert len(R.obj_runs) == len(R.obj_starts) == 6
    assert [o for o, rs in enumerate(R.obj_runs) if rs is not None] == [2, 5]
    assert list(R.obj_starts[5]) == [0, 8] and R.pieces(7, 0, 4) == [(-1, 0, 4)] and R.pieces(0, 0, 4) == [(-1, 0, 4)]
    R.drop_object(2)
    assert R.obj_runs[2] is None and R.obj_starts[2] is None and R.state[0] != St.FREE and R.state[2] == St.FREE
    Q = pickle.loads(pickle.dumps(R))
    assert len(Q.obj_runs) == 6 and Q.obj_runs[2] is None
    assert [(Q.start[r], Q.npages[r]) for r in Q.obj_runs[5]] == [(0, 4), (8, 4)]
    Q.link(Q.new(2, 0, 1, int(St.RESIDENT), 1, 1, 0, 0, 0, 0))  # the slot reused by a new object
    assert [Q.start[r] for r in Q.obj_runs[2]] == [0]
    with pytest.raises(IndexError):
        R.drop(len(R.state))  # past the last slot, in either build


def _segments_page_by_page(R: RunTable, o: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """The runs and holes of [lo, hi) of ``o`` found page by page: each page's run (-1: none covers it),
    consecutive pages of the same run (or hole) joined."""
    covering = {p: r for r in object_runs(R, o) for p in range(R.start[r], R.start[r] + R.npages[r])}
    out: list[list[int]] = []
    for p in range(lo, hi):
        r = covering.get(p, -1)
        if out and out[-1][0] == r and out[-1][2] == p:
            out[-1][2] = p + 1
        else:
            out.append([r, p, p + 1])
    return [tuple(seg) for seg in out]


@pytest.mark.parametrize("seed", range(40))
def test_pieces_and_fault_segments_are_the_runs_and_holes_page_by_page(seed):
    """``RunTable.pieces`` and ``fault_pieces.fault_segments`` (the same walk, ``run_index.object_segments``,
    as tuples and flat) give every run and hole of a range, unsplit, in page order: what a page-by-page
    look-up finds, for ranges inside, across and past the runs, for an object with runs and one without."""
    from core.fault_pieces import fault_segments

    rng = random.Random(seed)
    R = _seed_table(rng)
    end = R.start[R.obj_runs[0][-1]] + R.npages[R.obj_runs[0][-1]]
    for _ in range(30):
        lo = rng.randint(0, end + 3)
        hi = lo + rng.choice((0, 1, rng.randint(1, end + 4)))
        for o in (0, 3):
            want = _segments_page_by_page(R, o, lo, hi)
            assert R.pieces(o, lo, hi) == want
            flat = list(fault_segments(R, o, lo, hi))
            assert [tuple(flat[k:k + 3]) for k in range(0, len(flat), 3)] == want
