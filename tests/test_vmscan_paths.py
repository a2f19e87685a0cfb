"""Reclaim's cheap paths choose exactly what its plain vectorised paths choose.

``core.vmscan`` finds a small subtree's candidates by comparing the memcg column (a big one
by a mask lookup), selects a plan's few runs on plain lists (many runs with numpy), and
checks a few runs for dirt on lists. Each test builds
a run table with ties in age, several memcgs, pinned, mapped and non-resident runs, and
holds the fast path to a reference: the four-key lexsort selection the model used before,
or the other path of the same function.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import core.vmscan as vmscan
from core.machine import Machine, MachineConfig
from core.pages import Kind, St
from core.policy import make_policy


def _machine(seed: int, nruns: int, mapped_hot: bool = True, swap: bool = True) -> tuple[Machine, list[int]]:
    """A machine with 12 memcgs and ``nruns`` random runs charged to them (columns only, no objects)."""
    m = Machine(MachineConfig(mem_bytes=1 << 34, swap_bytes=(1 << 32) if swap else 0, mapped_hot=mapped_hot),
                make_policy("none"), machine_id="m-0000", seed=seed)
    memcgs = [m.mem.mkdir(f"/pod{i}", 0)[1] for i in range(12)]
    rng = random.Random(seed)
    R = m.runs
    for i in range(nruns):
        state = rng.choice([St.RESIDENT] * 6 + [St.SWAPPED, St.EVICTED, St.FREE])
        memcg = -1 if state == St.EVICTED else rng.choice(memcgs)
        R.new(rng.randrange(40), rng.randrange(0, 4096, 8), rng.randint(1, 40), int(state), memcg, memcg,
              rng.choice([0, 0, 0, 1]), rng.choice([0] * 9 + [1]), rng.randrange(6), rng.choice([0, 1, 1, 2]),
              0, rng.choice([0, 0, 3]))
    return m, memcgs


def _reference_select(m: Machine, ids: np.ndarray, owners: np.ndarray, npages: np.ndarray,
                      quota: np.ndarray) -> tuple[list[int], list[int]]:
    """The selection as the model first wrote it: all candidates in one four-key lexsort."""
    R = m.runs
    order = np.lexsort((R.view("start")[ids], R.view("obj")[ids], R.view("age")[ids], owners))
    o_ids, o_own, o_n = ids[order], owners[order], npages[order]
    cum = np.cumsum(o_n)
    first = np.r_[True, o_own[1:] != o_own[:-1]]
    before = cum - o_n - np.maximum.accumulate(np.where(first, cum - o_n, 0))
    take = np.clip(quota[o_own] - before, 0, o_n)
    return o_ids[take > 0].tolist(), take[take > 0].tolist()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("nruns", [30, 3000])
def test_select_paths_equal_the_four_key_lexsort(seed, nruns):
    m, memcgs = _machine(seed, nruns)
    sub = np.array(memcgs, dtype=np.int64)
    ids, owners, npages = vmscan._candidates(m, sub, True)
    held = np.bincount(owners, weights=npages, minlength=len(m.mem.state)).astype(np.int64)
    rng = random.Random(seed)
    for _ in range(20):
        quota = np.zeros(len(m.mem.state), dtype=np.int64)
        for c in memcgs:
            quota[c] = rng.choice([0, 1, rng.randrange(held[c] + 1), held[c], held[c] + 5])
        want = _reference_select(m, ids, owners, npages, quota)
        assert (ids.size > vmscan._FEW_RUNS) == (nruns > 1000)  # both paths of the selection
        assert vmscan._select_oldest(m, ids, owners, npages, quota) == want
        if ids.size <= vmscan._FEW_RUNS:
            few = vmscan._select_oldest_few(m, ids.tolist(), owners.tolist(), npages.tolist(),
                                            {c: int(quota[c]) for c in memcgs})
            assert few == want


def test_select_orders_ages_objects_and_pages_across_their_whole_int32_range():
    """``_select_oldest`` packs (memcg, age) and (object, page) into one int64 key each: values up to the
    int32 columns' maximum keep the four-key order (ties broken by object, then first page)."""
    m = Machine(MachineConfig(mem_bytes=1 << 34), make_policy("none"), machine_id="m-0000", seed=0)
    a, b = m.mem.mkdir("/a", 0)[1], m.mem.mkdir("/b", 0)[1]
    top = 2**31 - 1
    rng = random.Random(5)
    R = m.runs
    for _ in range(200):  # > _FEW_RUNS: the numpy selection
        R.new(rng.choice([0, 1, top - 1, top]), rng.choice([0, 7, top - 64, top - 1]), 1, int(St.RESIDENT),
              rng.choice([a, b]), 0, 0, 0, rng.choice([0, 1, 2**30, top]), int(Kind.FILE))
    ids = np.arange(len(R.state), dtype=np.int64)
    owners, npages = R.view("memcg")[ids].astype(np.int64), R.view("npages")[ids].astype(np.int64)
    quota = np.zeros(len(m.mem.state), dtype=np.int64)
    quota[a], quota[b] = 60, 200
    assert vmscan._select_oldest(m, ids, owners, npages, quota) == _reference_select(m, ids, owners, npages, quota)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mapped_hot", [True, False])
@pytest.mark.parametrize("swap", [True, False])
def test_small_subtree_candidates_equal_the_mask_lookup(seed, mapped_hot, swap):
    """Up to _FEW_MEMCGS memcgs, compares of the memcg column; more, the mask over every slot: the same runs."""
    m, memcgs = _machine(seed, 400, mapped_hot, swap)
    rng = random.Random(seed)
    for may_swap in (True, False):
        for k in range(1, vmscan._FEW_MEMCGS + 1):
            sub = rng.sample(memcgs, k)
            # the same memcgs padded past _FEW_MEMCGS with ones that hold no run take the mask path
            empty = [m.mem.mkdir(f"/empty{seed}-{k}-{i}-{may_swap}", 0)[1] for i in range(vmscan._FEW_MEMCGS)]
            few = vmscan._candidates(m, np.array(sub, dtype=np.int64), may_swap)
            many = vmscan._candidates(m, np.array(sub + empty, dtype=np.int64), may_swap)
            for a, b in zip(few, many):
                assert a.dtype == b.dtype and a.tolist() == b.tolist()
            R = m.runs
            for r in few[0].tolist():
                assert R.state[r] == St.RESIDENT and R.pinc[r] == 0 and R.memcg[r] in sub
                if not (may_swap and swap):
                    assert R.kind[r] == Kind.FILE
                if mapped_hot:
                    assert R.mapc[r] == 0 or R.kind[r] == Kind.ANON


@pytest.mark.parametrize("seed", range(4))
def test_dirty_check_on_lists_equals_the_gathered_one(seed):
    m, memcgs = _machine(seed, 300)
    m.now_us = 2 * m.cfg.age_quantum_us  # the runs stamped 3 (written in quantum 2) are dirty now
    rng = random.Random(seed)
    seen = set()
    for _ in range(50):
        runs = rng.sample(range(len(m.runs)), rng.choice([1, 2, 4, vmscan._FEW_RUNS, 2 * vmscan._FEW_RUNS]))
        ids = np.asarray(runs, dtype=np.int64)
        R = m.runs
        stamped = ids[(R.view("dirty")[ids] > 0) & (R.view("kind")[ids] == Kind.FILE)]
        want = any(vmscan.dirty_now(m, int(r)) for r in stamped)
        assert vmscan._meets_dirty(m, runs) == want
        seen.add(want)
    assert seen == {True, False}
