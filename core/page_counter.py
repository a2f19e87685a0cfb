"""Charge statistics: how a run's pages are added to and removed from its memcg's counters
(mm/memcontrol.c ``mem_cgroup_charge_statistics``, ``commit_charge``, ``uncharge_folio``,
``cancel_charge``; mm/page_counter.c for the hierarchical usage).

In: a run of ``core.pages.RunTable`` and a sign, or pages reserved by
``core.memcontrol.try_charge_memcg``. Out: the own counters of ``core.memcg.MemcgTable``
(anon, file, shmem, mapped, pinned, swap), its hierarchical usage and swap usage, the
machine-wide resident/reserved/swap totals, and the task's anon and swap sizes kept exact.
A swapped run's removal frees its swap slots through ``core.swap_slots`` (which may park
them); a dropped charge of a dying memcg goes to ``core.cgroup.css_put``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.memcg import State, add_i32
from core.pages import Kind, St
from core.swap_slots import SWAPFILE_CLUSTER, free_swap_slot, swap_entry_free
from core.zombie_gauges import touch

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython
if not cython.compiled:  # the compiled build inlines the C version (core/run_index.pxd)
    from core.run_index import i32_at

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_SWAPPED = int(St.SWAPPED)
_ANON = int(Kind.ANON)
_FILE = int(Kind.FILE)
_ONLINE = int(State.ONLINE)


def lru_age(machine: MachineState) -> cython.longlong:
    """The LRU age stamped on pages touched now: the number of ``age_quantum_us`` quanta elapsed.

    The kernel orders pages only coarsely (active/inactive lists; at most
    MAX_NR_GENS = 4 MGLRU generations), so pages touched within one quantum are
    treated as equally young — which also lets neighbouring runs merge.
    """
    return machine.now_us // machine.age_quantum_us


def mem_cgroup_charge_statistics(machine: MachineState, r: cython.Py_ssize_t, sign: cython.int,
                                 reserved: cython.bint = False, hier: cython.bint = True,
                                 zap: cython.bint = False) -> cython.int:
    """Add (+1) or remove (-1) run ``r``'s pages on the counters of the memcg it names.

    ``reserved``: the hierarchical usage was already raised by ``try_charge_memcg``.
    ``hier=False``: own counters only (a move to an ancestor leaves the hierarchy as it is).
    ``zap``: the pages go because their mapping does (exit, munmap, a hole punched): on kernels
    that free a batch of a process's swap entries at once (``Kernel.zap_frees_swap_batched``),
    a swapped anon run of more than one page is uncharged now instead of parked in a slot cache.
    Returns 0 (a C call from the compiled modules that cimport it).
    """
    R, mem = machine.runs, machine.mem
    st: cython.int
    m: cython.Py_ssize_t
    k: cython.int
    mapc: cython.int
    pinc: cython.int
    n: cython.longlong
    if cython.compiled and 0 <= r < R.state.ob_size:  # the run's fields through the columns' buffers
        st, m, k = R.state.data.as_schars[r], R.memcg.data.as_ints[r], R.kind.data.as_schars[r]
        mapc, pinc = R.mapc.data.as_ints[r], R.pinc.data.as_ints[r]
        n = R.npages.data.as_ints[r] * sign
    else:
        st, m, k, mapc, pinc = R.state[r], R.memcg[r], R.kind[r], R.mapc[r], R.pinc[r]
        n = R.npages[r] * sign
    touch(mem.zg, mem.state, m)  # (a dying memcg's zombie gauges: pages moved onto it add to them)
    if st == _RESIDENT:
        _count_own(machine, i32_at(R.obj, r), m, k, mapc, n)
        if pinc:
            if cython.compiled:
                add_i32(mem.pinned, m, n)
            else:
                mem.pinned[m] += n
        if not hier:
            pass
        elif reserved:
            machine.reserved -= n
            machine.resident += n
        else:
            mem.charge(m, n)
            machine.resident += n
    elif st == _SWAPPED:
        if k == _ANON:
            machine.t_swap[machine.o_owner[R.obj[r]]] += n
        if sign < 0 and hier:
            if zap and k == _ANON and 1 < -n <= SWAPFILE_CLUSTER and machine.kernel.zap_frees_swap_batched:
                swap_entry_free(machine, m, -n)  # __swap_entries_free: a batch skips the slot cache
            else:
                free_swap_slot(machine, m, -n)  # may stay parked in a CPU's slot cache for a while
            return 0
        if cython.compiled:
            add_i32(mem.swap, m, n)
        else:
            mem.swap[m] += n
        if hier:
            mem.charge_swap(m, n)
            machine.swap_used += n
        if sign < 0 and i32_at(mem.swap, m) == 0 and i32_at(mem.state, m) != _ONLINE:
            mem.put_id(m)  # the last swap entry drops the ID (mem_cgroup_id_put_many)
    else:
        return 0
    if sign < 0:
        css_put(machine, m)
    return 0


def _count_own(machine: MachineState, o: cython.int, m: cython.Py_ssize_t, k: cython.int, mapc: cython.int,
               n: cython.longlong) -> int:
    """``n`` resident pages of kind ``k`` of object ``o`` (``mapc`` > 0: mapped) on memcg ``m``'s own
    counters: anon, file or shmem (an anon region's owner task's anon too) and mapped."""
    mem = machine.mem
    t: cython.Py_ssize_t
    if k == _ANON:
        own = mem.anon
        t = machine.o_owner[o]  # (a C index: the list's own item access)
        machine.t_anon[t] += n
    else:
        own = mem.file if k == _FILE else mem.shmem
    if cython.compiled:
        add_i32(own, m, n)
    else:
        own[m] += n
    if mapc and k != _ANON:
        if cython.compiled:
            add_i32(mem.mapped, m, n)
        else:
            mem.mapped[m] += n
    return 0


def nr_free_pages(machine: MachineState) -> cython.longlong:
    """Free pages machine-wide: all of them but the resident, kernel and reserved ones."""
    return machine.mem_total - machine.resident - machine.kmem_total - machine.reserved


def low_wmark_pages(machine: MachineState) -> cython.longlong:
    """The low watermark in pages (``low_wmark_pages``): free memory below it wakes kswapd, and a charge
    that would take it there goes through ``alloc_pages_slowpath``."""
    return int(machine.mem_total * machine.watermark_low)


def cancel_charge(machine: MachineState, have: dict[int, int]) -> None:
    for m, n in have.items():
        machine.mem.charge(m, -n)
        machine.reserved -= n


def charge_new_resident(machine: MachineState, o: cython.int, m: cython.Py_ssize_t, k: cython.int, mapc: cython.int,
                        n: cython.longlong):
    """``_acct(r, +1, reserved=True)`` for ``n`` new unpinned resident pages of ``o`` charged to ``m``.

    By pages rather than by run: the pages may have grown an existing run.
    """
    _count_own(machine, o, m, k, mapc, n)
    machine.reserved -= n
    machine.resident += n
