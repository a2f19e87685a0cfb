"""What every importer shares: reading raw trace files, bad-row handling, the report.

In: paths of headerless CSV (optionally gzipped) or newline-delimited JSON files
and a description of their columns. Out: Arrow tables of the typed columns, plus
an ``ImportReport`` that counts every row read, imported and rejected, and a
``Rejects`` sink that either raises ``core.errors.TraceError`` (strict: file,
1-based row, field) or quarantines the bad row to a rejects CSV (``--lenient``).

Reading has two paths. The fast path hands the whole file to pyarrow's
multithreaded CSV reader with typed columns. If that fails (a bad cell, a short
row, a truncated gzip stream) the file is re-read line by line in Python, which
is slow but knows the exact row and field of every problem.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.errors import TraceError
from traces import take_build

INT64_MAX = (1 << 63) - 1
NEVER = INT64_MAX  #: end time of something that outlives the trace
PAGE = 4096

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Col:
    """One column of a raw trace table: name, kind ('int', 'float', 'str', or 'dict': strings read
    dictionary-encoded, for a column of few distinct values) and whether it may be empty."""

    name: str
    kind: str
    required: bool = False


_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                "dict": pa.dictionary(pa.int32(), pa.string())}


@dataclass
class FileCount:
    """Rows of one input file: read, imported (used for events or metadata) and rejected."""

    read: int = 0
    rejected: int = 0


@dataclass
class ImportReport:
    """Counts of one import. ``skipped`` holds rows that parsed but were not turned into
    events, by reason (e.g. an exit of a task that never ran on a machine)."""

    source: str
    files: dict[str, FileCount] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    machines: dict[str, int] = field(default_factory=dict)
    cgroups: int = 0
    tasks: int = 0
    events: int = 0
    ops: dict[str, int] = field(default_factory=dict)

    def file(self, path: str) -> FileCount:
        """The counter of ``path`` (created on first use)."""
        return self.files.setdefault(str(path), FileCount())

    @property
    def rows_read(self) -> int:
        return sum(f.read for f in self.files.values())

    @property
    def rows_rejected(self) -> int:
        return sum(f.rejected for f in self.files.values())

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_imported(self) -> int:
        return self.rows_read - self.rows_rejected - self.rows_skipped

    def to_dict(self) -> dict:
        """JSON-ready form (sorted keys, so reports of equal imports are byte-identical)."""
        return {
            "source": self.source,
            "rows": {"read": self.rows_read, "imported": self.rows_imported,
                     "rejected": self.rows_rejected, "skipped": self.rows_skipped},
            "files": {k: {"read": v.read, "rejected": v.rejected} for k, v in sorted(self.files.items())},
            "skipped": dict(sorted(self.skipped.items())),
            "notes": dict(sorted(self.notes.items())),
            "machines": len(self.machines), "cgroups": self.cgroups, "tasks": self.tasks,
            "events": self.events, "ops": dict(sorted(self.ops.items())),
            "machine_mem_bytes": dict(sorted(self.machines.items())),
        }

    def summary(self) -> str:
        """Human-readable one-paragraph summary for the CLI."""
        d = self.to_dict()
        r = d["rows"]
        lines = [f"{self.source}: rows read {r['read']}, imported {r['imported']}, "
                 f"rejected {r['rejected']}, skipped {r['skipped']}",
                 f"  machines {d['machines']}, cgroups {self.cgroups}, tasks {self.tasks}, events {self.events}"]
        lines += [f"  skipped {k}: {v}" for k, v in d["skipped"].items()]
        lines += [f"  note {k}: {v}" for k, v in d["notes"].items()]
        return "\n".join(lines)


class Rejects:
    """Where bad rows go: strict mode raises at the first one, lenient mode keeps them.

    Kept rows are written by ``write`` as CSV (file, row, field, reason, text). ``text`` is the
    row as it is in the file: rows found bad after parsing (an empty required field, an unknown
    event code) get it from the file when the rejects are written.
    """

    def __init__(self, report: ImportReport, lenient: bool = False) -> None:
        self.report = report
        self.lenient = lenient
        self.rows: list[tuple[str, int, str, str, str]] = []

    def bad(self, source: str, row: int, fld: str, reason: str, text: str = "") -> None:
        """Record one bad row; raises TraceError unless lenient."""
        if not self.lenient:
            raise TraceError(source, row, fld, reason)
        self.rows.append((source, row, fld, reason, text))
        self.report.file(source).rejected += 1

    def write(self, path: str | os.PathLike) -> None:
        """Write the quarantined rows atomically as CSV with a header."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "row", "field", "reason", "text"])
        w.writerows(self._with_texts())
        atomic_write_bytes(path, buf.getvalue().encode())

    def _with_texts(self) -> list[tuple[str, int, str, str, str]]:
        # one pass over each file that has rejected rows without their text
        missing: dict[str, set[int]] = {}
        for source, row, _, _, text in self.rows:
            if not text:
                missing.setdefault(source, set()).add(row)
        texts = {source: line_texts(source, rows) for source, rows in missing.items()}
        return [(s, r, f, why, text or texts.get(s, {}).get(r, "")) for s, r, f, why, text in self.rows]


def line_texts(path: str | os.PathLike, rows: set[int]) -> dict[int, str]:
    """The text of the given 1-based lines of a (gzipped) text file; lines past a cut-off end are left out."""
    out: dict[int, str] = {}
    last = max(rows, default=0)
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if lineno in rows:
                    out[lineno] = line.rstrip("\r\n")
                if lineno >= last:
                    break
    except (EOFError, OSError, zlib.error):
        pass  # the cut itself is a rejected row with no text
    return out


def reject_rows(table: pa.Table, bad: np.ndarray, field: str, reason: Callable[[int], str], rejects: Rejects,
                files: Sequence[str]) -> pa.Table:
    """``table`` without the rows where ``bad``; each goes to ``rejects`` as ``reason(i)``, named by
    its file (``files[_file]``, or ``files[0]`` for a table of one file) and its ``_row``.

    Strict mode raises at the first bad row, so a bad row never reaches the trace silently."""
    if not bad.any():
        return table
    rows = np_col(table, "_row")
    which = np_col(table, "_file") if "_file" in table.column_names else np.zeros(table.num_rows, np.int64)
    for i in np.flatnonzero(bad).tolist():
        rejects.bad(str(files[int(which[i])]), int(rows[i]), field, reason(i))
    return table.filter(pa.array(~bad))


def check_fraction(table: pa.Table, name: str, rejects: Rejects, files: Sequence[str],
                   top: float = 1.0) -> pa.Table:
    """Reject rows whose normalised value ``name`` (``top`` = the largest machine) is outside [0, top]."""
    v = np_col(table, name, fill=0.0)
    return reject_rows(table, (v < 0) | (v > top), name,
                       lambda i: f"normalised value {float(v[i])!r} is outside [0, {top:g}] "
                                 f"({top:g} = the largest machine)", rejects, files)


def check_codes(table: pa.Table, name: str, lo: int, hi: int, rejects: Rejects, files: Sequence[str]) -> pa.Table:
    """Reject rows whose code ``name`` is not in ``lo..hi`` (an event type this format does not define)."""
    v = np_col(table, name, fill=0)
    return reject_rows(table, (v < lo) | (v > hi), name, lambda i: f"unknown code {int(v[i])} (known: {lo}-{hi})",
                       rejects, files)


def last_known(machine: pa.Array, time: np.ndarray, value: np.ndarray) -> dict[str, float]:
    """Per machine, its value (>= 0; a negative value means unknown) at the latest time, ties broken by
    row order: "last known capacity" follows time, not the order the rows come in."""
    out: dict[str, float] = {}
    ids = machine.to_pylist()
    for i in np.lexsort((np.arange(time.size), time)).tolist():
        if value[i] >= 0:
            out[ids[i]] = float(value[i])
    return out


def check_times(table: pa.Table, name: str, rejects: Rejects, files: Sequence[str], origin_us: int = 0,
                scale_us: int = 1, never: bool = True) -> pa.Table:
    """Reject rows whose time ``name`` (in units of ``scale_us`` µs, ``origin_us`` µs at the
    window start) is negative or falls after ``traces.schema.MAX_TIME_US``, the replay's horizon.
    With ``never``, Google's "after the window" 2^63-1 (``NEVER``) is kept: it is not an event time."""
    from traces.schema import MAX_TIME_US

    t = np_col(table, name, fill=0)
    limit = (MAX_TIME_US + origin_us) // scale_us
    bad = (t < 0) | (t > limit)
    if never:
        bad &= t != NEVER
    return reject_rows(table, bad, name,
                       lambda i: f"time {int(t[i])} is {'negative' if t[i] < 0 else 'after the replay horizon'} "
                                 f"(0 to {limit} in this file's units: ten years)", rejects, files)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


# ---------------------------------------------------------------- CSV

def read_csv(path: str | os.PathLike, cols: list[Col], rejects: Rejects,
             progress: ProgressFn | None = None) -> pa.Table:
    """A headerless CSV file (``.gz`` allowed) as a typed table with a ``_row`` column.

    ``_row`` is the 1-based line number of each kept row. Required columns are
    never null in the result; rows breaking that go to ``rejects``.
    """
    source = str(path)
    _check_file(source)
    try:
        table = _read_csv_fast(path, cols)
        _no_nonfinite(table, cols)
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error):
        if progress:
            progress(f"{source}: fast reader failed, re-reading line by line to locate the problem")
        table = _read_csv_slow(path, cols, rejects)
    else:
        table = table.append_column("_row", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
        rejects.report.file(source).read += table.num_rows
    table = _drop_missing_required(table, cols, source, rejects)
    if progress:
        progress(f"{source}: {rejects.report.file(source).read} rows read")
    return table


def _no_nonfinite(table: pa.Table, cols: list[Col]) -> None:
    # Arrow reads "nan" and "inf" as floats; they are no measurement: let the slow path name the row
    for c in cols:
        if c.kind == "float" and pc.all(pc.fill_null(pc.is_finite(table.column(c.name)), True)).as_py() is False:
            raise pa.ArrowInvalid(f"{c.name}: a value that is not a finite number")


def _check_file(source: str) -> None:
    # a missing input is an error even with --lenient: there is no row to quarantine
    if not os.path.exists(source):
        raise TraceError(source, 0, "-", "cannot read file: no such file")
    if os.path.isdir(source):
        raise TraceError(source, 0, "-", "cannot read file: it is a directory")


def _read_csv_fast(path: str | os.PathLike, cols: list[Col]) -> pa.Table:
    types = {c.name: _ARROW_TYPES[c.kind] for c in cols}
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=[c.name for c in cols], block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                             null_values=[""], quoted_strings_can_be_null=True),
    )


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _read_csv_slow(path: str | os.PathLike, cols: list[Col], rejects: Rejects) -> pa.Table:
    source = str(path)
    parsed = ((lineno, _parse_fields(fields, cols, source, lineno, text, rejects))
              for lineno, fields, text in _csv_lines(path, source, rejects))
    return _table_of(parsed, cols, rejects.report.file(source))


def _table_of(parsed: Iterator[tuple[int, list | None]], cols: list[Col], count) -> pa.Table:
    """Parsed rows (line number, values or None if rejected) -> typed table with ``_row``; counts reads."""
    values: list[list] = [[] for _ in cols]
    rows: list[int] = []
    for lineno, row in parsed:
        count.read += 1
        if row is None:
            continue
        for v, out in zip(row, values):
            out.append(v)
        rows.append(lineno)
    arrays = [pa.array(v, type=_ARROW_TYPES[c.kind]) for v, c in zip(values, cols)]
    arrays.append(pa.array(rows, type=pa.int64()))
    return pa.Table.from_arrays(arrays, names=[c.name for c in cols] + ["_row"])


def _csv_lines(path: str | os.PathLike, source: str,
               rejects: Rejects) -> Iterator[tuple[int, list[str], str]]:
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                text = line.rstrip("\r\n")
                if text:
                    yield lineno, next(csv.reader([text])), text
    except (EOFError, OSError, zlib.error) as e:
        # a cut-off download: everything before this row was fine
        rejects.bad(source, lineno + 1, "-", f"file truncated or corrupt after row {lineno}: {e}")


def _parse_fields(fields: list[str], cols: list[Col], source: str, lineno: int, text: str,
                  rejects: Rejects) -> list | None:
    if len(fields) != len(cols):
        rejects.bad(source, lineno, "-", f"expected {len(cols)} fields, found {len(fields)}", text)
        return None
    out = []
    for raw, c in zip(fields, cols):
        try:
            out.append(_convert(raw, c.kind))
        except ValueError:
            rejects.bad(source, lineno, c.name, f"{raw!r} is not a valid {c.kind}", text)
            return None
    return out


def _convert(raw: str, kind: str) -> object:
    raw = raw.strip()
    if raw == "":
        return None
    if kind == "int":
        v = int(raw)
        if not -INT64_MAX - 1 <= v <= INT64_MAX:
            raise ValueError(raw)
        return v
    if kind == "float":
        v = float(raw)
        if not math.isfinite(v):  # NaN and infinity are no measurement
            raise ValueError(raw)
        return v
    return raw


def _drop_missing_required(table: pa.Table, cols: list[Col], source: str, rejects: Rejects) -> pa.Table:
    bad = np.zeros(table.num_rows, dtype=bool)
    for c in cols:
        if not c.required:
            continue
        nulls = table.column(c.name).is_null().to_numpy(zero_copy_only=False)
        rows = table.column("_row").to_numpy()
        for i in np.flatnonzero(nulls & ~bad)[:1000 if not rejects.lenient else None]:
            rejects.bad(source, int(rows[i]), c.name, "required field is empty")
        bad |= nulls
    return table.filter(pa.array(~bad)) if bad.any() else table


# ---------------------------------------------------------------- newline-delimited JSON

def read_ndjson(path: str | os.PathLike, cols: list[Col], rejects: Rejects,
                progress: ProgressFn | None = None) -> pa.Table:
    """Newline-delimited JSON (BigQuery export style: int64s as strings, empty fields omitted).

    ``cols`` may name nested fields with dots (``resource_request.memory``).
    Returns a typed table with a ``_row`` column (1-based line number).
    """
    source = str(path)
    _check_file(source)
    count = rejects.report.file(source)
    parsed = ((lineno, _parse_json_row(text, cols, source, lineno, rejects))
              for lineno, text in _json_lines(path, source, rejects))
    table = _table_of(parsed, cols, count)
    if progress:
        progress(f"{source}: {count.read} rows read")
    return table


def _json_lines(path: str | os.PathLike, source: str, rejects: Rejects) -> Iterator[tuple[int, str]]:
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    yield lineno, line
    except (EOFError, OSError, zlib.error) as e:
        rejects.bad(source, lineno + 1, "-", f"file truncated or corrupt after row {lineno}: {e}")


def _parse_json_row(text: str, cols: list[Col], source: str, lineno: int, rejects: Rejects) -> list | None:
    try:
        obj = json.loads(text)
    except ValueError as e:
        rejects.bad(source, lineno, "-", f"not valid JSON: {e}", text.rstrip("\n"))
        return None
    if not isinstance(obj, dict):
        rejects.bad(source, lineno, "-", "not a JSON object", text.rstrip("\n"))
        return None
    out = []
    for c in cols:
        raw = _dig(obj, c.name)
        try:
            v = None if raw is None else _convert(str(raw), c.kind)
        except ValueError:
            rejects.bad(source, lineno, c.name, f"{raw!r} is not a valid {c.kind}", text.rstrip("\n"))
            return None
        if v is None and c.required:
            rejects.bad(source, lineno, c.name, "required field is missing", text.rstrip("\n"))
            return None
        out.append(v)
    return out


def _dig(obj: dict, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj if not isinstance(obj, (dict, list)) else None


# ---------------------------------------------------------------- small columnar helpers

def np_col(table: pa.Table, name: str, fill: int | float | None = None) -> np.ndarray:
    """A numeric column as numpy; nulls become ``fill`` (required when the column has nulls)."""
    col = table.column(name)
    if fill is not None:
        col = pc.fill_null(col, fill)
    return col.to_numpy()


def valid_mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row whether ``arr`` holds a value: ``arr.is_valid().to_numpy(zero_copy_only=False)``, unpacked
    from the validity bitmap in one vectorised pass (Arrow's conversion of a boolean array to numpy
    goes element by element)."""
    if isinstance(arr, pa.ChunkedArray):
        return (np.concatenate([valid_mask(c) for c in arr.chunks]) if arr.num_chunks
                else np.zeros(0, dtype=bool))
    if pa.types.is_dictionary(arr.type):
        return valid_mask(arr.indices)  # a dictionary array's nulls are its indices'
    n = len(arr)
    if not arr.null_count:
        return np.ones(n, dtype=bool)
    bitmap = arr.buffers()[0]
    if bitmap is None:
        return arr.is_valid().to_numpy(zero_copy_only=False)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=arr.offset + n, bitorder="little")
    return bits[arr.offset:].view(bool)


def first_seen(keys: np.ndarray) -> np.ndarray:
    """Per row an id (int64) of its int64 key, numbered in order of first appearance (compiled when
    built: one pass through a hash table, no Arrow hash table and dictionary array of the keys;
    else ``first_seen_pure``, the same ids)."""
    mod = take_build.module()
    if mod is not None:
        return mod.first_seen(np.ascontiguousarray(keys, dtype=np.int64))
    return first_seen_pure(keys)


def first_seen_pure(keys: np.ndarray) -> np.ndarray:
    """``first_seen`` by Arrow's ``dictionary_encode``: the reference."""
    return pa.array(keys, pa.int64()).dictionary_encode().indices.to_numpy().astype(np.int64)


def str_col(table: pa.Table, name: str) -> pa.Array:
    """A column as one contiguous Arrow string array (int columns are formatted)."""
    col = table.column(name)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def find_files(root: str | os.PathLike, patterns: tuple[str, ...]) -> list[str]:
    """Files under directory ``root`` whose relative path matches one of ``patterns`` (sorted)."""
    base = Path(root)
    found = {p for pat in patterns for p in base.glob(pat) if p.is_file()}
    return [str(p) for p in sorted(found)]
