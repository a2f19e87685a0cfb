"""Results must not depend on which run slot ids the run table hands out.

Run ids are an artefact of slot allocation (a free list); the per-event fast paths
reuse or skip slots that the plain split/coalesce paths allocate. Every ordering that
reaches a result (reclaim, LRU walks of policies, swap walks, swapoff, drop_caches)
must therefore be canonical: by page position, never by run id. These tests replay the
same trace twice, once with the table's free list pre-filled with scrambled slot ids,
and require identical samples, job tables and summaries.
"""

from __future__ import annotations

import dataclasses
import pickle
import random

import numpy as np
import pytest

from core.machine import Machine, MachineConfig
from core.pages import St
from core.policy import make_policy
from core.swapfile import try_to_unuse
from core.truncate import drop_pagecache
from traces.batches import machine_batches
from traces.generate import PRESETS, generate_machine


def _scramble_slots(m: Machine, n: int, seed: int) -> None:
    """Give the run table ``n`` free slots handed out in a scrambled order."""
    R = m.runs
    for _ in range(n):
        R.new(0, 0, 1, int(St.FREE), -1, -1, 0, 0, 0, 0)
    ids = list(range(len(R)))
    random.Random(seed).shuffle(ids)
    R.free = ids


def _replay(policy: str, seed: int, scramble: bool, repickle: bool = False) -> dict:
    params = dataclasses.replace(PRESETS["tiny"], duration_s=600.0)
    table = generate_machine(params, seed, 0)
    cfg = MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes,
                        kernel="6.1" if seed % 2 else "6.12")
    m = Machine(cfg, make_policy(policy), machine_id="m-0000", seed=seed)
    if scramble:
        _scramble_slots(m, 4000, seed)
    for _, batch in machine_batches(table, max_rows=5000):
        m.apply(batch)
        if scramble:  # keep scrambling: slots freed during the replay go back in a random order
            random.Random(len(m.runs.free)).shuffle(m.runs.free)
        if repickle:  # a checkpoint after every batch: the restored table is compacted and renumbered
            m = pickle.loads(pickle.dumps(m))
            assert not m.runs.free and (m.runs.view("state") != St.FREE).all()
    m.advance_to(int(params.duration_s * 1e6))
    drop_pagecache(m)  # both walk many runs at once: their order must not be the run ids' either
    try_to_unuse(m)
    return {"samples": m.take_samples(), "jobs": m.job_table(), "summary": m.summary()}


@pytest.mark.parametrize("policy,seed", [("none", 0), ("recharge_async_walk+swap_walk", 1), ("reparent", 2),
                                         ("recharge_mapper", 3), ("recharge_evict", 4), ("zombie_reaper", 5),
                                         ("recharge_deferred", 6), ("manual_reclaim", 7),
                                         ("smemcg", 8)])
def test_results_do_not_depend_on_run_slot_ids(policy: str, seed: int) -> None:
    ref = _replay(policy, seed, scramble=False)
    out = _replay(policy, seed, scramble=True)
    assert ref["summary"] == out["summary"]
    assert ref["jobs"] == out["jobs"]
    for k, col in ref["samples"].items():
        assert np.array_equal(col, out["samples"][k]), k


@pytest.mark.parametrize("policy,seed", [("none", 0), ("recharge_async_walk+swap_walk", 1), ("smemcg", 8)])
def test_pickled_tables_drop_free_slots_without_changing_results(policy: str, seed: int) -> None:
    ref = _replay(policy, seed, scramble=False)
    out = _replay(policy, seed, scramble=False, repickle=True)
    assert ref["summary"] == out["summary"]
    assert ref["jobs"] == out["jobs"]
    for k, col in ref["samples"].items():
        assert np.array_equal(col, out["samples"][k]), k


def test_a_pickled_table_keeps_every_object_list_in_page_order() -> None:
    from core.pages import RunTable
    R = RunTable()
    ids = [R.new(7, s, 2, int(St.RESIDENT), 1, 1, 0, 0, s, 1) for s in (0, 2, 4, 6)]
    for r in ids:
        R.link(r)
    R.drop(ids[1])
    R.drop(ids[0])  # free slots below the live ones: both live runs get new ids
    Q = pickle.loads(pickle.dumps(R))
    assert Q.free == [] and len(Q) == 2
    assert list(Q.obj_runs[7]) == [0, 1] and list(Q.obj_starts[7]) == [4, 6]
    assert [Q.start[r] for r in Q.obj_runs[7]] == [4, 6] and list(Q.age) == [4, 6]
    assert len(R) == 4 and sorted(R.free) == sorted(ids[:2])  # the original is untouched
