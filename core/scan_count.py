"""How many pages each memcg's reclaim visit scans (mm/vmscan.c get_scan_count, shrink_lruvec).

In: the reclaimable pages of each memcg of a subtree, which of them are dying, the target and
the kind of walk. Out: the pages to scan per memcg (``quotas``; ``batched_quotas`` for a target
reached in many small calls), the memcgs visited, the calls. The rules are ``core.vmscan``'s
(its docstring cites them); which runs those pages come from is ``core.vmscan``'s too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_LRU_BATCH = 64  # BITS_PER_LONG: folios one MGLRU evict_folios call isolates at most
MIN_LRU_BATCH = 64  # BITS_PER_LONG: MGLRU's refault feedback ignores fewer refaults (positive_ctrl_err)
_MAX_CALLS = 4096  # batched reclaim: calls modelled one by one; the rest of the target goes in one more


def batched_quotas(machine: MachineState, sub: np.ndarray, sizes: np.ndarray, dying: np.ndarray, target: int,
                    batch: int, full_walk: bool, quarter: bool = False) -> tuple[np.ndarray, int, int]:
    """Pages per memcg that calls of max(batch, SWAP_CLUSTER_MAX) take until ``target`` is met
    (``quarter``: calls of max(a quarter of what is left, SWAP_CLUSTER_MAX)).

    Out: (quota per memcg of ``sub``, memcgs visited, calls). Calls end early when one
    finds nothing; after ``_MAX_CALLS`` the rest is asked for in one call. A partial walk
    starts after the memcg where the previous call on this subtree stopped
    (``machine.reclaim_pos``, kept across calls like the kernel's iterator). The calls
    are thousands for one big charge: on plain lists (``_quotas_small``) for the usual
    small subtree (a pod), where numpy's per-call overhead would dominate.
    """
    n = len(sub)
    ask = max(batch, SWAP_CLUSTER_MAX)
    lru_gen = machine.cfg.lru_gen
    abort = machine.kernel.mglru_memcg_reclaim_aborts  # each call stops at its own target (D12)
    size_l, dying_l = sizes.tolist(), dying.tolist()
    taken = [0] * n
    got = visited = calls = 0
    at = np.flatnonzero(sub == machine.reclaim_pos.get(int(sub[0]), -1))
    start = int(at[0]) + 1 if at.size else 0
    while got < target:
        if calls >= _MAX_CALLS:
            want = target - got
        else:
            want = max((target - got) // 4, SWAP_CLUSTER_MAX) if quarter else ask
        order = [(start + j) % n for j in range(n)] if not full_walk else list(range(n))
        left = [size_l[i] - taken[i] for i in order]
        d = [dying_l[i] for i in order]
        if n <= _SMALL:
            q, v, last = _quotas_small(left, d, want, full_walk, lru_gen, abort)
        else:
            qa, v, last = quotas(np.array(left, dtype=np.int64), np.array(d, dtype=bool), want, full_walk, lru_gen,
                                  root_abort=abort)
            q = qa.tolist()
        calls += 1
        visited += v
        if not full_walk:
            start = order[last] + 1
        if not any(q):
            break
        for i, x in zip(order, q):
            taken[i] += x
        got += sum(q)
    if not full_walk and n:
        machine.reclaim_pos[int(sub[0])] = int(sub[(start - 1) % n])
    return np.array(taken, dtype=np.int64), visited, calls


_SMALL = 32  # subtrees up to this many memcgs take the list path of the batched calls


def _quotas_small(sizes: list[int], dying: list[bool], target: int, full_walk: bool,
                  lru_gen: bool, root_abort: bool = False) -> tuple[list[int], int, int]:
    """``quotas`` on plain lists (the same rounds and rules; a test holds them equal)."""
    cut = root_abort and lru_gen
    n = len(sizes)
    taken = [0] * n
    tsum, visited, last = 0, 0, n - 1
    for prio in range(DEF_PRIORITY, -1, -1):
        left = [s - t for s, t in zip(sizes, taken)]
        q = [_visit_quota(x, dy, prio, lru_gen) for x, dy in zip(left, dying)]
        short = target - tsum
        if (cut or not full_walk) and sum(q) >= short > 0:
            acc, stop = 0, n - 1
            for i, x in enumerate(q):
                acc += x
                if acc >= short:
                    stop = i
                    break
            if cut:  # ... after the 64-folio batch that meets the target (should_abort_scan)
                before = acc - q[stop]
                q[stop] = min(q[stop], -(-(short - before) // MAX_LRU_BATCH) * MAX_LRU_BATCH)
            q[stop + 1:] = [0] * (n - stop - 1)
            visited += stop + 1
            last = stop
        else:
            visited += n
            last = n - 1
        taken = [t + x for t, x in zip(taken, q)]
        tsum += sum(q)
        if tsum >= target or sum(left) == 0:
            break
    return taken, visited, last


def _visit_quota(left: int, dying: bool, prio: int, lru_gen: bool) -> int:
    """Pages one round at ``prio`` scans in a memcg holding ``left`` (the rule of ``quotas``)."""
    if not dying:
        q = left >> prio
        return min(left, -(-q // MAX_LRU_BATCH) * MAX_LRU_BATCH) if lru_gen and q else q
    if lru_gen:
        return min(left, MAX_LRU_BATCH * -(-(left + MAX_LRU_BATCH) // (2 * MAX_LRU_BATCH)))
    return max(left >> prio, min(left, SWAP_CLUSTER_MAX))



def quotas(sizes: np.ndarray, dying: np.ndarray, target: int, full_walk: bool,
           lru_gen: bool, root_abort: bool = False) -> tuple[np.ndarray, int, int]:
    """Pages to scan per memcg after the priority rounds needed to meet ``target``.

    ``root_abort``: root (global) reclaim under MGLRU, where should_abort_scan ends the
    scan after the 64-folio batch that meets the target (kswapd: the watermarks), so a
    dying memcg's scrape stops there instead of taking its half; from 6.12.118 memcg
    reclaim too (``Kernel.mglru_memcg_reclaim_aborts``, kernel check D12).
    Out: (pages per memcg, an int64 array; memcgs visited; index of the last memcg the final round
    visited). Compiled: one C pass per round (``_quotas_c``); pure: numpy (``_quotas_np``, the reference).
    """
    if cython.compiled:
        return _quotas_c(sizes, dying, target, full_walk, lru_gen, root_abort)
    return _quotas_np(sizes, dying, target, full_walk, lru_gen, root_abort)


def _quotas_c(sizes: np.ndarray, dying: np.ndarray, target: cython.longlong, full_walk: cython.bint,
              lru_gen: cython.bint, root_abort: cython.bint) -> tuple:
    """``quotas`` by C loops over the memcgs, each round's rules as ``_quotas_np`` applies them
    (compiled build only; a test holds the two equal). Its ``//`` is Python's floor division (cdivision
    is off), as numpy's: the ceilings need it. numpy made about ten calls per round, up to thirteen
    rounds, on every global reclaim pass."""
    if not cython.compiled:
        raise RuntimeError("_quotas_c loops over typed buffers: compiled build only")
    n: cython.Py_ssize_t = len(sizes)
    taken = np.zeros(n, dtype=np.int64)
    q = np.zeros(n, dtype=np.int64)
    sz: cython.longlong[::1] = np.ascontiguousarray(sizes, dtype=np.int64)
    dy: cython.schar[::1] = np.ascontiguousarray(dying, dtype=np.int8)
    tk: cython.longlong[::1] = taken
    qv: cython.longlong[::1] = q
    abort: cython.bint = root_abort and lru_gen
    visited: cython.Py_ssize_t = 0
    last: cython.Py_ssize_t = n - 1
    i: cython.Py_ssize_t
    stop: cython.Py_ssize_t
    prio: cython.int
    left: cython.longlong
    x: cython.longlong
    tsum: cython.longlong = 0
    lsum: cython.longlong
    qsum: cython.longlong
    cum: cython.longlong
    short: cython.longlong
    lru: cython.longlong = MAX_LRU_BATCH  # (the module's constants as C integers: the loops stay C)
    cluster: cython.longlong = SWAP_CLUSTER_MAX
    top: cython.int = DEF_PRIORITY
    for prio in range(top, -1, -1):
        lsum = qsum = 0
        for i in range(n):
            left = sz[i] - tk[i]
            lsum += left
            x = left >> prio
            if lru_gen and dy[i]:  # (_mglru_scrape)
                x = min(left, lru * -(-(left + lru) // (2 * lru)))
            elif lru_gen:
                x = min(left, -(-x // lru) * lru)
            elif dy[i]:
                x = max(x, min(left, cluster))
            qv[i] = x
            qsum += x
        short = target - tsum
        if (abort or not full_walk) and qsum >= short > 0:
            cum, stop = 0, n - 1
            for i in range(n):  # np.searchsorted(np.cumsum(q), short): the first memcg the sum reaches it at
                cum += qv[i]
                if cum >= short:
                    stop = i
                    break
            if abort:
                qv[stop] = min(qv[stop], -(-(short - (cum - qv[stop])) // lru) * lru)
            for i in range(stop + 1, n):
                qv[i] = 0
            visited += stop + 1
            last = stop
        else:
            visited += n
            last = n - 1
        for i in range(n):
            tk[i] += qv[i]
            tsum += qv[i]
        if tsum >= target or lsum == 0:
            break
    return taken, visited, last


def _quotas_np(sizes: np.ndarray, dying: np.ndarray, target: int, full_walk: bool,
               lru_gen: bool, root_abort: bool = False) -> tuple[np.ndarray, int, int]:
    """``quotas`` by numpy, a round at a time over every memcg (the pure build's, and the reference)."""
    taken = np.zeros_like(sizes)
    visited = 0
    last = len(sizes) - 1
    for prio in range(DEF_PRIORITY, -1, -1):
        left = sizes - taken
        q = left >> prio
        if lru_gen:
            # a live memcg: evict_folios works in batches of MAX_LRU_BATCH until it has scanned
            # get_nr_to_scan's size >> priority, so a visit takes that rounded up to a batch
            live = np.minimum(left, -(-q // MAX_LRU_BATCH) * MAX_LRU_BATCH)
            q = np.where(dying, _mglru_scrape(left), live)
        else:
            q = np.where(dying, np.maximum(q, np.minimum(left, SWAP_CLUSTER_MAX)), q)
        short = target - int(taken.sum())
        abort = root_abort and lru_gen
        if (abort or not full_walk) and q.sum() >= short > 0:
            cum = np.cumsum(q)
            stop = int(np.searchsorted(cum, short))  # a partial walk ends at this memcg
            if abort:  # ... and MGLRU root reclaim after the batch in it that meets the target
                before = int(cum[stop] - q[stop])
                q[stop] = min(int(q[stop]), -(-(short - before) // MAX_LRU_BATCH) * MAX_LRU_BATCH)
            q[stop + 1:] = 0
            visited += stop + 1
            last = stop
        else:
            visited += len(sizes)
            last = len(sizes) - 1
        taken += q
        if taken.sum() >= target or int(left.sum()) == 0:
            break
    return taken, visited, last


def _mglru_scrape(left: np.ndarray) -> np.ndarray:
    """Pages one MGLRU reclaim visit takes from dying memcgs holding ``left`` pages each.

    try_to_shrink_lruvec (v6.1-v6.12) loops: nr_to_scan = what the memcg holds now
    (get_nr_to_scan of a deleted memcg), evict one batch of MAX_LRU_BATCH, stop once
    the pages scanned in this visit reach that nr_to_scan. The k-th batch therefore
    ends the visit when 64k >= left - 64(k-1): k = ceil((left + 64) / 128) batches,
    about half of ``left`` (all of it up to 64 pages).
    """
    batches = -(-(left + MAX_LRU_BATCH) // (2 * MAX_LRU_BATCH))
    return np.minimum(left, MAX_LRU_BATCH * batches)
