"""Helpers shared by the policies: knob checks, tick timing, walk bookkeeping, recharging to a mapper.

In: a machine, run ids, memcg slots, knob values. Out: validated knobs,
deterministic tick times, and recharges done under the ``on_limit`` rule of
the recharge policies, with the OOM kills they cause counted.

Memcg slots are reused after a memcg is freed, so queued work names a memcg by
(slot, offline time): ``still_dying`` tells whether that memcg is still the one meant.

Ticks: a policy queues its own bound method with ``core.workqueue.queue_delayed_work(machine,
t, self.<method>, *args)`` and the machine calls it as ``<method>(machine, *args)``, so
policies keep no reference to the machine. ``arm`` keeps at most one tick of a worker queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core.errors import ConfigError
from core.memcg import State
from core.recharge import mapper_memcgs, recharge_run
from core.workqueue import queue_delayed_work

if TYPE_CHECKING:
    from core.state import MachineState

ON_LIMIT = ("retry", "oom", "force")
MAPPER = ("first", "random")


def choice(policy: str, knob: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a ConfigError naming the knob."""
    if value not in allowed:
        raise ConfigError(f"policy {policy}: {knob}={value!r}; expected one of {', '.join(allowed)}")
    return str(value)


def positive(policy: str, **knobs: float) -> None:
    """ConfigError for any knob that is not > 0."""
    for k, v in knobs.items():
        if not v > 0:
            raise ConfigError(f"policy {policy}: {k}={v!r} must be > 0")


def next_grid(now_us: int, interval_us: int) -> int:
    """The first multiple of ``interval_us`` after ``now_us``: periodic work on a fixed grid.

    Arming a periodic worker only while it has work, on this grid, gives the same
    tick times as a worker that never sleeps.
    """
    return (now_us // interval_us + 1) * interval_us


def arm(policy: Any, machine: MachineState, when: int, method: Callable[..., None]) -> None:
    """Queue ``method`` (a bound method of ``policy``) at ``when`` unless one is already queued
    (``policy._armed``).

    The tick method clears ``_armed`` first thing, so the worker can re-arm itself.
    """
    if not policy._armed:
        policy._armed = True
        queue_delayed_work(machine, when, method)


def still_dying(machine: MachineState, m: int, offline_us: int) -> bool:
    """Is slot ``m`` still the dying memcg that went offline at ``offline_us``?"""
    mem = machine.mem
    return mem.state[m] == State.DYING and mem.offline_us[m] == offline_us


def backoff_us(attempt: int, base_us: int, max_us: int) -> int:
    """Exponential retry delay of Yosry Ahmed's RFC (patch 3): base·2^attempt, capped."""
    return min(base_us << min(attempt, 40), max_us)


def pick_mapper(machine: MachineState, r: int, how: str) -> int:
    """A mapper's memcg for run ``r`` (-1 if none): the first found by the rmap walk, or a random one."""
    mappers = mapper_memcgs(machine, r)
    if not mappers:
        return -1
    if how == "random":
        return mappers[machine.rng.randrange(len(mappers))]
    return mappers[0]


def recharge(machine: MachineState, r: int, to: int, on_limit: str) -> bool:
    """Recharge resident run ``r`` to ``to`` under the ``on_limit`` rule; True when moved.

    retry: try_charge with __GFP_RETRY_MAYFAIL (reclaim in the target, never OOM; the
    caller retries later); oom: a direct charge that may OOM-kill inside the target;
    force: charge over the limit (__GFP_NOFAIL). OOM kills are added to ``policy_oom_kills``.
    """
    if on_limit == "force":
        return recharge_run(machine, r, to, force=True)
    if on_limit == "retry":
        return recharge_run(machine, r, to, mayfail=True)
    c = machine.counters
    before = c["oom_kills"] + c["global_oom_kills"]
    ok = recharge_run(machine, r, to, mayfail=False)
    c["policy_oom_kills"] += c["oom_kills"] + c["global_oom_kills"] - before
    return ok
