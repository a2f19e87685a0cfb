"""Primitives that zombie policies use to move charges, walk LRUs and swap records.

In: run ids and memcg slots from a policy hook. Out: charges moved, pages
evicted or swapped, with every counter kept exact (a mixin of
``core.machine.Machine``), and the policy counters of ``core.metrics.COUNTERS``
bumped.

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
from core.pages import Kind, St

if TYPE_CHECKING:
    from core.machine import Machine

#: ``rflags`` bit: the run's charge is parked on an ancestor until its next accessor
#: takes it over (deferred recharge, Yosry Ahmed's RFC patches 4-5).
PARKED = 1


class PolicyOpsMixin:
    """Charge-moving and walking primitives for policies (see module docstring)."""

    def resident_runs(self: "Machine", memcg: int) -> list[int]:
        """Resident runs charged to ``memcg``, oldest first (LRU order), ties in page order.

        Ties go by (object, first page), never by run id: ids are an artefact of slot allocation.
        """
        R = self.runs
        obj, start, age = R.obj, R.start, R.age
        return sorted(R.resident_ids(memcg).tolist(), key=lambda r: (age[r], obj[r], start[r]))

    def swapped_runs(self: "Machine", memcg: int) -> list[int]:
        """Swapped runs whose swap record names ``memcg``, in page order (object, first page)."""
        return self.runs.page_order(self.runs.swapped_ids(memcg).tolist())

    def recharge_run(self: "Machine", r: int, to: int, *, mayfail: bool = True, force: bool = False) -> bool:
        """Move resident run ``r``'s charge to memcg ``to`` (mem_cgroup_move_account).

        The new memcg is charged first (try_charge; ``force`` skips limits as
        __GFP_NOFAIL would); on refusal nothing moves. Returns True when moved.
        """
        R = self.runs
        if R.state[r] != St.RESIDENT or R.memcg[r] == to:
            return False
        n = R.npages[r]
        if force:
            self.mem.charge(to, n)
            self.reserved += n
        elif not self.try_charge(to, n, mayfail, -1):
            self.counters["recharge_failed"] += n
            return False
        left = R.npages[r] if R.state[r] == St.RESIDENT else 0  # reclaim in the charge may take pages
        if left < n:
            self._unreserve({to: n - left})
        if left == 0:
            self.counters["recharge_failed"] += n
            return False
        self._acct(r, -1)
        R.set_owner(r, St.RESIDENT, to)
        self._acct(r, +1, reserved=True)
        self.counters["recharged_pages"] += left
        return True

    def reparent_run(self: "Machine", r: int, to: int = -1) -> int:
        """Move resident or swapped run ``r`` up to ancestor ``to`` (default: the parent), no limit check.

        Every ancestor's hierarchical usage (or swap usage) already includes the
        pages, so only own counters move and the usage of the memcgs left behind
        drops (objcg reparenting; for a swap record, rewriting swap_cgroup to the
        ancestor's ID). A swap record must name an online ancestor (it needs an ID).
        Returns the ancestor.
        """
        R, mem = self.runs, self.mem
        m, n, st = R.memcg[r], R.npages[r], R.state[r]
        a = mem.parent[m] if to < 0 else to
        self._acct(r, -1, hier=False)
        R.set_owner(r, st, a)
        self._acct(r, +1, hier=False)
        usage = mem.usage if st == St.RESIDENT else mem.swap_usage
        x = m
        while x != a:
            usage[x] -= n
            x = mem.parent[x]
        self.counters["reparented_pages" if st == St.RESIDENT else "swap_records_reparented"] += n
        return a

    def mapper_memcgs(self: "Machine", r: int) -> list[int]:
        """Online memcgs of the live tasks mapping run ``r``, in mapping order, without repeats.

        An anon run is mapped by the task that owns its region (a task that moved
        away from the removed memcg keeps its old pages mapped).
        """
        R = self.runs
        o = R.obj[r]
        if R.kind[r] == Kind.ANON:
            t = self.o_owner[o]
            return [self.t_cg[t]] if t >= 0 and self.t_alive[t] else []
        lo, hi = R.start[r], R.start[r] + R.npages[r]
        out: list[int] = []
        for t, a, b in self.o_maps[o]:
            m = self.t_cg[t]
            if a < hi and lo < b and self.t_alive[t] and self.mem.state[m] == State.ONLINE and m not in out:
                out.append(m)
        return out

    def is_mapped(self: "Machine", r: int) -> bool:
        """True when some live task maps run ``r`` (anon: its owner is alive)."""
        R = self.runs
        if R.kind[r] == Kind.ANON:
            t = self.o_owner[R.obj[r]]
            return t >= 0 and bool(self.t_alive[t])
        return R.mapc[r] > 0

    def policy_evict(self: "Machine", r: int) -> int:
        """Evict resident page-cache run ``r`` for a policy (a shadow stays: a later access refaults)."""
        n = self.runs.npages[r]
        self.evict_run(r)
        self.counters["policy_evicted_pages"] += n
        return n

    def policy_swap_out(self: "Machine", r: int) -> int:
        """Swap out as much of swap-backed run ``r`` as free swap allows; returns pages written.

        The record names the nearest online ancestor (``mem_cgroup_id_get_online``),
        so for a removed memcg this moves the swap charge to its parent.
        """
        R = self.runs
        room = self.swap_total - self.swap_used
        if room <= 0:
            return 0
        if R.npages[r] > room:
            R.split(r, R.start[r] + room)
        n = R.npages[r]
        self.swap_out_run(r)
        self.counters["policy_evicted_pages"] += n
        return n

    def park_run(self: "Machine", r: int) -> int:
        """Deferred recharge, step one: move resident run ``r`` to the parent and mark it PARKED."""
        self.runs.rflags[r] |= PARKED
        return self.reparent_run(r)

    def unpark_range(self: "Machine", o: int, lo: int, hi: int, memcg: int) -> int:
        """Deferred recharge, step two: recharge PARKED resident runs in [lo, hi) of ``o`` to ``memcg``.

        Like the RFC's access hook it never OOMs: a charge over the accessor's
        limit fails and the run stays parked. A recharged run counts as
        instantiated by the accessor (``origin``), like a refault. Returns pages examined.
        """
        R = self.runs
        if not R.obj_runs.get(o):
            return 0
        seen = 0
        for r, s, e in R.segments(o, lo, hi):
            if r < 0 or not R.rflags[r] & PARKED:
                continue
            seen += e - s
            if R.state[r] == St.EVICTED:
                R.rflags[r] &= ~PARKED  # a refault charges the accessor anyway
                continue
            if R.state[r] != St.RESIDENT:
                continue  # swapped: swap-in charges the (online) record; recharged at the next access
            if R.memcg[r] == memcg or self.recharge_run(r, memcg, mayfail=True):
                R.rflags[r] &= ~PARKED
                R.origin[r] = memcg  # charged on access, as a refault would be: the accessor owns it now
        R.coalesce(o, lo, hi)
        return seen
