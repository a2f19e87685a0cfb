"""Dirty page cache, writeback, and the cgroup writeback contexts (cgwb) that pin a dying memcg
(fs/fs-writeback.c, mm/backing-dev.c).

In: writes to disk files, ``sync``, rmdir of a memcg, inode release (delete,
inode eviction). Out: the ``dirty`` column of runs, each disk file's attached
writeback memcg, and ``MemcgTable.wb_pin``: the inodes whose dying cgwb still
holds a removed memcg.

Kernel behaviour modelled (found by the real-kernel check, docs/kernel-validation.md D2/D3):
- a write dirties page cache; the flusher writes it back once it is older than
  vm.dirty_expire_centisecs (``dirty_expire_us``, default 30 s), and ``sync``
  writes everything back. A run counts as dirty while it was dirtied less than
  ``dirty_expire_us`` ago and no sync came since (a lazy stand-in for the flusher).
- drop_caches cannot drop dirty pages (``invalidate_mapping_pages`` skips them).
- the inode is attached to the writeback context of the memcg that first dirtied it
  (``inode_attach_wb``). At rmdir, ``wb_memcg_offline`` kills that memcg's cgwbs and
  queues ``cleanup_offline_cgwbs_workfn``, which walks every offline cgwb of the machine:
  a wb with any dirty inode (``wb_has_dirty_io``) is skipped, and the others have all
  their inodes switched to the nearest live ancestor's wb, which releases the wb and the
  css reference it holds (``cgwb_create``). A skipped wb is retried at the next memcg
  offline, whichever memcg that is; until then, or until its inodes are released (the
  file deleted, the inode evicted by drop_caches with inodes or umount), it pins the
  dying memcg. This corrects KERNEL-MODEL.md section 1, which has the switch as
  "asynchronous and short" for every inode, and the model's earlier rule (D3) that the
  cleanup is never re-run.
Not modelled: foreign-inode switching (``inode_switch_wbs`` when another memcg
dominates an inode's writeback) and dirty throttling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.pages import St

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)


def dirty_now(machine: "MachineState", r: int) -> bool:
    """Is run ``r`` dirty at the current time (written, not yet written back)?"""
    ts = machine.runs.dirty[r]  # 1 + the LRU quantum of the last write, 0 when clean
    return ts > 0 and machine.now_us - (ts - 1) * machine.cfg.age_quantum_us < machine.cfg.dirty_expire_us


def mark_range_dirty(machine: "MachineState", o: int, lo: int, hi: int, stamp: int) -> None:
    """A write dirtied [lo, hi) of disk file ``o``: stamp its resident pages, then coalesce.

    ``stamp`` is 1 + the LRU quantum of the write (0 means clean). ``fault_range``
    stamps a write's pages itself when it can, and calls this otherwise.
    """
    R = machine.runs
    dirty, state = R.dirty, R.state
    for r, s, e in R.pieces(o, lo, hi):  # unsplit: split only the runs whose stamp changes
        if r >= 0 and state[r] == _RESIDENT and dirty[r] != stamp:
            dirty[R.isolate(r, s, e)] = stamp
    R.coalesce(o, lo, hi)


def inode_attach_wb(machine: "MachineState", t: int, o: int) -> None:
    """inode_attach_wb: the first writer's memcg owns the inode's writeback context."""
    if machine.o_wb[o] < 0:
        m = machine.t_cg[t]
        machine.o_wb[o] = m
        machine.wb_inodes.setdefault(m, set()).add(o)


def ksys_sync(machine: "MachineState") -> None:
    """sync(2): every dirty page is written back (cgwb pins taken at rmdir stay)."""
    if len(machine.runs):
        machine.runs.view("dirty")[:] = 0


def inode_dirty(machine: "MachineState", o: int) -> bool:
    """Does disk file ``o`` have dirty pages now?"""
    return any(dirty_now(machine, r) for r in machine.runs.obj_runs.get(o, ()))


def wb_memcg_offline(machine: "MachineState", m: int) -> None:
    """wb_memcg_offline: memcg ``m``'s cgwb is killed and joins the offline cgwbs (each of its inodes
    keeps it, and it keeps ``m``: ``cgwb_create``'s css_get); then the cleanup runs over them all."""
    for o in sorted(machine.wb_inodes.pop(m, ())):
        machine.wb_pinned[o] = m
        machine.mem.wb_pin[m] += 1
    cleanup_offline_cgwbs(machine)


def cleanup_offline_cgwbs(machine: "MachineState") -> None:
    """cleanup_offline_cgwbs_workfn (mm/backing-dev.c), queued by every wb_memcg_offline: for every
    offline cgwb, skip it while ``wb_has_dirty_io(wb)`` (any of its inodes dirty), else switch all
    its inodes to the nearest live ancestor's wb (``cleanup_offline_cgwb``: b_attached and
    b_dirty_time), which drops the last wb reference and, in ``cgwb_release_workfn``, the memcg's.

    So a cgwb skipped at its own offline is retried at every later memcg offline on the machine,
    and released at the first one after its inodes were written back (or at inode eviction)."""
    pinned = machine.wb_pinned
    if not pinned:
        return
    by_wb: dict[int, list[int]] = {}
    for o, m in pinned.items():
        by_wb.setdefault(m, []).append(o)
    for m in sorted(by_wb):
        inodes = by_wb[m]
        if any(inode_dirty(machine, o) for o in inodes):
            continue
        a = machine.mem.nearest_online(m)
        attached = machine.wb_inodes.setdefault(a, set())
        for o in sorted(inodes):
            del pinned[o]
            machine.o_wb[o] = a
            attached.add(o)
        machine.mem.wb_pin[m] -= len(inodes)
        css_put(machine, m)


def inode_detach_wb(machine: "MachineState", o: int) -> None:
    """The inode of ``o`` is gone (deleted or evicted): drop its wb attachment or pin."""
    m = machine.o_wb[o]
    if m < 0:
        return
    machine.o_wb[o] = -1
    if machine.wb_pinned.pop(o, None) is not None:
        machine.mem.wb_pin[m] -= 1
        css_put(machine, m)
    else:
        machine.wb_inodes[m].discard(o)
