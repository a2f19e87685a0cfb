"""Each object's ordered runs: the searches of ``core.pages.RunTable``'s per-object index, and its pickled form.

In: an object's run starts (``RunTable.obj_starts[o]``: an ascending int32 ``array``) and a page.
Out: where the page falls among them (``starts_right``, ``starts_left``: ``bisect_right`` and
``bisect_left``). In the compiled build a C loop over the array's buffer, with no int object per
probe, which the run table's per-event paths call for nearly every event; the bisect module's
search of the same array in the pure one. ``pack_index`` / ``unpack_index``: the whole index as
four flat arrays for a pickle (an array per object would cost its own header in every checkpoint).
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_right  # by name: no attribute lookup per call

import numpy as np

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

_Q = array("q")  # what an object's segment arrays are cloned from: an empty int64 array


def starts_right(starts: array, x: cython.longlong) -> cython.Py_ssize_t:
    """``bisect_right`` of page ``x`` in an object's run starts (ascending int32): a C loop over
    the array's buffer when compiled, the bisect module's on the array in the pure build."""
    if not cython.compiled:
        return bisect_right(starts, x)
    a: cython.p_int = starts.data.as_ints
    lo: cython.Py_ssize_t = 0
    hi: cython.Py_ssize_t = starts.ob_size
    mid: cython.Py_ssize_t
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def starts_left(starts: array, x: cython.longlong) -> cython.Py_ssize_t:
    """``bisect_left`` of page ``x`` in an object's run starts: on integers, the starts below ``x``
    are those not above ``x - 1`` (``starts_right`` of ``x - 1``)."""
    return starts_right(starts, x - 1)


def object_segments(starts: array | None, runs: array | None, start: array, npages: array, lo: cython.longlong,
                    hi: cython.longlong) -> array:
    """The runs and holes covering pages [lo, hi) of one object, unsplit, in page order, as one flat int64
    array of (run or -1 for a hole, seg_lo, seg_hi). In: the object's run starts and run ids (None: no
    runs) and the run table's start and npages columns. The first and last run may extend beyond the range.
    ``RunTable.pieces`` gives these as tuples; the fault path reads them flat (``fault_pieces``)."""
    out: array
    if hi <= lo:
        return clone(_Q, 0, False)
    if starts is None or runs is None or not len(starts):  # one hole
        out = clone(_Q, 3, False)
        out[0], out[1], out[2] = -1, lo, hi
        return out
    st: cython.p_int
    np_: cython.p_int
    rp: cython.p_int
    out_p: cython.p_longlong
    if cython.compiled:
        st, np_, rp = start.data.as_ints, npages.data.as_ints, runs.data.as_ints
    else:
        st, np_, rp = start, npages, runs
    i: cython.Py_ssize_t = starts_right(starts, lo) - 1
    n: cython.Py_ssize_t = len(runs)
    r: cython.Py_ssize_t
    s: cython.longlong
    e: cython.longlong
    pos: cython.longlong = lo
    if i < 0:
        i = 0
    elif st[rp[i]] + np_[rp[i]] <= pos:  # the run before lo ends at or before it
        i += 1
    j: cython.Py_ssize_t = i
    while j < n and st[rp[j]] < hi:  # the runs the range meets: at most one hole before each, and one after
        j += 1
    out = clone(_Q, 3 * (2 * (j - i) + 1), False)
    if cython.compiled:
        out_p = out.data.as_longlongs
    else:
        out_p = out
    w: cython.Py_ssize_t = 0
    while i < j:
        r = rp[i]
        s = st[r]
        if s > pos:  # a hole before the run
            out_p[w], out_p[w + 1], out_p[w + 2] = -1, pos, s
            w += 3
            pos = s
        e = min(s + np_[r], hi)
        out_p[w], out_p[w + 1], out_p[w + 2] = r, pos, e
        w += 3
        pos = e
        i += 1
    if pos < hi:
        out_p[w], out_p[w + 1], out_p[w + 2] = -1, pos, hi
        w += 3
    resize_smart(out, w)
    return out


def pack_index(obj_runs: list, obj_starts: list, new_id: np.ndarray | None) -> tuple[tuple, array]:
    """The objects' run index as flat arrays, in object order: ((objects with a list, their run counts,
    their run ids renumbered by ``new_id`` when given), their starts)."""
    objs = array("i", [o for o, runs in enumerate(obj_runs) if runs is not None])
    counts = array("i", [len(obj_runs[o]) for o in objs])
    runs = array("i", b"".join([obj_runs[o] for o in objs]))
    if new_id is not None:
        runs = array("i", new_id[np.frombuffer(runs, dtype=np.int32)].astype(np.int32).tobytes())
    return (objs, counts, runs), array("i", b"".join([obj_starts[o] for o in objs]))


def unpack_index(packed: tuple, starts: array) -> tuple[list, list]:
    """``pack_index``'s arrays back into the per-object index: (run ids by object, starts by object),
    lists indexed by object slot with None for an object without a list."""
    objs, counts, runs = packed
    size = max(objs) + 1 if objs else 0
    by_runs: list = [None] * size
    by_starts: list = [None] * size
    at = 0
    for o, n in zip(objs, counts):
        by_runs[o], by_starts[o] = runs[at:at + n], starts[at:at + n]
        at += n
    return by_runs, by_starts


if not cython.compiled:  # compiled: the C version in run_index.pxd (resize and memmove, no Python call)
    def insert_i32(a: array, i: int, v: int) -> int:
        """Insert ``v`` at index ``i`` (0 <= i <= len(a)) of an int32 array; IndexError outside (where
        ``array.insert`` would clamp). Returns 0."""
        if not 0 <= i <= len(a):
            raise IndexError("array insertion index out of range")
        a.insert(i, v)
        return 0

    def clone(template: array, n: int, zero: bool) -> array:
        """A new array of ``template``'s type and ``n`` elements (zeros here; uninitialised when compiled)."""
        return array(template.typecode, bytes(template.itemsize * n))

    def resize_smart(a: array, n: int) -> int:
        """Cut ``a`` to its first ``n`` elements (the compiled build keeps the allocation). Returns 0."""
        del a[n:]
        return 0

    # (operator's functions, not the array's slot wrappers: the same item access at half the call's cost)
    #: ``a[i]`` of an int32 column (the compiled build's C version reads its buffer): the array's own item read
    i32_at = operator.getitem
    #: ``a[i]`` of an int64 column (the compiled build's C version reads its buffer): the same item read
    i64_at = operator.getitem
    #: ``a[i]`` of an int8 column (the compiled build's C version reads its buffer): the same item read
    i8_at = operator.getitem
    #: ``del a[i]`` (the compiled build's C version moves the buffer's tail): the array's own delete
    delete_at = operator.delitem
    #: ``a[i] = v`` (the compiled build's C version stores through the buffer what fits): the array's own store
    store_int = operator.setitem

    def append_int(a: array, v: int) -> int:
        """``a.append(v)`` (the compiled build's C version stores through the buffer what fits). Returns 0."""
        a.append(v)
        return 0
