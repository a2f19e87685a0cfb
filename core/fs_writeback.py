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
- reclaim that meets dirty page cache wakes the flusher, which writes back every dirty page and
  inode of the disk, not just the reclaimed memcg's (``wakeup_flusher_threads``, D15): a cgwb
  that stayed dirty at its offline is then released at the next offline.
- atime (``touch_atime``): under the machine's ``atime`` mount option (default ``relatime``, what
  Linux mounts with unless told otherwise), a read or mmap of a disk file whose mtime is not
  older than its atime (the first read after a create or a write) updates atime, which
  attaches an unattached inode to the reader's memcg's wb and, except under ``lazytime``,
  dirties the inode until it is written back (``dirty_expire_us`` or ``sync``): a reader
  removed within that time leaves its memcg pinned by the cgwb until the next offline after it.
Not modelled: foreign-inode switching (``inode_switch_wbs`` when another memcg
dominates an inode's writeback) and dirty throttling.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.pages import St
from core.state import ATIME_MODES

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython
if not cython.compiled:  # the compiled build inlines the C versions (core/run_index.pxd)
    from core.run_index import append_int, store_int

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)


def dirty_now(machine: MachineState, r: cython.Py_ssize_t) -> cython.bint:
    """Is run ``r`` dirty at the current time (written, not yet written back)?"""
    ts: cython.longlong  # 1 + the LRU quantum of the last write, 0 when clean
    if cython.compiled:
        ts = machine.runs.dirty.data.as_ints[r] if 0 <= r < len(machine.runs.dirty) else machine.runs.dirty[r]
    else:
        ts = machine.runs.dirty[r]
    return ts > 0 and machine.now_us - (ts - 1) * machine.age_quantum_us < machine.dirty_expire_us


def mark_range_dirty(machine: MachineState, o: int, lo: int, hi: int, stamp: int) -> None:
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


def inode_attach_wb(machine: MachineState, t: cython.Py_ssize_t, o: cython.Py_ssize_t):
    """inode_attach_wb: the first writer's memcg owns the inode's writeback context."""
    if machine.o_wb[o] < 0:
        m = machine.t_cg[t]
        machine.o_wb[o] = m
        machine.wb_inodes.setdefault(m, set()).add(o)


def ksys_sync(machine: MachineState) -> None:
    """sync(2): every dirty page and dirty inode is written back (cgwb pins taken at rmdir stay
    until the next memcg offline retries their cleanup)."""
    if len(machine.runs):
        machine.runs.view("dirty")[:] = 0
    machine.i_dirty.clear()


def wakeup_flusher_threads(machine: MachineState) -> None:
    """wakeup_flusher_threads(WB_REASON_VMSCAN) (fs/fs-writeback.c), woken by reclaim that met dirty
    page cache (``vmscan.shrink_inactive_list``): for the machine's one disk,
    ``__wakeup_flusher_threads_bdi`` starts writeback on *every* wb of the bdi, each for
    ``get_nr_dirty_pages()`` pages (all dirty page cache plus the dirty inodes), so the flusher
    writes back every dirty page and dirty inode, whichever memcg dirtied them (D15). Like
    ``ksys_sync`` without waiting, which the model does not tell apart: no time passes."""
    ksys_sync(machine)


def inode_meta_dirty(machine: MachineState, o: cython.Py_ssize_t) -> cython.bint:
    """Is the inode of ``o`` itself dirty (I_DIRTY_SYNC: an atime or mtime not yet written back)?

    The flusher writes an inode dirtied more than ``dirty_expire_us`` ago (wb_writeback's
    kupdate pass, as for pages)."""
    t = machine.i_dirty.get(o)
    if t is None:
        return False
    if machine.now_us - t < machine.dirty_expire_us:
        return True
    del machine.i_dirty[o]
    return False


def inode_dirty(machine: MachineState, o: cython.Py_ssize_t) -> cython.bint:
    """Is disk file ``o`` on its wb's dirty lists now (dirty pages, or a dirty inode)?"""
    if inode_meta_dirty(machine, o):
        return True
    runs: array | None = (machine.runs.obj_runs[o] if o < len(machine.runs.obj_runs) else None)
    if runs is None:
        return False
    i: cython.Py_ssize_t
    rp: cython.p_int  # the object's run ids
    if cython.compiled:
        rp = cython.cast(array, runs).data.as_ints
    else:
        rp = runs
    for i in range(len(runs)):  # a loop, not any(): this runs for every pinned inode at every offline
        if dirty_now(machine, rp[i]):
            return True
    return False


_DAY_US = 24 * 3600 * 1_000_000
# the atime modes touch_atime compares ``MachineState.atime_mode`` with: C constants in the compiled build
_NOATIME = ATIME_MODES.index("noatime")
_LAZYTIME = ATIME_MODES.index("lazytime")
_STRICTATIME = ATIME_MODES.index("strictatime")


def inode_times(machine: MachineState, o: cython.Py_ssize_t) -> tuple[int, int]:
    """Disk file ``o``'s (atime, mtime) in µs, (-1, -1) before its first (``MachineState.i_atime``/``i_mtime``)."""
    if o >= len(machine.i_atime):
        return -1, -1
    if cython.compiled:
        return machine.i_atime.data.as_longlongs[o], machine.i_mtime.data.as_longlongs[o]
    return machine.i_atime[o], machine.i_mtime[o]


def set_inode_times(machine: MachineState, o: cython.Py_ssize_t, atime: cython.longlong, mtime: cython.longlong):
    """Set disk file ``o``'s atime and mtime (µs; -1, -1: none, as a freed object's), growing the columns to ``o``."""
    while len(machine.i_atime) <= o:
        append_int(machine.i_atime, -1)
        append_int(machine.i_mtime, -1)
    store_int(machine.i_atime, o, atime)
    store_int(machine.i_mtime, o, mtime)


def file_update_time(machine: MachineState, o: cython.Py_ssize_t):
    """A write sets mtime and ctime (``file_update_time``; the inode's wb is attached by the caller)."""
    atime: cython.longlong = inode_times(machine, o)[0]
    set_inode_times(machine, o, machine.now_us if atime < 0 else atime, machine.now_us)


def touch_atime(machine: MachineState, t: cython.Py_ssize_t, o: cython.Py_ssize_t):
    """A read or mmap of disk file ``o`` by task ``t`` (``touch_atime``, fs/inode.c).

    ``atime_needs_update``: never under ``noatime``; under ``relatime`` only if mtime (or ctime)
    is not older than atime, or atime is a day old (``relatime_need_update``); always under
    ``strictatime``. An update goes through ``generic_update_time`` to ``__mark_inode_dirty``:
    ``I_DIRTY_TIME`` under ``lazytime``, else ``I_DIRTY_SYNC``. Either way ``__mark_inode_dirty``
    first calls ``inode_attach_wb(inode, NULL)``: an inode with no wb yet is attached to the
    wb of the reader's memcg (``task_get_css(current)``). ``I_DIRTY_SYNC`` puts the inode on
    that wb's ``b_dirty`` list (``wb_has_dirty_io``) until it is written back; ``I_DIRTY_TIME``
    only on ``b_dirty_time``, which the offline cleanup switches like a clean inode.
    """
    mode: cython.int = machine.atime_mode
    if mode == _NOATIME:
        return
    now: cython.longlong = machine.now_us
    atime: cython.longlong
    mtime: cython.longlong
    atime, mtime = inode_times(machine, o)
    if atime < 0:  # the first access of an inode without times: both set now, so atime is current
        set_inode_times(machine, o, now, now)
        return
    if atime == now or (mode != _STRICTATIME and mtime < atime and now - atime < _DAY_US):
        return
    set_inode_times(machine, o, now, mtime)
    if machine.o_wb[o] < 0:
        inode_attach_wb(machine, t, o)
    if mode != _LAZYTIME and o not in machine.i_dirty:
        machine.i_dirty[o] = now


def wb_memcg_offline(machine: MachineState, m: cython.Py_ssize_t) -> None:
    """wb_memcg_offline: memcg ``m``'s cgwb is killed and joins the offline cgwbs (each of its inodes
    keeps it, and it keeps ``m``: ``cgwb_create``'s css_get); then the cleanup runs over them all."""
    inodes = machine.wb_inodes.pop(m, None)
    if inodes:
        for o in sorted(inodes):
            machine.wb_pinned[o] = m
            machine.mem.wb_pin[m] += 1
    if machine.wb_pinned:
        cleanup_offline_cgwbs(machine)


def cleanup_offline_cgwbs(machine: MachineState) -> None:
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
        if _any_inode_dirty(machine, inodes):
            continue
        a = machine.mem.nearest_online(m)
        attached = machine.wb_inodes.setdefault(a, set())
        for o in sorted(inodes):
            del pinned[o]
            machine.o_wb[o] = a
            attached.add(o)
        machine.mem.wb_pin[m] -= len(inodes)
        css_put(machine, m)


def _any_inode_dirty(machine: MachineState, inodes: list) -> cython.bint:
    """Is any inode of ``inodes`` dirty now (``inode_dirty``)? (A loop: ``cleanup_offline_cgwbs``
    asks it of every offline cgwb at every offline.)"""
    for o in inodes:
        if inode_dirty(machine, o):
            return True
    return False


def inode_detach_wb(machine: MachineState, o: int) -> None:
    """The inode of ``o`` is gone (deleted or evicted): drop its wb attachment or pin."""
    machine.i_dirty.pop(o, None)
    m = machine.o_wb[o]
    if m < 0:
        return
    machine.o_wb[o] = -1
    if machine.wb_pinned.pop(o, None) is not None:
        machine.mem.wb_pin[m] -= 1
        css_put(machine, m)
    else:
        machine.wb_inodes[m].discard(o)
