"""How big the pieces of a fault are: an access charged folio by folio reclaims its own first pages
(mm/filemap.c filemap_add_folio, mm/memory.c do_anonymous_page; kernel check D10).

In: a ``MachineState``, the object faulted and the pages it pays per memcg. Out: 0 when the access
can be charged at once, else the pages of each piece (``core.memory`` charges them in turn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import ROOT, check_slot
from core.memcontrol import MEMCG_CHARGE_BATCH
from core.page_counter import low_wmark_pages, nr_free_pages
from core.pages import Kind
from core.rmap import maps_pages
from core.vmscan import first_pass_pages

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.memcg import MemcgTable
    from core.state import MachineState

_ANON = int(Kind.ANON)
_FILE = int(Kind.FILE)


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
