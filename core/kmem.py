"""Kernel memory charged to a memcg: slab objects and kmem pages, and their reparenting
through the objcg at offline (mm/memcontrol.c ``memcg_reparent_objcgs``, mm/slab).

In: kmem objects allocated by the trace (``core.syscalls.op_kmem_alloc``) and freed by it or
at task exit; a memcg going offline. Out: ``MemcgTable.kmem`` (own kmem pages),
``kmem_pin`` (the part that holds a dying memcg: not reparented on this kernel) and the
hierarchical usage. Reparented via objcg at offline: slab since v5.9, kmem pages since v5.13
(KERNEL-MODEL.md section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.memcg import add_i32

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState
if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import i32_at, i64_at, store_int


def kmem_new(machine: MachineState, t: cython.Py_ssize_t, m: cython.Py_ssize_t, n: cython.longlong, slab: cython.bint,
             name: str) -> cython.Py_ssize_t:
    """A kmem object of ``n`` pages, already charged to ``m`` by task ``t``: its slot, set and accounted.

    Slab objects (``slab``) belong to no task; kmem pages (stacks, page tables) are freed at the
    task's exit with it. Returns the object's slot.
    """
    k: cython.Py_ssize_t = machine.free_kmem.pop() if machine.free_kmem else len(machine.k_memcg)
    if k == len(machine.k_memcg):  # a new slot: placeholders of each column's type, set below
        for ints in (machine.k_memcg, machine.k_pages, machine.k_task):
            ints.append(0)
        machine.k_slab.append(False)
        machine.k_name.append("")
    machine.k_memcg[k], machine.k_pages[k], machine.k_slab[k], machine.k_name[k] = m, n, slab, name
    machine.k_task[k] = -1 if slab else t
    machine.kmem_by_name[name] = k
    machine.kmem_of.setdefault(m, set()).add(k)
    if not slab:
        machine.t_kmem[t].add(k)
        machine.t_kpages[t] += n
    kmem_account(machine, k, +1, hier=False)
    return k


def kmem_free(machine: MachineState, k: cython.Py_ssize_t) -> None:
    kmem_account(machine, k, -1, hier=True)
    machine.kmem_of[machine.k_memcg[k]].discard(k)
    t = machine.k_task[k]
    if t >= 0:
        machine.t_kmem[t].discard(k)
        machine.t_kpages[t] -= machine.k_pages[k]
    del machine.kmem_by_name[machine.k_name[k]]
    machine.free_kmem.append(k)


def kmem_pins(machine: MachineState, k: cython.Py_ssize_t) -> cython.bint:
    # Reparented via objcg at offline: slab since v5.9, kmem pages since v5.13.
    return not (machine.slab_reparented if machine.k_slab[k] else machine.kmem_reparented)


def kmem_account(machine: MachineState, k: cython.Py_ssize_t, sign: cython.int, hier: cython.bint) -> None:
    m: cython.Py_ssize_t = machine.k_memcg[k]
    n: cython.longlong = machine.k_pages[k] * sign
    add_i32(machine.mem.kmem, m, n)  # (compiled: through the int32 column's buffer)
    if kmem_pins(machine, k):
        add_i32(machine.mem.kmem_pin, m, n)
    if hier:
        machine.mem.charge(m, n)
    machine.kmem_total += n
    if sign < 0:
        css_put(machine, m)


def memcg_reparent_objcgs(machine: MachineState, m: cython.Py_ssize_t) -> None:
    """memcg_offline_kmem -> memcg_reparent_objcgs: kmem charges follow the objcg to the parent."""
    mem = machine.mem
    p: cython.Py_ssize_t = i32_at(mem.parent, m)
    n: cython.longlong
    for k in sorted(machine.kmem_of.get(m, ())):
        if kmem_pins(machine, k):
            continue
        n = machine.k_pages[k]
        add_i32(mem.kmem, m, -n)
        store_int(mem.usage, m, i64_at(mem.usage, m) - n)  # the parent's hierarchical usage already contains it
        add_i32(mem.kmem, p, n)
        machine.k_memcg[k] = p
        machine.kmem_of[m].discard(k)
        machine.kmem_of.setdefault(p, set()).add(k)
