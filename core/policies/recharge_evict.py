"""``recharge_evict``: at offline, evict the unmapped page cache; swap-backed pages go to the parent.

In: a memcg going offline. Out: its unmapped, unpinned page-cache runs evicted
(shadows stay: the next access refaults and charges the accessor), its
unpinned swap-backed (anon, shmem) runs reparented — by swapping them out
(the record names the nearest online ancestor) or by moving the charge.

Source: the talk's recharging toolkit, "Evict pages: Simple, but aggressive.
[Un|Re]charges for file-backed pages. Reparents swap-backed pages. Doesn't help
for pinned pages"; Yosry Ahmed's pre-session toolkit mail
<CAJD7tkb56gR0X5v3VHfmk3az3bOz=wF2jhEi+7Eek0J8XXBeWQ@mail.gmail.com>: "Swapping
out a page charged to an offline memcg uncharges the page and charges the swap
to its parent".

Weaknesses the model shows: pinned pages (and, by default, mapped page cache)
keep the zombie; evicting pages other jobs still read costs refaults (Roman
Gushchin: eviction hurts shared hot shlib pages); swap-backed pages become the
parent's (misattributed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.pages import Kind, St
from core.policies._common import choice
from core.policy import Knobs, Policy, register
from core.recharge import policy_evict, policy_swap_out, reparent_run, resident_runs

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class RechargeEvictKnobs(Knobs):
    """``swap_backed``: reparent or swap out swap-backed pages; ``evict_mapped``: evict mapped page cache too."""

    policy = "recharge_evict"
    swap_backed: str = "reparent"
    evict_mapped: bool = False

    def check(self) -> None:
        choice(self.policy, "swap_backed", self.swap_backed, ("reparent", "swap"))


@register
class RechargeEvict(Policy):
    """Evict the unmapped page cache of an offlined memcg; reparent its swap-backed pages."""

    name = "recharge_evict"
    source = ("talk toolkit 'Evict pages'; Yosry Ahmed, pre-session toolkit mail "
              "<CAJD7tkb56gR0X5v3VHfmk3az3bOz=wF2jhEi+7Eek0J8XXBeWQ@mail.gmail.com>")

    Knobs = RechargeEvictKnobs
    knobs: RechargeEvictKnobs

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        R = machine.runs
        runs = resident_runs(machine, memcg)
        machine.counters["policy_walk_steps"] += len(runs)
        for r in runs:
            if R.state[r] != St.RESIDENT or R.memcg[r] != memcg or R.pinc[r]:
                continue  # pinned: neither evictable nor swappable
            if R.kind[r] == Kind.FILE:
                if self.knobs.evict_mapped or R.mapc[r] == 0:
                    policy_evict(machine, r)
            elif self.knobs.swap_backed == "swap":
                policy_swap_out(machine, r)
        # what is left of the swap-backed pages (no swap room, or mode "reparent") moves to the parent
        for r in resident_runs(machine, memcg):
            if R.kind[r] != Kind.FILE and not R.pinc[r]:
                reparent_run(machine, r)
