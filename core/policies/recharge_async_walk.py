"""``recharge_async_walk``: the talk's proposed workflow — an asynchronous LRU walk after offline.

In: memcgs going offline (queued), the machine's clock (ticks), file accesses
(the deferred half). Out: a worker that, every ``tick_us``, walks at most
``pages_per_tick`` pages of the queued zombies' LRUs, oldest first, and per run:
- unmapped page cache → evict (the next access refaults and charges the accessor);
- unmapped swap-backed (shmem) → deferred: parked on the parent, recharged to
  the next accessor (``recharge_deferred``'s access hook);
- mapped (file, shmem, or anon of a task that moved away) → recharged to a
  mapper (``mapped="direct"``, with ``on_limit`` and retries as in
  ``recharge_mapper``), or parked (``mapped="deferred"``);
- pinned / mlocked → skipped (unevictable).
Swap records are left alone (compose with ``swap_walk``, the talk's answer to
"What about already swapped memory?").

Source: talk "Reducing Zombie Memcgs" (LSF/MM/BPF 2023), "Proposed Workflow →
async LRU walk for offlined memcg"; Yosry Ahmed's pre-session algorithm
(<CAJD7tkb56gR0X5v3VHfmk3az3bOz=wF2jhEi+7Eek0J8XXBeWQ@mail.gmail.com>) and RFC
(<20230720070825.992023-1-yosryahmed@google.com>).

The walk takes simulated time: a zombie stays until the worker reaches it,
and ``policy_walk_steps`` counts the runs it visited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.pages import Kind, St
from core.policies._common import (
    MAPPER,
    ON_LIMIT,
    arm,
    backoff_us,
    choice,
    pick_mapper,
    positive,
    recharge,
    still_dying,
)
from core.policies.recharge_deferred import DeferredAccess
from core.policies.recharge_mapper import MAX_RECLAIM_RETRIES
from core.policy import Knobs, register
from core.recharge import is_mapped, policy_evict, resident_runs
from core.workqueue import queue_delayed_work

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class RechargeAsyncWalkKnobs(Knobs):
    """``delay_us``: offline to the first walk; ``tick_us``/``pages_per_tick``: the worker's period
    and page budget; ``mapped``: direct (recharge to a mapper) or deferred (park);
    ``on_limit``/``mapper``/``retry_*``/``max_retries``: as ``recharge_mapper``'s."""

    policy = "recharge_async_walk"
    delay_us: int = 1000
    tick_us: int = 100_000
    pages_per_tick: int = 32768
    mapped: str = "direct"
    on_limit: str = "retry"
    mapper: str = "first"
    retry_base_us: int = 1000
    retry_max_us: int = 32_000_000
    max_retries: int = MAX_RECLAIM_RETRIES

    def check(self) -> None:
        positive(self.policy, delay_us=self.delay_us, tick_us=self.tick_us, pages_per_tick=self.pages_per_tick,
                 retry_base_us=self.retry_base_us, retry_max_us=self.retry_max_us)
        choice(self.policy, "mapped", self.mapped, ("direct", "deferred"))
        choice(self.policy, "on_limit", self.on_limit, ON_LIMIT)
        choice(self.policy, "mapper", self.mapper, MAPPER)


@register
class RechargeAsyncWalk(DeferredAccess):
    """Walk offlined memcgs' LRUs in the background: evict, park or recharge each run."""

    name = "recharge_async_walk"
    source = ("talk 'Reducing Zombie Memcgs' (LSF/MM/BPF 2023) proposed workflow; Yosry Ahmed "
              "<CAJD7tkb56gR0X5v3VHfmk3az3bOz=wF2jhEi+7Eek0J8XXBeWQ@mail.gmail.com>, "
              "<20230720070825.992023-1-yosryahmed@google.com>")

    Knobs = RechargeAsyncWalkKnobs
    knobs: RechargeAsyncWalkKnobs

    def __init__(self, knobs: RechargeAsyncWalkKnobs | None = None) -> None:
        super().__init__(knobs)
        self._queue: list[tuple[int, int, int]] = []  # (memcg slot, offline time, attempt)
        self._armed = False

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        self._queue.append((memcg, machine.mem.offline_us[memcg], 0))
        self._arm(machine, machine.now_us + self.knobs.delay_us)

    def _arm(self, machine: MachineState, when: int) -> None:
        arm(self, machine, when, self.async_walk_tick)

    def async_walk_tick(self, machine: MachineState) -> None:
        """One worker pass: walk queued zombies until the page budget is spent."""
        self._armed = False
        budget = self.knobs.pages_per_tick
        while self._queue and budget > 0:
            m, off, attempt = self._queue[0]
            if not still_dying(machine, m, off):
                self._queue.pop(0)
                continue
            budget, done, failed = self._walk(machine, m, budget)
            if done:
                self._queue.pop(0)
                self._maybe_retry(machine, m, off, attempt, failed)
        if self._queue:
            self._arm(machine, machine.now_us + self.knobs.tick_us)

    def async_walk_retry(self, machine: MachineState, memcg: int, offline_us: int, attempt: int) -> None:
        """A backoff expired: queue the zombie for another walk."""
        if still_dying(machine, memcg, offline_us):
            self._queue.append((memcg, offline_us, attempt))
            self._arm(machine, machine.now_us)

    def _maybe_retry(self, machine: MachineState, m: int, off: int, attempt: int, failed: bool) -> None:
        if failed and self.knobs.on_limit == "retry" and attempt < self.knobs.max_retries:
            machine.counters["recharge_retries"] += 1
            when = machine.now_us + backoff_us(attempt, self.knobs.retry_base_us, self.knobs.retry_max_us)
            queue_delayed_work(machine, when, self.async_walk_retry, m, off, attempt + 1)

    def _walk(self, machine: MachineState, m: int, budget: int) -> tuple[int, bool, bool]:
        """Handle runs of ``m`` oldest first: (budget left, walk of ``m`` complete, a recharge refused).

        Reclaim inside a recharge may split runs of ``m``; the walk goes on until
        it finds no run it has not handled yet.
        """
        R = machine.runs
        # handled runs by (object, first page), not by run id: a slot freed during the walk
        # (an OOM kill) may come back as a new run's id, and ids must not reach results
        seen: set[tuple[int, int]] = set()
        failed = False
        while True:
            todo = [r for r in resident_runs(machine, m) if (R.obj[r], R.start[r]) not in seen]
            if not todo:
                return budget, True, failed
            for r in todo:
                if budget <= 0:
                    return budget, False, failed
                seen.add((R.obj[r], R.start[r]))
                if R.state[r] != St.RESIDENT or R.memcg[r] != m:
                    continue
                machine.counters["policy_walk_steps"] += 1
                if R.pinc[r]:
                    continue  # unevictable: skipped, and it costs no budget (or it would starve the queue)
                budget -= R.npages[r]
                failed |= not self._handle(machine, r)

    def _handle(self, machine: MachineState, r: int) -> bool:
        """Evict, park or recharge one unpinned run (module docstring); False if a recharge was refused."""
        R = machine.runs
        if not is_mapped(machine, r):
            if R.kind[r] == Kind.FILE:
                policy_evict(machine, r)
            else:
                self.park(machine, r)
            return True
        to = pick_mapper(machine, r, self.knobs.mapper) if self.knobs.mapped == "direct" else -1
        if to < 0:
            self.park(machine, r)
            return True
        return recharge(machine, r, to, self.knobs.on_limit)
