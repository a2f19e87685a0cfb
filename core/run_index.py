"""Each object's ordered runs: the searches of ``core.pages.RunTable``'s per-object index, and its pickled form.

In: an object's run starts (``RunTable.obj_starts[o]``: an ascending int32 ``array``) and a page.
Out: where the page falls among them (``starts_right``, ``starts_left``: ``bisect_right`` and
``bisect_left``). In the compiled build a C loop over the array's buffer, with no int object per
probe, which the run table's per-event paths call for nearly every event; the bisect module's
search of the same array in the pure one. ``pack_index`` / ``unpack_index``: the whole index as
four flat arrays for a pickle (an array per object would cost its own header in every checkpoint).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right  # by name: no attribute lookup per call

import numpy as np

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython


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

    #: ``a[i]`` of an int32 column (the compiled build's C version reads its buffer): the array's own item read
    i32_at = array.__getitem__
    #: ``a[i] = v`` (the compiled build's C version stores through the buffer what fits): the array's own store
    store_int = array.__setitem__

    def append_int(a: array, v: int) -> int:
        """``a.append(v)`` (the compiled build's C version stores through the buffer what fits). Returns 0."""
        a.append(v)
        return 0
