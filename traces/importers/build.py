"""Helpers that importers share to build ``emit.Cgroups`` from their incarnations.

In: per-incarnation columns (machine, names, times, sizes). Out: group ids for
composite identities, the job-parent layer (one parent cgroup per machine and
job, spanning its tasks), concatenation of cgroup tables, and the lookup of
usage samples onto the run they belong to.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces import take_build
from traces.importers.common import NEVER, first_seen, valid_mask
from traces.importers.emit import Cgroups


def group_ids(*cols: np.ndarray) -> np.ndarray:
    """Dense int64 ids of equal tuples across ``cols`` (ordered like the sorted tuples)."""
    n = cols[0].size
    if not n:
        return np.zeros(0, dtype=np.int64)
    packed = _packed(cols)
    if packed is not None:  # one SIMD sort of int64 instead of a multi-key lexsort
        return np.unique(packed, return_inverse=True)[1].astype(np.int64, copy=False)
    order = np.lexsort(cols[::-1])
    diff = np.zeros(n, dtype=bool)
    diff[0] = True
    for c in cols:
        s = c[order]
        diff[1:] |= s[1:] != s[:-1]
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(diff) - 1
    return ids


def order_key(*cols: np.ndarray) -> np.ndarray:
    """An int64 per row that compares (orders and equals) like the tuples across ``cols``: the integer
    columns packed in one int64 (no sort), else ``group_ids``. For ``lifecycle.pair``, which only
    sorts and compares its keys."""
    packed = _packed(cols) if cols[0].size else None
    return packed if packed is not None else group_ids(*cols)


def _packed(cols: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """Integer ``cols`` packed into one int64 that sorts like the tuples, or None if they need > 63 bits."""
    if not all(np.issubdtype(c.dtype, np.integer) for c in cols):
        return None
    lows = [int(c.min()) for c in cols]
    bits = [(int(c.max()) - lo).bit_length() for c, lo in zip(cols, lows)]
    if sum(bits) > 63:
        return None
    packed = np.zeros(cols[0].size, dtype=np.int64)
    for c, lo, b in zip(cols, lows, bits):
        packed <<= b
        packed |= (c - lo).astype(np.int64, copy=False)
    return packed


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation of arrays and constant strings."""
    arrs = [pa.scalar(p) if isinstance(p, str) else (p if pa.types.is_string(p.type) else p.cast(pa.string()))
            for p in parts]
    return pc.binary_join_element_wise(*arrs, "")


def join_decimal(parts: list[str | np.ndarray], head: int | None = None, tail: np.ndarray | None = None,
                 valid: np.ndarray | None = None) -> pa.Array:
    """Per row the concatenation of ``parts``: a ``str`` as it is, an int64 array's value in decimal
    (as Arrow casts it); the parts from index ``head`` on only where ``tail`` (None: everywhere), and
    null where ``valid`` is False (None: nowhere). Every part before ``head``, and from it, includes an array.

    Compiled when ``traces._take`` is built (one pass sizing the strings, one writing them, no
    intermediate string arrays); else ``join_decimal_pure``, the same strings."""
    mod = take_build.module()
    n = next(p.size for p in parts if not isinstance(p, str))
    if mod is not None:
        none = np.zeros(0, dtype=np.uint8)
        got = mod.join_decimal([p.encode() if isinstance(p, str) else np.ascontiguousarray(p, dtype=np.int64)
                                for p in parts], n, len(parts) if head is None else head,
                               none if tail is None else tail.view(np.uint8), none if valid is None else valid.view(np.uint8))
        if got is not None:
            offsets, data, bitmap, nulls = got
            return pa.Array.from_buffers(pa.string(), n, [None if bitmap is None else pa.py_buffer(bitmap),
                                                          pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)
    return join_decimal_pure(parts, head, tail, valid)


def join_decimal_pure(parts: list[str | np.ndarray], head: int | None = None, tail: np.ndarray | None = None,
                      valid: np.ndarray | None = None) -> pa.Array:
    """``join_decimal`` by Arrow's casts and joins: the reference."""
    head = len(parts) if head is None else head

    def arrays(ps: list[str | np.ndarray], mask: np.ndarray | None) -> list[str | pa.Array]:
        return [p if isinstance(p, str) else pa.array(p, pa.int64(), mask=mask) for p in ps]

    out = join(*arrays(parts[:head], None if valid is None else ~valid))
    if head < len(parts):
        rest = join(*arrays(parts[head:], None if tail is None else ~tail))
        out = pc.binary_join_element_wise(out, rest, "", null_handling="replace")
        if valid is not None:
            out = pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))
    return out


def parents_by(machine: pa.Array, name: pa.Array, prefix: str) -> tuple[Cgroups, np.ndarray]:
    """One parent cgroup ``/<prefix><name>`` per distinct (machine, name); per row its parent index.

    Rows whose ``name`` is null get -1. Parents have no task; their span is
    stretched over their children by ``emit``.
    """
    valid = valid_mask(name)
    idx = np.flatnonzero(valid)
    gid = first_seen_pairs(machine.take(pa.array(idx)), name.take(pa.array(idx)))
    ng = int(gid.max()) + 1 if gid.size else 0
    first = np.full(ng, -1, dtype=np.int64)
    first[gid[::-1]] = idx[::-1]  # lowest row of each group
    parent = np.full(len(name), -1, dtype=np.int64)
    parent[idx] = gid
    take = pa.array(first)
    z = np.zeros(ng, dtype=np.int64)
    cg = Cgroups(machine.take(take), join("/", prefix, name.take(take)), pa.nulls(ng, pa.string()),
                 np.full(ng, -1, dtype=np.int64), np.full(ng, NEVER, dtype=np.int64), z.copy(),
                 np.full(ng, -1, dtype=np.int64), z.copy(), z.copy(), {})
    return cg, parent


def first_seen_pairs(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Per row an id of its (a, b) pair, numbered in order of first appearance (as ``dictionary_encode``
    numbers the joined strings ``a + sep + b``), from the integer codes of each column: hashing two
    short columns and one int64 column is cheaper than joining and hashing the strings."""
    ca = a.dictionary_encode().indices.to_numpy().astype(np.int64)
    cb = b.dictionary_encode().indices.to_numpy().astype(np.int64)
    pairs = pa.array(ca * (int(cb.max()) + 1 if cb.size else 1) + cb).dictionary_encode()
    return pairs.indices.to_numpy().astype(np.int64)


def first_seen_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row an id of its (a, b) pair of integers, numbered in order of first appearance (as
    ``first_seen_pairs`` numbers the pairs of the integers' strings)."""
    packed = _packed((a, b)) if a.size else None  # one hash of the pairs packed in an int64, if they fit
    if packed is None:
        cb = pa.array(b).dictionary_encode().indices.to_numpy().astype(np.int64)
        packed = a.astype(np.int64) * (int(cb.max()) + 1 if cb.size else 1) + cb
    return first_seen(packed)


def concat(first: Cgroups, second: Cgroups, second_parents_in_first: bool = True) -> Cgroups:
    """Rows of ``first`` then ``second``.

    ``second.parent`` indexes ``first`` (parents built by ``parents_by``) unless
    ``second_parents_in_first`` is False, in which case it indexes ``second`` and is shifted.
    """
    off = 0 if second_parents_in_first else len(first)
    keys = {}
    for k in set(first.keys) | set(second.keys):
        a = first.keys.get(k, pa.nulls(len(first), pa.string()))
        b = second.keys.get(k, pa.nulls(len(second), pa.string()))
        keys[k] = pa.concat_arrays([a.cast(pa.string()), b.cast(pa.string())])
    return Cgroups(
        pa.concat_arrays([first.machine, second.machine]), pa.concat_arrays([first.path, second.path]),
        pa.concat_arrays([first.task.cast(pa.string()), second.task.cast(pa.string())]),
        np.concatenate([first.parent, np.where(second.parent >= 0, second.parent + off, -1)]),
        *(np.concatenate([getattr(first, a), getattr(second, a)])
          for a in ("start_us", "end_us", "limit", "anon", "cache")),
        keys,
    )


def assign_to_runs(run_key: np.ndarray, run_start: np.ndarray, run_end: np.ndarray,
                   q_key: np.ndarray, q_time: np.ndarray) -> np.ndarray:
    """For each query (key, time): the run of that key with start <= time <= end, else -1.

    Runs of one key must not overlap (true for incarnations of one task).
    """
    n_run = run_key.size
    k = np.concatenate([run_key, q_key])
    t = np.concatenate([run_start, q_time])
    is_q = np.r_[np.zeros(n_run, bool), np.ones(q_key.size, bool)]
    order = np.lexsort((is_q, t, k))  # a run starting at the query's time comes first
    ks = k[order]
    val = np.where(is_q[order], -1, order)  # run index or -1
    newkey = np.r_[True, ks[1:] != ks[:-1]] if ks.size else np.zeros(0, bool)
    val = np.where(newkey & (val < 0), -2, val)
    idx = np.where(val != -1, np.arange(val.size), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = val[idx]
    out = np.full(q_key.size, -1, dtype=np.int64)
    qpos = np.flatnonzero(is_q[order])
    runs = filled[qpos]
    qi = order[qpos] - n_run
    ok = runs >= 0
    ok[ok] &= q_time[qi[ok]] <= run_end[runs[ok]]
    out[qi[ok]] = runs[ok]
    return out
