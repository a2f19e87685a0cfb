"""A fault's segments, who pays for each, and how big its pieces are: an access charged folio by folio
reclaims its own first pages (mm/filemap.c filemap_add_folio, mm/memory.c do_anonymous_page; kernel
check D10).

In: a ``MachineState``, the object faulted and its page range. Out: the range's runs and holes and the
memcg that pays for each (``fault_needs``, flat int64 arrays: no object per segment), and 0 when the
access can be charged at once, else the pages of each piece (``core.memory`` charges them in turn).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from core.memcg import ROOT, check_slot
from core.memcontrol import MEMCG_CHARGE_BATCH, swapin_charge_target
from core.page_counter import low_wmark_pages, nr_free_pages
from core.pages import Kind, St
from core.rmap import maps_pages
from core.run_index import object_segments
from core.vmscan import first_pass_pages

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython
if not cython.compiled:  # the compiled build's C version comes from cpython.array (core/fault_pieces.pxd)
    from core.run_index import clone

if TYPE_CHECKING:
    from core.memcg import MemcgTable
    from core.pages import RunTable
    from core.state import MachineState

_ANON = int(Kind.ANON)
_FILE = int(Kind.FILE)
_RESIDENT = int(St.RESIDENT)
_SWAPPED = int(St.SWAPPED)


def piece_pages(machine: MachineState, o: cython.int, need: dict) -> cython.longlong:
    """0 when ``need`` (pages per paying memcg) of object ``o`` can be charged at once; else
    how many pages of the access to charge at a time.

    The kernel charges an access folio by folio (filemap_add_folio, do_anonymous_page,
    each calling mem_cgroup_charge), so the pages it has brought in are on the LRU, and
    reclaimable, while its later pages are charged: a read bigger than the room under
    memory.max evicts its own first pages (kernel check ``limit_reclaim_anon_vs_file``).
    Reclaim takes older pages first: while the room under each limit (memory.max; from
    v5.18 memory.high too, which try_charge_memcg reclaims synchronously) and under the
    low watermark, plus the older pages that reclaim there takes first
    (``core.vmscan.first_pass_pages``), cover the access, one charge with one reclaim ends as
    the page-by-page charges would. Otherwise the access goes in pieces of that cover
    (at least MEMCG_CHARGE_BATCH pages), each charged once its predecessors are resident
    (``core.memory._fault_chunks``). An access whose own pages reclaim could not take (anon or shmem
    without swap, or an object with mappings while ``mapped_hot``) is one charge:
    pieces would end the same way.
    """
    total: cython.longlong = 0
    for n in need.values():  # (a loop, not sum(): a C sum, overflow-checked)
        total += n
    tight: list[tuple[int, int]] = []  # (memcg, room under its limits) where the charge does not fit
    for m, n in need.items():
        tight_chain(machine, m, n, tight)
    return piece_cap(machine, o, total, tight)


def piece_pages_one(machine: MachineState, o: cython.int, m: cython.int, n: cython.longlong) -> cython.longlong:
    """``piece_pages`` of an access that pays ``n`` pages to memcg ``m`` alone."""
    tight: list[tuple[int, int]] = []
    tight_chain(machine, m, n, tight)
    return piece_cap(machine, o, n, tight)


def tight_chain(machine: MachineState, m: cython.Py_ssize_t, pages: cython.longlong, tight: list) -> None:
    """Append to ``tight`` (memcg, room under its limits) for ``m`` and each ancestor whose room
    (under memory.max, and memory.high where the charge reclaims it) is less than ``pages``."""
    mem: MemcgTable = machine.mem
    usage: cython.p_longlong
    mx: cython.p_longlong
    high: cython.p_longlong
    parent: cython.p_int
    if cython.compiled:  # the memcg columns' buffers: nothing below grows them
        usage, mx, parent = mem.usage.data.as_longlongs, mem.max.data.as_longlongs, mem.parent.data.as_ints
        high = mem.high.data.as_longlongs if machine.charge_reclaims_high else mx
        check_slot(mem, m)
    else:
        usage, mx, parent = mem.usage, mem.max, mem.parent
        high = mem.high if machine.charge_reclaims_high else mx
    x: cython.Py_ssize_t = m
    room: cython.longlong
    while x >= 0:
        room = (mx[x] if mx[x] < high[x] else high[x]) - usage[x]
        if pages > room:
            tight.append((x, room))
        x = parent[x]


def piece_cap(machine: MachineState, o: cython.int, total: cython.longlong, tight: list) -> cython.longlong:
    """``piece_pages``'s answer from the pages to charge in all (``total``) and the ``tight`` limits."""
    free_room: cython.longlong = nr_free_pages(machine) - low_wmark_pages(machine)
    if total <= free_room and not tight:
        return 0  # the usual case: it fits, no reclaim
    kind = machine.o_kind[o]
    if kind != _FILE and machine.swap_total <= machine.swap_used:
        return 0
    if kind != _ANON and machine.cfg.mapped_hot and maps_pages(machine, o):
        return 0  # its pages may be mapped, so referenced: reclaim keeps them
    cap = -1  # -1: nothing in the way
    if total > free_room:  # kswapd wakes and reclaims to the high watermark
        gap = int(machine.mem_total * (machine.watermark_high - machine.watermark_low))
        cap = free_room + first_pass_pages(machine, ROOT) - gap
    for m, room in tight:
        c = room + first_pass_pages(machine, m)
        cap = c if cap < 0 else min(cap, c)
    if cap < 0 or total <= cap:
        return 0
    return max(MEMCG_CHARGE_BATCH, cap)


def fault_segments(R: RunTable, o: cython.int, lo: cython.longlong, hi: cython.longlong) -> array:
    """``RunTable.pieces`` as one flat int64 array: (run or -1 for a hole, seg_lo, seg_hi) per segment of
    pages [lo, hi) of ``o``, in page order, unsplit (``run_index.object_segments``): a fault's segments
    without a tuple and three int objects per segment."""
    return object_segments(R.obj_starts[o] if o < len(R.obj_starts) else None,
                           R.obj_runs[o] if o < len(R.obj_runs) else None, R.start, R.npages, lo, hi)


def seg_target(machine: MachineState, o: cython.int, r: cython.Py_ssize_t, accessor: cython.int) -> cython.int:
    """Which memcg pays for making non-resident run ``r`` of ``o`` resident again: for a swapped run the
    swap-in's (``swapin_target``), for an evicted one the refault's (``charge_target``); the kernel's rules
    inline when the policy keeps them. (``fault_needs`` decides holes and resident runs itself.)"""
    R = machine.runs
    if R.state[r] == _SWAPPED:
        rec = R.memcg[r]
        if machine.kernel_targets:
            return swapin_charge_target(machine, rec, accessor)
        return machine.policy.swapin_target(machine, r, rec, accessor)
    return accessor if machine.kernel_targets else machine.policy.charge_target(machine, o, accessor)


def fault_needs(machine: MachineState, o: cython.int, lo: cython.longlong, hi: cython.longlong,
                accessor: cython.int, fill_holes: cython.bint) -> tuple[dict[int, int], array]:
    """Pages of [lo, hi) that must be charged, per paying memcg, and the segments they came from.

    Segments are one flat int64 array of (run or -1, seg_lo, seg_hi, payer) quadruples: ``core.memory``'s
    ``_materialize`` reuses the payer (-1 for a resident run or a hole left alone) instead of asking the
    policy again. It stays true because ``fault_range`` recomputes the segments whenever anything moved
    while charging (``mutations``). The segments are all found before any policy is asked (a policy's
    target may change the table).
    """
    need: dict[int, int] = {}
    R: RunTable = machine.runs
    found: array = fault_segments(R, o, lo, hi)
    segs: array = clone(found, len(found) // 3 * 4, False)  # (int64, as ``found``)
    segs_p: cython.p_longlong
    if cython.compiled:  # (``segs`` is filled in place: never grown)
        segs_p = segs.data.as_longlongs
    else:
        segs_p = segs
    first_touch: cython.bint = machine.kernel_targets  # a hole is charged to its accessor
    k: cython.Py_ssize_t
    r: cython.Py_ssize_t
    s: cython.longlong
    e: cython.longlong
    tgt: cython.int
    w: cython.Py_ssize_t = 0
    st: cython.schar = 0
    cur: cython.int = -1  # the payer whose pages ``acc`` sums since the payer last changed (one dict update a run
    acc: cython.longlong = 0  # of equal payers, in the order payers first appear, as one update a segment had)
    for k in range(0, len(found), 3):
        if cython.compiled:  # (``found`` never changes; the run columns may have, under a policy's target)
            r, s, e = found.data.as_longlongs[k], found.data.as_longlongs[k + 1], found.data.as_longlongs[k + 2]
            if r >= 0:
                st = R.state.data.as_schars[r]
        else:
            r, s, e = found[k], found[k + 1], found[k + 2]
            if r >= 0:
                st = R.state[r]
        if r < 0:  # a hole: first touch charges its accessor
            if not fill_holes:
                tgt = -1
            else:
                tgt = accessor if first_touch else machine.policy.charge_target(machine, o, accessor)
        elif st == _RESIDENT:
            tgt = -1
        else:
            tgt = seg_target(machine, o, r, accessor)
        segs_p[w], segs_p[w + 1], segs_p[w + 2], segs_p[w + 3] = r, s, e, tgt
        w += 4
        if tgt >= 0:
            if tgt != cur:
                if cur >= 0:
                    need[cur] = need.get(cur, 0) + acc
                cur, acc = tgt, 0
            acc += e - s
    if cur >= 0:
        need[cur] = need.get(cur, 0) + acc
    return need, segs
