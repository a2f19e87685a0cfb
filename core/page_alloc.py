"""Machine-wide memory: the watermarks, kswapd and the global OOM (mm/page_alloc.c).

In: an allocation of ``n`` pages by a task. Out: room made for it: kswapd wakes below the
low watermark and reclaims (from the root memcg's tree) up to the high one; an
allocation that still does not fit OOM-kills machine-wide, or fails when it may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import ROOT
from core.oom_kill import out_of_memory
from core.page_counter import low_wmark_pages, nr_free_pages
from core.vmscan import try_to_free_mem_cgroup_pages

if TYPE_CHECKING:
    from core.state import MachineState


def alloc_pages_slowpath(machine: MachineState, n: int, t: int, mayfail: bool) -> bool:
    """Make room for ``n`` pages machine-wide: kswapd to the high watermark, then global OOM."""
    if nr_free_pages(machine) - n < low_wmark_pages(machine):
        high = int(machine.mem_total * machine.watermark_high)
        machine.counters["kswapd_wakeups"] += 1
        try_to_free_mem_cgroup_pages(machine, ROOT, high - (nr_free_pages(machine) - n), full_walk=True)
    while nr_free_pages(machine) < n:
        if mayfail or not out_of_memory(machine, ROOT, t):
            machine.counters["charge_failed"] += 1
            return False
        if t >= 0 and not machine.t_alive[t]:
            return False
    return True
