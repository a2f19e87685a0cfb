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
    if any(pa.types.is_dictionary(t) for t in table.schema.types):
        # an importer's table: its dictionaries span the whole trace, a batch wants its own names
        table = table.cast(pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                                      for f in table.schema], metadata=table.schema.metadata))
    codes = machine_order_codes(table)
    order = _grouping_order(codes)
    if order is not None:
        table, codes = table.take(pa.array(order)), codes[order]
    cols = _numeric_columns(table, source, order)
    names = machine_ids(table)
    starts = np.searchsorted(codes, np.arange(len(names) + 1))
    for k, machine in enumerate(names):
        lo, hi = int(starts[k]), int(starts[k + 1])
        step = max_rows or max(hi - lo, 1)
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            yield machine, _batch(table, cols, a, b, source)


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
    """Apply ``fn`` once per distinct string, then broadcast the codes to every row."""
    enc = pc.dictionary_encode(col, null_encoding="encode").combine_chunks()
    values = enc.dictionary.to_pylist()
    idx = enc.indices.to_numpy(zero_copy_only=False)
    lut = np.zeros(len(values), dtype=dtype)
    for i, text in enumerate(values):
        try:
            lut[i] = fn(text)
        except KeyError as e:
            first = int(np.flatnonzero(idx == i)[0])
            raise TraceError(source, int(row[first]), field, f"unknown {field} value {text!r} ({e})") from None
    return lut[idx]


def _intern(col: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode one name column slice: (int32 indices with NULL, names)."""
    enc = pc.dictionary_encode(col).combine_chunks()
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
