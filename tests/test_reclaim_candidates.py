"""Reclaim's candidate runs: the compiled build's one-pass C loop equals the numpy reference.

In: machines part-way through the ``default`` preset's first machine (churn, sharing, swap, limits), and
memcg sets of every size a reclaim walk passes (one memcg, a pod, a subtree of more than
``_FEW_MEMCGS``, every slot), with and without file-only scanning and ``mapped_hot``. Out: the same run
ids in the same order, the same memcgs and page counts, as int64 arrays, from ``vmscan._candidates`` (what
reclaim calls: the C loop when compiled) and ``vmscan._candidates_np`` (the pure build's numpy).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import core
import core.vmscan as vmscan
from core.machine import Machine, MachineConfig
from core.pages import St
from core.policy import make_policy
from traces.batches import machine_batches
from traces.generate import PRESETS, generate


def _machines(stops: tuple[int, ...]) -> list[Machine]:
    """The default preset's first machine replayed to each of ``stops`` events (a machine per stop)."""
    params = PRESETS["default"]
    table = generate(params, 3)
    mid, batch = next(iter(machine_batches(table, source="default")))
    out = []
    for stop in stops:
        m = Machine(MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes), make_policy("none"),
                    machine_id=mid, seed=3)
        m.apply(batch, 0, stop)
        out.append(m)
    return out


def _subs(m: Machine, rng: random.Random) -> list[np.ndarray]:
    """Memcg sets as reclaim walks them: ascending slot ids, from one memcg to every slot."""
    charged = sorted({int(x) for x in m.runs.view("memcg")[m.runs.view("state") == int(St.RESIDENT)]})
    slots = list(range(len(m.mem.state)))
    subs = [[0], slots]
    for k in (1, 2, 5, vmscan._FEW_MEMCGS, vmscan._FEW_MEMCGS + 1, 40):
        pool = charged if rng.random() < 0.7 and len(charged) >= k else slots
        subs.append(sorted(rng.sample(pool, min(k, len(pool)))))
    return [np.array(s, dtype=np.int64) for s in subs]


@pytest.mark.parametrize("stop", [(2_000, 20_000, 60_000)])
def test_the_candidates_equal_the_numpy_reference(stop):
    rng = random.Random(11)
    for m in _machines(stop):
        assert (m.runs.view("state") == int(St.RESIDENT)).any()
        for sub in _subs(m, rng):
            for file_only in (False, True):
                for hot in (False, True):
                    want = vmscan._candidates_np(m, sub, file_only, hot)
                    if core.BUILD == "compiled":
                        got = vmscan._candidates_c(m, sub, file_only, hot)
                    else:
                        with pytest.raises(RuntimeError):
                            vmscan._candidates_c(m, sub, file_only, hot)
                        got = want
                    for g, w in zip(got, want):
                        assert g.dtype == w.dtype == np.int64
                        assert g.tolist() == w.tolist()
            # what reclaim calls takes the machine's own flags
            full = vmscan._candidates(m, sub, True)
            ref = vmscan._candidates_np(m, sub, m.swap_total - m.swap_used <= 0, bool(m.cfg.mapped_hot))
            assert [a.tolist() for a in full] == [a.tolist() for a in ref]
