"""The OOM killer (mm/oom_kill.c).

In: an OOM domain (a memcg over memory.max whose reclaim cannot make room, or the root
for a machine-wide shortage) and the task whose charge failed. Out: the victim killed
(``core.task.do_exit``), ``oom_kill`` counted on its memcg and the kill counters.

Victim (``oom_badness``): the task with the largest resident anon + swapped anon + kmem
pages (page tables, stacks) among the tasks of the OOM domain; ties go to the task that
started first. memory.oom.group is not modelled. From v5.18 the OOM reaper holds the
victim's task for OOM_REAPER_DELAY (2 s, ``queue_oom_reaper``), and so its css_set and
memcg: a memcg removed meanwhile stays dying (kernel check D7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put, css_release_work
from core.memcg import ROOT
from core.task import do_exit, live_tasks
from core.workqueue import queue_delayed_work

if TYPE_CHECKING:
    from core.state import MachineState

OOM_REAPER_DELAY_US = 2_000_000  # mm/oom_kill.c OOM_REAPER_DELAY = 2*HZ (v5.18+)


def out_of_memory(machine: MachineState, domain: int, t: int) -> bool:
    """Kill the worst task inside ``domain``'s subtree; False when there is none."""
    mem = machine.mem
    best, key = -1, (0, 0)
    seq = machine.t_seq
    for v in live_tasks(machine):
        if domain != ROOT and not mem.is_ancestor(domain, machine.t_cg[v]):
            continue
        # the largest wins; among equals the task started first (slots are reused, so not by slot)
        k = (-(machine.t_anon[v] + machine.t_swap[v] + machine.t_kpages[v]), seq[v])
        if best < 0 or k < key:
            best, key = v, k
    if best < 0:
        return False
    machine.counters["global_oom_kills" if domain == ROOT else "oom_kills"] += 1
    victim = machine.t_cg[best]
    mem.oom_kill[victim] += 1
    machine.t_killed.add(best)
    do_exit(machine, best)
    if machine.kernel.at_least(5, 18):
        # queue_oom_reaper: get_task_struct on the victim, put OOM_REAPER_DELAY (2 s) later; the
        # task's css_set, and so its memcg, lives that long (a memcg removed meanwhile stays dying)
        mem.noom[victim] += 1
        queue_delayed_work(machine, machine.now_us + OOM_REAPER_DELAY_US, oom_reap_done, victim)
    return True


def oom_reap_done(machine: MachineState, m: int) -> None:
    """The OOM reaper drops its hold on a victim of memcg ``m`` (queued by ``out_of_memory``)."""
    machine.mem.noom[m] -= 1
    css_put(machine, m)
    css_release_work(machine)
