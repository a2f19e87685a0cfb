"""The page core: memory as runs of pages with identical state.

In: range operations from ``core.machine`` (split at a range, iterate the runs
and holes of a range, coalesce). Out: compact columns that ``core.reclaim``
views as numpy arrays without copying.

A run is a contiguous page range of one object (file, tmpfs object, anon
region) whose pages share state, owner memcg, map count, pin count, LRU age
and kind. Columns are ``array.array`` — compact like numpy, cheap to touch one
element at a time on the per-event path, and viewable as numpy
(``np.frombuffer``) for vectorised reclaim and sampling. Memory grows with the
number of distinct runs, never with bytes; accounting stays exact to 4 KiB.

A page range absent from an object's run list was never instantiated (or was
truncated); EVICTED runs are page-cache shadows, so a later access counts as
a refault (mm/workingset.c).
"""

from __future__ import annotations

import bisect
import enum
from array import array

import numpy as np

PAGE = 4096


class Kind(enum.IntEnum):
    """What backs a page: anonymous memory, page cache of a disk file, or shmem/tmpfs."""

    ANON = 0
    FILE = 1
    SHMEM = 2


class St(enum.IntEnum):
    """State of a run. FREE marks an unused slot of the table."""

    FREE = 0
    RESIDENT = 1
    SWAPPED = 2
    EVICTED = 3


RUN_COLUMNS = ("obj", "start", "npages", "state", "memcg", "origin", "mapc", "pinc", "age", "kind", "rflags",
               "dirty")
# int32 where it suffices (page offsets up to 8 TiB per object; ages in LRU quanta): state per run
# is what a machine's memory grows with. array('i') raises OverflowError rather than wrapping.
_TYPECODES = {"obj": "i", "start": "i", "npages": "i", "state": "b", "memcg": "i", "origin": "i",
              "mapc": "i", "pinc": "i", "age": "i", "kind": "b", "rflags": "b", "dirty": "i"}


def pages_of(nbytes: int) -> int:
    """Bytes -> 4 KiB pages, partial pages rounded up."""
    return -(-nbytes // PAGE)


class RunTable:
    """Columns of every run of a machine, plus each object's ordered run list.

    ``memcg`` is the charged memcg of a RESIDENT run, the swap record's memcg of a
    SWAPPED run, and -1 for EVICTED; ``origin`` the memcg that instantiated the
    pages (for misattribution); ``rflags`` bits belong to policies; ``age`` is the
    LRU quantum of the last access; ``dirty`` is 1 + the quantum a disk file's page cache was
    last written in, 0 if clean.
    """

    def __init__(self) -> None:
        for name in RUN_COLUMNS:
            setattr(self, name, array(_TYPECODES[name]))
        self.free: list[int] = []
        self.mutations = 0  # bumped whenever a run is split, dropped or changes owner
        # per object: run ids ordered by start, and their starts (for bisect)
        self.obj_runs: dict[int, list[int]] = {}
        self.obj_starts: dict[int, list[int]] = {}
        # per memcg: resident run ids charged to it, and swapped run ids recorded to it
        self.resident_of: dict[int, set[int]] = {}
        self.swapped_of: dict[int, set[int]] = {}

    def __len__(self) -> int:
        return len(self.state)

    def view(self, name: str) -> np.ndarray:
        """Zero-copy numpy view of one column; drop it before the table grows."""
        return np.frombuffer(getattr(self, name), dtype=np.dtype(getattr(self, name).typecode))

    # -- slots ----------------------------------------------------------------------
    def new(self, obj: int, start: int, npages: int, state: int, memcg: int, origin: int,
            mapc: int, pinc: int, age: int, kind: int, rflags: int = 0, dirty: int = 0) -> int:
        """Allocate a run slot with these fields (not yet linked into its object)."""
        if self.free:
            r = self.free.pop()
            self.obj[r], self.start[r], self.npages[r], self.state[r] = obj, start, npages, state
            self.memcg[r], self.origin[r], self.mapc[r], self.pinc[r] = memcg, origin, mapc, pinc
            self.age[r], self.kind[r], self.rflags[r], self.dirty[r] = age, kind, rflags, dirty
        else:
            r = len(self.state)
            self.obj.append(obj)
            self.start.append(start)
            self.npages.append(npages)
            self.state.append(state)
            self.memcg.append(memcg)
            self.origin.append(origin)
            self.mapc.append(mapc)
            self.pinc.append(pinc)
            self.age.append(age)
            self.kind.append(kind)
            self.rflags.append(rflags)
            self.dirty.append(dirty)
        if state == St.RESIDENT:
            self.resident_of.setdefault(memcg, set()).add(r)
        elif state == St.SWAPPED:
            self.swapped_of.setdefault(memcg, set()).add(r)
        return r

    def drop(self, r: int) -> None:
        """Unlink run ``r`` from its object and memcg sets and free its slot."""
        self.mutations += 1
        self._unindex(r)
        o = self.obj[r]
        runs = self.obj_runs[o]
        i = bisect.bisect_left(self.obj_starts[o], self.start[r])
        del runs[i]
        del self.obj_starts[o][i]
        self.state[r] = St.FREE
        self.free.append(r)

    def _index(self, r: int) -> None:
        st = self.state[r]
        if st == St.RESIDENT:
            self.resident_of.setdefault(self.memcg[r], set()).add(r)
        elif st == St.SWAPPED:
            self.swapped_of.setdefault(self.memcg[r], set()).add(r)

    def _unindex(self, r: int) -> None:
        st = self.state[r]
        if st == St.RESIDENT:
            self.resident_of[self.memcg[r]].discard(r)
        elif st == St.SWAPPED:
            self.swapped_of[self.memcg[r]].discard(r)

    def set_owner(self, r: int, state: int, memcg: int) -> None:
        """Change state and memcg of run ``r``, keeping the per-memcg sets right."""
        self.mutations += 1
        self._unindex(r)
        self.state[r] = state
        self.memcg[r] = memcg
        self._index(r)

    # -- objects ----------------------------------------------------------------------
    def link(self, r: int) -> None:
        """Insert run ``r`` into its object's ordered list."""
        o = self.obj[r]
        starts = self.obj_starts.setdefault(o, [])
        runs = self.obj_runs.setdefault(o, [])
        i = bisect.bisect_left(starts, self.start[r])
        starts.insert(i, self.start[r])
        runs.insert(i, r)

    def split(self, r: int, at: int) -> int:
        """Split run ``r`` at page ``at`` (start < at < end); returns the new upper run."""
        self.mutations += 1
        lo = self.start[r]
        upper = self.new(self.obj[r], at, lo + self.npages[r] - at, self.state[r], self.memcg[r],
                         self.origin[r], self.mapc[r], self.pinc[r], self.age[r], self.kind[r],
                         self.rflags[r], self.dirty[r])
        self.npages[r] = at - lo
        self.link(upper)
        return upper

    def segments(self, o: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """Runs and holes covering pages [lo, hi) of object ``o``, splitting runs at lo and hi.

        Returns (run id or -1 for a hole, seg_lo, seg_hi) in page order.
        """
        starts = self.obj_starts.get(o)
        if not starts:
            return [(-1, lo, hi)] if hi > lo else []
        runs = self.obj_runs[o]
        i = max(bisect.bisect_right(starts, lo) - 1, 0)
        out: list[tuple[int, int, int]] = []
        pos = lo
        npages, start = self.npages, self.start
        while i < len(runs) and pos < hi:
            r = runs[i]
            s = start[r]
            e = s + npages[r]
            if e <= pos:
                i += 1
                continue
            if s >= hi:
                break
            if s > pos:
                out.append((-1, pos, s))
                pos = s
            if s < pos:  # run straddles the range start
                r = self.split(r, pos)
                i += 1
                e = start[r] + npages[r]
            if e > hi:
                self.split(r, hi)
                e = hi
            out.append((r, pos, e))
            pos = e
            i += 1
        if pos < hi:
            out.append((-1, pos, hi))
        return out

    def coalesce(self, o: int, lo: int, hi: int) -> None:
        """Merge neighbouring runs of ``o`` overlapping [lo-1, hi] whose fields all match."""
        starts = self.obj_starts.get(o)
        if not starts:
            return
        runs = self.obj_runs[o]
        i = max(bisect.bisect_right(starts, lo) - 2, 0)
        start, npages = self.start, self.npages
        while i + 1 < len(runs):
            a, b = runs[i], runs[i + 1]
            if start[a] > hi:
                break
            if start[a] + npages[a] == start[b] and self._same(a, b):
                npages[a] += npages[b]
                self.drop(b)
            else:
                i += 1

    def _same(self, a: int, b: int) -> bool:
        return (self.state[a] == self.state[b] and self.memcg[a] == self.memcg[b]
                and self.age[a] == self.age[b] and self.mapc[a] == self.mapc[b]
                and self.pinc[a] == self.pinc[b] and self.origin[a] == self.origin[b]
                and self.rflags[a] == self.rflags[b] and self.dirty[a] == self.dirty[b])

    def runs_of_object(self, o: int) -> list[int]:
        """Run ids of object ``o`` in page order (a copy, safe to mutate the table while iterating)."""
        return list(self.obj_runs.get(o, ()))

    def forget_object(self, o: int) -> None:
        """Drop an object's (now empty) bookkeeping."""
        self.obj_runs.pop(o, None)
        self.obj_starts.pop(o, None)
