"""Each object's ordered runs: the searches of ``core.pages.RunTable``'s per-object index.

In: an object's run starts (``RunTable.obj_starts[o]``: an ascending int32 ``array``) and a page.
Out: where the page falls among them (``starts_right``, ``starts_left``: ``bisect_right`` and
``bisect_left``). In the compiled build a C loop over the array's buffer, with no int object per
probe, which the run table's per-event paths call for nearly every event; the bisect module's
search of the same array in the pure one.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right  # by name: no attribute lookup per call

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
    """``bisect_left`` of page ``x`` in an object's run starts, as ``starts_right``."""
    if not cython.compiled:
        return bisect_left(starts, x)
    a: cython.p_int = starts.data.as_ints
    lo: cython.Py_ssize_t = 0
    hi: cython.Py_ssize_t = starts.ob_size
    mid: cython.Py_ssize_t
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
