"""``swap_walk``: periodically walk the swap records and reparent those naming a dying memcg.

In: memcgs going offline (they arm the worker) and the machine's clock. Out:
every ``interval_us`` while work remains, swap records of dying memcgs
rewritten to the nearest online ancestor (the ancestor's ID and swap charge
replace the zombie's), up to ``records_per_tick`` pages per pass (0 = all).

Source: the talk, "What about already swapped memory? Idea: periodically walk
swap_cgroups and reparent those charged to offline memcgs"; Yosry Ahmed's
pre-session mail asked the same (<CAJD7tkb56gR0X5v3VHfmk3az3bOz=wF2jhEi+7Eek0J8XXBeWQ@mail.gmail.com>).
Composable with any policy (``recharge_async_walk+swap_walk``).

Cost: the walk reads every swap_cgroup record, so ``policy_walk_steps`` grows
by every swapped run on the machine per pass. Side effect: a later swap-in of
such a page is charged to the ancestor now named by the record (it is online:
``mem_cgroup_swapin_charge_folio``), not to the accessor.

Zombies cannot gain swap records after offline (swap-out records the nearest
online ancestor), so the worker sleeps once no dying memcg has any; it wakes
on the interval grid (``next_grid``), as a never-sleeping worker would tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.cgroup import css_release_work
from core.errors import ConfigError
from core.policies._common import arm, next_grid, positive
from core.policy import Knobs, Policy, register
from core.recharge import reparent_run
from core.swap_slots import reparent_parked_slots

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class SwapWalkKnobs(Knobs):
    """``interval_us``: period of the walk; ``records_per_tick``: records per walk (0: unlimited)."""

    policy = "swap_walk"
    interval_us: int = 60_000_000
    records_per_tick: int = 0

    def check(self) -> None:
        positive(self.policy, interval_us=self.interval_us)
        if self.records_per_tick < 0:
            raise ConfigError(f"policy {self.policy}: records_per_tick must be >= 0 (0 = unlimited)")


@register
class SwapWalk(Policy):
    """Reparent the swap records of dying memcgs to their nearest online ancestor, periodically."""

    name = "swap_walk"
    source = ("talk 'Reducing Zombie Memcgs' (LSF/MM/BPF 2023): 'periodically walk swap_cgroups and reparent "
              "those charged to offline memcgs'")

    Knobs = SwapWalkKnobs
    knobs: SwapWalkKnobs

    def __init__(self, knobs: SwapWalkKnobs | None = None) -> None:
        super().__init__(knobs)
        self._armed = False

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        if machine.mem.swap[memcg]:
            self._arm(machine)

    def _arm(self, machine: MachineState) -> None:
        arm(self, machine, next_grid(machine.now_us, self.knobs.interval_us), self.swap_walk_tick)

    def swap_walk_tick(self, machine: MachineState) -> None:
        """One pass over the swap records."""
        self._armed = False
        R, mem = machine.runs, machine.mem
        ids = R.swapped_ids()
        machine.counters["policy_walk_steps"] += len(ids)
        runs_of = _dying_records(machine, ids)
        budget = self.knobs.records_per_tick or (1 << 62)
        for m in sorted(mem.dying):
            for r in runs_of.get(m, ()):
                if budget <= 0:
                    break
                if R.npages[r] > budget:
                    R.split(r, R.start[r] + budget)  # the rest stays for the next pass
                budget -= R.npages[r]
                reparent_run(machine, r, mem.nearest_online(m))
            if budget > 0:  # freed slots still parked in a CPU's slot cache keep their record too
                budget -= reparent_parked_slots(machine, m, mem.nearest_online(m))
        css_release_work(machine)
        if any(mem.swap[m] for m in mem.dying):
            self._arm(machine)


def _dying_records(machine: MachineState, ids: np.ndarray) -> dict[int, list[int]]:
    """The swapped runs ``ids`` whose record names a dying memcg: per memcg, in page order.

    One scan for the whole pass (``machine.swapped_runs`` per memcg would scan every run once
    per zombie). Reparenting a zombie's records moves them to an online memcg, so the lists
    of the zombies not handled yet stay right during the pass.
    """
    R = machine.runs
    memcg = R.view("memcg")[ids]
    keep = np.isin(memcg, np.fromiter(machine.mem.dying, dtype=np.int64))
    ids, memcg = ids[keep], memcg[keep]
    order = np.lexsort((R.view("start")[ids], R.view("obj")[ids], memcg))
    out: dict[int, list[int]] = {}
    for r, m in zip(ids[order].tolist(), memcg[order].tolist()):
        out.setdefault(m, []).append(r)
    return out
