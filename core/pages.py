"""The page core: memory as runs of pages with identical state.

In: range operations from ``core.machine`` (split at a range, iterate the runs
and holes of a range, coalesce; on the per-event paths, iterate them unsplit and
split only the runs whose fields change: ``pieces``/``isolate``). Out: compact
columns that ``core.vmscan`` views as numpy arrays without copying.

A run is a contiguous page range of one object (file, tmpfs object, anon region) whose pages
share state, owner memcg, map count, pin count, LRU age and kind. Columns are ``array.array`` —
compact like numpy, cheap to touch one element at a time on the per-event path, and viewable as
numpy (``np.frombuffer``) for vectorised reclaim and sampling. Memory grows with the number of
distinct runs, never with bytes; accounting stays exact to 4 KiB.

A page range absent from an object's run list was never instantiated (or was truncated);
EVICTED runs are page-cache shadows, so a later access counts as a refault (mm/workingset.c).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np

from core.mm_types import PAGE, PARKED, Kind, St, pages_of  # noqa: F401  (their home before mm_types)
from core.run_index import object_segments, pack_index, starts_left, starts_right, unpack_index

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython
if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import append_int, delete_at, i32_at, insert_i32, store_int

#: the names of ``RunTable``'s columns, in declaration order
RUN_COLUMNS = ("obj", "start", "npages", "state", "memcg", "origin", "mapc", "pinc", "age", "kind", "rflags",
               "dirty")
#: every field of a ``RunTable``: what its pickle holds (the compiled build's class has no ``__dict__``)
_RUN_STATE = RUN_COLUMNS + ("free", "mutations", "obj_runs", "obj_starts")


# plain ints for the per-event paths: comparing an array element with an IntEnum member costs more
_FREE, _RESIDENT, _SWAPPED = int(St.FREE), int(St.RESIDENT), int(St.SWAPPED)
_PARKED = int(PARKED)
_NO_I32 = array("i")  # copied (never changed) for a new object's run index


class RunTable:
    """Columns of every run of a machine, plus each object's ordered run list.

    ``memcg`` is the charged memcg of a RESIDENT run, the swap record's memcg of a SWAPPED run, and
    -1 for EVICTED; ``origin`` the memcg that instantiated the pages (for misattribution); ``rflags``
    bits belong to policies; ``age`` is the LRU quantum of the last access; ``dirty`` is 1 + the
    quantum a disk file's page cache was last written in, 0 if clean.
    """

    # the columns, one entry per run slot (``RUN_COLUMNS`` order), declared so that every field has
    # a static type. int32 ('i') where it suffices (page offsets up to 8 TiB per object; ages in LRU
    # quanta), int8 ('b') for state, kind and rflags: state per run is what a machine's memory grows
    # with. array('i') raises OverflowError rather than wrapping.
    obj: array[int]
    start: array[int]
    npages: array[int]
    state: array[int]
    memcg: array[int]
    origin: array[int]
    mapc: array[int]
    pinc: array[int]
    age: array[int]
    kind: array[int]
    rflags: array[int]
    dirty: array[int]

    def __init__(self) -> None:
        for name in RUN_COLUMNS:  # int8 for state, kind and rflags, int32 for the others (above)
            setattr(self, name, array("b" if name in ("state", "kind", "rflags") else "i"))
        self.free: list[int] = []
        self.mutations = 0  # bumped whenever a run is split, dropped or changes owner
        # resident runs charged to a memcg not their origin, resident PARKED runs: kept (compiled build) by every
        # writer of state, memcg, origin and rflags (``_tally``): a sample scans the runs only if one exists
        self.foreign = 0
        self.parked = 0
        # per object slot: run ids ordered by start, and their starts (for bisect); int32 arrays, which the
        # compiled build searches and reads through their buffers (``starts_right``, ``starts_left``); None
        # (or past the end) for an object without runs. Lists, not dicts: no int object or hash per lookup
        self.obj_runs: list[array | None] = []
        self.obj_starts: list[array | None] = []
        # No per-memcg index of runs: the few walks that need one scan the columns (``resident_ids``); sets
        # of run ids per memcg took ~20 % of a machine's memory and a set operation per run change.

    def __len__(self) -> int:
        return len(self.state)

    def __getstate__(self) -> dict:
        """The table for pickling, without its free slots: live runs renumbered in slot order.

        Out: the fields by name (``_RUN_STATE``) with compacted columns, the objects' run index packed
        (``core.run_index.pack_index``) with the new ids, and an empty free list; the table is unchanged.
        Under churn about half the slots are free (a machine-day ends with 17.7k of 36.7k). Results do
        not depend on run ids (``tests/test_core_fastpath_ids.py``): a restored table behaves identically.
        """
        st = {name: getattr(self, name) for name in _RUN_STATE}
        new_id = None
        if self.free:
            keep = np.flatnonzero(self.view("state") != _FREE)
            new_id = np.full(len(self.state), -1, dtype=np.int64)
            new_id[keep] = np.arange(keep.size)
            for name in RUN_COLUMNS:
                st[name] = array(getattr(self, name).typecode, self.view(name)[keep].tobytes())
            st["free"] = []
        st["obj_runs"], st["obj_starts"] = pack_index(self.obj_runs, self.obj_starts, new_id)
        return st

    def __setstate__(self, st: dict) -> None:
        """Restore the fields ``__getstate__`` gave."""
        for name in RUN_COLUMNS + ("free", "mutations"):
            setattr(self, name, st[name])
        self.obj_runs, self.obj_starts = unpack_index(st["obj_runs"], st["obj_starts"])
        self.foreign, self.parked = self.tallies()

    def tallies(self) -> tuple[int, int]:
        """(``foreign``, ``parked``) counted from the columns: what ``_tally`` keeps."""
        res = self.view("state") == _RESIDENT
        parked = (self.view("rflags") & _PARKED) != 0
        return int((res & (self.view("memcg") != self.view("origin"))).sum()), int((res & parked).sum())

    def __reduce__(self) -> tuple:
        """Pickle as ``_restore_runs(fields)``: the same in the pure and the compiled build."""
        return _restore_runs, (self.__getstate__(),)

    def view(self, name: str) -> np.ndarray:
        """Zero-copy numpy view of one column; drop it before the table grows."""
        return np.frombuffer(getattr(self, name), dtype=np.dtype(getattr(self, name).typecode))

    # -- slots ----------------------------------------------------------------------
    def new(self, obj: cython.int, start: cython.int, npages: cython.int, state: cython.schar, memcg: cython.int,
            origin: cython.int, mapc: cython.int, pinc: cython.int, age: cython.int, kind: cython.schar,
            rflags: cython.schar = 0, dirty: cython.int = 0) -> cython.Py_ssize_t:
        """Allocate a run slot with these fields (not yet linked into its object). A value out of its column's
        range raises OverflowError (C arguments, or the pure build's array), before the compiled build takes a slot."""
        if not self.free:  # a new slot at the end: zeros, filled below as a free slot is
            for col in (self.obj, self.start, self.npages, self.state, self.memcg, self.origin, self.mapc, self.pinc,
                        self.age, self.kind, self.rflags, self.dirty):
                append_int(col, 0)
            self.free.append(len(self.state) - 1)
        r: cython.Py_ssize_t = self.free.pop()
        if cython.compiled:  # through the columns' buffers: no element object per field
            self.obj.data.as_ints[r], self.start.data.as_ints[r] = obj, start
            self.npages.data.as_ints[r], self.state.data.as_schars[r] = npages, state
            self.memcg.data.as_ints[r], self.origin.data.as_ints[r] = memcg, origin
            self.mapc.data.as_ints[r], self.pinc.data.as_ints[r] = mapc, pinc
            self.age.data.as_ints[r], self.kind.data.as_schars[r] = age, kind
            self.rflags.data.as_schars[r], self.dirty.data.as_ints[r] = rflags, dirty
        else:
            self.obj[r], self.start[r], self.npages[r], self.state[r] = obj, start, npages, state
            self.memcg[r], self.origin[r], self.mapc[r], self.pinc[r] = memcg, origin, mapc, pinc
            self.age[r], self.kind[r], self.rflags[r], self.dirty[r] = age, kind, rflags, dirty
        if cython.compiled:  # (a free slot counted nothing)
            self._tally(r, 1)
        return r

    def _tally(self, r: cython.Py_ssize_t, sign: cython.int) -> cython.int:
        """Add ``sign`` times run ``r``'s share to ``foreign`` and ``parked`` (see ``__init__``); its writers
        call it with -1 before they change state, memcg, origin or rflags and with +1 after. Returns 0.
        Compiled build only: the pure one scans the columns at a sample (the reference), and a call per
        write would slow its per-event paths."""
        if cython.compiled and 0 <= r < self.state.ob_size and self.state.data.as_schars[r] == _RESIDENT:
            self.foreign += sign if self.memcg.data.as_ints[r] != self.origin.data.as_ints[r] else 0
            self.parked += sign if self.rflags.data.as_schars[r] & _PARKED else 0
        return 0

    def retag(self, r: cython.Py_ssize_t, origin: cython.int, rflags: cython.schar):
        """Set run ``r``'s origin (the memcg that instantiated its pages) and flags."""
        if cython.compiled:
            self._tally(r, -1)
        store_int(self.origin, r, origin)  # (compiled: through the buffers)
        store_int(self.rflags, r, rflags)
        if cython.compiled:
            self._tally(r, 1)

    def drop(self, r: cython.Py_ssize_t):
        """Unlink run ``r`` from its object and memcg sets and free its slot."""
        o: cython.Py_ssize_t = i32_at(self.obj, r)
        starts: array = self.obj_starts[o]
        at: cython.int = i32_at(self.start, r)
        # freeing a whole object drops its runs in page order: each is first when its turn comes
        i = 0 if starts[0] == at else starts_left(starts, at)
        self._drop_at(r, self.obj_runs[o], starts, i)

    def set_owner(self, r: cython.Py_ssize_t, state: cython.schar, memcg: cython.int):
        """Change state and memcg of run ``r``."""
        self.mutations += 1
        if cython.compiled and 0 <= r < self.state.ob_size:  # through the columns' buffers
            self._tally(r, -1)
            self.state.data.as_schars[r], self.memcg.data.as_ints[r] = state, memcg
            self._tally(r, 1)
        else:
            self.state[r], self.memcg[r] = state, memcg

    def resident_ids(self, memcg: int) -> np.ndarray:
        """Ids of the resident runs charged to ``memcg``, ascending (a scan of the columns)."""
        if not len(self.state):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero((self.view("state") == _RESIDENT) & (self.view("memcg") == memcg))

    def swapped_ids(self, memcg: int | None = None) -> np.ndarray:
        """Ids of the swapped runs whose record names ``memcg`` (None: every swapped run), ascending."""
        if not len(self.state):
            return np.zeros(0, dtype=np.int64)
        swapped = self.view("state") == _SWAPPED
        return np.flatnonzero(swapped if memcg is None else swapped & (self.view("memcg") == memcg))

    # -- objects ----------------------------------------------------------------------
    def link(self, r: cython.Py_ssize_t):
        """Insert run ``r`` into its object's ordered list."""
        o: cython.Py_ssize_t = i32_at(self.obj, r)
        at: cython.int = i32_at(self.start, r)
        if o >= len(self.obj_runs) or self.obj_runs[o] is None:  # its first run (copies of an empty array: no constructor)
            if o >= len(self.obj_runs):
                self.obj_runs += [None] * (o + 1 - len(self.obj_runs))
                self.obj_starts += [None] * (o + 1 - len(self.obj_starts))
            self.obj_runs[o], self.obj_starts[o] = _NO_I32[:], _NO_I32[:]
        runs: array = self.obj_runs[o]
        starts: array = self.obj_starts[o]
        i: cython.Py_ssize_t = starts_left(starts, at)
        insert_i32(starts, i, at)
        insert_i32(runs, i, r)

    def split(self, r: cython.Py_ssize_t, at: cython.int) -> cython.Py_ssize_t:
        """Split run ``r`` at page ``at`` (start < at < end); returns the new upper run."""
        o: cython.Py_ssize_t = i32_at(self.obj, r)
        starts: array = self.obj_starts[o]
        return self._split_at(r, at, self.obj_runs[o], starts, starts_left(starts, i32_at(self.start, r)))

    def _copy(self, r: cython.Py_ssize_t, start: cython.int, npages: cython.int) -> cython.Py_ssize_t:
        """A new run slot with the fields of run ``r`` but pages [start, start + npages) (not linked)."""
        if cython.compiled and self.free:  # a free slot filled through the columns' buffers
            x: cython.Py_ssize_t = self.free.pop()
            self.obj.data.as_ints[x] = self.obj.data.as_ints[r]
            self.start.data.as_ints[x] = start
            self.npages.data.as_ints[x] = npages
            self.state.data.as_schars[x] = self.state.data.as_schars[r]
            self.memcg.data.as_ints[x] = self.memcg.data.as_ints[r]
            self.origin.data.as_ints[x] = self.origin.data.as_ints[r]
            self.mapc.data.as_ints[x] = self.mapc.data.as_ints[r]
            self.pinc.data.as_ints[x] = self.pinc.data.as_ints[r]
            self.age.data.as_ints[x] = self.age.data.as_ints[r]
            self.kind.data.as_schars[x] = self.kind.data.as_schars[r]
            self.rflags.data.as_schars[x] = self.rflags.data.as_schars[r]
            self.dirty.data.as_ints[x] = self.dirty.data.as_ints[r]
            self._tally(x, 1)  # (a free slot counted nothing)
            return x
        return self.new(self.obj[r], start, npages, self.state[r], self.memcg[r], self.origin[r], self.mapc[r],
                        self.pinc[r], self.age[r], self.kind[r], self.rflags[r], self.dirty[r])

    def _split_at(self, r: cython.Py_ssize_t, at: cython.int, runs: array, starts: array,
                  i: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """``split`` when the caller knows ``r`` sits at index ``i`` of its object's lists: the upper
        run goes right after ``r`` (where ``link`` would bisect it to), without a bisect."""
        self.mutations += 1
        npages: cython.p_int
        lo: cython.int
        if cython.compiled:
            lo = self.start.data.as_ints[r]
            npages = self.npages.data.as_ints
        else:
            lo, npages = self.start[r], self.npages
        upper = self._copy(r, at, lo + npages[r] - at)
        if cython.compiled:
            npages = self.npages.data.as_ints  # _copy may have grown (moved) the column
        npages[r] = at - lo
        insert_i32(starts, i + 1, at)
        insert_i32(runs, i + 1, upper)
        return upper

    def _drop_at(self, r: cython.Py_ssize_t, runs: array, starts: array, i: cython.Py_ssize_t):
        """``drop`` when the caller knows ``r`` sits at index ``i`` of its object's lists."""
        self.mutations += 1
        delete_at(runs, i)  # (compiled: a memmove, no Python call)
        delete_at(starts, i)
        if cython.compiled:
            self._tally(r, -1)
        store_int(self.state, r, _FREE)
        self.free.append(r)

    def segments(self, o: cython.int, lo: cython.longlong, hi: cython.longlong) -> list:
        """Runs and holes covering pages [lo, hi) of object ``o``, splitting runs at lo and hi: (run id or -1
        for a hole, seg_lo, seg_hi) in page order, ``pieces`` after ``split_ends`` (callers that change every run)."""
        self.split_ends(o, lo, hi)
        return self.pieces(o, lo, hi)

    def coalesce(self, o: cython.int, lo: cython.longlong, hi: cython.longlong):
        """Merge neighbouring runs of ``o`` overlapping [lo-1, hi] whose fields all match.

        The window starts at the run just before page ``lo`` as it is after a split at
        ``lo``: when a run still straddles ``lo`` (the lazy paths, ``pieces`` + ``isolate``,
        split only what changes), that run itself is where a split would have left the
        lower half, so the same pairs are compared and the same runs result.
        """
        starts: array | None = (self.obj_starts[o] if o < len(self.obj_starts) else None)
        if not starts:
            return
        runs: array = self.obj_runs[o]
        i: cython.Py_ssize_t = starts_right(starts, lo) - 1
        a: cython.Py_ssize_t
        b: cython.Py_ssize_t
        sa: cython.longlong
        # every field of the two runs compared inline: this loop runs for nearly every event,
        # and a call per neighbour pair cost more than the test
        start: cython.p_int
        npages: cython.p_int
        age: cython.p_int
        dirty: cython.p_int
        state: cython.p_schar
        memcg: cython.p_int
        mapc: cython.p_int
        pinc: cython.p_int
        origin: cython.p_int
        rflags: cython.p_schar
        rp: cython.p_int  # the object's run ids
        if cython.compiled:  # the columns' buffers: this loop grows none of them
            rp = runs.data.as_ints
            start, npages, age, dirty = (self.start.data.as_ints, self.npages.data.as_ints, self.age.data.as_ints,
                                         self.dirty.data.as_ints)
            state, memcg, mapc, pinc = (self.state.data.as_schars, self.memcg.data.as_ints, self.mapc.data.as_ints,
                                        self.pinc.data.as_ints)
            origin, rflags = self.origin.data.as_ints, self.rflags.data.as_schars
        else:
            rp = runs
            start, npages, age, dirty = self.start, self.npages, self.age, self.dirty
            state, memcg, mapc, pinc, origin, rflags = (self.state, self.memcg, self.mapc, self.pinc, self.origin,
                                                        self.rflags)
        if i >= 0:
            a = rp[i]
            sa = start[a]
            if not sa < lo < sa + npages[a]:
                i -= 1
        if i < 0:
            i = 0
        last: cython.Py_ssize_t = len(runs) - 1
        while i < last:
            a, b = rp[i], rp[i + 1]
            sa = start[a]
            if sa > hi:
                break
            # age, then dirty, first: they are what usually differs between neighbours
            if (sa + npages[a] == start[b] and age[a] == age[b] and dirty[a] == dirty[b]
                    and state[a] == state[b] and memcg[a] == memcg[b] and mapc[a] == mapc[b]
                    and pinc[a] == pinc[b] and origin[a] == origin[b] and rflags[a] == rflags[b]):
                npages[a] += npages[b]
                self._drop_at(b, runs, starts, i + 1)
                if cython.compiled:  # the deletion may have moved the run ids
                    rp = runs.data.as_ints
                last -= 1
            else:
                i += 1

    # -- lazy splitting: split only the runs whose fields change ------------------------
    def pieces(self, o: cython.int, lo: cython.longlong, hi: cython.longlong) -> list:
        """Runs and holes covering pages [lo, hi) of ``o``, WITHOUT splitting: (run or -1, seg_lo, seg_hi).

        The first and last run may extend beyond the range; a caller that changes a
        run's fields isolates its segment first (``isolate``). Splitting every range
        up front, as ``segments`` does, cost a new slot per split and a drop when
        ``coalesce`` merged the unchanged halves back: most accesses change nothing
        at the range ends (a re-read within one LRU quantum, an append).
        """
        flat: array = object_segments(self.obj_starts[o] if o < len(self.obj_starts) else None,
                                      self.obj_runs[o] if o < len(self.obj_runs) else None, self.start,
                                      self.npages, lo, hi)
        fp: cython.p_longlong
        if cython.compiled:
            fp = flat.data.as_longlongs
        else:
            fp = flat
        out: list[tuple[int, int, int]] = []
        k: cython.Py_ssize_t
        for k in range(0, len(flat), 3):
            out.append((fp[k], fp[k + 1], fp[k + 2]))
        return out

    def isolate(self, r: cython.Py_ssize_t, lo: cython.longlong, hi: cython.longlong) -> cython.Py_ssize_t:
        """Split run ``r`` so that its pages [lo, hi) form a run of their own; returns that run."""
        s: cython.longlong
        e: cython.longlong
        if cython.compiled:
            s = self.start.data.as_ints[r]
            e = s + self.npages.data.as_ints[r]
        else:
            s = self.start[r]
            e = s + self.npages[r]
        if s == lo and e == hi:
            return r
        o: cython.Py_ssize_t = i32_at(self.obj, r)
        runs: array = self.obj_runs[o]
        starts: array = self.obj_starts[o]
        i: cython.Py_ssize_t = starts_left(starts, s)
        if s < lo:
            r = self._split_at(r, lo, runs, starts, i)
            i += 1
        if hi < e:
            self._split_at(r, hi, runs, starts, i)
        return r

    def touch(self, r: cython.Py_ssize_t, lo: cython.longlong, hi: cython.longlong, age: cython.int,
              dirty: cython.int) -> cython.Py_ssize_t:
        """Pages [lo, hi) of run ``r`` accessed in LRU quantum ``age``, and written if ``dirty`` > 0 (its
        stamp): isolated as a run of their own (``isolate``), aged and stamped; returns that run."""
        x: cython.Py_ssize_t = self.isolate(r, lo, hi)
        if cython.compiled:  # (after isolate: a split may have moved the columns)
            self.age.data.as_ints[x] = age
            if dirty:
                self.dirty.data.as_ints[x] = dirty
        else:
            self.age[x] = age
            if dirty:
                self.dirty[x] = dirty
        return x

    def split_ends(self, o: cython.int, lo: cython.longlong, hi: cython.longlong):
        """Split the runs straddling page ``lo`` or ``hi`` of ``o`` (what ``segments`` leaves behind)."""
        starts: array | None = (self.obj_starts[o] if o < len(self.obj_starts) else None)
        if not starts or hi <= lo:
            return
        runs: array = self.obj_runs[o]
        i: cython.Py_ssize_t
        s: cython.longlong
        at: cython.longlong
        k: cython.int
        for k in range(2):  # lo, then hi (a C loop: no tuple of Python ints)
            at = hi if k else lo
            i = starts_right(starts, at) - 1
            if i >= 0:
                s = i32_at(starts, i)
                if s < at < s + i32_at(self.npages, i32_at(runs, i)):
                    self._split_at(i32_at(runs, i), at, runs, starts, i)

    def add_resident(self, o: cython.int, start: cython.int, npages: cython.int, memcg: cython.int, mapc: cython.int,
                     age: cython.int, kind: cython.schar, dirty: cython.int = 0) -> cython.Py_ssize_t:
        """Instantiate resident pages [start, start+npages) of ``o`` (a hole), linked; returns the run.

        When the run just before the hole ends at ``start`` and carries exactly the fields the
        new pages get, it grows instead (no slot, no later merge): the run ``coalesce``
        would have left, since the pair is always inside its window.
        """
        starts: array | None = (self.obj_starts[o] if o < len(self.obj_starts) else None)
        p: cython.Py_ssize_t
        i: cython.Py_ssize_t
        if starts:
            i = starts_left(starts, start)
            if i:
                p = i32_at(self.obj_runs[o], i - 1)
                if cython.compiled:  # the fields of the run before, through the columns' buffers
                    if (self.start.data.as_ints[p] + self.npages.data.as_ints[p] == start
                            and self.age.data.as_ints[p] == age and self.dirty.data.as_ints[p] == dirty
                            and self.state.data.as_schars[p] == _RESIDENT and self.memcg.data.as_ints[p] == memcg
                            and self.mapc.data.as_ints[p] == mapc and self.pinc.data.as_ints[p] == 0
                            and self.origin.data.as_ints[p] == memcg and self.rflags.data.as_schars[p] == 0):
                        store_int(self.npages, p, self.npages.data.as_ints[p] + npages)
                        return p
                elif (starts[i - 1] + self.npages[p] == start and self.age[p] == age and self.dirty[p] == dirty
                        and self.state[p] == _RESIDENT and self.memcg[p] == memcg and self.mapc[p] == mapc
                        and self.pinc[p] == 0 and self.origin[p] == memcg and self.rflags[p] == 0):
                    self.npages[p] += npages
                    return p
        r = self.new(o, start, npages, _RESIDENT, memcg, memcg, mapc, 0, age, kind, 0, dirty)
        self.link(r)
        return r

    def page_order(self, ids: Iterable[int]) -> list[int]:
        """Run ids sorted by (object, first page): the canonical order wherever order reaches a result.

        Run ids are an artefact of slot allocation (fast paths skip or reuse slots), so no
        result may depend on their order or value.
        """
        obj, start = self.obj, self.start
        return sorted(ids, key=lambda r: (obj[r], start[r]))

    def drop_object(self, o: cython.int):
        """Drop every run of ``o`` and its lists at once (``drop`` of each run would memmove list heads)."""
        runs: array | None = (self.obj_runs[o] if o < len(self.obj_runs) else None)
        if runs is None:
            return
        self.obj_runs[o] = self.obj_starts[o] = None
        self.mutations += len(runs)
        i: cython.Py_ssize_t
        r: cython.Py_ssize_t
        for i in range(len(runs)):
            r = i32_at(runs, i)
            if cython.compiled:
                self._tally(r, -1)
            store_int(self.state, r, _FREE)
            self.free.append(r)


def _restore_runs(st: dict) -> RunTable:
    """A ``RunTable`` rebuilt from its pickled fields (``RunTable.__reduce__``)."""
    table = RunTable.__new__(RunTable)
    table.__setstate__(st)
    return table
