"""Primitives that zombie policies use to move charges, walk LRUs and swap records.

In: run ids and memcg slots from a policy hook. Out: charges moved with every
counter kept exact (a mixin of ``core.machine.Machine``), and the policy
counters of ``core.metrics.COUNTERS`` bumped.

Kernel counterparts: ``mem_cgroup_move_account`` (recharge: uncharge the old
memcg, charge the new one), objcg reparenting (the parent's hierarchical
usage already holds the child's pages, so only the child's own counters move),
``lruvec_for_each_list`` (walk a memcg's LRU), ``folio_referenced``/rmap walk
(find a mapper).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State
from core.pages import St

if TYPE_CHECKING:
    from core.machine import Machine


class PolicyOpsMixin:
    """Charge-moving and walking primitives for policies (see module docstring)."""

    def resident_runs(self: "Machine", memcg: int) -> list[int]:
        """Resident runs charged to ``memcg``, oldest first (LRU order), ties by run id."""
        R = self.runs
        return sorted(self.runs.resident_of.get(memcg, ()), key=lambda r: (R.age[r], r))

    def swapped_runs(self: "Machine", memcg: int) -> list[int]:
        """Swapped runs whose swap record names ``memcg``, in run-id order."""
        return sorted(self.runs.swapped_of.get(memcg, ()))

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

    def reparent_run(self: "Machine", r: int) -> int:
        """Move resident or swapped run ``r`` to its memcg's parent, no limit check; returns the parent.

        The parent's hierarchical usage (or swap usage) already includes the child's
        pages, so only own counters move and the child's usage drops (objcg
        reparenting; for a swap record, rewriting swap_cgroup to the parent's ID).
        """
        R, mem = self.runs, self.mem
        m, n, st = R.memcg[r], R.npages[r], R.state[r]
        p = mem.parent[m]
        self._acct(r, -1, hier=False)
        R.set_owner(r, st, p)
        self._acct(r, +1, hier=False)
        if st == St.RESIDENT:
            mem.usage[m] -= n
            self.counters["reparented_pages"] += n
        else:
            mem.swap_usage[m] -= n
            self.counters["swap_records_reparented"] += n
        return p

    def first_mapper_memcg(self: "Machine", r: int) -> int:
        """Memcg of the first live task (in mapping order) whose mapping covers run ``r``; -1 if none.

        Yosry Ahmed's RFC recharges to ``get_mem_cgroup_from_mm()`` of the first VMA found by the rmap walk.
        """
        R = self.runs
        lo, hi = R.start[r], R.start[r] + R.npages[r]
        for t, a, b in self.o_maps[R.obj[r]]:
            if a < hi and lo < b and self.t_alive[t] and self.mem.state[self.t_cg[t]] == State.ONLINE:
                return self.t_cg[t]
        return -1
