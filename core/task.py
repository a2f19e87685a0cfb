"""Tasks: their slots, and what exit(2) releases (kernel/fork.c, kernel/exit.c).

In: a task starting in a memcg, a task exiting (from the trace, or killed by the OOM
killer). Out: task slots (reused once a task's exit has been seen), and at exit its pins
and mappings dropped (``core.rmap``), its anon regions freed with their swap
(``core.truncate``), its kmem pages freed (``core.kmem``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.kmem import kmem_free
from core.memcg import add_i32
from core.rmap import unmap_object, unpin_user_pages
from core.truncate import free_object

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

# what an exited task keeps of its sets: one shared immutable empty set, so that a stray add to a
# dead task's set raises. Typed as the ``set[int]`` of the columns it stands in (``t_regions``,
# ``t_kmem``); typing those ``set | frozenset`` would make every add site narrow per event.
_EMPTY_SET: set[int] = frozenset()  # type: ignore[assignment]  # see above


def new_task_slot(machine: MachineState, name: str, m: int) -> int:
    """A slot for a task starting in memcg ``m`` (-1: its cgroup failed), reusing a freed one."""
    machine.tasks_started += 1
    seq = machine.tasks_started
    t: cython.Py_ssize_t = machine.free_tasks.pop() if machine.free_tasks else -1  # (a C index for the stores)
    if t >= 0:
        machine.t_name[t], machine.t_seq[t], machine.t_cg[t], machine.t_alive[t] = name, seq, m, m >= 0
        machine.t_anon[t], machine.t_swap[t], machine.t_kpages[t] = 0, 0, 0
        machine.t_regions[t], machine.t_maps[t], machine.t_pins[t], machine.t_kmem[t] = set(), [], [], set()
    else:
        t = len(machine.t_name)
        machine.t_name.append(name)
        machine.t_seq.append(seq)
        machine.t_cg.append(m)
        machine.t_alive.append(m >= 0)
        machine.t_anon.append(0)
        machine.t_swap.append(0)
        machine.t_kpages.append(0)
        machine.t_regions.append(set())
        machine.t_maps.append([])
        machine.t_pins.append([])
        machine.t_kmem.append(set())
    machine.task_by_name[name] = t
    return t


def do_exit(machine: MachineState, t: int) -> None:
    """exit(2): drop pins and mappings, free anon regions (and their swap), free kmem pages."""
    for pin in list(machine.t_pins[t]):
        unpin_user_pages(machine, t, pin)
    for o in {o for o, _, _ in machine.t_maps[t]}:
        unmap_object(machine, t, o)
    for o in list(machine.t_regions[t]):
        free_object(machine, o)
    for k in list(machine.t_kmem[t]):
        kmem_free(machine, k)
    machine.t_alive[t] = False
    m: cython.Py_ssize_t = machine.t_cg[t]
    add_i32(machine.mem.ntasks, m, -1)
    if machine.dropped_pins:
        machine.dropped_pins = {d for d in machine.dropped_pins if d[0] != t}
    if t not in machine.t_killed:  # a killed task's name (and slot) stays until the trace's own exit
        del machine.task_by_name[machine.t_name[t]]
        machine.free_tasks.append(t)
    # an exited task keeps only its scalar columns (state stays bounded by live tasks)
    machine.t_regions[t], machine.t_maps[t], machine.t_pins[t], machine.t_kmem[t] = _EMPTY_SET, [], [], _EMPTY_SET


def live_tasks(machine: MachineState) -> list[int]:
    return [v for v, alive in enumerate(machine.t_alive) if alive]
