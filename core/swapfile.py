"""swapoff (mm/swapfile.c ``try_to_unuse``).

In: a swapoff and the memcg of the task running it. Out: every swapped run read back
in and charged, the slot caches drained, swap disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import ROOT, State
from core.page_alloc import alloc_pages_slowpath
from core.page_counter import mem_cgroup_charge_statistics
from core.pages import St
from core.swap_slots import drain_slots_caches

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_ONLINE = int(State.ONLINE)


def try_to_unuse(machine: MachineState, caller: int = ROOT) -> None:
    """swapoff(2): drain the slot caches, read every swapped run back in, disable swap.

    A record whose memcg is online is charged back to it; otherwise the page is
    charged to ``caller``, the memcg of the task running swapoff: the swapoff
    path swaps in with no mm, so mem_cgroup_swapin_charge_folio charges
    current (found by the real-kernel check, docs/kernel-validation.md D1).
    Charges are forced (the model does not fail swapoff with ENOMEM).
    """
    R, mem = machine.runs, machine.mem
    drain_slots_caches(machine)
    machine.swap_total = 0  # no new slots, and freed ones are released at once
    for r in R.page_order(R.swapped_ids().tolist()):
        rec = R.memcg[r]
        tgt = rec if mem.state[rec] == _ONLINE else caller
        mem_cgroup_charge_statistics(machine, r, -1)
        R.set_owner(r, _RESIDENT, tgt)
        mem_cgroup_charge_statistics(machine, r, +1)
    alloc_pages_slowpath(machine, 0, -1, False)
