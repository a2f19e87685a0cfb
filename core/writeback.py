"""Dirty page cache, writeback, and the cgroup writeback contexts (cgwb) that pin a dying memcg.

In: writes to disk files, ``sync``, rmdir of a memcg, inode release (delete,
inode eviction). Out: the ``dirty`` column of runs, each disk file's attached
writeback memcg, and ``MemcgTable.wb_pin`` — the inodes whose dying cgwb still
holds a removed memcg. A mixin of ``core.machine.Machine``.

Kernel behaviour modelled (found by the real-kernel check, docs/kernel-validation.md D2/D3):
- a write dirties page cache; the flusher writes it back once it is older than
  vm.dirty_expire_centisecs (``dirty_expire_us``, default 30 s), and ``sync``
  writes everything back. A run counts as dirty while it was dirtied less than
  ``dirty_expire_us`` ago and no sync came since (a lazy stand-in for the flusher).
- drop_caches cannot drop dirty pages (``invalidate_mapping_pages`` skips them).
- the inode is attached to the writeback context of the memcg that first dirtied it
  (``inode_attach_wb``). At rmdir, ``wb_memcg_offline`` kills that memcg's cgwbs and
  ``cleanup_offline_cgwb`` switches their clean inodes to the nearest live
  ancestor's wb; a wb that still has dirty inodes is skipped and the cleanup is not
  re-run, so the cgwb (which holds a css reference, ``cgwb_create``) pins the dying
  memcg until the inode is released: the file deleted or its inode evicted
  (drop_caches with inodes, umount). This corrects KERNEL-MODEL.md §1, which has
  the switch as "asynchronous and short" for every inode.
Not modelled: foreign-inode switching (``inode_switch_wbs`` when another memcg
dominates an inode's writeback) and dirty throttling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State
from core.pages import Kind, St

if TYPE_CHECKING:
    from core.machine import Machine

# plain ints for the per-event paths: an IntEnum member lookup (``St.RESIDENT``) costs about
# 160 ns in Python 3.11, four times the comparison it feeds
_RESIDENT, _FILE, _DYING = int(St.RESIDENT), int(Kind.FILE), int(State.DYING)


class WritebackMixin:
    """Dirty state and cgwb pins of ``Machine`` (see the module docstring)."""

    def _wb_init(self: "Machine") -> None:
        self.o_wb: list[int] = []  # per object: memcg whose wb the inode is attached to, or -1
        self.wb_inodes: dict[int, set[int]] = {}  # memcg -> inodes attached to its (live) wb
        self.wb_pinned: dict[int, int] = {}  # inode -> dying memcg its cgwb pins

    def dirty_now(self: "Machine", r: int) -> bool:
        """Is run ``r`` dirty at the current time (written, not yet written back)?"""
        ts = self.runs.dirty[r]  # 1 + the LRU quantum of the last write, 0 when clean
        return ts > 0 and self.now_us - (ts - 1) * self.cfg.age_quantum_us < self.cfg.dirty_expire_us

    def _stamp_dirty(self: "Machine", o: int, lo: int, hi: int, stamp: int) -> None:
        """A write dirtied [lo, hi) of disk file ``o``: stamp its resident pages, then coalesce.

        ``stamp`` is 1 + the LRU quantum of the write (0 means clean). ``fault_range``
        stamps a write's pages itself when it can, and calls this otherwise.
        """
        R = self.runs
        dirty, state = R.dirty, R.state
        for r, s, e in R.pieces(o, lo, hi):  # unsplit: split only the runs whose stamp changes
            if r >= 0 and state[r] == _RESIDENT and dirty[r] != stamp:
                dirty[R.isolate(r, s, e)] = stamp
        R.coalesce(o, lo, hi)

    def attach_wb(self: "Machine", t: int, o: int) -> None:
        """inode_attach_wb: the first writer's memcg owns the inode's writeback context."""
        if self.o_wb[o] < 0:
            m = self.t_cg[t]
            self.o_wb[o] = m
            self.wb_inodes.setdefault(m, set()).add(o)

    def sync_all(self: "Machine") -> None:
        """sync(2): every dirty page is written back (cgwb pins taken at rmdir stay)."""
        if len(self.runs):
            self.runs.view("dirty")[:] = 0

    def inode_dirty(self: "Machine", o: int) -> bool:
        """Does disk file ``o`` have dirty pages now?"""
        return any(self.dirty_now(r) for r in self.runs.obj_runs.get(o, ()))

    def cgwb_offline(self: "Machine", m: int) -> None:
        """wb_memcg_offline + cleanup_offline_cgwb: switch clean inodes up, pin on dirty ones."""
        for o in sorted(self.wb_inodes.pop(m, ())):
            if self.inode_dirty(o):
                self.wb_pinned[o] = m
                self.mem.wb_pin[m] += 1
            else:
                a = self.mem.nearest_online(m)
                self.o_wb[o] = a
                self.wb_inodes.setdefault(a, set()).add(o)

    def inode_released(self: "Machine", o: int) -> None:
        """The inode of ``o`` is gone (deleted or evicted): drop its wb attachment or pin."""
        m = self.o_wb[o]
        if m < 0:
            return
        self.o_wb[o] = -1
        if self.wb_pinned.pop(o, None) is not None:
            self.mem.wb_pin[m] -= 1
            if self.mem.state[m] == _DYING:
                self._release_q.append(m)
        else:
            self.wb_inodes[m].discard(o)

    def evict_inodes(self: "Machine") -> None:
        """drop_caches=2 (prune_icache_sb): release unused disk-file inodes with no pages left.

        An inode with mappings, pins, resident or dirty pages stays; an evicted
        inode also loses its shadow entries.
        """
        R = self.runs
        for o, kind in enumerate(self.o_kind):
            if kind != _FILE or not self.o_alive[o] or self.o_maps[o] or self.o_pins[o]:
                continue
            runs = R.obj_runs.get(o, ())
            if any(R.state[r] == _RESIDENT for r in runs):
                continue
            for r in list(runs):
                R.drop(r)  # shadows only: nothing charged
            self.inode_released(o)
