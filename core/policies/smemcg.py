"""``smemcg``: shared objects are owned by a shared-memory controller with the object's lifetime.

In: page instantiations (``charge_target``), maps / unmaps of file ranges,
offlines and object frees. Out: every page of a shared object (tmpfs objects,
and with ``shared="all"`` page-cache files too) charged to that object's own
hidden memcg (``MemcgTable.add_hidden``: ``/.smemcg/<object>``, under the
root, not a user cgroup), freed with the object; per (smemcg, memcg) borrow
counters — the pages of the object inside the mappings of the memcg's tasks —
added to the borrower's usage (``MemcgTable.borrow``), so they count against
its memory.max/high and show in its memory.current and peak. No charge ever
moves, so shared memory leaves no zombie.

Source: Chris Li, "Shared Memory Cgroup Controller" (2023-05-03,
<ZFLdDyHoIdJSXJt+@google.com>; follow-ups <ZFPtLjiSQxRw+isR@google.com>,
<ZFuvhP5qGPivokc0@google.com>): alloc charges the smemcg's counter (checked
against its limit, ENOMEM over it — here a failed fault: the smemcg has no
task to OOM-kill); free uncharges; share/mmap adds to the per-(smemcg, memcg)
borrow counter; unshare/unmap takes it away; memory.current = own anon +
borrow. The talk's long-term fix ("No charge movement; no zombie memcg if all
shared resource account in smemcg").

Model choices and limits: one smemcg per object (the proposal has one per
mount); the borrow counts mapped pages whether resident or not; reading a
shared file without mapping it borrows nothing, so a job's limit no longer
bounds the page cache it reads; limit reclaim of a borrower does not reach
into the smemcg; each smemcg holds a memcg ID (its swap records need one);
the root's memory.current counts borrowed pages twice (root has no limit;
machine-wide memory uses page totals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.pages import Kind, pages_of
from core.policies._common import choice
from core.policy import Knobs, Policy, register

if TYPE_CHECKING:
    from core.state import MachineState


def mapped_pages_by_memcg(machine: MachineState, o: int) -> dict[int, int]:
    """Per memcg, the pages of object ``o`` covered by the mappings of its live tasks (overlaps once)."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for t, a, b in machine.o_maps[o]:
        if machine.t_alive[t] and b > a:
            spans.setdefault(machine.t_cg[t], []).append((a, b))
    out = {}
    for m, ranges in spans.items():
        total, end = 0, -1
        for a, b in sorted(ranges):
            if b > end:
                total += b - max(a, end)
                end = b
        out[m] = total
    return out


@dataclass
class SmemcgKnobs(Knobs):
    """``shared``: which shared objects an smemcg owns (all, or shmem only); ``limit_bytes``: each
    smemcg's limit (0: unlimited)."""

    policy = "smemcg"
    shared: str = "all"
    limit_bytes: int = 0

    def check(self) -> None:
        choice(self.policy, "shared", self.shared, ("all", "shmem"))
        if self.limit_bytes < 0:
            raise ConfigError(f"policy {self.policy}: limit_bytes must be >= 0 (0 = unlimited)")


@register
class Smemcg(Policy):
    """Charge shared objects to their own smemcg; borrowers carry borrow counters."""

    name = "smemcg"
    source = ("Chris Li, 'Shared Memory Cgroup Controller' <ZFLdDyHoIdJSXJt+@google.com> (2023-05); "
              "talk long-term fix")
    wants_access = True

    Knobs = SmemcgKnobs
    knobs: SmemcgKnobs

    def __init__(self, knobs: SmemcgKnobs | None = None) -> None:
        super().__init__(knobs)
        self._slot: dict[int, int] = {}  # object -> its smemcg's memcg slot
        self._borrow: dict[int, dict[int, int]] = {}  # object -> {borrowing memcg: pages}

    def _is_shared(self, machine: MachineState, o: int) -> bool:
        kind = machine.o_kind[o]
        return kind == Kind.SHMEM or (kind == Kind.FILE and self.knobs.shared == "all")

    def charge_target(self, machine: MachineState, obj: int, memcg: int) -> int:
        if not self._is_shared(machine, obj):
            return memcg
        s = self._slot.get(obj)
        if s is None:
            s = machine.mem.add_hidden(f"/.smemcg/{machine.o_name[obj]}", machine.now_us)
            if self.knobs.limit_bytes:
                machine.mem.max[s] = pages_of(self.knobs.limit_bytes)
            self._slot[obj] = s
        return s

    def on_access(self, machine: MachineState, obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        if how in ("map", "unmap") and self._is_shared(machine, obj):
            self._rebalance(machine, obj)

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        # a task that moved away still maps: its borrow follows it now that the old memcg is gone
        for o in [o for o, b in self._borrow.items() if memcg in b]:
            self._rebalance(machine, o)

    def object_freed(self, machine: MachineState, obj: int) -> None:
        self._rebalance(machine, obj)
        s = self._slot.pop(obj, None)
        if s is not None:
            machine.mem.drop_hidden(s)

    def _rebalance(self, machine: MachineState, o: int) -> None:
        """Set the borrow counters of ``o`` to what its mappings say, adjusting borrowers' usage."""
        want = mapped_pages_by_memcg(machine, o) if machine.o_alive[o] else {}
        have = self._borrow.get(o, {})
        mem = machine.mem
        for m in sorted(set(want) | set(have)):
            d = want.get(m, 0) - have.get(m, 0)
            if d:
                mem.borrow[m] += d
                mem.charge(m, d)
        if any(want.values()):
            self._borrow[o] = {m: n for m, n in want.items() if n}
        else:
            self._borrow.pop(o, None)
