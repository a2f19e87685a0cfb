"""``manual_reclaim``: one memory.reclaim write right before rmdir (the talk's first "non-fix").

In: the memcg about to be removed. Out: its reclaimable pages evicted or
swapped out by ``Machine.memory_reclaim`` (mm/memcontrol.c memory_reclaim(),
v5.19+; full walk, never OOM).

Weaknesses the model reproduces (talk, "Non-fixes for The Problem"):
- shared pages still in use (mapped by a live task: referenced) and pinned or
  mlocked pages are not reclaimed, so they keep the zombie;
- anon/shmem pages reclaimed to swap while the memcg is online are recorded
  to it: the swap entries keep its ID and the zombie (KERNEL-MODEL.md §1 (a));
- it runs once, before rmdir; afterwards the file is gone (§0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.memcontrol import memory_reclaim
from core.policy import Knobs, Policy, register

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class ManualReclaimKnobs(Knobs):
    """``fraction``: share of memory.current written to memory.reclaim; ``attempts``: writes."""

    policy = "manual_reclaim"
    fraction: float = 1.0
    attempts: int = 1

    def check(self) -> None:
        if not 0 < self.fraction <= 1 or self.attempts < 1:
            raise ConfigError(f"policy {self.policy}: need 0 < fraction <= 1 and attempts >= 1")


@register
class ManualReclaim(Policy):
    """Write ``fraction`` × memory.current to memory.reclaim, ``attempts`` times, before rmdir."""

    name = "manual_reclaim"
    source = ("talk 'Reducing Zombie Memcgs' (LSF/MM/BPF 2023), non-fix 'Manual reclaim'; "
              "mm/memcontrol.c memory_reclaim() (v5.19+)")

    Knobs = ManualReclaimKnobs
    knobs: ManualReclaimKnobs

    def pre_rmdir(self, machine: MachineState, memcg: int) -> None:
        if not machine.kernel.has_memory_reclaim:
            machine.counters["reclaim_unsupported"] += 1
            return
        for _ in range(self.knobs.attempts):
            want = math.ceil(self.knobs.fraction * machine.mem.usage[memcg])
            if want <= 0:
                return
            got = memory_reclaim(machine, memcg, want)
            machine.counters["policy_evicted_pages"] += got
            if got == 0:
                return  # nothing changed: another write would find the same pages
