"""String columns gathered by row numbers, as the importers' event assembly needs them.

In: a base string array, per event its row in the base (int32, -1 = null) and the output order
(int64: output row ``i`` takes event ``order[i]``). Out: the plain string array
``base[rows[order]]`` with nulls where the row is -1.

``strings_pure`` is the reference: numpy's gather of the rows, then ``take_nullable``, which builds
the result in buffers of their exact size from Arrow takes of the valid rows. ``traces/_take.pyx``
does the same in two C loops without the full-size temporaries; ``strings`` runs it when
``traces.take_build`` finds it built and current (else, or with ``MEMCG_REPLAY_PURE=1``, the pure
one). Both give the same arrays (``tests/test_take.py``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from traces import take_build


def strings(base: pa.Array, rows: np.ndarray, order: np.ndarray) -> pa.Array:
    """``base[rows[order]]`` as a plain string array, null where the row is -1 (compiled when built).

    A null cell of ``base`` that a row points at reads as an empty string, as in ``take_nullable``
    (the importers point only at cells that hold a name)."""
    mod = take_build.module()
    if mod is not None and pa.types.is_string(base.type) and len(base) and base.buffers()[2] is not None:
        base_off = np.frombuffer(base.buffers()[1], dtype=np.int32)[base.offset:base.offset + len(base) + 1]
        got = mod.gather(base_off, np.frombuffer(base.buffers()[2], dtype=np.uint8),
                         np.ascontiguousarray(rows, dtype=np.int32), np.ascontiguousarray(order, dtype=np.int64))
        if got is not None:
            offsets, data, bitmap, nulls = got
            return pa.Array.from_buffers(pa.string(), offsets.size - 1,
                                         [None if bitmap is None else pa.py_buffer(bitmap), pa.py_buffer(offsets),
                                          pa.py_buffer(data)], null_count=nulls)
    return strings_pure(base, rows, order)


def strings_pure(base: pa.Array, rows: np.ndarray, order: np.ndarray) -> pa.Array:
    """``strings`` in numpy and Arrow: the reference."""
    return take_nullable(base, np.take(rows, order))


def take_nullable(base: pa.Array, idx: np.ndarray, chunk: int = 1 << 16) -> pa.Array:
    """``base.take(idx)`` for a string ``base``, where -1 means null.

    The result is built in buffers of their exact size: the offsets are a cumulative sum
    of the base's string lengths, the bytes are Arrow's take of the valid rows, a chunk
    at a time, copied in. Arrow's take of millions of rows sizes its buffer from the
    base's mean length and doubles it when that is short; each doubling is hundreds of
    MB of fresh pages, which cost more than the copy. (Null indices also make it several
    times slower, hence the dense takes of the valid rows.)
    """
    n = idx.size
    valid = idx >= 0
    n_valid = int(np.count_nonzero(valid))
    if not n_valid or not pa.types.is_string(base.type):
        return _take_nullable_arrow(base, idx, valid, n_valid)
    base_off = np.frombuffer(base.buffers()[1], dtype=np.int32)[base.offset:base.offset + len(base) + 1]
    # -1 takes the appended 0 (a null has no bytes); indexing, unlike np.take, needs no int64 copy of idx
    lengths = np.append(np.diff(base_off), 0)[idx]
    total = int(lengths.sum(dtype=np.int64))
    if total >= 1 << 31:  # beyond 32-bit offsets: let Arrow say so
        return _take_nullable_arrow(base, idx, valid, n_valid)
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    np.cumsum(lengths, out=offsets[1:], dtype=np.int32)
    del lengths
    data = np.empty(total, dtype=np.uint8)
    dense = idx[valid] if n_valid < n else idx
    pos = 0
    for i in range(0, dense.size, chunk):
        part = base.take(pa.array(dense[i:i + chunk]))
        lo, hi = np.frombuffer(part.buffers()[1], dtype=np.int32)[[part.offset, part.offset + len(part)]]
        if hi > lo:
            data[pos:pos + hi - lo] = np.frombuffer(part.buffers()[2], dtype=np.uint8, count=hi - lo, offset=lo)
            pos += hi - lo
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if n_valid < n else None
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=n - n_valid)


def _take_nullable_arrow(base: pa.Array, idx: np.ndarray, valid: np.ndarray, n_valid: int) -> pa.Array:
    """``take_nullable`` by Arrow's take of the valid rows, the nulls put in by rebuilding the offsets."""
    if n_valid == idx.size:
        return base.take(pa.array(idx))
    dense = base.take(pa.array(idx[valid]))
    offsets = np.frombuffer(dense.buffers()[1], dtype=np.int32)[dense.offset:dense.offset + n_valid + 1]
    before = np.zeros(idx.size + 1, dtype=np.int32)
    np.cumsum(valid, out=before[1:], dtype=np.int32)  # valid rows before each row
    data = dense.buffers()[2] or pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.string(), idx.size, [pa.py_buffer(np.packbits(valid, bitorder="little")),
                                                         pa.py_buffer(offsets[before]), data],
                                 null_count=idx.size - n_valid)
