"""Arrow trace table -> per-machine ``core.events.EventBatch``es.

In: a validated table with ``traces.schema.TRACE_SCHEMA`` columns (rows of one
machine in time order; machines may interleave). Out: ``(machine_id, batch)``
pairs, machines in sorted id order, each machine's rows in file order, cut
into batches of at most ``max_rows`` rows.

Everything is columnar: ops and flags are mapped once per distinct string,
names (cgroup, task, object) are dictionary-encoded per batch so that each
batch carries only its own name tables, and nulls become ``core.events.NULL``.
``batch.row`` holds 1-based data row numbers of the source (as the validator
reports them), so the model can name the offending row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import TraceError
from core.events import NULL, EventBatch
from core.ops import OP_BY_NAME, parse_flags
from traces.io import machine_order_codes


@dataclass
class _Columns:
    """The whole table's numeric columns as numpy, rows grouped by machine."""

    time_us: np.ndarray
    op: np.ndarray
    offset: np.ndarray
    nbytes: np.ndarray
    flags: np.ndarray
    row: np.ndarray


def machine_ids(table: pa.Table) -> list[str]:
    """Distinct machine ids of ``table`` in sorted order."""
    ids = pc.unique(table.column("machine")).to_pylist()
    return sorted(i for i in ids if i is not None)


def machine_batches(table: pa.Table, source: str = "",
                    max_rows: int | None = None) -> Iterator[tuple[str, EventBatch]]:
    """Yield ``(machine, EventBatch)`` for every machine (sorted), batches of <= ``max_rows``.

    Raises ``core.errors.TraceError`` for an unknown op or flag (validate first
    to get every problem at once).
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    codes, names = _machine_codes(table)
    order = _grouping_order(codes)
    if order is not None:
        table, codes = table.take(pa.array(order)), codes[order]
    cols = _numeric_columns(table, source, order)
    starts = np.searchsorted(codes, np.arange(len(names) + 1))
    for k, machine in enumerate(names):
        lo, hi = int(starts[k]), int(starts[k + 1])
        step = max_rows or max(hi - lo, 1)
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            yield machine, _batch(table, cols, a, b, source)


def _machine_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Per row the rank of its machine among the sorted distinct ids; those ids.

    Most tables come grouped by machine (``write_trace`` groups them): their runs of equal ids
    are found by comparing neighbours, which is cheaper than hashing every row. An importer's
    dictionary column is ranked through its dictionary. Anything else (interleaved machines,
    nulls) takes the general path, ``traces.io.machine_order_codes``.
    """
    col = table.column("machine")
    if col.null_count == 0 and table.num_rows:
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_dictionary(arr.type):
            got = _ranked_dictionary(arr)
        else:
            got = _ranked_runs(arr)
        if got is not None:
            return got
    return machine_order_codes(table), machine_ids(table)


def _ranked_runs(arr: pa.Array) -> tuple[np.ndarray, list[str]] | None:
    # runs of equal ids; None when there are too many runs for a Python pass over them
    ree = pc.run_end_encode(arr)
    if len(ree.values) > 4096:
        return None
    values = ree.values.to_pylist()
    names = sorted(set(values))
    rank = {m: i for i, m in enumerate(names)}
    ends = ree.run_ends.to_numpy(zero_copy_only=False).astype(np.int64)
    run_codes = np.array([rank[v] for v in values], dtype=np.int64)
    return np.repeat(run_codes, np.diff(ends, prepend=0)), names


def _ranked_dictionary(arr: pa.DictionaryArray) -> tuple[np.ndarray, list[str]] | None:
    # the dictionary's values ranked; None if a value repeats (then equal ids would get two codes)
    if arr.dictionary.null_count:
        return None
    values = arr.dictionary.cast(pa.string()).to_pylist()
    if len(set(values)) != len(values):
        return None
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(np.array(values, dtype=object), kind="stable")] = np.arange(len(values))
    codes = rank[arr.indices.to_numpy(zero_copy_only=False)]
    used = np.zeros(len(values), dtype=bool)
    used[codes] = True
    if not used.all():  # a dictionary may hold ids no row uses: rank among the used ones only
        codes = (np.cumsum(used) - 1)[codes]
    return codes, sorted(v for v, u in zip(values, used[rank].tolist()) if u)


def _grouping_order(codes: np.ndarray) -> np.ndarray | None:
    # most traces are already grouped by machine (write_trace does it): avoid the copy
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return None
    return np.argsort(codes, kind="stable")


def _numeric_columns(table: pa.Table, source: str, order: np.ndarray | None) -> _Columns:
    n = table.num_rows
    row = (np.arange(n, dtype=np.int64) if order is None else order.astype(np.int64)) + 1
    return _Columns(
        time_us=_int_column(table, "time_us"),
        op=_map_strings(table.column("op"), _op_code, np.uint8, "op", source, row),
        offset=_int_column(table, "offset"),
        nbytes=_int_column(table, "bytes"),
        flags=_map_strings(table.column("flags"), _flag_bits, np.int32, "flags", source, row),
        row=row,
    )


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    col = pc.fill_null(table.column(name), NULL).combine_chunks()
    return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _op_code(text: str | None) -> int:
    if text is None:
        raise KeyError("null")
    return int(OP_BY_NAME[text])


def _flag_bits(text: str | None) -> int:
    return int(parse_flags(text))


def _map_strings(col: pa.ChunkedArray, fn: Callable[[str | None], int], dtype: type, field: str, source: str,
                 row: np.ndarray) -> np.ndarray:
    """Apply ``fn`` once per distinct string, then broadcast the codes to every row.

    The chunks are joined before the hashing (one dictionary, no unification across chunks);
    a dictionary column (an importer's) is mapped through its own dictionary, nulls as one more value.
    """
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(arr.type):
        values = arr.dictionary.cast(pa.string()).to_pylist() + [None]
        idx = pc.fill_null(arr.indices, len(values) - 1).to_numpy(zero_copy_only=False)
    else:
        enc = pc.dictionary_encode(arr, null_encoding="encode")
        values = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy(zero_copy_only=False)
    used = np.bincount(idx, minlength=len(values)) > 0  # a dictionary may hold values no row uses
    lut = np.zeros(len(values), dtype=dtype)
    bad: list[tuple[int, str | None, KeyError]] = []
    for i, text in enumerate(values):
        if not used[i]:
            continue
        try:
            lut[i] = fn(text)
        except KeyError as e:
            bad.append((int(np.flatnonzero(idx == i)[0]), text, e))
    if bad:  # the unknown value that comes first in the table
        first, text, e = min(bad, key=lambda b: b[0])
        raise TraceError(source, int(row[first]), field, f"unknown {field} value {text!r} ({e})") from None
    return lut[idx]


def _intern(col: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode one name column slice: (int32 indices with NULL, names in order of first use).

    The slice's chunks are joined first: one hash table, no dictionary unification afterwards.
    """
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    enc = pc.dictionary_encode(arr)
    idx = pc.fill_null(enc.indices, NULL).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return idx, enc.dictionary.to_pylist()


def _batch(table: pa.Table, cols: _Columns, a: int, b: int, source: str) -> EventBatch:
    part = table.slice(a, b - a)
    cg, cg_names = _intern(part.column("cgroup"))
    tk, tk_names = _intern(part.column("task"))
    ob, ob_names = _intern(part.column("object"))
    return EventBatch(
        time_us=cols.time_us[a:b], op=cols.op[a:b], cgroup=cg, task=tk, obj=ob,
        offset=cols.offset[a:b], nbytes=cols.nbytes[a:b], flags=cols.flags[a:b],
        cgroups=cg_names, tasks=tk_names, objects=ob_names, row=cols.row[a:b], source=source,
    )
