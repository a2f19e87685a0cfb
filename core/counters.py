"""The names and meanings of a machine's cumulative event counters (``MachineState.counters``).

In: nothing. Out: ``COUNTERS``, name -> meaning, in the order a sample stores them. Its own
module so that ``core.state`` (which keeps the counters) and ``core.metrics`` (which samples
them) both import it without importing each other: compiled, ``core.metrics`` loads
``core.state`` before its own body runs, so ``import core.metrics`` on its own failed.
"""

from __future__ import annotations

#: Cumulative event counters of a machine (all start at 0 and only grow).
COUNTERS: dict[str, str] = {
    "events": "trace events applied",
    "memcgs_freed": "dying memcgs released so far",
    "mkdir_enospc": "mkdir refused because the memcg ID pool was full (ENOSPC)",
    "mkdir_failed": "mkdir skipped because its parent's mkdir had failed",
    "rmdir_ebusy": "rmdir refused (EBUSY): tasks or online children left",
    "tasks_failed": "tasks that could not start because their cgroup does not exist (failed mkdir)",
    "ops_ignored": "ops of tasks that were OOM-killed or never started",
    "reclaim_passes": "reclaim passes (global, limit, high, proactive, policy)",
    "memcgs_visited": "memcgs visited by reclaim walks, zombies included (reclaim cost)",
    "pgscan": "pages scanned by reclaim",
    "pgsteal": "pages reclaimed",
    "evictions": "page-cache pages evicted (shadow left)",
    "refaults": "evicted pages faulted back in (charged to the accessor)",
    "swapouts": "pages written to swap",
    "swapins": "pages read back from swap",
    "kswapd_wakeups": "times free memory fell below the low watermark",
    "max_events": "charges that hit a memory.max",
    "high_events": "charges that left a memcg over memory.high",
    "oom_kills": "tasks killed by memcg OOM",
    "global_oom_kills": "tasks killed by machine-wide OOM",
    "charge_failed": "charges refused (may-fail charges, or no OOM victim)",
    "reclaim_eagain": "memory.reclaim writes that reclaimed less than asked (EAGAIN)",
    "reclaim_unsupported": "memory.reclaim writes on a kernel without it (< 5.19)",
    "dropped_pages": "page-cache pages dropped by drop_caches",
    "recharged_pages": "pages a policy recharged to another memcg",
    "recharge_failed": "pages a policy failed to recharge",
    "reparented_pages": "pages a policy moved to an ancestor",
    "policy_evicted_pages": "pages a policy evicted or swapped out",
    "policy_oom_kills": "OOM kills caused by a policy's charges",
    "access_path_work": "extra operations a policy did on the access path",
    "swap_records_reparented": "swap records a policy moved to an ancestor",
    "reaper_reclaimed_pages": "pages reclaimed by a periodic zombie reaper",
    "policy_walk_steps": "runs visited by a policy's asynchronous walks",
    "recharge_retries": "recharge walks a policy re-queued after a refused charge (exponential backoff)",
}
