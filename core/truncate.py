"""Freeing pages and objects (mm/truncate.c, fs/inode.c, fs/drop_caches.c).

In: a range of an object to free (a hole punched in an anon region), an object whose
last user went away (unlink + last close, a region unmapped, a task's exit), a
drop_caches write. Out: runs uncharged and dropped (no shadow), the inode's writeback
attachment released (``core.fs_writeback.inode_detach_wb``), the object slot freed,
the policy told (``object_freed``).

- drop_caches=1 (``drop_pagecache_sb`` -> ``invalidate_mapping_pages``): unmapped,
  unpinned, clean page cache is removed without shadows; dirty folios are skipped.
- drop_caches=2 (``prune_icache_sb``): unused disk-file inodes with no pages left are
  evicted, shadows and all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.fs_writeback import dirty_now, inode_detach_wb, inode_meta_dirty, set_inode_times
from core.page_counter import mem_cgroup_charge_statistics
from core.pages import Kind, St

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_FILE = int(Kind.FILE)


def free_if_unused(machine: MachineState, o: cython.int) -> None:
    if machine.o_alive[o] and machine.o_deleted[o] and not machine.o_maps[o] and not machine.o_pins[o]:
        free_object(machine, o)


def free_range(machine: MachineState, o: cython.int, lo: cython.longlong, hi: cython.longlong) -> None:
    """Free pages [lo, hi) of ``o``: uncharge resident pages, free swap slots, drop shadows."""
    R = machine.runs
    for r, _, _ in R.segments(o, lo, hi):
        if r >= 0:
            mem_cgroup_charge_statistics(machine, r, -1, False, True, True)  # zap (positional: a C call)
            R.drop(r)


def free_object(machine: MachineState, o: cython.int) -> None:
    """Free every page of ``o`` and the object itself (unlink + last close, or region unmap)."""
    R = machine.runs
    # uncharge in page order first (nothing in mem_cgroup_charge_statistics looks at runs), then drop them at once
    for r in (R.obj_runs[o] if o < len(R.obj_runs) else None) or ():
        mem_cgroup_charge_statistics(machine, r, -1, False, True, True)  # zap (positional: a C call)
    R.drop_object(o)
    inode_detach_wb(machine, o)
    if o < len(machine.i_atime):
        set_inode_times(machine, o, -1, -1)
    machine.o_alive[o] = False
    name = machine.o_name[o]
    if machine.obj_by_name.get(name) == o:
        del machine.obj_by_name[name]
    owner = machine.o_owner[o]
    if owner >= 0:
        machine.t_regions[owner].discard(o)
        machine.t_pins[owner] = [p for p in machine.t_pins[owner] if p[0] != o]
    machine.policy.object_freed(machine, o)
    machine.free_objs.append(o)


def drop_pagecache(machine: MachineState) -> None:
    """drop_caches=1: unmapped, unpinned, clean page cache is removed without shadows."""
    R = machine.runs
    if len(R) == 0:
        return
    state, kind, mapc, pinc = R.view("state"), R.view("kind"), R.view("mapc"), R.view("pinc")
    ids = ((state == _RESIDENT) & (kind == _FILE) & (mapc == 0) & (pinc == 0)).nonzero()[0].tolist()
    del state, kind, mapc, pinc
    ids = R.page_order(ids)  # uncharge order decides the release order of zombies: not by run id
    ids = [r for r in ids if not dirty_now(machine, r)]  # invalidate_mapping_pages skips dirty folios
    for r in ids:
        machine.counters["dropped_pages"] += R.npages[r]
        mem_cgroup_charge_statistics(machine, r, -1)
        R.drop(r)


def prune_icache_sb(machine: MachineState) -> None:
    """drop_caches=2 (prune_icache_sb): release unused disk-file inodes with no pages left.

    An inode with mappings, pins, resident or dirty pages stays; an evicted
    inode also loses its shadow entries.
    """
    R = machine.runs
    for o, kind in enumerate(machine.o_kind):
        if kind != _FILE or not machine.o_alive[o] or machine.o_maps[o] or machine.o_pins[o]:
            continue
        runs = (R.obj_runs[o] if o < len(R.obj_runs) else None) or ()
        if any(R.state[r] == _RESIDENT for r in runs) or inode_meta_dirty(machine, o):
            continue  # a dirty inode is not on the inode LRU's free side (inode_lru_isolate)
        for r in list(runs):
            R.drop(r)  # shadows only: nothing charged
        inode_detach_wb(machine, o)
