# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""A string column gathered by two index arrays, compiled: ``traces.take.strings_pure`` in two C loops.

In: a string array's offsets (its own slice, ``len + 1`` values) and data buffer, ``rows`` (int32,
-1 = null) and ``order`` (int64): output row ``i`` is ``rows[order[i]]``. Out (``gather``): the new
array's offsets (int32, exact size), data (uint8, exact size), validity bitmap (uint8, LSB first, or
None when no row is null) and null count; None when the data would need 64-bit offsets.

The pure function first gathers ``rows[order]`` into a fresh array, then each string's length,
then their cumulative sum, then the bytes through Arrow's take a chunk at a time, copied in: five
passes, three of them over fresh full-size temporaries. Here one loop sums the lengths into the
offsets and one copies each string's bytes into place; nothing else of the column's size is
allocated. The strings, nulls and order are the same (``tests/test_take.py`` compares both).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy

import numpy as np


def gather(const int32_t[::1] base_off, const uint8_t[::1] base_data, const int32_t[::1] rows,
           const int64_t[::1] order):
    """(offsets, data, bitmap or None, null count) of the strings ``rows[order]``; None past 2^31 bytes."""
    cdef Py_ssize_t n = order.shape[0], nbase = base_off.shape[0] - 1, nrows = rows.shape[0]
    cdef Py_ssize_t i, nulls = 0, bad = -1
    cdef int64_t e, total = 0, limit = (<int64_t>1) << 31
    cdef int32_t j
    offsets = np.empty(n + 1, dtype=np.int32)
    cdef int32_t[::1] off = offsets
    with nogil:
        off[0] = 0
        for i in range(n):
            e = order[i]
            if e < 0 or e >= nrows:
                bad = i
                break
            j = rows[e]
            if j >= 0:
                if j >= nbase:
                    bad = i
                    break
                total += base_off[j + 1] - base_off[j]
                if total >= limit:
                    break
            else:
                nulls += 1
            off[i + 1] = <int32_t>total
    if bad >= 0:
        raise IndexError(f"row {bad}: index out of bounds")
    if total >= limit:
        return None
    data = np.empty(total, dtype=np.uint8)
    bitmap = np.zeros((n + 7) // 8, dtype=np.uint8) if nulls else None
    cdef uint8_t[::1] d = data
    cdef uint8_t[::1] bits
    cdef int64_t lo
    if nulls:
        bits = bitmap
    with nogil:
        for i in range(n):
            j = rows[order[i]]
            if j < 0:
                continue
            lo = off[i]
            if off[i + 1] > lo:
                memcpy(&d[lo], &base_data[base_off[j]], off[i + 1] - lo)
            if nulls:
                bits[i >> 3] |= <uint8_t>(1 << (i & 7))
    return offsets, data, bitmap, nulls
