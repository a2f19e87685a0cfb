"""Invariants of a machine's state, recomputed from scratch.

In: a ``MachineState``. Out: a list of violated invariants (empty when all hold).
Used by tests (scenario and property-based) and by ``Machine.check()``:

- charge conservation: every memcg's own anon/file/shmem/mapped/pinned pages
  equal the sum over the runs charged to it; swap records equal the swapped
  runs naming it; kmem equals the kmem objects charged to it;
- hierarchical usage (memory.current, memory.swap.current) equals the sum of
  own charges over the subtree; machine totals match;
- no negative counter; resident + kmem never exceeds memory, swap in use
  never exceeds swap;
- dying ⇔ still referenced: a dying memcg is held by something, and every
  held removed memcg is dying (never freed while referenced);
- the ID pool: IDs in use = online memcgs + offline memcgs with swap records; each memcg's
  ``children`` are its live (online or dying) children;
- nr_dying_descendants equals the number of dying memcgs below;
- the dying memcgs' offline order (``MemcgTable.dying_order``) lists each once, by offline time;
- the zombie gauges kept as the memcgs change (``core.zombie_gauges``) equal a count from scratch
  (``sample_scan.zombie_scan``), and the free slots are the freed ones, each listed once;
- (compiled build) the run table's counts of resident runs charged elsewhere than their origin and of
  parked ones (``RunTable.foreign``/``parked``, which decide whether a sample scans the runs) equal a count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core import COMPILED
from core.kmem import kmem_pins
from core.memcg import State
from core.oom_kill import oom_reap_done
from core.pages import Kind, St
from core.sample_scan import zombie_scan
from core.swap_slots import parked_slots
from core.zombie_gauges import online_slots

if TYPE_CHECKING:
    from core.memcg import MemcgTable
    from core.state import MachineState

_OWN = ("anon", "file", "shmem", "mapped", "pinned", "swap", "kmem", "kmem_pin", "wb_pin", "sock", "nsock",
        "noom")


def check(machine: MachineState) -> list[str]:
    """Every violated invariant of ``machine``, as readable strings."""
    errs: list[str] = []
    mem = machine.mem
    live = mem.live()
    own = _own_from_runs(machine)
    for name in _OWN:
        col = getattr(mem, name)
        for m in live:
            if col[m] != own[name].get(m, 0):
                errs.append(f"{name}[{mem.path[m]}#{m}] = {col[m]}, runs say {own[name].get(m, 0)}")
    errs += _hierarchy(machine, live)
    errs += _lifecycle(machine, live)
    errs += _totals(machine, own)
    errs += _zombie_gauges(machine)
    errs += _run_tallies(machine)
    return errs


def _run_tallies(machine: MachineState) -> list[str]:
    """``RunTable.foreign``/``parked`` (kept by the compiled build's writers) equal a count of the columns."""
    if "pages" not in COMPILED:  # the pure table keeps no counts
        return []
    R = machine.runs
    kept, counted = (R.foreign, R.parked), R.tallies()
    return [] if kept == counted else [f"run tallies (foreign, parked) = {kept}, the columns say {counted}"]


def _zombie_gauges(machine: MachineState) -> list[str]:
    """What a sample reads of the dying memcgs (``MemcgTable.zg``, and the online count from the free
    slots) equals ``zombie_scan``'s count over every slot."""
    mem, errs = machine.mem, []
    online, *scan = zombie_scan(machine)
    try:
        kept = list(mem.zg.gauges(mem))
    except RuntimeError as e:  # an offline order that does not list the dying set (``_dying_order`` says how)
        return [f"zombie gauges: {e}"]
    if kept != scan:
        errs.append(f"zombie gauges (held, charged, swapped, age basis) kept {kept}, counted {scan}")
    freed = [m for m, s in enumerate(mem.state) if s == State.FREED]
    if sorted(mem.free_slots) != freed:
        errs.append(f"free slots {sorted(mem.free_slots)}, freed slots {freed}")
    if online != online_slots(mem):
        errs.append(f"{online} online slots, {len(mem.state)} slots less {len(mem.free_slots)} free and "
                    f"{len(mem.dying)} dying")
    return errs


def _own_from_runs(machine: MachineState) -> dict[str, dict[int, int]]:
    R = machine.runs
    own: dict[str, dict[int, int]] = {k: {} for k in _OWN}

    def add(name: str, m: int, n: int) -> None:
        own[name][m] = own[name].get(m, 0) + n

    for r in range(len(R)):
        st, m, n, k = R.state[r], R.memcg[r], R.npages[r], R.kind[r]
        if st == St.RESIDENT:
            add(("anon", "file", "shmem")[k], m, n)
            if R.mapc[r] > 0 and k != Kind.ANON:
                add("mapped", m, n)
            if R.pinc[r] > 0:
                add("pinned", m, n)
        elif st == St.SWAPPED:
            add("swap", m, n)
        if st != St.FREE and (R.npages[r] <= 0 or R.mapc[r] < 0 or R.pinc[r] < 0):
            own.setdefault("bad", {})[r] = 1
    for m, n in parked_slots(machine).items():  # freed slots waiting in a CPU's slot cache
        add("swap", m, n)
    for o, m in machine.wb_pinned.items():
        add("wb_pin", m, 1)
    for m, n in machine.sock_by_name.values():
        if m >= 0:
            add("sock", m, n)
            add("nsock", m, 1)
    for _, _, fn, args in machine.queue:  # the OOM reaper's holds: their queued releases
        if fn is oom_reap_done:
            add("noom", args[0], 1)
    for k in _kmem_items(machine):
        add("kmem", machine.k_memcg[k], machine.k_pages[k])
        if kmem_pins(machine, k):
            add("kmem_pin", machine.k_memcg[k], machine.k_pages[k])
    return own


def _kmem_items(machine: MachineState) -> list[int]:
    return sorted(machine.kmem_by_name.values())


def _hierarchy(machine: MachineState, live: list[int]) -> list[str]:
    mem, errs = machine.mem, []
    for m in live:
        sub = mem.subtree(m)
        usage = sum(mem.own_pages(x) for x in sub)
        swap = sum(mem.swap[x] for x in sub)
        if mem.usage[m] != usage:
            errs.append(f"usage[{mem.path[m]}#{m}] = {mem.usage[m]}, subtree sum {usage}")
        if mem.swap_usage[m] != swap:
            errs.append(f"swap_usage[{mem.path[m]}#{m}] = {mem.swap_usage[m]}, subtree sum {swap}")
        dying_below = sum(1 for x in sub[1:] if mem.state[x] == State.DYING)
        if mem.nr_dying_desc[m] != dying_below:
            errs.append(f"nr_dying_descendants[{mem.path[m]}] = {mem.nr_dying_desc[m]}, counted {dying_below}")
        for name in ("anon", "file", "shmem", "kmem", "swap", "usage", "swap_usage", "ntasks", "mapped",
                     "pinned", "kmem_pin", "sock", "nsock", "noom"):
            if getattr(mem, name)[m] < 0:
                errs.append(f"negative {name}[{mem.path[m]}#{m}]")
    return errs


def _dying_order(mem: MemcgTable) -> list[str]:
    """``dying_order`` lists each dying memcg once, at its offline time, in ascending time (``core.dying_order``)."""
    order, off = list(mem.dying_order), list(mem.dying_off)
    listed = [(t, m) for m, t in zip(order, off) if m >= 0]
    errs = []
    if len(order) != len(off) or mem.dying_holes != order.count(-1):
        errs.append(f"dying_order: {len(order)} entries, {len(off)} times, {mem.dying_holes} holes counted")
    if sorted(m for _, m in listed) != sorted(mem.dying):
        errs.append(f"dying_order lists {sorted(m for _, m in listed)}, the dying set is {sorted(mem.dying)}")
    if any(mem.offline_us[m] != t for t, m in listed) or off != sorted(off):
        errs.append("dying_order: offline times not the memcgs' own, or not ascending")
    return errs


def _lifecycle(machine: MachineState, live: list[int]) -> list[str]:
    mem, errs = machine.mem, []
    ids = 0
    for m in live:
        st = mem.state[m]
        if st == State.DYING and not mem.held(m):
            errs.append(f"dying {mem.path[m]}#{m} is held by nothing")
        if st == State.DYING and m not in mem.dying:
            errs.append(f"dying {mem.path[m]}#{m} missing from the dying set")
        want_id = st == State.ONLINE or mem.swap[m] > 0
        if bool(mem.holds_id[m]) != want_id:
            errs.append(f"{mem.path[m]}#{m} holds_id={mem.holds_id[m]}, expected {want_id}")
        ids += bool(mem.holds_id[m])
    if ids != mem.ids_in_use:
        errs.append(f"ids_in_use = {mem.ids_in_use}, counted {ids}")
    below: dict[int, set[int]] = {}
    for m in live:
        if mem.parent[m] >= 0:
            below.setdefault(mem.parent[m], set()).add(m)
    errs += [f"children[{mem.path[m]}#{m}] = {sorted(mem.children[m])}, live children {sorted(below.get(m, ()))}"
             for m in live if set(mem.children[m]) != below.get(m, set())]
    errs += _dying_order(mem)
    for t, alive in enumerate(machine.t_alive):
        if alive and mem.state[machine.t_cg[t]] != State.ONLINE:
            errs.append(f"live task {machine.t_name[t]} in a cgroup that is not online")
    return errs


def _totals(machine: MachineState, own: dict[str, dict[int, int]]) -> list[str]:
    errs = []
    if own.get("bad"):
        errs.append(f"runs with non-positive size or negative counts: {sorted(own['bad'])[:5]}")
    resident = sum(sum(own[k].values()) for k in ("anon", "file", "shmem"))
    for o, m in machine.wb_pinned.items():
        if not machine.o_alive[o] or machine.o_wb[o] != m:
            errs.append(f"cgwb pin of inode {o} on {m} but the inode is gone or attached elsewhere")
    if resident != machine.resident:
        errs.append(f"resident = {machine.resident}, runs say {resident}")
    if sum(own["swap"].values()) != machine.swap_used:
        errs.append(f"swap_used = {machine.swap_used}, runs say {sum(own['swap'].values())}")
    if machine.swap_used > max(machine.swap_total, 0) and machine.swap_total > 0:
        errs.append("swap in use exceeds swap size")
    kernel = sum(own["kmem"].values()) + sum(own["sock"].values())  # kmem objects and socket buffers
    if kernel != machine.kmem_total:
        errs.append(f"kmem_total = {machine.kmem_total}, kmem objects and sockets say {kernel}")
    if machine.resident + machine.kmem_total > machine.mem_total:
        errs.append("resident + kmem exceeds machine memory")
    for name, (m, _) in machine.sock_by_name.items():
        if m >= 0 and machine.mem.state[m] == State.FREED:
            errs.append(f"socket {name} references freed memcg #{m}")
    if machine.reserved != 0:
        errs.append(f"{machine.reserved} pages reserved outside a charge")
    if np.any(np.asarray(machine.t_anon) < 0) or np.any(np.asarray(machine.t_swap) < 0):
        errs.append("negative per-task anon or swap pages")
    return errs
