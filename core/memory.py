"""Faults: making pages of an object resident for a task, and who pays
(mm/memory.c, mm/filemap.c, mm/shmem.c, mm/swap_state.c, mm/workingset.c).

In: a task touching pages [lo, hi) of an object (read, write, map, pin, an anon
allocation). Out: the range resident and aged (and stamped dirty for a write),
charged by ``core.memcontrol.try_charge_memcg`` to the memcg the rules name.

Kernel behaviour modelled (KERNEL-MODEL.md section 6):
- first touch owns: a page inserted into the page cache or shmem, or an anon
  fault, is charged to the faulting task's memcg (``__filemap_add_folio``,
  ``shmem_alloc_and_add_folio``, ``do_anonymous_page``); finding a page already
  resident charges nothing.
- a refault after eviction charges the refaulting task (mm/workingset.c).
- swap-in (``mem_cgroup_swapin_charge_folio``): charge the memcg recorded in the
  swap entry if it is online, else the faulting task's memcg; the slot is freed
  on swap-in (as when the swap cache folio is exclusive; the swap charge goes with it).
- an access is charged folio by folio, so an access bigger than the room under its
  limits reclaims its own first pages (``core.fault_pieces``, kernel check D10).
The policy may name another payer (``charge_target``, ``swapin_target``).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, NamedTuple

from core.fault_pieces import fault_needs as _needs
from core.fault_pieces import piece_pages, piece_pages_one
from core.fs_writeback import mark_range_dirty
from core.memcontrol import (
    MEMCG_CHARGE_BATCH,
    mem_cgroup_handle_over_high,
    memory_max_write,
    over_high_any,
    over_high_one,
    reclaim_over_high,
    try_charge_memcg,
)
from core.page_counter import (
    cancel_charge,
    charge_new_resident,
    low_wmark_pages,
    lru_age,
    mem_cgroup_charge_statistics,
    nr_free_pages,
)
from core.pages import St
from core.rmap import map_pieces
from core.run_index import starts_right

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.pages import RunTable
    from core.state import MachineState
if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import i8_at, i32_at, store_int

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_SWAPPED = int(St.SWAPPED)
_EVICTED = int(St.EVICTED)

class _Pieces(NamedTuple):
    """``_charge_range``'s answer for an access that reclaim must make room for with its own
    pages (nothing reserved): the first piece's length and the ``_needs`` it computed."""

    step: int  #: pages of the first piece (``piece_pages``)
    need: dict[int, int]  #: pages to pay per memcg for the whole range
    segs: array  #: the range's segments, as ``_needs`` (``fault_pieces.fault_needs``) gives them


def fault_range(machine: MachineState, t: cython.int, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                mayfail: cython.bint, fill_holes: cython.bint = True, dirty: cython.int = 0) -> cython.bint:
    """Make pages [lo, hi) of ``o`` resident for task ``t`` and mark them accessed.

    Charges follow the module's rules; returns False when the charge was refused
    or the task (or the object) died on the way, leaving the range untouched.
    ``dirty`` > 0 (a write to a disk file: its stamp) also stamps the range, as
    ``mark_range_dirty`` right after the fault would. When nothing can look at the runs
    in between (no memory.high reclaim due) the stamp goes on in the same pass, so
    an append grows the last run instead of adding a clean run that the stamp then
    merges back; both end in the same runs (one ``coalesce`` window covers them).
    """
    R: RunTable = machine.runs
    runs: array | None = (R.obj_runs[o] if o < len(R.obj_runs) else None)
    i: cython.Py_ssize_t = -1
    r: cython.Py_ssize_t
    hole: cython.bint
    start: cython.p_int
    npages: cython.p_int
    ages: cython.p_int
    dirt: cython.p_int
    state: cython.p_schar
    rp: cython.p_int  # the object's run ids
    if cython.compiled:  # the run columns' buffers, read before anything below can grow them
        start, npages, state = R.start.data.as_ints, R.npages.data.as_ints, R.state.data.as_schars
        ages, dirt = R.age.data.as_ints, R.dirty.data.as_ints
    else:
        start, npages, ages, dirt, state = R.start, R.npages, R.age, R.dirty, R.state
    if runs and lo < hi:
        # the usual access: one resident run covers the range (``_touch_if_resident``
        # without its loop): nothing to charge, age it (and stamp it) in place
        if cython.compiled:
            rp = runs.data.as_ints
        else:
            rp = runs
        i = starts_right(R.obj_starts[o], lo) - 1
        if i >= 0:
            r = rp[i]
            if hi <= start[r] + npages[r] and state[r] == _RESIDENT:
                age: cython.int = machine.now_us // machine.age_quantum_us  # lru_age(), inlined
                if ages[r] != age or dirty and dirt[r] != dirty:
                    R.touch(r, lo, hi, age, dirty)
                elif not dirty:
                    return True
                R.coalesce(o, lo, hi)  # (a write's stamp coalesces even when it changed nothing)
                return True
        # a range starting before the first run or running past the last one has a hole
        # to fill (an append): the touch-only path cannot take it
        hole = fill_holes and (i < 0 or i == len(runs) - 1 and start[rp[i]] + npages[rp[i]] < hi)
        # no run in [lo, hi) at all: one hole, the first touch's charge (``_fault_hole``)
        single = (fill_holes and machine.kernel_targets and (i < 0 or start[rp[i]] + npages[rp[i]] <= lo)
                  and (i + 1 >= len(runs) or start[rp[i + 1]] >= hi))
    else:
        hole = fill_holes and not runs
        single = hole and lo < hi and machine.kernel_targets
    if single:
        return _fault_hole(machine, t, o, lo, hi, mayfail, dirty)
    if not hole and _touch_if_resident(machine, o, lo, hi, fill_holes, dirty):
        return True
    charged = _charge_range(machine, t, o, lo, hi, mayfail, fill_holes)
    if charged is None:
        return False
    if type(charged) is _Pieces:  # (a type compare: isinstance of a NamedTuple class is a generic lookup)
        return _fault_chunks(machine, t, o, lo, hi, mayfail, fill_holes, dirty, charged)
    return _settle(machine, o, lo, hi, fill_holes, dirty, charged)


def _settle(machine: MachineState, o: cython.int, lo: cython.longlong, hi: cython.longlong, fill_holes: cython.bint,
            dirty: cython.int, charged: tuple) -> cython.bint:
    """``fault_range``'s end once ``_charge_range`` reserved (have, segs, settled): the pages made
    resident, coalesced, memory.high reclaimed and the write's stamp put on. Returns True."""
    have, segs, settled = charged
    # a settled fault only gives back reservations, so no memcg over its high now means
    # no mem_cgroup_handle_over_high reclaim after it: nothing can see the runs before the stamp
    fused = dirty and settled and not over_high_any(machine, have)
    _materialize(machine, o, segs, fill_holes, have, dirty if fused else 0)
    machine.runs.coalesce(o, lo, hi)
    if not fused:
        reclaim_over_high(machine, have)
        if dirty:
            mark_range_dirty(machine, o, lo, hi, dirty)
    return True


def _fault_hole(machine: MachineState, t: cython.int, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                mayfail: cython.bint, dirty: cython.int) -> cython.bint:
    """``fault_range`` of a range that no run of ``o`` overlaps, under the kernel's charge rules.

    The usual fault (an anon allocation, an append, a first read): one hole charged to the faulting
    task's memcg (first touch). This is ``_charge_range`` + ``_materialize`` for that one segment,
    (-1, lo, hi, accessor), without their dict of payers and list of segments, in their steps and
    order, so the result is the same. When reclaim inside the charge moved runs, the general rounds
    take over with what was reserved (``_charge_rounds``), as ``_charge_range`` rechecks the range:
    reclaim only evicts or swaps existing runs, so they find the same hole and charge nothing more.
    """
    R: RunTable = machine.runs
    acc: cython.int = machine.t_cg[t]
    n: cython.longlong = hi - lo
    if n > MEMCG_CHARGE_BATCH:
        step: cython.longlong = piece_pages_one(machine, o, acc, n)
        if step and step < n:
            return _fault_chunks(machine, t, o, lo, hi, mayfail, True, dirty,
                                 _Pieces(step, {acc: n}, array("q", (-1, lo, hi, acc))))
    mark = R.mutations
    if not try_charge_memcg(machine, acc, n, mayfail, t) or not machine.t_alive[t] or not machine.o_alive[o]:
        R.split_ends(o, lo, hi)  # (as _charge_range: nothing was reserved before this charge)
        return False
    if R.mutations != mark:  # reclaim moved runs: the general rounds, from the second, with this charge
        need, segs = _needs(machine, o, lo, hi, acc, True)
        charged = _charge_rounds(machine, t, o, lo, hi, mayfail, True, acc, need, segs, {acc: n}, 3)
        return charged is not None and _settle(machine, o, lo, hi, True, dirty, charged)
    # settled: no memcg over its high now means no memory.high reclaim after the fault (see fault_range)
    fused: cython.bint = dirty and not over_high_one(machine, acc)
    _new_resident(machine, o, lo, hi, acc, dirty if fused else 0)  # (_materialize's hole, paid from the reservation)
    R.coalesce(o, lo, hi)
    if not fused:
        if over_high_one(machine, acc):  # reclaim_over_high of the one payer
            mem_cgroup_handle_over_high(machine, acc)
        if dirty:
            mark_range_dirty(machine, o, lo, hi, dirty)
    return True


def _fault_chunks(machine: MachineState, t: int, o: int, lo: int, hi: int, mayfail: bool,
                  fill_holes: bool, dirty: int, pieces: _Pieces) -> bool:
    """``fault_range`` of an access that reclaim must make room for with its own pages.

    Under memcg limits alone (free memory stays above the low watermark) and for a
    charge that may not fail: ``_fault_streaming``, one reclaim per limit. Otherwise in
    consecutive pieces, the first ``pieces.step`` pages long (see ``piece_pages``; each
    later piece sizes itself the same way); False as soon as a piece is refused, and the
    pieces before it stay resident, as after a short read in the kernel.
    """
    if not mayfail and nr_free_pages(machine) - (hi - lo) >= low_wmark_pages(machine):
        return _fault_streaming(machine, t, o, lo, hi, fill_holes, dirty, pieces.need, pieces.segs)
    step, a = pieces.step, lo
    while a < hi:
        b = min(a + step, hi)
        if not fault_range(machine, t, o, a, b, mayfail, fill_holes, dirty):
            return False
        a = b
        if a < hi:  # size the next piece as the first was (t is alive: the piece succeeded)
            need, _ = _needs(machine, o, a, hi, machine.t_cg[t], fill_holes)
            step = (piece_pages(machine, o, need) if need else 0) or hi - a
    return True


def _fault_streaming(machine: MachineState, t: int, o: int, lo: int, hi: int, fill_holes: bool, dirty: int,
                     need: dict[int, int], segs: array) -> bool:
    """Make [lo, hi) of ``o`` resident past its memcgs' limits, then reclaim each limit's
    excess with the access's own pages among the candidates; False if ``t`` or ``o`` died.
    ``need`` and ``segs``: ``_needs`` of the range, as ``_charge_range`` computed them.

    What the kernel's page-by-page charges of an access bigger than the room under
    memory.max end with (``piece_pages``), in one reclaim instead of one per piece:
    reclaim takes the oldest pages first, so older page cache goes, then the access's
    own first pages (the youngest candidates, in page order), in the 32-page calls of
    limit reclaim across the memcgs of the over-limit subtree. Only when free memory
    stays above the low watermark (no machine-wide overcommit) and the charge may not
    fail. An excess that reclaim cannot take OOM-kills inside the subtree, as the charge
    would have. memory.peak of the memcgs on the way is held to what the page-by-page
    charges could reach: the old peak, or the usage before plus the tightest room above.
    """
    mem, R = machine.mem, machine.runs
    chain: dict[int, int] = {}  # every memcg whose usage the charge raises -> its peak bound
    for m in need:
        path, x = [], m
        while x >= 0:
            path.append(x)
            x = mem.parent[x]
        room = min(max(mem.max[x] - mem.usage[x], 0) for x in path)
        for x in path:
            bound = max(mem.peak[x], min(mem.usage[x] + room, mem.max[x]))
            chain[x] = max(chain.get(x, 0), bound)
    for m, n in need.items():
        mem.charge(m, n)
        machine.reserved += n
    _materialize(machine, o, segs, fill_holes, dict(need), dirty)
    R.coalesce(o, lo, hi)
    for x in chain:
        if mem.peak[x] > chain[x]:
            mem.peak[x] = chain[x]
    for m in sorted(need):
        x = m
        while x >= 0:
            memory_max_write(machine, x, t, charging=True)
            x = mem.parent[x]
    alive = bool(machine.t_alive[t]) and bool(machine.o_alive[o])
    if alive:
        reclaim_over_high(machine, need)
    return alive


def _charge_range(machine: MachineState, t: cython.int, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                  mayfail: cython.bint, fill_holes: cython.bint
                  ) -> tuple[dict[int, int], array, bool] | _Pieces | None:
    """Reserve what making [lo, hi) of ``o`` resident costs, per paying memcg.

    Returns (pages reserved per memcg, the segments from ``_needs``, settled: the last
    charge round moved nothing), or None when a charge was refused or the task or the
    object died on the way (then nothing stays reserved), or ``_Pieces`` with nothing
    reserved when a range longer than a charge batch needs reclaim that would take its
    own pages: the caller then faults it in pieces (``_fault_chunks``).
    """
    accessor = machine.t_cg[t]
    need, segs = _needs(machine, o, lo, hi, accessor, fill_holes)
    if hi - lo > MEMCG_CHARGE_BATCH and need:
        step = piece_pages(machine, o, need)
        if step and step < hi - lo:
            return _Pieces(step, need, segs)
    return _charge_rounds(machine, t, o, lo, hi, mayfail, fill_holes, accessor, need, segs, {}, 4)


def _charge_rounds(machine: MachineState, t: cython.int, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                   mayfail: cython.bint, fill_holes: cython.bint, accessor: cython.int, need: dict, segs: array,
                   have: dict, rounds: cython.int) -> tuple | None:
    """``_charge_range``'s charge rounds: up to ``rounds`` of them, each charging what ``need`` asks
    beyond ``have`` (pages already reserved per memcg), and recomputing ``need`` and ``segs``
    when reclaim moved runs meanwhile. Out: as ``_charge_range`` (None: refused, all cancelled)."""
    R = machine.runs
    for _ in range(rounds):  # reclaim inside a charge may evict pages of this very range
        mark = R.mutations
        # sorted() only when there is an order to fix: most faults pay one memcg
        for m in (sorted(need) if len(need) > 1 else need):
            h = have.get(m, 0)
            n = need[m] - h
            if n <= 0:
                continue
            if not try_charge_memcg(machine, m, n, mayfail, t) or not machine.t_alive[t] or not machine.o_alive[o]:
                cancel_charge(machine, have)
                R.split_ends(o, lo, hi)  # the splits the eager segments() made before charging
                return None
            have[m] = h + n
        if R.mutations == mark:
            return have, segs, True  # nothing moved while charging: the segments are still true
        need, segs = _needs(machine, o, lo, hi, accessor, fill_holes)
    return have, segs, False  # _materialize may pay more: usage may still rise


def _touch_if_resident(machine: MachineState, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                       fill_holes: cython.bint, dirty: cython.int = 0) -> cython.bint:
    """Fast path of ``fault_range``: when nothing in [lo, hi) needs a charge, just age it (and stamp ``dirty``)."""
    R: RunTable = machine.runs
    runs: array | None = (R.obj_runs[o] if o < len(R.obj_runs) else None)
    if not runs:
        return not fill_holes
    start: cython.p_int
    npages: cython.p_int
    ages: cython.p_int
    dirt: cython.p_int
    state: cython.p_schar
    rp: cython.p_int  # the object's run ids
    if cython.compiled:  # the run columns' buffers: the scan below grows none of them
        start, npages, state = R.start.data.as_ints, R.npages.data.as_ints, R.state.data.as_schars
        ages, dirt, rp = R.age.data.as_ints, R.dirty.data.as_ints, runs.data.as_ints
    else:
        start, npages, ages, dirt, state, rp = R.start, R.npages, R.age, R.dirty, R.state, runs
    age: cython.int = machine.now_us // machine.age_quantum_us  # lru_age(), inlined: once per event
    i: cython.Py_ssize_t = starts_right(R.obj_starts[o], lo) - 1
    if i < 0:
        i = 0
    pos: cython.longlong = lo
    n: cython.Py_ssize_t = len(runs)
    r: cython.Py_ssize_t
    s: cython.longlong
    e: cython.longlong
    stale: cython.Py_ssize_t = 0  # runs whose age (or stamp) changes, the first at index ``first``
    first: cython.Py_ssize_t = -1
    while i < n and pos < hi:
        r = rp[i]
        s = start[r]
        e = s + npages[r]
        if e <= pos:
            i += 1
            continue
        if s > pos and fill_holes or s >= hi:
            break
        if state[r] != _RESIDENT:
            return False
        if ages[r] != age or dirty and dirt[r] != dirty:
            stale += 1
            if first < 0:
                first = i
        pos = e
        i += 1
    if pos < hi and fill_holes:
        return False
    if not stale and not dirty:
        return True  # (a write's stamp coalesces even when it changed nothing)
    i = first
    while stale:  # split only the runs that change, and only [lo, hi) of them, in page order
        if cython.compiled:  # every turn: the split before may have grown (moved) the columns and run ids
            start, npages, rp = R.start.data.as_ints, R.npages.data.as_ints, runs.data.as_ints
            ages, dirt = R.age.data.as_ints, R.dirty.data.as_ints
        r = rp[i]
        s = start[r]
        e = s + npages[r]
        if ages[r] != age or dirty and dirt[r] != dirty:
            R.touch(r, s if s > lo else lo, e if e < hi else hi, age, dirty)
            stale -= 1
            if s < lo:  # the part below lo stays at index i, the touched run follows it
                i += 1
        i += 1
    R.coalesce(o, lo, hi)
    return True


def _materialize(machine: MachineState, o: cython.int, segs: array,
                 fill_holes: cython.bint, have: dict, dirty: cython.int) -> None:
    """Turn the holes and non-resident runs of ``segs`` (from ``_needs``) resident, paid from ``have``.

    ``dirty`` > 0: stamp every page of ``segs`` dirty on the way (see ``fault_range``).
    """
    R: RunTable = machine.runs
    now: cython.int = machine.now_us // machine.age_quantum_us  # lru_age(), inlined
    r: cython.Py_ssize_t
    s: cython.longlong
    e: cython.longlong
    tgt: cython.int
    k: cython.Py_ssize_t
    state: cython.p_schar
    ages: cython.p_int
    dirt: cython.p_int
    if not cython.compiled:
        state, ages, dirt = R.state, R.age, R.dirty
    for k in range(0, len(segs), 4):  # (run or -1, seg_lo, seg_hi, payer): segs never changes here
        if cython.compiled:  # every turn: the turn before may have grown (moved) the columns
            state, ages, dirt = R.state.data.as_schars, R.age.data.as_ints, R.dirty.data.as_ints
            r, s, e = segs.data.as_longlongs[k], segs.data.as_longlongs[k + 1], segs.data.as_longlongs[k + 2]
            tgt = segs.data.as_longlongs[k + 3]
        else:
            r, s, e, tgt = segs[k], segs[k + 1], segs[k + 2], segs[k + 3]
        if r >= 0 and state[r] == _RESIDENT:
            if ages[r] != now or dirty and dirt[r] != dirty:  # segs are unsplit: split only what changes
                R.touch(r, s, e, now, dirty)
            continue
        if r < 0 and not fill_holes:
            continue
        n: cython.longlong = e - s
        h: cython.longlong = have.get(tgt, 0)
        if h < n:  # reclaim moved pages after the last charge: pay now
            machine.mem.charge(tgt, n)
            machine.reserved += n
            h += n
        have[tgt] = h - n
        if r < 0:
            _new_resident(machine, o, s, e, tgt, dirty)
        else:
            x = R.isolate(r, s, e)
            _make_resident(machine, x, tgt)
            if dirty:
                R.dirty[x] = dirty
    for m, n in have.items():  # cancel_charge of what is left over
        if n:
            machine.mem.charge(m, -n)
            machine.reserved -= n


def _new_resident(machine: MachineState, o: cython.int, s: cython.longlong, e: cython.longlong, memcg: cython.int,
                  dirty: cython.int = 0) -> None:
    """Instantiate pages [s, e) of ``o`` charged to ``memcg``, split where mappings differ."""
    R: RunTable = machine.runs
    age: cython.int = machine.now_us // machine.age_quantum_us  # lru_age() inlined
    kind: cython.int = machine.o_kind[o]
    if not machine.o_maps[o]:  # no mappings: one unmapped piece, without the piece walk
        R.add_resident(o, s, e - s, memcg, 0, age, kind, dirty)  # may grow the run before the hole
        charge_new_resident(machine, o, memcg, kind, 0, e - s)
        return
    for a, b, mapc in map_pieces(machine, o, s, e):
        R.add_resident(o, a, b - a, memcg, mapc, age, kind, dirty)
        charge_new_resident(machine, o, memcg, kind, mapc, b - a)


def _make_resident(machine: MachineState, r: cython.Py_ssize_t, memcg: cython.int) -> None:
    """Refault an evicted run or swap in a swapped one, charged to ``memcg``."""
    R = machine.runs
    n: cython.longlong = i32_at(R.npages, r)  # (the run's fields through the columns' buffers when compiled)
    if i8_at(R.state, r) == _EVICTED:
        machine.mem.count_refault(memcg, n)
        machine.counters["refaults"] += n
        R.retag(r, memcg, i8_at(R.rflags, r))
    else:
        mem_cgroup_charge_statistics(machine, r, -1)  # frees the swap slot and its charge
        machine.counters["swapins"] += n
    R.set_owner(r, _RESIDENT, memcg)
    store_int(R.age, r, lru_age(machine))
    mem_cgroup_charge_statistics(machine, r, +1, reserved=True)
