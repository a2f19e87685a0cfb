"""The event assembly's small integer columns (op, flags, offset, bytes) put in output order.

In: ``order`` (int64, output row -> event) and per event, in event order: ``meta`` (uint8: op code |
flags code << 4 | offset valid << 6 | bytes valid << 7), ``offset`` and ``nbytes`` (int64; any value
under a null). Out: four Arrow arrays in output order: the op codes (int32), the flag codes (int32,
code - 1, null where the flags code is 0), the offsets and the bytes (int64, null where their bit is
clear) -- ``emit`` makes the first two dictionary arrays.

``event_codes_pure`` is the reference: three numpy gathers, then the flags and validities split off
``meta`` with numpy. ``traces/_take.pyx`` (``gather_codes``) does it in one pass over ``order``;
``event_codes`` runs it when ``traces.take_build`` finds it built and current. Both give the same
arrays (``tests/test_take.py``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from traces import take_build


def event_codes(order: np.ndarray, meta: np.ndarray, offset: np.ndarray,
                nbytes: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(op, flag, offset, bytes) of the events in output order (compiled when built)."""
    mod = take_build.module()
    if mod is None:
        return event_codes_pure(order, meta, offset, nbytes)
    op, flag, off, byt, bitmaps, nulls = mod.gather_codes(order, meta, offset, nbytes)
    flag_bits, off_bits, byt_bits = (None if b is None else pa.py_buffer(b) for b in bitmaps)
    return (pa.array(op), pa.Array.from_buffers(pa.int32(), op.size, [flag_bits, pa.py_buffer(flag)], nulls[0]),
            pa.Array.from_buffers(pa.int64(), op.size, [off_bits, pa.py_buffer(off)], nulls[1]),
            pa.Array.from_buffers(pa.int64(), op.size, [byt_bits, pa.py_buffer(byt)], nulls[2]))


def event_codes_pure(order: np.ndarray, meta: np.ndarray, offset: np.ndarray,
                     nbytes: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """``event_codes`` by numpy: the reference."""
    meta = np.take(meta, order)
    flag = (meta >> 4 & 3).astype(np.int32)
    null_flag = flag == 0
    flag -= 1
    return (pa.array((meta & 15).astype(np.int32)), pa.array(flag, mask=null_flag),
            pa.array(np.take(offset, order), mask=(meta & 64) == 0, type=pa.int64()),
            pa.array(np.take(nbytes, order), mask=(meta & 128) == 0, type=pa.int64()))
