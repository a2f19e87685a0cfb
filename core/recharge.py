"""What the zombie policies use to move charges, walk LRUs and swap records (the proposals).

In: run ids and memcg slots from a policy hook. Out: charges moved, pages
evicted or swapped, with every counter kept exact, and the policy counters of
``core.metrics.COUNTERS`` bumped.

Kernel counterparts: ``mem_cgroup_move_account`` (recharge: uncharge the old
memcg, charge the new one), objcg reparenting (the parent's hierarchical
usage already holds the child's pages, so only the child's own counters move),
``swap_cgroup_record`` rewritten to an ancestor's ID (the talk's swap walk),
``lruvec_for_each_list`` (walk a memcg's LRU), ``folio_referenced``/rmap walk
(find a mapper), reclaim of one folio (``shrink_folio_list``: evict page cache,
swap out swap-backed pages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State
from core.memcontrol import try_charge_memcg
from core.page_counter import cancel_charge, mem_cgroup_charge_statistics
from core.pages import PARKED, Kind, St
from core.vmscan import add_to_swap, remove_mapping

if TYPE_CHECKING:
    from core.state import MachineState


def resident_runs(machine: MachineState, memcg: int) -> list[int]:
    """Resident runs charged to ``memcg``, oldest first (LRU order), ties in page order.

    Ties go by (object, first page), never by run id: ids are an artefact of slot allocation.
    """
    R = machine.runs
    obj, start, age = R.obj, R.start, R.age
    return sorted(R.resident_ids(memcg).tolist(), key=lambda r: (age[r], obj[r], start[r]))


def swapped_runs(machine: MachineState, memcg: int) -> list[int]:
    """Swapped runs whose swap record names ``memcg``, in page order (object, first page)."""
    return machine.runs.page_order(machine.runs.swapped_ids(memcg).tolist())


def recharge_run(machine: MachineState, r: int, to: int, *, mayfail: bool = True, force: bool = False) -> bool:
    """Move resident run ``r``'s charge to memcg ``to`` (mem_cgroup_move_account).

    The new memcg is charged first (try_charge; ``force`` skips limits as
    __GFP_NOFAIL would); on refusal nothing moves. Returns True when moved.
    """
    R = machine.runs
    if R.state[r] != St.RESIDENT or R.memcg[r] == to:
        return False
    n = R.npages[r]
    if force:
        machine.mem.charge(to, n)
        machine.reserved += n
    elif not try_charge_memcg(machine, to, n, mayfail, -1):
        machine.counters["recharge_failed"] += n
        return False
    left = R.npages[r] if R.state[r] == St.RESIDENT else 0  # reclaim in the charge may take pages
    if left < n:
        cancel_charge(machine, {to: n - left})
    if left == 0:
        machine.counters["recharge_failed"] += n
        return False
    mem_cgroup_charge_statistics(machine, r, -1)
    R.set_owner(r, St.RESIDENT, to)
    mem_cgroup_charge_statistics(machine, r, +1, reserved=True)
    machine.counters["recharged_pages"] += left
    return True


def reparent_run(machine: MachineState, r: int, to: int = -1) -> int:
    """Move resident or swapped run ``r`` up to ancestor ``to`` (default: the parent), no limit check.

    Every ancestor's hierarchical usage (or swap usage) already includes the
    pages, so only own counters move and the usage of the memcgs left behind
    drops (objcg reparenting; for a swap record, rewriting swap_cgroup to the
    ancestor's ID). A swap record must name an online ancestor (it needs an ID).
    Returns the ancestor.
    """
    R, mem = machine.runs, machine.mem
    m, n, st = R.memcg[r], R.npages[r], R.state[r]
    a = mem.parent[m] if to < 0 else to
    mem_cgroup_charge_statistics(machine, r, -1, False, False)  # not hier (positional: a C call)
    R.set_owner(r, st, a)
    mem_cgroup_charge_statistics(machine, r, +1, False, False)
    usage = mem.usage if st == St.RESIDENT else mem.swap_usage
    x = m
    while x != a:
        usage[x] -= n
        x = mem.parent[x]
    machine.counters["reparented_pages" if st == St.RESIDENT else "swap_records_reparented"] += n
    return a


def mapper_memcgs(machine: MachineState, r: int) -> list[int]:
    """Online memcgs of the live tasks mapping run ``r``, in mapping order, without repeats.

    An anon run is mapped by the task that owns its region (a task that moved
    away from the removed memcg keeps its old pages mapped).
    """
    R = machine.runs
    o = R.obj[r]
    if R.kind[r] == Kind.ANON:
        t = machine.o_owner[o]
        return [machine.t_cg[t]] if t >= 0 and machine.t_alive[t] else []
    lo, hi = R.start[r], R.start[r] + R.npages[r]
    out: list[int] = []
    for t, a, b in machine.o_maps[o]:
        m = machine.t_cg[t]
        if a < hi and lo < b and machine.t_alive[t] and machine.mem.state[m] == State.ONLINE and m not in out:
            out.append(m)
    return out


def is_mapped(machine: MachineState, r: int) -> bool:
    """True when some live task maps run ``r`` (anon: its owner is alive)."""
    R = machine.runs
    if R.kind[r] == Kind.ANON:
        t = machine.o_owner[R.obj[r]]
        return t >= 0 and bool(machine.t_alive[t])
    return R.mapc[r] > 0


def policy_evict(machine: MachineState, r: int) -> int:
    """Evict resident page-cache run ``r`` for a policy (a shadow stays: a later access refaults)."""
    n = machine.runs.npages[r]
    remove_mapping(machine, r)
    machine.counters["policy_evicted_pages"] += n
    return n


def policy_swap_out(machine: MachineState, r: int) -> int:
    """Swap out as much of swap-backed run ``r`` as free swap allows; returns pages written.

    The record names the nearest online ancestor (``mem_cgroup_id_get_online``),
    so for a removed memcg this moves the swap charge to its parent.
    """
    R = machine.runs
    room = machine.swap_total - machine.swap_used
    if room <= 0:
        return 0
    if R.npages[r] > room:
        R.split(r, R.start[r] + room)
    n = R.npages[r]
    add_to_swap(machine, r)
    machine.counters["policy_evicted_pages"] += n
    return n


def park_run(machine: MachineState, r: int) -> int:
    """Deferred recharge, step one: move resident run ``r`` to the parent and mark it PARKED."""
    R = machine.runs
    R.retag(r, R.origin[r], R.rflags[r] | PARKED)
    return reparent_run(machine, r)


def unpark_range(machine: MachineState, o: int, lo: int, hi: int, memcg: int) -> int:
    """Deferred recharge, step two: recharge PARKED resident runs in [lo, hi) of ``o`` to ``memcg``.

    Like the RFC's access hook it never OOMs: a charge over the accessor's
    limit fails and the run stays parked. A recharged run counts as
    instantiated by the accessor (``origin``), like a refault. Returns pages examined.
    """
    R = machine.runs
    if o >= len(R.obj_runs) or not R.obj_runs[o]:
        return 0
    seen = 0
    for r, s, e in R.segments(o, lo, hi):
        if r < 0 or not R.rflags[r] & PARKED:
            continue
        seen += e - s
        if R.state[r] == St.EVICTED:
            R.retag(r, R.origin[r], R.rflags[r] & ~PARKED)  # a refault charges the accessor anyway
            continue
        if R.state[r] != St.RESIDENT:
            continue  # swapped: swap-in charges the (online) record; recharged at the next access
        if R.memcg[r] == memcg or recharge_run(machine, r, memcg, mayfail=True):
            R.retag(r, memcg, R.rflags[r] & ~PARKED)  # charged on access, as a refault would be: the accessor owns it
    R.coalesce(o, lo, hi)
    return seen
