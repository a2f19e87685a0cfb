"""Arrow trace table -> per-machine ``core.events.EventBatch``es.

In: a validated table with ``traces.schema.TRACE_SCHEMA`` columns (rows of one
machine in time order; machines may interleave). Out: ``(machine_id, batch)``
pairs, machines in sorted id order, each machine's rows in file order, cut
into batches of at most ``max_rows`` rows.

Everything is columnar: ops and flags are mapped once per distinct string,
names (cgroup, task, object) are encoded per batch so that each batch carries
only its own name tables (a dictionary column in big batches: its dictionaries
unified once, each batch's codes renumbered, see ``_Names``), and nulls become
``core.events.NULL``. ``read_parquet`` reads a trace file the way this module
takes it fastest.
``batch.row`` holds 1-based data row numbers of the source (as the validator
reports them), so the model can name the offending row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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


#: The trace's string columns. Parquet stores them dictionary-encoded (a dictionary per row group).
STRING_COLUMNS = ("machine", "op", "flags", "cgroup", "task", "object")


def read_parquet(source: str | pa.NativeFile) -> pa.Table:
    """A trace Parquet file (a path or a buffer reader) as ``machine_batches`` takes it fastest.

    The string columns come as Arrow dictionaries, read from the file's own dictionary pages
    instead of decoded into strings (a faster read): ``machine_batches`` maps machine, op and
    flags through those dictionaries without hashing a string per row, and the names too when
    its batches are big (see ``_Names``). The values are those of ``pq.read_table``.
    """
    return pq.read_table(source, read_dictionary=list(STRING_COLUMNS))


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
    sizes = np.diff(starts)
    batches = int(np.sum(-(-sizes // max_rows))) if max_rows else len(names)
    strings = [_Names(table.column(c), table.num_rows / max(batches, 1)) for c in ("cgroup", "task", "object")]
    for k, machine in enumerate(names):
        lo, hi = int(starts[k]), int(starts[k + 1])
        step = max_rows or max(hi - lo, 1)
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            yield machine, _batch(cols, strings, a, b, source)


def _machine_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Per row the rank of its machine among the sorted distinct ids; those ids.

    Most tables come grouped by machine (``write_trace`` groups them): their runs of equal ids
    are found by comparing neighbours, which is cheaper than hashing every row. An importer's
    dictionary column is ranked through its dictionary. Anything else (interleaved machines,
    nulls) takes the general path, ``traces.io.machine_order_codes``.
    """
    col = table.column("machine")
    if col.null_count == 0 and table.num_rows:
        if pa.types.is_dictionary(col.type):
            got = _ranked_dictionary(col)
        else:
            got = _ranked_runs(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
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


def _ranked_dictionary(col: pa.ChunkedArray) -> tuple[np.ndarray, list[str]] | None:
    # the distinct dictionary values ranked (those no row uses left out); None if a value is null
    codes, values = _unified(col)
    if codes.size and int(codes.min()) == NULL:
        return None
    used = np.zeros(len(values), dtype=bool)
    used[codes] = True
    names = sorted(v for v, u in zip(values.to_pylist(), used.tolist()) if u)
    rank = {m: i for i, m in enumerate(names)}
    lut = np.array([rank.get(v, -1) for v in values.to_pylist()], dtype=np.int64)
    return lut[codes], names


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

    Plain strings are hashed once for the whole column (``_encoded``). A dictionary column (an
    importer's, or Parquet's as a replay shard reads it) is mapped through each chunk's
    dictionary, not hashed; only when a value fails, its dictionaries are joined (``_unified``)
    to find the first row that uses a failing value (a dictionary may hold values no row uses).
    Null is one more value (code ``NULL``).
    """
    if pa.types.is_dictionary(col.type):
        dicts, which = _distinct_dictionaries(col)
        luts = []
        try:
            for d in dicts:
                luts.append(np.array([fn(t) for t in d.to_pylist()] + [fn(None) if col.null_count else 0], dtype))
        except KeyError:
            pass
        else:
            return _through(col, luts, which, dtype)
        idx, dictionary = _unified(col)
        used = np.zeros(len(dictionary) + 1, dtype=bool)
        used[idx] = True
    else:
        idx, dictionary = _encoded(col)
        used = np.ones(len(dictionary) + 1, dtype=bool)
        used[-1] = col.null_count > 0
    values = dictionary.to_pylist() + [None]  # the last one is NULL's
    lut = np.zeros(len(values), dtype=dtype)
    bad: list[tuple[int, str | None, KeyError]] = []
    for i, text in enumerate(values):
        if not used[i]:
            continue
        try:
            lut[i] = fn(text)
        except KeyError as e:
            code = NULL if text is None else i
            bad.append((int(np.flatnonzero(idx == code)[0]), text, e))
    if bad:  # the unknown value that comes first in the table
        first, text, e = min(bad, key=lambda b: b[0])
        raise TraceError(source, int(row[first]), field, f"unknown {field} value {text!r} ({e})") from None
    return lut[idx]


class _Names:
    """One name column (cgroup, task or object) of the grouped table, handed out batch by batch.

    Each batch gets int32 indices (``NULL`` for null) into its own name table, names in order of
    first use within the batch: a per-batch ``dictionary_encode`` (a dictionary column's batch
    decoded first), in a hash table of the batch's size. A dictionary column (an importer's, or
    a Parquet file's as ``read_parquet`` reads it) cut into big batches is instead unified once
    for the whole table (``_unified``: only the dictionaries are hashed, no string per row) and
    each batch's codes renumbered (``_renumber``), which costs nothing when they are already in
    order of first use, as a Parquet file's are. In small batches (many machines) that per-batch
    work and the whole table's dictionaries would cost more than the strings of the batch.
    """

    def __init__(self, col: pa.ChunkedArray, batch_rows: float) -> None:
        self.col = col
        self.whole = pa.types.is_dictionary(col.type) and batch_rows >= _WHOLE
        if self.whole:
            self.codes, values = _unified(col)
            self.values = values.to_numpy(zero_copy_only=False)  # object array of str

    def batch(self, a: int, b: int) -> tuple[np.ndarray, list[str]]:
        """Indices and names of rows [a, b)."""
        if self.whole:
            return self._renumber(self.codes[a:b])
        part = self.col.slice(a, b - a)
        if pa.types.is_dictionary(part.type):
            part = pa.chunked_array([c.dictionary_decode() for c in part.chunks], part.type.value_type)
        codes, values = _encoded(part)
        return codes, values.to_pylist()

    def _renumber(self, seg: np.ndarray) -> tuple[np.ndarray, list[str]]:
        k = _first_use_count(seg)
        if k is not None:  # numbered in order of first use already (as Parquet's dictionaries come)
            return seg, self.values[:k].tolist()
        # the batch's codes hashed (ints, in a table of the batch's size): their order of first use
        enc = pc.dictionary_encode(pa.array(seg))
        idx, used = enc.indices.to_numpy(), enc.dictionary.to_numpy()
        null = np.flatnonzero(used == NULL)
        if null.size:  # rows without a name: NULL, and the numbers after theirs close the gap
            j = int(null[0])
            used = np.delete(used, j)
            idx = np.where(idx == j, NULL, idx - (idx > j)).astype(np.int32, copy=False)
        return idx, self.values[used].tolist()


#: batches of at least this many rows on average: a dictionary name column is unified once (``_Names``)
_WHOLE = 1 << 16


def _first_use_count(seg: np.ndarray) -> int | None:
    """k if ``seg`` numbers its values 0..k-1 in order of first use (NULL anywhere), else None.

    That is: no code exceeds the largest before it by more than one, and the first is 0 or NULL.
    """
    if not seg.size:
        return 0
    if seg[0] > 0:  # codes not starting at 0 (any batch but the table's first, mostly): found at once
        return None
    top = np.maximum.accumulate(seg)
    top += 1
    if not bool(np.all(seg[1:] <= top[:-1])):
        return None
    return int(top[-1])


def _distinct_dictionaries(col: pa.ChunkedArray) -> tuple[list[pa.Array], list[int]]:
    """The chunks' dictionaries as plain strings, each once, and per chunk the number of its own.

    A Parquet reader gives each row group its own dictionary, and the chunks of one row group
    share it (the same buffers): those count once.
    """
    at: dict[tuple, int] = {}
    dicts: list[pa.Array] = []
    which = []
    for ch in col.chunks:
        d = ch.dictionary
        key = (tuple(buf.address if buf is not None else 0 for buf in d.buffers()), d.offset, len(d))
        if key not in at:
            at[key] = len(dicts)
            dicts.append(d.cast(pa.string()))
        which.append(at[key])
    return dicts, which


def _through(col: pa.ChunkedArray, luts: list[np.ndarray], which: list[int], dtype: type) -> np.ndarray:
    """Each row of dictionary column ``col`` looked up in its chunk's table ``luts[which[chunk]]``,
    whose last entry is for a null row; one array, filled chunk by chunk."""
    out = np.empty(len(col), dtype=dtype)
    at = 0
    for ch, k in zip(col.chunks, which):
        lut, idx = luts[k], ch.indices
        if idx.type.bit_width < 32:
            idx = idx.cast(pa.int32())
        if idx.null_count:
            idx = pc.fill_null(idx, len(lut) - 1)
        # the indices of a valid dictionary array are in range; mode "raise" would buffer the output
        np.take(lut, idx.to_numpy(zero_copy_only=False), out=out[at:at + len(ch)], mode="clip")
        at += len(ch)
    return out


def _unified(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """A dictionary column's rows as int32 codes (``NULL`` for null) into one table of distinct strings.

    Chunks may carry different dictionaries, a dictionary may repeat a value or hold nulls: the
    distinct dictionaries are hashed once together, and each chunk's indices are mapped through
    its dictionary's part of that encoding.
    """
    dicts, which = _distinct_dictionaries(col)
    values = pa.concat_arrays(dicts) if dicts else pa.array([], pa.string())
    enc = pc.dictionary_encode(values)
    remap = pc.fill_null(enc.indices, NULL).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    ends = np.cumsum([len(d) for d in dicts])
    luts = [np.append(part, np.int32(NULL)) for part in np.split(remap, ends[:-1])] if dicts else []
    return _through(col, luts, which, np.int32), enc.dictionary


def _encoded(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Plain strings as int32 codes (``NULL`` for null) in order of first use, and the strings.

    Arrow encodes the chunks with one hash table and hands every chunk the final dictionary, so
    the chunks need not be joined first (the check guards against a version that would not).
    """
    enc = pc.dictionary_encode(col)
    if enc.num_chunks == 0:
        return np.zeros(0, np.int32), pa.array([], pa.string())
    d = enc.chunk(0).dictionary
    if any(ch.dictionary.buffers() != d.buffers() or len(ch.dictionary) != len(d) for ch in enc.chunks[1:]):
        enc = pa.chunked_array([pc.dictionary_encode(col.combine_chunks())])
        d = enc.chunk(0).dictionary
    idx = pa.chunked_array([ch.indices for ch in enc.chunks], pa.int32())
    return pc.fill_null(idx, NULL).to_numpy().astype(np.int32, copy=False), d


def _batch(cols: _Columns, names: list[_Names], a: int, b: int, source: str) -> EventBatch:
    (cg, cg_names), (tk, tk_names), (ob, ob_names) = (n.batch(a, b) for n in names)
    return EventBatch(
        time_us=cols.time_us[a:b], op=cols.op[a:b], cgroup=cg, task=tk, obj=ob,
        offset=cols.offset[a:b], nbytes=cols.nbytes[a:b], flags=cols.flags[a:b],
        cgroups=cg_names, tasks=tk_names, objects=ob_names, row=cols.row[a:b], source=source,
    )
