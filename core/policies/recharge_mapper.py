"""``recharge_mapper``: an asynchronous worker recharges a removed memcg's mapped pages to a mapper.

In: a memcg going offline. Out: after ``delay_us``, each of its mapped,
unpinned resident runs recharged to the memcg of a task mapping it (for anon:
the task owning the region); unmapped pages are left where they are.

Source: Yosry Ahmed, "[RFC PATCH 0/8] memory recharging for offline memcgs"
(2023-07-20, <20230720070825.992023-1-yosryahmed@google.com>): at offline an
async worker walks the offline memcg's evictable LRUs, and for each mapped
folio recharges it to ``get_mem_cgroup_from_mm()`` of the first VMA found by
the rmap walk, with ``try_charge(GFP_KERNEL|__GFP_RETRY_MAYFAIL)`` — never
OOM; on failure it retries with an exponential delay, about 1 ms → 32 s, up to
MAX_RECLAIM_RETRIES (patch 3). Unevictable folios are skipped (the model skips
every pinned or mlocked run). The talk's toolkit: "Direct recharge to a
mapper … can be disruptive (nondeterministic charges, potential OOM kills)".

Knobs: ``on_limit`` — ``retry`` (the RFC), ``oom`` (a direct charge may
OOM-kill inside the target), ``force`` (charge over the limit); ``mapper`` —
``first`` (the RFC) or ``random``; the worker's ``delay_us`` and the backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.pages import St
from core.policies._common import MAPPER, ON_LIMIT, backoff_us, choice, pick_mapper, positive, recharge, still_dying
from core.policy import Knobs, Policy, register
from core.recharge import is_mapped, resident_runs
from core.workqueue import queue_delayed_work

if TYPE_CHECKING:
    from core.state import MachineState

MAX_RECLAIM_RETRIES = 16


def recharge_mapped(machine: MachineState, memcg: int, on_limit: str, mapper: str) -> tuple[int, bool]:
    """Recharge every mapped, unpinned resident run of ``memcg`` to a mapper.

    Returns (runs visited, whether some recharge was refused). Reclaim inside a
    target's charge may split runs of ``memcg``; the pass repeats until it
    finds nothing new to try.
    """
    R = machine.runs
    # tried runs by (object, first page), not by run id: ids are slot-allocation artefacts
    tried: set[tuple[int, int]] = set()
    steps, failed = 0, False
    for _ in range(8):
        todo = [r for r in resident_runs(machine, memcg) if (R.obj[r], R.start[r]) not in tried]
        if not todo:
            break
        for r in todo:
            tried.add((R.obj[r], R.start[r]))
            steps += 1
            if R.state[r] != St.RESIDENT or R.memcg[r] != memcg or R.pinc[r] or not is_mapped(machine, r):
                continue
            to = pick_mapper(machine, r, mapper)
            if to >= 0 and not recharge(machine, r, to, on_limit):
                failed = True
    return steps, failed


@dataclass
class RechargeMapperKnobs(Knobs):
    """``on_limit``: retry, oom or force at the target's limit; ``mapper``: first or random;
    ``delay_us``: offline to the first walk; ``retry_base_us``/``retry_max_us``/``max_retries``:
    the exponential backoff of a refused recharge."""

    policy = "recharge_mapper"
    on_limit: str = "retry"
    mapper: str = "first"
    delay_us: int = 1000
    retry_base_us: int = 1000
    retry_max_us: int = 32_000_000
    max_retries: int = MAX_RECLAIM_RETRIES

    def check(self) -> None:
        choice(self.policy, "on_limit", self.on_limit, ON_LIMIT)
        choice(self.policy, "mapper", self.mapper, MAPPER)
        positive(self.policy, delay_us=self.delay_us, retry_base_us=self.retry_base_us,
                 retry_max_us=self.retry_max_us)


@register
class RechargeMapper(Policy):
    """Asynchronously recharge an offlined memcg's mapped pages to a mapper's memcg."""

    name = "recharge_mapper"
    source = ("Yosry Ahmed, '[RFC PATCH 0/8] memory recharging for offline memcgs' "
              "<20230720070825.992023-1-yosryahmed@google.com>; talk toolkit 'Direct recharge to a mapper'")

    Knobs = RechargeMapperKnobs
    knobs: RechargeMapperKnobs

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        off = machine.mem.offline_us[memcg]
        queue_delayed_work(machine, machine.now_us + self.knobs.delay_us, self.mapper_walk, memcg, off, 0)

    def mapper_walk(self, machine: MachineState, memcg: int, offline_us: int, attempt: int) -> None:
        """The worker: one pass over the memcg's LRU; on a refused charge, retry after a backoff."""
        if not still_dying(machine, memcg, offline_us):
            return
        steps, failed = recharge_mapped(machine, memcg, self.knobs.on_limit, self.knobs.mapper)
        machine.counters["policy_walk_steps"] += steps
        if failed and self.knobs.on_limit == "retry" and attempt < self.knobs.max_retries:
            machine.counters["recharge_retries"] += 1
            when = machine.now_us + backoff_us(attempt, self.knobs.retry_base_us, self.knobs.retry_max_us)
            queue_delayed_work(machine, when, self.mapper_walk, memcg, offline_us, attempt + 1)
