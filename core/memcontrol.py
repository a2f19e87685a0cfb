"""Memcg charging and limits (mm/memcontrol.c).

In: pages to charge to a memcg for a task, limit writes, memory.reclaim writes, rmdir.
Out: reservations on the memcg hierarchy, limit reclaim, OOM kills, the offline step.

Kernel behaviour modelled (KERNEL-MODEL.md section 6):
- ``try_charge_memcg``: on a memory.max breach reclaim in ``mem_over_limit``'s
  subtree and retry (MAX_RECLAIM_RETRIES = 16); then, unless the charge may
  fail, OOM-kill inside that subtree and retry; no victim -> ENOMEM. A model
  shortcut: a reclaim pass that frees nothing is not repeated 16 times (nothing
  in the model could change between the retries), it goes straight to the OOM step.
  Limit reclaim goes in calls of SWAP_CLUSTER_MAX pages (32) per faulting page.
- memory.high: after the charge, reclaim the excess of every ancestor over its
  high (``mem_cgroup_handle_over_high``; calls of a charge batch, 64 pages); never OOM.
- machine-wide memory: see ``core.page_alloc``.
- ``mem_cgroup_css_offline``: the ID is put, kmem objcgs reparented, the memcg's cgwbs
  killed, the policy's offline hook run, and the memcg queued for release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put, css_release_work
from core.fs_writeback import wb_memcg_offline
from core.kmem import memcg_reparent_objcgs
from core.memcg import State, check_slot
from core.oom_kill import out_of_memory
from core.page_alloc import alloc_pages_slowpath
from core.page_counter import low_wmark_pages, nr_free_pages
from core.vmscan import SWAP_CLUSTER_MAX, try_to_free_mem_cgroup_pages

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

MAX_RECLAIM_RETRIES = 16
MEMCG_CHARGE_BATCH = 64  # pages a charge reserves at once (mm/memcontrol.c)
_ONLINE = int(State.ONLINE)


def swapin_charge_target(machine: MachineState, record: cython.Py_ssize_t,
                         memcg: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The memcg a swap-in by a task of ``memcg`` is charged to, the swap record naming ``record``
    (mem_cgroup_swapin_charge_folio: the recorded memcg if it is still online, else the task's)."""
    return record if machine.mem.state[record] == _ONLINE else memcg


def mem_cgroup_css_offline(machine: MachineState, m: cython.Py_ssize_t) -> None:
    """rmdir -> offline: drop the ID, reparent kmem objcgs, run the policy (mem_cgroup_css_offline)."""
    machine.mem.offline(m, machine.now_us)
    memcg_reparent_objcgs(machine, m)
    wb_memcg_offline(machine, m)
    machine.policy.css_offline(machine, m)
    css_put(machine, m)
    css_release_work(machine)


def memory_reclaim(machine: MachineState, m: int, target: int) -> int:
    """Write to memory.reclaim (memory_reclaim(), v5.19+): proactive, full walk, never OOM.

    v6.1 asks for the whole request in one call (the kernel check saw 6.1 take 6,915 pages for
    4,096 asked, as one call's priority rounds do). From v6.9 (commit 287d5fedb377; the version
    is believed, not verified) each call asks for a quarter of what is left; in between, kernels
    asked SWAP_CLUSTER_MAX a call, which is not modelled. Returns pages reclaimed; short of the
    target it counts an EAGAIN.
    """
    got = try_to_free_mem_cgroup_pages(machine, m, target, may_swap=True, full_walk=True,
                                       quarter=machine.kernel.at_least(6, 9))
    if got < target:
        machine.counters["reclaim_eagain"] += 1
    return got


def try_charge_memcg(machine: MachineState, m: cython.Py_ssize_t, n: cython.longlong, mayfail: cython.bint,
                     t: cython.Py_ssize_t) -> cython.bint:
    """Reserve ``n`` pages on ``m``'s hierarchy (try_charge_memcg); False if refused or ``t`` died."""
    if n <= 0:
        return True
    free: cython.longlong = nr_free_pages(machine)
    # alloc_pages_slowpath only when it has work: a call per charge costs more than this test
    if free - n < low_wmark_pages(machine) or free < n:
        if not alloc_pages_slowpath(machine, n, t, mayfail):
            return False
    mem = machine.mem
    x: cython.Py_ssize_t
    if cython.compiled:  # a C loop over the columns' buffers (core/memcg.pxd), ``n`` kept a C integer
        x = over_limit_c(machine.mem, m, n)  # type: ignore[name-defined]  # noqa: F821  (memcg.pxd)
        if x == -2:  # a slot past the table or a sum past 64 bits: the method raises or decides
            x = mem.over_limit(m, n)
    else:
        usage, mx, parent = mem.usage, mem.max, mem.parent
        x = m  # mem.over_limit(m, n) inlined: the usual charge fits every ancestor's max
        while x >= 0 and usage[x] + n <= mx[x]:
            x = parent[x]
    if x < 0:
        mem.charge(m, n)
        machine.reserved += n
        return True
    retries = MAX_RECLAIM_RETRIES
    while True:
        over = mem.over_limit(m, n)
        if over < 0:
            break
        machine.counters["max_events"] += 1
        want = max(mem.usage[over] + n - mem.max[over], SWAP_CLUSTER_MAX)
        got = try_to_free_mem_cgroup_pages(machine, over, want, full_walk=not machine.kernel.at_least(6, 12),
                             batch=SWAP_CLUSTER_MAX)  # per faulting page: 32 a call
        retries = retries - 1 if got else 0
        if retries > 0 or mem.over_limit(m, n) < 0:
            continue
        if mayfail or not out_of_memory(machine, over, t):
            machine.counters["charge_failed"] += 1
            return False
        if t >= 0 and not machine.t_alive[t]:
            return False
        retries = MAX_RECLAIM_RETRIES
    mem.charge(m, n)
    machine.reserved += n
    return True


def mem_cgroup_handle_over_high(machine: MachineState, m: cython.Py_ssize_t) -> None:
    """mem_cgroup_handle_over_high (on return to user space, after the fault completed):
    reclaim each ancestor's excess over memory.high; never OOM."""
    if not over_high_one(machine, m):  # the usual case, by a C walk: no list made
        return
    for h in machine.mem.over_high(m):
        excess = machine.mem.usage[h] - machine.mem.high[h]
        if excess > 0:
            machine.counters["high_events"] += 1
            try_to_free_mem_cgroup_pages(machine, h, excess, full_walk=not machine.kernel.at_least(6, 12),
                           batch=MEMCG_CHARGE_BATCH)  # reclaim_high: per charge batch over high


def memory_max_write(machine: MachineState, m: int, t: int = -1, charging: bool = False) -> None:
    """Reclaim ``m`` down to its memory.max, OOM-killing inside it while reclaim cannot.

    memory_max_write (the default): one reclaim call for the whole excess, with a full
    walk. ``charging``: a charge by task ``t`` that went past the limit
    (``_fault_streaming``): try_charge_memcg's calls of SWAP_CLUSTER_MAX pages, walking
    partially from v6.12, each round a memory.max event.
    """
    mem = machine.mem
    full_walk = not charging or not machine.kernel.at_least(6, 12)
    batch = SWAP_CLUSTER_MAX if charging else 0
    while mem.usage[m] > mem.max[m]:
        if charging:
            machine.counters["max_events"] += 1
        got = try_to_free_mem_cgroup_pages(machine, m, mem.usage[m] - mem.max[m], full_walk=full_walk, batch=batch)
        if got == 0 and not out_of_memory(machine, m, t):
            break


def memory_high_write(machine: MachineState, m: int) -> None:
    """memory_high_write: one reclaim of the excess over the new high."""
    excess = machine.mem.usage[m] - machine.mem.high[m]
    if excess > 0:
        try_to_free_mem_cgroup_pages(machine, m, excess, full_walk=True)


def reclaim_over_high(machine: MachineState, paid: dict):
    """After a fault that charged ``paid`` (pages per memcg): memory.high reclaim for each
    of them whose hierarchy is over its high (``mem_cgroup_handle_over_high``), in memcg order."""
    if over_high_any(machine, paid):
        for m in (sorted(paid) if len(paid) > 1 else paid):
            mem_cgroup_handle_over_high(machine, m)


def over_high_any(machine: MachineState, have: dict) -> cython.bint:
    """Is some ancestor (or machine) of a memcg in ``have`` over its memory.high?"""
    for x in have:
        if over_high_one(machine, x):
            return True
    return False


def over_high_one(machine: MachineState, m: cython.Py_ssize_t) -> cython.bint:
    """Is memcg ``m`` or one of its ancestors over its memory.high?"""
    mem = machine.mem
    usage: cython.p_longlong
    high: cython.p_longlong
    parent: cython.p_int
    if cython.compiled:  # through the columns' buffers
        usage, high, parent = mem.usage.data.as_longlongs, mem.high.data.as_longlongs, mem.parent.data.as_ints
        check_slot(mem, m)
    else:
        usage, high, parent = mem.usage, mem.high, mem.parent
    x: cython.Py_ssize_t = m
    while x >= 0:
        if usage[x] > high[x]:
            return True
        x = parent[x]
    return False
