"""Reading and writing native traces (Parquet, CSV, gzipped CSV).

In: a path (``.parquet``/``.pq``, ``.csv``, ``.csv.gz``) or an Arrow table.
Out: an Arrow table with exactly ``traces.schema.TRACE_SCHEMA``, or a file
written atomically (temp file in the same directory, then ``os.replace``).

Two layers:
- ``read_raw`` + ``conform`` never raise on bad content: ``conform`` returns
  the table cast to the schema with every unparsable cell set to null, plus one
  ``Problem`` per bad cell / missing or unknown column (the validator reports
  them all).
- ``read_trace`` is the strict reader used by replay: it raises
  ``TraceInvalid`` (a ``core.errors.TraceError``) naming file, 1-based data
  row and column of the first problem, and lists the others.

``open_raw`` is ``read_raw`` that never raises: a file that cannot be read at
all (missing, empty, truncated, not CSV/Parquet, unknown suffix) is one S106
problem naming the file, with a short reason instead of a library traceback.

CSV cells are read as text and parsed here (not by Arrow's type inference) so
that a bad cell is reported at its row instead of failing the whole file.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from decimal import Decimal, InvalidOperation
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from traces.problems import Problem, raise_problems
from traces.schema import COLUMN_NAMES, DICT_STRING, SCHEMA_VERSION, TRACE_SCHEMA, VERSION_KEY, schema_of

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
ROW_GROUP_ROWS = 1 << 18  #: Parquet row group size: small enough to skip by machine, big enough to scan fast
_INT_RE = r"^[+-]?[0-9]{1,18}$"  # 18 digits always fit int64; 19-digit cells are checked one by one
_INT64_MAX = (1 << 63) - 1


def trace_format(path: str | os.PathLike) -> str:
    """'parquet' or 'csv' from the file name; ValueError for anything else."""
    name = Path(path).name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ValueError(f"{path}: unknown trace format (expected {', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES)})")


def read_raw(path: str | os.PathLike) -> pa.Table:
    """The file's columns as stored (CSV: every column as nullable text, '' = null)."""
    if trace_format(path) == "parquet":
        return pq.read_table(path)
    header = _csv_header(path)
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=True, null_values=[""],
    )
    return pcsv.read_csv(path, convert_options=convert)


def open_raw(path: str | os.PathLike) -> tuple[pa.Table | None, list[Problem]]:
    """``read_raw`` that never raises: ``(table, [])``, or ``(None, [one S106 problem])``
    when the file cannot be read as a trace at all."""
    try:
        table = read_raw(path)
        table.column_names  # noqa: B018 -- a corrupt Parquet footer can hold names that are not UTF-8
        return table, []
    except Exception as e:  # every failure of any library below is the same finding: unreadable
        return None, [Problem(str(path), 0, "S106", "", unreadable_reason(path, e))]


def unreadable_reason(path: str | os.PathLike, e: BaseException) -> str:
    """A one-line reason why ``path`` could not be read, from the exception a reader raised."""
    if isinstance(e, FileNotFoundError):
        return "cannot read file: no such file"
    if isinstance(e, IsADirectoryError):
        return "cannot read file: it is a directory"
    if isinstance(e, PermissionError):
        return "cannot read file: permission denied"
    if _is_empty_file(path):
        return "cannot read file: the file is empty (a trace file has at least a header line)"
    if isinstance(e, UnicodeDecodeError):
        return f"cannot read file: not UTF-8 text (byte {e.start})"
    if isinstance(e, (EOFError, gzip.BadGzipFile, zlib.error)):
        return f"cannot read file: truncated or corrupt gzip stream ({e})"
    text = " ".join(str(e).split()) or type(e).__name__
    text = text.replace(str(path), "").strip(": ") or type(e).__name__
    if len(text) > 200:
        text = text[:200] + "..."
    if trace_format_or_none(path) == "parquet" and isinstance(e, pa.ArrowException):
        return f"cannot read file: not a readable Parquet file ({text})"
    return f"cannot read file: {text}"


def _is_empty_file(path: str | os.PathLike) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) == 0
    except (OSError, ValueError):
        return False


def trace_format_or_none(path: str | os.PathLike) -> str | None:
    """``trace_format(path)``, or None for a name with no trace suffix."""
    try:
        return trace_format(path)
    except ValueError:
        return None


def _csv_header(path: str | os.PathLike) -> list[str]:
    # read only the header line, decompressing like Arrow does for a .gz name
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        line = f.readline().rstrip("\r\n")
    return [c.strip().strip('"') for c in line.split(",")] if line else []


def conform(raw: pa.Table, source: str = "", keep_dictionary: bool = False) -> tuple[pa.Table, list[Problem]]:
    """Cast ``raw`` to TRACE_SCHEMA; bad cells become null and are reported.

    Missing columns are reported (S101) and filled with nulls; unknown columns
    are reported (S102) and dropped; a cell that does not parse as the column's
    type is reported (S103) at its 1-based row. A dictionary-encoded string
    column (``traces.schema.DICT_STRING``, as importers make them) becomes plain
    strings, unless ``keep_dictionary``: then it stays encoded and the returned
    schema says so.
    """
    problems = [Problem(source, 0, "S102", name, "unknown column (not in trace schema v1)")
                for name in dict.fromkeys(raw.column_names) if name not in COLUMN_NAMES]
    problems += version_problems(raw.schema, source)
    problems += [Problem(source, 0, "S108", name, f"column appears {raw.column_names.count(name)} times")
                 for name in COLUMN_NAMES if raw.column_names.count(name) > 1]
    columns = []
    for fld in TRACE_SCHEMA:
        if raw.column_names.count(fld.name) > 1:  # reported above (S108): which one would be meant?
            columns.append(pa.nulls(raw.num_rows, fld.type))
            continue
        if fld.name not in raw.column_names:
            problems.append(Problem(source, 0, "S101", fld.name, "missing column"))
            columns.append(pa.nulls(raw.num_rows, fld.type))
            continue
        col = raw.column(fld.name)
        if keep_dictionary and fld.type == pa.string() and col.type == DICT_STRING:
            columns.append(col)
            continue
        col, bad = _cast_column(col, fld.type, fld.name, source)
        columns.append(col)
        problems += bad
    meta = dict(raw.schema.metadata or {}) | dict(TRACE_SCHEMA.metadata)
    return pa.Table.from_arrays(columns, schema=schema_of(columns, meta)), problems


def version_problems(schema: pa.Schema, source: str = "") -> list[Problem]:
    """S105 if the schema metadata declares a trace version other than ours (none = ours)."""
    version = (schema.metadata or {}).get(VERSION_KEY)
    if version is None or version == str(SCHEMA_VERSION).encode():
        return []
    return [Problem(source, 0, "S105", "", f"trace schema version {version.decode(errors='replace')} "
                                            f"is not supported (this reader knows v{SCHEMA_VERSION})")]


def _cast_column(col: pa.ChunkedArray, typ: pa.DataType, name: str,
                 source: str) -> tuple[pa.Array | pa.ChunkedArray, list[Problem]]:
    if _is_text(col.type) and not _valid_utf8(col):
        clean, bad = _utf8_cells(col, name, source)
        if typ == pa.string():
            return clean, bad
        out, more = _cast_column(pa.chunked_array([clean]), typ, name, source)
        return out, bad + more
    if col.type == typ:
        return col, []  # the common case: keep Arrow's chunks, copy nothing
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if typ == pa.int64() and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return _parse_int_text(arr, name, source)
    try:
        return arr.cast(typ), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if typ == pa.int64() and pa.types.is_floating(arr.type):
        return _cast_float_to_int(arr, name, source)
    msg = f"column has type {arr.type}, expected {typ}"
    return pa.nulls(len(arr), typ), [Problem(source, 0, "S103", name, msg)]


def strings_are_utf8(table: pa.Table) -> bool:
    """Whether every string cell of ``table`` is UTF-8 (else ``conform`` reports and nulls them)."""
    return all(_valid_utf8(table.column(i)) for i, f in enumerate(table.schema) if _is_text(f.type))


def _is_text(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ) or (
        pa.types.is_dictionary(typ) and _is_text(typ.value_type))


def _valid_utf8(col: pa.ChunkedArray) -> bool:
    # a Parquet file can hold string cells that are not UTF-8; Arrow finds them in one C++ pass
    try:
        col.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _utf8_cells(col: pa.ChunkedArray, name: str, source: str) -> tuple[pa.Array, list[Problem]]:
    """A string column with its cells that are not UTF-8 set to null and reported (S103)."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary.take(arr.indices)
    cells = arr.view(pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary()).to_pylist()
    out, problems = [], []
    for i, b in enumerate(cells):
        try:
            out.append(None if b is None else b.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
            problems.append(Problem(source, i + 1, "S103", name, f"{b[:40]!r} is not UTF-8 text"))
    return pa.array(out, pa.string()), problems


def _parse_int_text(arr: pa.Array, name: str, source: str) -> tuple[pa.Array, list[Problem]]:
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    # "1073741824.0" (an integer column round-tripped through pandas) is the integer it writes
    text = _strip_zero_fraction(text)
    ok = pc.fill_null(pc.match_substring_regex(text, _INT_RE), True).to_numpy(zero_copy_only=False)
    bad_idx = np.flatnonzero(~ok)
    keep = ok.copy()
    problems = []
    fixed: dict[int, str] = {}
    for i in bad_idx.tolist():
        cell = text[i].as_py()
        value, why = _int_of_text(cell)
        if value is not None:
            keep[i] = True  # a 19-digit integer, or a float such as 1e9 that is a whole number
            fixed[i] = str(value)
            continue
        problems.append(Problem(source, i + 1, "S103", name, f"{cell!r} {why}"))
    if fixed:
        cells = text.to_pylist()
        for i, v in fixed.items():
            cells[i] = v
        text = pa.array(cells, type=pa.string())
    values = pc.if_else(pa.array(keep), text, pa.nulls(len(text), pa.string()))
    return values.cast(pa.int64()), problems


def _strip_zero_fraction(text: pa.Array) -> pa.Array:
    # "12.000" -> "12" and "+7" -> "7" (Arrow's cast takes no plus sign); anything else is left for
    # the cell-by-cell check
    text = pc.replace_substring_regex(text, r"^([+-]?[0-9]{1,18})\.0*$", r"\1")
    return pc.replace_substring_regex(text, r"^\+", "")


def _int_of_text(cell: str) -> tuple[int | None, str]:
    """The integer a cell holds (``None`` and why not): a 19-digit integer that fits int64, or a
    number in float notation (``1.5e9``) whose value is whole."""
    try:
        d = Decimal(cell)
    except (InvalidOperation, ValueError):
        return None, "is not a 64-bit integer"
    if not d.is_finite():
        return None, "is not a 64-bit integer"
    if abs(d) > _INT64_MAX:
        return None, "does not fit a 64-bit integer"
    if d != d.to_integral_value():
        return None, "is not a whole number (integer columns take no fraction)"
    return int(d), ""
def _cast_float_to_int(arr: pa.Array, name: str, source: str) -> tuple[pa.Array, list[Problem]]:
    vals = arr.to_numpy(zero_copy_only=False)
    valid = ~np.isnan(vals)
    ok = ~valid | ((vals == np.floor(vals)) & (np.abs(vals) < 2.0**63))
    problems = [Problem(source, i + 1, "S103", name, f"{vals[i]!r} is not a 64-bit integer")
                for i in np.flatnonzero(~ok).tolist()]
    out = np.where(ok & valid, vals, 0).astype(np.int64)
    return pa.array(out, mask=~(ok & valid)), problems


def read_trace(path: str | os.PathLike) -> pa.Table:
    """Read a trace file strictly: the table, or TraceInvalid naming file/row/column.

    Only the format is checked here (columns, cell types, version); the content
    rules (nulls, ops, namespaces) are ``traces.validate``'s.
    """
    source = str(path)
    raw, problems = open_raw(path)
    raise_problems(problems)
    table, problems = conform(raw, source)
    raise_problems(problems)
    return table


def check_columns(table: pa.Table, source: str = "") -> None:
    """Raise TraceInvalid if ``table`` lacks a schema column or has an unknown one."""
    problems = [Problem(source, 0, "S101", n, "missing column") for n in COLUMN_NAMES
                if n not in table.column_names]
    problems += [Problem(source, 0, "S102", n, "unknown column (not in trace schema v1)")
                 for n in table.column_names if n not in COLUMN_NAMES]
    raise_problems(problems)


def write_trace(table: pa.Table, path: str | os.PathLike) -> None:
    """Write ``table`` atomically as Parquet or CSV (chosen by the suffix).

    Parquet rows are grouped by machine with a stable sort, so each machine's
    own row order is kept (for a valid trace the file is then sorted by
    (machine, time_us), and says so in its sorting metadata). CSV keeps the
    given row order.
    """
    source = str(path)
    check_columns(table, source)
    parquet = trace_format(path) == "parquet"
    # Parquet stores a dictionary-encoded column as it is (the writer would encode plain strings anyway)
    table, problems = conform(table.select(list(COLUMN_NAMES)), source, keep_dictionary=parquet)
    raise_problems(problems)
    if parquet:
        table = group_by_machine(table)
        atomic_write(path, lambda tmp: _write_parquet(table, tmp))
    else:
        atomic_write(path, lambda tmp: _write_csv(table, tmp))


def group_by_machine(table: pa.Table) -> pa.Table:
    """Rows stably reordered so that machines are contiguous, in sorted id order."""
    codes = machine_order_codes(table)
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return table
    return table.take(pa.array(np.argsort(codes, kind="stable")))


def machine_order_codes(table: pa.Table) -> np.ndarray:
    """Per row, the rank of its machine id among the sorted distinct ids (int64)."""
    enc = pc.dictionary_encode(table.column("machine")).combine_chunks()
    names = enc.dictionary.to_pylist()
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    return rank[enc.indices.to_numpy(zero_copy_only=False)] if len(names) else np.zeros(0, np.int64)


def _time_sorted_within_machine(table: pa.Table, codes: np.ndarray) -> bool:
    t = table.column("time_us").to_numpy()
    same = codes[1:] == codes[:-1]
    return bool(np.all(t[1:][same] >= t[:-1][same]))


def _write_parquet(table: pa.Table, tmp: str) -> None:
    """Row groups of ``ROW_GROUP_ROWS``; a dictionary column is written with each group's own dictionary.

    Parquet stores a column chunk's dictionary with the chunk, so an importer's
    dictionary (every cgroup path of the trace) would be written in full into every
    row group: 1M object names made a 7M-row file take 15 s instead of 1 s.
    """
    codes = machine_order_codes(table)
    sorting = [pq.SortingColumn(1)]
    if _time_sorted_within_machine(table, codes):
        sorting.append(pq.SortingColumn(0))
    with pq.ParquetWriter(tmp, table.schema, compression="zstd", sorting_columns=sorting,
                          write_statistics=True) as w:
        for lo in range(0, max(table.num_rows, 1), ROW_GROUP_ROWS):
            w.write_table(_compact_dictionaries(table.slice(lo, ROW_GROUP_ROWS)), row_group_size=ROW_GROUP_ROWS)


def _compact_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` with every dictionary column's dictionary cut to the values its rows use (order kept)."""
    for i, fld in enumerate(table.schema):
        if not pa.types.is_dictionary(fld.type):
            continue
        col = table.column(i)
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        idx = pc.fill_null(arr.indices, 0).to_numpy(zero_copy_only=False)
        valid = arr.indices.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
        used = np.zeros(len(arr.dictionary), dtype=bool)
        used[idx if valid is None else idx[valid]] = True
        new_id = (np.cumsum(used) - 1).astype(np.int32)
        indices = pa.array(new_id[idx], mask=None if valid is None else ~valid)
        small = pa.DictionaryArray.from_arrays(indices, arr.dictionary.filter(pa.array(used)))
        table = table.set_column(i, fld, small)
    return table


def _write_csv(table: pa.Table, tmp: str) -> None:
    compression = "gzip" if tmp.lower().endswith(".gz") else None
    with pa.output_stream(tmp, compression=compression) as out:
        pcsv.write_csv(table, out, pcsv.WriteOptions(quoting_style="needed"))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Run ``write(tmp)`` on a temp file next to ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the real suffix on the temp name: writers pick compression from it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes[-2:]))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


_atomic_write = atomic_write  # old private name, still imported by replay/ (switch to atomic_write)
