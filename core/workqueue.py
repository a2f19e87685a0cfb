"""Delayed work on the machine's own clock (kernel/workqueue.c ``queue_delayed_work``).

In: a simulated time, a callable and its arguments. Out: an entry on
``MachineState.queue``, a heap ordered by (time, sequence number); the event loop
(``core.machine.Machine.advance_to``) calls ``fn(machine, *args)`` when its time comes.
Entries hold the callable itself (a module function or a policy's bound method), never
a name looked up later; the sequence number makes the order total and deterministic.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from core.state import MachineState


def queue_delayed_work(machine: MachineState, t_us: int, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(machine, *args)`` at simulated ``t_us`` (after the work already queued for that time)."""
    machine.queue_seq += 1
    heapq.heappush(machine.queue, (int(t_us), machine.queue_seq, fn, args))
