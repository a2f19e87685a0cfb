"""The per-CPU cache of freed swap slots, which keeps a swap entry's memcg pinned a while longer.

In: swap slots freed by swap-in, exit, truncation. Out: the delay between a
slot's release and its uncharge: the swap charge (memory.swap.current), the
memcg ID reference and the slot itself are released only when the cache of the
freeing CPU is full when another slot arrives (``SWAP_SLOTS_CACHE_SIZE`` = 64
entries; so up to 64 stay parked after any burst of frees) or at swapoff. A
mixin of ``core.machine.Machine``.

Kernel behaviour (mm/swap_slots.c, v6.1/v6.12: ``free_swap_slot`` parks the entry
in ``cache->slots_ret``; ``swapcache_free_entries`` frees a full batch; the
uncharge happens in ``swap_entry_free`` -> ``mem_cgroup_uncharge_swap``). Found
by the real-kernel check (docs/kernel-validation.md D4): a zombie whose tmpfs
was deleted stayed until another cgroup freed enough swap. The cache is active
while swap has at least ``cpus`` × 5 × 64 slots (THRESHOLD_ACTIVATE_SWAP_SLOTS_CACHE).
The slot cache was removed by the swap-table rework around v6.15 (version not
verified here); ``swap_slot_cache="auto"`` models it up to v6.14. The freeing
CPU is drawn round-robin from the event count, deterministic for a trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State

if TYPE_CHECKING:
    from core.machine import Machine

SWAP_SLOTS_CACHE_SIZE = 64
THRESHOLD_ACTIVATE = 5 * SWAP_SLOTS_CACHE_SIZE


class SwapSlotsMixin:
    """Deferred release of freed swap slots (see the module docstring)."""

    def _slots_init(self: "Machine") -> None:
        mode = self.cfg.swap_slot_cache
        self.slot_cache_enabled = mode == "on" or (mode == "auto" and not self.kernel.at_least(6, 15))
        self.slot_cache: dict[int, list[list[int]]] = {}  # cpu -> [[memcg, pages], ...]
        self.slot_cache_fill: dict[int, int] = {}  # cpu -> pages parked

    def _slots_active(self: "Machine") -> bool:
        return self.slot_cache_enabled and self.swap_total >= self.cfg.cpus * THRESHOLD_ACTIVATE

    def free_swap_slots(self: "Machine", m: int, n: int) -> None:
        """``n`` slots recorded to ``m`` are freed: park them in a CPU's cache, or release them now."""
        if not self._slots_active():
            self._release_slots(m, n)
            return
        cpu = self.counters["events"] % self.cfg.cpus
        while n > 0:
            fill = self.slot_cache_fill.get(cpu, 0)
            if fill == SWAP_SLOTS_CACHE_SIZE:  # free_swap_slot flushes a full cache before adding
                self._flush_cpu(cpu)
                fill = 0
            take = min(n, SWAP_SLOTS_CACHE_SIZE - fill)
            self.slot_cache.setdefault(cpu, []).append([m, take])
            self.slot_cache_fill[cpu] = fill + take
            n -= take

    def _flush_cpu(self: "Machine", cpu: int) -> None:
        for m, k in self.slot_cache.pop(cpu, []):
            self._release_slots(m, k)
        self.slot_cache_fill.pop(cpu, None)

    def drain_slot_caches(self: "Machine") -> None:
        """Release every parked slot (swapoff drains the caches)."""
        for cpu in sorted(self.slot_cache):
            self._flush_cpu(cpu)

    def parked_slots(self: "Machine") -> dict[int, int]:
        """Slots parked in the caches, per recorded memcg."""
        out: dict[int, int] = {}
        for entries in self.slot_cache.values():
            for m, k in entries:
                out[m] = out.get(m, 0) + k
        return out

    def reparent_parked_slots(self: "Machine", m: int, to: int) -> int:
        """Rewrite the records of parked slots naming ``m`` to ancestor ``to``; returns slots moved.

        A freed-but-parked slot still has its swap_cgroup record, so a walk of the
        records (the ``swap_walk`` policy) reaches it like any other.
        """
        moved = 0
        for entries in self.slot_cache.values():
            for e in entries:
                if e[0] == m:
                    e[0] = to
                    moved += e[1]
        if moved:
            mem = self.mem
            mem.swap[m] -= moved
            mem.charge_swap(m, -moved)
            mem.swap[to] += moved
            mem.charge_swap(to, moved)
            self.counters["swap_records_reparented"] += moved
            if mem.swap[m] == 0 and mem.state[m] != State.ONLINE:
                mem.put_id(m)
            if mem.state[m] == State.DYING:
                self._release_q.append(m)
        return moved

    def _release_slots(self: "Machine", m: int, n: int) -> None:
        """swap_entry_free -> mem_cgroup_uncharge_swap: uncharge and drop the ID refs."""
        mem = self.mem
        mem.swap[m] -= n
        mem.charge_swap(m, -n)
        self.swap_used -= n
        if mem.swap[m] == 0 and mem.state[m] != State.ONLINE:
            mem.put_id(m)  # the last swap entry drops the ID (mem_cgroup_id_put_many)
        if mem.state[m] == State.DYING:
            self._release_q.append(m)
