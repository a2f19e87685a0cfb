"""The per-CPU cache of freed swap slots (mm/swap_slots.c), which keeps a swap entry's memcg
pinned a while longer.

In: swap slots freed by swap-in, exit, truncation. Out: the delay between a
slot's release and its uncharge: the swap charge (memory.swap.current), the
memcg ID reference and the slot itself are released only when the cache of the
freeing CPU is full when another slot arrives (``SWAP_SLOTS_CACHE_SIZE`` = 64
entries; so up to 64 stay parked after any burst of frees) or at swapoff.

Kernel behaviour (v6.1/v6.12: ``free_swap_slot`` parks the entry in
``cache->slots_ret``; ``swapcache_free_entries`` frees a full batch; the
uncharge happens in ``swap_entry_free`` -> ``mem_cgroup_uncharge_swap``). Found
by the real-kernel check (docs/kernel-validation.md D4): a zombie whose tmpfs
was deleted stayed until another cgroup freed enough swap. The cache is active
while swap has at least ``cpus`` x 5 x 64 slots (THRESHOLD_ACTIVATE_SWAP_SLOTS_CACHE).
The slot cache was removed by the swap-table rework around v6.15 (version not
verified here); ``swap_slot_cache="auto"`` models it up to v6.14. The freeing
CPU is drawn round-robin from the event count, deterministic for a trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.memcg import State

if TYPE_CHECKING:
    from core.state import MachineState

SWAP_SLOTS_CACHE_SIZE = 64
SWAPFILE_CLUSTER = 512  #: swap entries per cluster (include/linux/swap.h, HPAGE_PMD_NR on x86-64)
THRESHOLD_ACTIVATE = 5 * SWAP_SLOTS_CACHE_SIZE


def slots_cache_active(machine: MachineState) -> bool:
    return machine.slot_cache_enabled and machine.swap_total >= machine.cfg.cpus * THRESHOLD_ACTIVATE


def free_swap_slot(machine: MachineState, m: int, n: int) -> None:
    """``n`` slots recorded to ``m`` are freed: park them in a CPU's cache, or release them now."""
    if not slots_cache_active(machine):
        swap_entry_free(machine, m, n)
        return
    cpu = (machine.counters["events"] + machine.pending_events) % machine.cfg.cpus  # events applied so far
    while n > 0:
        fill = machine.slot_cache_fill.get(cpu, 0)
        if fill == SWAP_SLOTS_CACHE_SIZE:  # free_swap_slot flushes a full cache before adding
            flush_cpu_cache(machine, cpu)
            fill = 0
        take = min(n, SWAP_SLOTS_CACHE_SIZE - fill)
        machine.slot_cache.setdefault(cpu, []).append([m, take])
        machine.slot_cache_fill[cpu] = fill + take
        n -= take


def flush_cpu_cache(machine: MachineState, cpu: int) -> None:
    for m, k in machine.slot_cache.pop(cpu, []):
        swap_entry_free(machine, m, k)
    machine.slot_cache_fill.pop(cpu, None)


def drain_slots_caches(machine: MachineState) -> None:
    """Release every parked slot (swapoff drains the caches)."""
    for cpu in sorted(machine.slot_cache):
        flush_cpu_cache(machine, cpu)


def parked_slots(machine: MachineState) -> dict[int, int]:
    """Slots parked in the caches, per recorded memcg."""
    out: dict[int, int] = {}
    for entries in machine.slot_cache.values():
        for m, k in entries:
            out[m] = out.get(m, 0) + k
    return out


def reparent_parked_slots(machine: MachineState, m: int, to: int) -> int:
    """Rewrite the records of parked slots naming ``m`` to ancestor ``to``; returns slots moved.

    A freed-but-parked slot still has its swap_cgroup record, so a walk of the
    records (the ``swap_walk`` policy) reaches it like any other.
    """
    moved = 0
    for entries in machine.slot_cache.values():
        for e in entries:
            if e[0] == m:
                e[0] = to
                moved += e[1]
    if moved:
        mem = machine.mem
        mem.swap[m] -= moved
        mem.charge_swap(m, -moved)
        mem.swap[to] += moved
        mem.charge_swap(to, moved)
        machine.counters["swap_records_reparented"] += moved
        if mem.swap[m] == 0 and mem.state[m] != State.ONLINE:
            mem.put_id(m)
        css_put(machine, m)
    return moved


def swap_entry_free(machine: MachineState, m: int, n: int) -> None:
    """swap_entry_free -> mem_cgroup_uncharge_swap: uncharge and drop the ID refs."""
    mem = machine.mem
    mem.swap[m] -= n
    mem.charge_swap(m, -n)
    machine.swap_used -= n
    if mem.swap[m] == 0 and mem.state[m] != State.ONLINE:
        mem.put_id(m)  # the last swap entry drops the ID (mem_cgroup_id_put_many)
    css_put(machine, m)
