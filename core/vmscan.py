"""Reclaim: global (kswapd), memcg-limit and proactive (memory.reclaim), vectorised over runs.

In: a machine, the memcg whose subtree to reclaim from, a page target and the
kind of reclaim. Out: pages reclaimed; runs evicted (page cache) or swapped
out (anon, shmem); pgscan/pgsteal per memcg; the number of memcgs visited,
which is the reclaim-cost metric.

Kernel behaviour modelled (mm/vmscan.c, v6.1/v6.12; KERNEL-MODEL.md §4):
- do_try_to_free_pages lowers ``priority`` from DEF_PRIORITY (12) towards 0
  until enough is reclaimed; every round walks the memcgs of the subtree
  (shrink_node_memcgs -> mem_cgroup_iter, css_tryget not _online, so dying
  memcgs are visited) and scans ``lru_size >> priority`` pages of each, oldest first.
- an offline memcg is scraped harder: at least min(lru_size, SWAP_CLUSTER_MAX)
  per round (get_scan_count, "If the cgroup's already been deleted, make sure to
  scrape out the remaining cache"). With MGLRU, get_nr_to_scan asks for all of it
  ("try to scrape all its memory if this memcg was deleted"), but
  try_to_shrink_lruvec asks again before every batch of MAX_LRU_BATCH (64) and
  stops once the pages scanned in this visit reach what the memcg still holds:
  one visit takes about half (``scan_count._mglru_scrape``; 2048 pages -> 1088 taken, then
  960 -> 512, as Debian's 6.12 did in the kernel check
  ``limit_reclaim_scrapes_zombie``). Root (global) reclaim is the exception:
  should_abort_scan ends it after the batch that meets the target (kswapd: every
  zone above its high watermark), half or not (``global_reclaim_scrapes_zombie``).
- v6.1 always walks every memcg of the subtree; from v6.12 direct reclaim stops
  the walk once the target is met, while kswapd and proactive reclaim walk fully.
- without free swap only file pages are scanned (get_scan_count: SCAN_FILE).
- with swap, page cache goes before anon and shmem while it is not thrashing:
  classic ``cache_trim_mode`` (no file refault in the target's subtree since
  its last reclaim), MGLRU's read() pages in the oldest generation and its
  refault feedback (``_cache_trim``; kernel check ``limit_reclaim_anon_vs_file``).
  Thrashing cache: one age order over both kinds (SCAN_FRACT, approximated).
- pinned (folio_maybe_dma_pinned) and mlocked pages are never reclaimed
  (shrink_folio_list keeps them; mlocked folios sit on the unevictable list).
- mapped page cache / shmem of live mappers is treated as referenced and
  activated instead of reclaimed (folio_check_references) when the machine's
  ``mapped_hot`` is set: a page "still in use" by another job survives reclaim.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

from core.cgroup import css_release_work
from core.fs_writeback import dirty_now, wakeup_flusher_threads
from core.memcg import ROOT, State
from core.page_counter import mem_cgroup_charge_statistics
from core.pages import Kind, St
from core.scan_count import MIN_LRU_BATCH, SWAP_CLUSTER_MAX, batched_quotas, quotas

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.pages import RunTable
    from core.state import MachineState
if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import i8_at, i64_at, store_int

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_SWAPPED = int(St.SWAPPED)
_EVICTED = int(St.EVICTED)
_FILE = int(Kind.FILE)
_ANON = int(Kind.ANON)
_DYING = int(State.DYING)

_FEW_MEMCGS = 8  # subtrees up to this many memcgs find their runs by comparing the memcg column
_FEW_RUNS = 64  # plans over up to this many candidate runs, and dirty checks of as many runs, go on plain lists


def try_to_free_mem_cgroup_pages(machine: MachineState, top: int, nr_to_reclaim: int, *, may_swap: bool = True,
           full_walk: bool = True, batch: int = 0, quarter: bool = False) -> int:
    """Reclaim up to ``nr_to_reclaim`` pages from the subtree of memcg ``top``; returns pages reclaimed.

    ``batch`` > 0: the kernel gets there in many small calls, each asking for
    max(batch, SWAP_CLUSTER_MAX) pages and starting again at DEF_PRIORITY:
    try_charge_memcg reclaims for the faulting page (32 pages a call) and
    reclaim_high for the charge batch over memory.high (64). A call that meets
    its small target stops, so the total overshoots the need by less than a call,
    where one call for everything overshoots by a whole priority round. Partial
    walks (6.12 direct reclaim) resume after the memcg the previous call stopped at
    (mem_cgroup_iter's shared position). Each call counts as a reclaim pass.
    ``quarter``: calls that each ask for a quarter of what is left, at least
    SWAP_CLUSTER_MAX (memory_reclaim since commit 287d5fedb377, "use larger batches
    for proactive reclaim").
    Page cache goes first while it is not thrashing (``_cache_trim``): a pass over
    file pages alone, then one over every kind for what is still missing.
    """
    mem = machine.mem
    sub = np.asarray(mem.subtree(top), dtype=np.int64)
    target = max(int(nr_to_reclaim), 0)
    swap = may_swap and machine.swap_total > machine.swap_used
    trim = swap and _cache_trim(machine, top)
    if swap and not trim and (batch or quarter):
        # each of the kernel's calls ends with snapshot_refaults(): only the first call after the
        # refaults scans both kinds; the calls after it find no new refault and trim the cache
        call = max((target // 4) if quarter else batch, SWAP_CLUSTER_MAX)
        if target > call:
            got = _shrink_pass(machine, sub, call, may_swap, full_walk, batch, quarter)
            mem.refault_snap[top] = mem.refault_tree[top]
            return got + try_to_free_mem_cgroup_pages(machine, top, target - got, may_swap=may_swap,
                                                      full_walk=full_walk, batch=batch, quarter=quarter) if got else got
    reclaimed, done = 0, False
    if trim and any(mem.file[m] for m in sub.tolist()):
        reclaimed, done = _shrink_pass(machine, sub, target, False, full_walk, batch, quarter), True
    if not done or reclaimed < target:
        reclaimed += _shrink_pass(machine, sub, target - reclaimed, may_swap, full_walk, batch, quarter)
    mem.refault_snap[top] = mem.refault_tree[top]  # snapshot_refaults(): reclaim at this target ended
    return reclaimed


def _cache_trim(machine: MachineState, top: int) -> bool:
    """Does reclaim aimed at ``top`` take page cache alone first (the cache is not thrashing)?

    Classic LRU (prepare_scan_count, v6.1): ``cache_trim_mode`` scans only file
    pages while the target has inactive file pages and no file refault happened
    in its subtree since reclaim at it last ended (``refaults !=
    target_lruvec->refaults[WORKINGSET_FILE]`` sets DEACTIVATE_FILE). MGLRU
    (isolate_folios, v6.1-v6.12): page cache brought in by read() joins the
    oldest generation and get_type_to_scan keeps to file while it has refaulted
    fewer than MIN_LRU_BATCH (64) pages (positive_ctrl_err); taken here on the
    target's subtree, where the kernel decides per memcg. Both kernels evicted a
    pod's page cache and swapped none of its older anon (kernel check
    ``limit_reclaim_anon_vs_file``). When the cache thrashes, the kernel splits
    the scan by swappiness and reclaim costs (SCAN_FRACT); the model then takes
    the one age order over both kinds, an approximation.
    """
    mem = machine.mem
    since = mem.refault_tree[top] - mem.refault_snap[top]
    return since < (MIN_LRU_BATCH if machine.cfg.lru_gen else 1)


def first_pass_pages(machine: MachineState, top: int) -> int:
    """Pages that reclaim aimed at memcg ``top`` could take in its first pass: resident pages of
    the kinds it takes first (``_cache_trim``: page cache alone), in ``top``'s subtree, less the
    mapped and pinned ones. An estimate from memcg counters that errs low, never high."""
    mem = machine.mem
    swap = machine.swap_total > machine.swap_used
    kinds = ("file",) if not swap or _cache_trim(machine, top) else ("file", "anon", "shmem")
    drop = ("pinned", "mapped") if machine.cfg.mapped_hot else ("pinned",)
    if top == ROOT:  # every memcg: column sums (freed slots hold nothing)
        return max(sum(int(mem.view(k).sum()) for k in kinds) - sum(int(mem.view(k).sum()) for k in drop), 0)
    cols = [getattr(mem, k) for k in kinds]
    less = [getattr(mem, k) for k in drop]
    total = 0
    for m in mem.subtree(top):
        total += sum(c[m] for c in cols) - sum(c[m] for c in less)
    return max(total, 0)


def _shrink_pass(machine: MachineState, sub: np.ndarray, target: int, may_swap: bool, full_walk: bool,
                 batch: int, quarter: bool) -> int:
    """One plan over the subtree ``sub`` and its reclaim (``try_to_free_mem_cgroup_pages`` minus the choice of kinds);
    returns pages reclaimed. ``may_swap`` False: page cache only."""
    plan = _plan(machine, sub, target, may_swap, full_walk, batch, quarter)
    machine.counters["reclaim_passes"] += plan.calls
    machine.counters["memcgs_visited"] += plan.visited
    if _meets_dirty(machine, plan.runs):
        wakeup_flusher_threads(machine)
    reclaimed: cython.longlong = 0
    evicted: cython.longlong = 0
    got: cython.longlong
    kind: array = machine.runs.kind
    for r, take in zip(plan.runs, plan.take):
        got = _reclaim_run(machine, r, take)
        reclaimed += got
        if i8_at(kind, r) == _FILE:  # (the run's kind: reclaim does not change it)
            evicted += got
    counters = machine.counters  # what _reclaim_run took, counted once a pass
    counters["pgsteal"] += reclaimed
    counters["evictions"] += evicted
    counters["swapouts"] += reclaimed - evicted
    css_release_work(machine)
    return reclaimed


def _meets_dirty(machine: MachineState, runs: list[int]) -> bool:
    """Does reclaim taking ``runs`` meet dirty page cache, and so wake the flusher (D15)?

    Classic LRU (v6.1 shrink_inactive_list): ``stat.nr_unqueued_dirty == nr_taken``, a batch
    of isolated folios that are all dirty and not under writeback, calls
    ``wakeup_flusher_threads(WB_REASON_VMSCAN)``. MGLRU (lru_gen_shrink_lruvec, from commit
    1bc542c6a0d1 "mm/vmscan: wake up flushers conditionally to avoid cgroup OOM", v6.13, in the
    6.12 stable series): the same when ``sc->nr.unqueued_dirty >= sc->nr.taken``. Taken here as
    any dirty page-cache run among those reclaim takes: a dirty run is as a rule one write of
    many pages, a batch of them all dirty. The dirty folios themselves are not written by
    reclaim (only kswapd may, shrink_folio_list), but once the flusher has cleaned them the
    reclaim (and memory.reclaim's retries) can take them: the model takes them in this pass.
    """
    if not runs:
        return False
    R = machine.runs
    if len(runs) <= _FEW_RUNS:  # a pod's few runs: no numpy
        dirty, kind = R.dirty, R.kind
        return any(dirty_now(machine, r) for r in runs if dirty[r] > 0 and kind[r] == _FILE)
    ids = np.asarray(runs, dtype=np.int64)
    stamped = ids[(R.view("dirty")[ids] > 0) & (R.view("kind")[ids] == Kind.FILE)]
    return any(dirty_now(machine, int(r)) for r in stamped)


class _Plan:
    """Which runs to reclaim and how many pages of each, plus the memcgs visited."""

    def __init__(self, runs: list[int], take: list[int], visited: int, calls: int = 1) -> None:
        self.runs, self.take, self.visited, self.calls = runs, take, visited, calls


def _plan(machine: MachineState, sub: np.ndarray, target: int, may_swap: bool, full_walk: bool,
          batch: int = 0, quarter: bool = False) -> _Plan:
    ids, owners, sizes_by_run = _candidates(machine, sub, may_swap)
    nslots = len(machine.mem.state)
    sub_l = sub.tolist()
    few = ids.size <= _FEW_RUNS
    if few:  # a pod's handful of runs: plain lists, not numpy's per-call overhead
        owners_l, npages_l = owners.tolist(), sizes_by_run.tolist()
        held: dict[int, int] = {}
        for m, n in zip(owners_l, npages_l):
            held[m] = held.get(m, 0) + n
        sizes = np.array([held.get(m, 0) for m in sub_l], dtype=np.int64)
    else:
        sizes = np.bincount(owners, weights=sizes_by_run, minlength=nslots).astype(np.int64)[sub]
    dying = machine.mem.view("state")[sub] == _DYING
    calls = 1
    if (batch > 0 or quarter) and target > 0:
        quota, visited, calls = batched_quotas(machine, sub, sizes, dying, target, batch, full_walk, quarter)
    else:
        abort = int(sub[0]) == ROOT or machine.kernel.mglru_memcg_reclaim_aborts
        quota, visited, _ = quotas(sizes, dying, target, full_walk, machine.cfg.lru_gen, root_abort=abort)
    quota_l = quota.tolist()
    scanned = sum(quota_l)
    if target <= 0 or ids.size == 0 or scanned == 0:
        return _Plan([], [], visited, calls)
    if few:
        quota_of = dict(zip(sub_l, quota_l))
        runs, take = _select_oldest_few(machine, ids.tolist(), owners_l, npages_l, quota_of)
    else:
        per_slot = np.zeros(nslots, dtype=np.int64)
        per_slot[sub] = quota
        runs, take = _select_oldest(machine, ids, owners, sizes_by_run, per_slot)
    pgscan = machine.mem.pgscan
    for m, q in zip(sub_l, quota_l):
        if q:
            store_int(pgscan, m, i64_at(pgscan, m) + q)
    machine.counters["pgscan"] += scanned
    return _Plan(runs, take, visited, calls)


def _candidates(machine: MachineState, sub: np.ndarray, may_swap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reclaimable resident runs charged inside ``sub``: (run ids ascending, their memcgs, their page counts),
    int64 arrays. Resident, unpinned; file pages only without free swap (or ``may_swap`` False); with
    ``mapped_hot``, no mapped page cache or shmem. One C loop over the run columns in the compiled build
    (``_candidates_c``), numpy in the pure one (``_candidates_np``, the reference it equals)."""
    file_only = not may_swap or machine.swap_total - machine.swap_used <= 0
    mapped_hot = bool(machine.cfg.mapped_hot)
    if cython.compiled:
        return _candidates_c(machine, sub, file_only, mapped_hot)
    return _candidates_np(machine, sub, file_only, mapped_hot)


def _candidates_np(machine: MachineState, sub: np.ndarray, file_only: bool, mapped_hot: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_candidates`` by numpy over the columns. Up to ``_FEW_MEMCGS`` memcgs (a pod), the memcg column is
    compared with each and the rules are checked on the few runs found; else on every slot, then the
    survivors' memcgs are looked up. The same runs either way: a resident run is charged to a memcg slot
    (never -1)."""
    R = machine.runs
    if len(R) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    memcg = R.view("memcg")
    state, pinc, kind, mapc = R.view("state"), R.view("pinc"), R.view("kind"), R.view("mapc")
    few = len(sub) <= _FEW_MEMCGS
    if few:
        first, *rest = sub.tolist()  # Python ints: a numpy int64 would make each compare cast the int32 column
        mine = memcg == first
        for m in rest:
            mine |= memcg == m
        found = np.flatnonzero(mine)
        state, pinc, kind, mapc = state[found], pinc[found], kind[found], mapc[found]
    ok = (state == St.RESIDENT) & (pinc == 0)
    if file_only:
        ok &= kind == Kind.FILE
    if mapped_hot:
        ok &= ~((mapc > 0) & (kind != Kind.ANON))
    if few:
        ids = found[ok]
    else:
        in_sub = np.zeros(len(machine.mem.state), dtype=bool)
        in_sub[sub] = True
        ids = np.flatnonzero(ok)
        ids = ids[in_sub[memcg[ids]]]
    return ids, memcg[ids].astype(np.int64), R.view("npages")[ids].astype(np.int64)


def _candidates_c(machine: MachineState, sub: np.ndarray, file_only: cython.bint, mapped_hot: cython.bint
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_candidates`` by one pass over the run columns' buffers (compiled build only): a run is tested
    only when its memcg is marked in ``sub``, and its id, memcg and size are written as it passes.
    numpy made a pass per rule and per memcg of a pod (~450k instructions a call on a machine-day)."""
    if not cython.compiled:
        raise RuntimeError("_candidates_c reads the run columns' C buffers: compiled build only")
    R: RunTable = machine.runs
    nm: cython.Py_ssize_t = len(machine.mem.state)
    n: cython.Py_ssize_t = R.state.ob_size
    for col in (R.memcg, R.pinc, R.kind, R.mapc, R.npages):
        if len(col) != n:
            raise RuntimeError(f"run columns of {len(col)} and {n} slots")
    in_sub = np.zeros(nm, dtype=np.int8)
    in_sub[sub] = 1
    mark: cython.schar[::1] = in_sub
    ids = np.empty(n, dtype=np.int64)
    owners = np.empty(n, dtype=np.int64)
    sizes = np.empty(n, dtype=np.int64)
    out_id: cython.longlong[::1] = ids
    out_m: cython.longlong[::1] = owners
    out_n: cython.longlong[::1] = sizes
    memcg: cython.p_int = R.memcg.data.as_ints
    state: cython.p_schar = R.state.data.as_schars
    pinc: cython.p_int = R.pinc.data.as_ints
    kind: cython.p_schar = R.kind.data.as_schars
    mapc: cython.p_int = R.mapc.data.as_ints
    npages: cython.p_int = R.npages.data.as_ints
    k: cython.Py_ssize_t = 0
    r: cython.Py_ssize_t
    m: cython.int
    for r in range(n):
        m = memcg[r]
        if m < 0 or m >= nm or not mark[m] or state[r] != _RESIDENT or pinc[r] != 0:
            continue
        if file_only and kind[r] != _FILE:
            continue
        if mapped_hot and mapc[r] > 0 and kind[r] != _ANON:
            continue
        out_id[k], out_m[k], out_n[k] = r, m, npages[r]
        k += 1
    return ids[:k], owners[:k], sizes[:k]


def _select_oldest(machine: MachineState, ids: np.ndarray, owners: np.ndarray, npages: np.ndarray,
                   quota: np.ndarray) -> tuple[list[int], list[int]]:
    """Oldest runs of each memcg up to its quota: (run ids, pages to take from each).

    Equally old runs of a memcg go in page order (object, then first page): run ids are
    an artefact of slot allocation, and results must not depend on them.
    """
    R = machine.runs
    age, obj, start = R.view("age")[ids], R.view("obj")[ids], R.view("start")[ids]
    # (memcg, age) and (object, first page) packed into one int64 key each (all four are >= 0, and age,
    # object and page are int32): the same stable order as lexsort((start, obj, age, owners)), in two
    # passes instead of four
    order = np.lexsort(((obj.astype(np.int64) << 32) | start, (owners << 32) | age))
    if cython.compiled:
        return _take_in_order(order, ids, owners, npages, quota)
    return _take_in_order_np(order, ids, owners, npages, quota)


def _take_in_order_np(order: np.ndarray, ids: np.ndarray, owners: np.ndarray, npages: np.ndarray,
                      quota: np.ndarray) -> tuple[list[int], list[int]]:
    """``_select_oldest``'s takes after its sort, by numpy (the pure build's, and the reference of
    ``_take_in_order``): a memcg's runs take its quota oldest first, each at most its pages."""
    o_ids, o_own, o_n = ids[order], owners[order], npages[order]
    cum = np.cumsum(o_n)
    first = np.r_[True, o_own[1:] != o_own[:-1]]
    base = np.maximum.accumulate(np.where(first, cum - o_n, 0))
    before = cum - o_n - base
    take = np.clip(quota[o_own] - before, 0, o_n)
    keep = take > 0
    return o_ids[keep].tolist(), take[keep].tolist()


def _take_in_order(order: np.ndarray, ids: np.ndarray, owners: np.ndarray, npages: np.ndarray,
                   quota: np.ndarray) -> tuple[list[int], list[int]]:
    """``_take_in_order_np`` by one C pass in ``order`` (compiled build only; int64 arrays; a test holds
    the two equal). numpy made a dozen calls on the candidates here, more than the sort itself."""
    if not cython.compiled:
        raise RuntimeError("_take_in_order loops over typed buffers: compiled build only")
    od: cython.longlong[::1] = np.ascontiguousarray(order, dtype=np.int64)
    idv: cython.longlong[::1] = ids
    own: cython.longlong[::1] = owners
    nv: cython.longlong[::1] = npages
    qv: cython.longlong[::1] = quota
    runs: list = []
    take: list = []
    k: cython.Py_ssize_t
    j: cython.Py_ssize_t
    m: cython.longlong
    prev: cython.longlong = -1
    before: cython.longlong = 0
    t: cython.longlong
    for k in range(od.shape[0]):
        j = od[k]
        m = own[j]
        if m != prev:  # the next memcg's runs (the sort groups them): its quota from the start
            prev, before = m, 0
        t = min(max(qv[m] - before, 0), nv[j])
        if t > 0:
            runs.append(idv[j])
            take.append(t)
        before += nv[j]
    return runs, take


def _select_oldest_few(machine: MachineState, ids: list[int], owners: list[int], npages: list[int],
                       quota: dict[int, int]) -> tuple[list[int], list[int]]:
    """``_select_oldest`` on lists (``quota`` by memcg): sorting (memcg, age, object, first page, run
    id) is its stable lexsort, as the ids come in ascending."""
    R = machine.runs
    age, obj, start = R.age, R.obj, R.start
    runs, take, prev, before = [], [], None, 0
    for m, _, _, _, r, n in sorted([(m, age[r], obj[r], start[r], r, n) for r, m, n in zip(ids, owners, npages)]):
        if m != prev:
            prev, before = m, 0
        t = min(max(quota[m] - before, 0), n)
        if t > 0:
            runs.append(r)
            take.append(t)
        before += n
    return runs, take


def _reclaim_run(machine: MachineState, r: cython.Py_ssize_t, take: cython.longlong) -> cython.longlong:
    """Reclaim the first ``take`` pages of run ``r``: evict page cache, swap out the rest; returns the pages taken
    (the caller, ``_shrink_pass``, counts them in ``pgsteal``, ``evictions`` and ``swapouts``)."""
    R: RunTable = machine.runs
    kind: cython.int
    npages: cython.int
    start: cython.int
    m: cython.Py_ssize_t
    if cython.compiled and 0 <= r < R.state.ob_size:  # the run's fields through the columns' buffers
        kind, npages, start = R.kind.data.as_schars[r], R.npages.data.as_ints[r], R.start.data.as_ints[r]
        m = R.memcg.data.as_ints[r]
    else:
        kind, npages, start, m = R.kind[r], R.npages[r], R.start[r], R.memcg[r]
    if kind != _FILE:
        room: cython.longlong = machine.swap_total - machine.swap_used
        if take > room:
            take = room
        if take <= 0:
            return 0
    if take < npages:
        R.split(r, start + take)
    if kind == _FILE:
        remove_mapping(machine, r, False)
    else:
        add_to_swap(machine, r, False)
    steal: array = machine.mem.pgsteal  # (an int64 column)
    if cython.compiled and 0 <= m < steal.ob_size:
        steal.data.as_longlongs[m] += take  # (C: overflow-checked, as the array is)
    else:
        steal[m] += take
    return take


def remove_mapping(machine: MachineState, r: cython.Py_ssize_t, count: cython.bint = True):
    """Reclaim a page-cache run: uncharge it and leave a shadow (EVICTED); ``count``: in ``evictions``."""
    mem_cgroup_charge_statistics(machine, r, -1)
    machine.runs.set_owner(r, _EVICTED, -1)
    if count:
        machine.counters["evictions"] += machine.runs.npages[r]


def add_to_swap(machine: MachineState, r: cython.Py_ssize_t, count: cython.bint = True):
    """Reclaim a swap-backed run: the record names the nearest online ancestor; ``count``: in ``swapouts``."""
    R = machine.runs
    rec = machine.mem.nearest_online(R.memcg[r])
    mem_cgroup_charge_statistics(machine, r, -1)
    R.set_owner(r, _SWAPPED, rec)
    mem_cgroup_charge_statistics(machine, r, +1)
    if count:
        machine.counters["swapouts"] += R.npages[r]
