"""``recharge_deferred``: park a removed memcg's pages on the parent; the next accessor takes them.

In: a memcg going offline; then every read / write / map of a file range.
Out: at offline each resident run moves to the parent with the PARKED flag
(``core.pages.PARKED``); an access to a parked range recharges it to the
accessor's memcg (never OOM: over the accessor's limit it stays parked). Swap
records stay with the zombie (compose with ``swap_walk``).

Source: the talk's toolkit, "Deferred recharge (Two-step recharge): Recharge to
the parent, then to the rightful owner on next access or mapping. Complicated,
additional work in data access path"; Yosry Ahmed's RFC patches 4-5
(<20230720070825.992023-1-yosryahmed@google.com>): hooks in
``folio_mark_accessed()`` / ``folio_mark_dirty()`` queue a recharge to current's memcg.

Access-path work (``access_path_work``) counts the pages that passed through
the hook: every accessed page pays the "is it parked?" test, whether or not
anything is parked. Weaknesses: that work; a job's usage jumps when it touches
pages a dead neighbour left (Roman Gushchin's review); pages nobody touches
again stay on the parent (misattributed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.policy import Knobs, Policy, register
from core.recharge import park_run, resident_runs, unpark_range

if TYPE_CHECKING:
    from core.state import MachineState


class DeferredAccess(Policy):
    """The access-path half of deferred recharge, shared with ``recharge_async_walk``."""

    wants_access = True

    def __init__(self, knobs: Knobs | None = None) -> None:
        super().__init__(knobs)
        self._parked_objs: set[int] = set()  # objects that may hold PARKED runs (a cheap filter)

    def park(self, machine: MachineState, r: int) -> None:
        """Step one: the run's charge goes to the parent until someone touches it."""
        self._parked_objs.add(machine.runs.obj[r])
        park_run(machine, r)

    def on_access(self, machine: MachineState, obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        if how == "unmap":
            return
        machine.counters["access_path_work"] += hi - lo
        if obj in self._parked_objs:
            unpark_range(machine, obj, lo, hi, memcg)

    def object_freed(self, machine: MachineState, obj: int) -> None:
        self._parked_objs.discard(obj)


@register
class RechargeDeferred(DeferredAccess):
    """Park every resident run of an offlined memcg on its parent; recharge on the next access."""

    name = "recharge_deferred"
    source = ("talk toolkit 'Deferred recharge (Two-step recharge)'; Yosry Ahmed's RFC patches 4-5 "
              "<20230720070825.992023-1-yosryahmed@google.com>")

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        for r in resident_runs(machine, memcg):
            self.park(machine, r)
