"""The native trace schema, version 1: one Arrow schema for every trace source.

In: nothing. Out: ``TRACE_SCHEMA`` (pyarrow), ``COLUMNS`` (name -> documentation),
and ``render_markdown()`` which produces ``docs/trace-schema.md`` from the same
texts, together with the per-op documentation held in ``core.ops.OP_SPECS``.

A trace is a table of events. Rows of one machine are ordered by ``time_us``;
rows of different machines may interleave. Names (cgroup paths, task ids,
object names) are scoped to their machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from core.ops import FLAG_TOKENS, OP_SPECS, Flag

SCHEMA_VERSION = 1
VERSION_KEY = b"memcg_replay.trace_version"
YEAR_US = 365 * 86_400 * 1_000_000
#: The latest event time a trace may hold: ten years. The replay steps through simulated time
#: from 0 to the last event, so an event at 2^62 us would be billions of rounds; Google's
#: "after the window" time 2^63-1 is not an event and the importers never emit it.
MAX_TIME_US = 10 * YEAR_US


@dataclass(frozen=True)
class Column:
    """One trace column: its Arrow type, whether null is allowed, and its meaning."""

    name: str
    type: pa.DataType
    nullable: bool
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("time_us", pa.int64(), False,
           "Simulated time of the event in microseconds since the trace start, 0 to "
           f"{MAX_TIME_US} ({MAX_TIME_US // YEAR_US} years). Non-decreasing within one machine."),
    Column("machine", pa.string(), False,
           "Machine id. Every other name in the row is scoped to this machine."),
    Column("op", pa.string(), False,
           "Operation name, one of the ops below (lower case)."),
    Column("cgroup", pa.string(), True,
           "cgroup v2 path below the machine's root, e.g. `/pod-7/ctr-1` (`/` is the root)."),
    Column("task", pa.string(), True,
           "Task (process) id, unique on its machine for the whole trace."),
    Column("object", pa.string(), True,
           "File, tmpfs object, anon region or kmem object name, unique on its machine while it exists."),
    Column("offset", pa.int64(), True,
           "Byte offset of a range operation (null = 0)."),
    Column("bytes", pa.int64(), True,
           "Byte count: a size, a range length, a limit or a reclaim request; pages are 4 KiB "
           "and partial pages round up."),
    Column("flags", pa.string(), True,
           "`|`-separated modifiers: " + ", ".join(f"`{t}`" for t in FLAG_TOKENS) + "."),
)

TRACE_SCHEMA: pa.Schema = pa.schema(
    [pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS],
    metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()},
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

#: The other form a ``string`` column may take in a table (not a file's content): int32 indices into
#: its distinct values. Importers return their string columns so and Parquet files keep them so;
#: ``traces.io.conform`` (and so ``read_trace``) turns them into plain strings.
DICT_STRING: pa.DataType = pa.dictionary(pa.int32(), pa.string())


def schema_of(columns: list, metadata: dict | None = None) -> pa.Schema:
    """TRACE_SCHEMA with each field typed as its column in ``columns`` (schema order): a
    ``DICT_STRING`` column stays encoded. ``metadata`` defaults to TRACE_SCHEMA's."""
    return pa.schema([f.with_type(c.type) for f, c in zip(TRACE_SCHEMA, columns)],
                     metadata=TRACE_SCHEMA.metadata if metadata is None else metadata)


def render_markdown() -> str:
    """The trace-schema reference as Markdown (written to docs/trace-schema.md)."""
    lines = [
        f"# Native trace schema v{SCHEMA_VERSION}",
        "",
        "Generated from `traces/schema.py` and `core/ops.py` by "
        "`python -m traces schema --markdown`; do not edit by hand.",
        "",
        "## Columns",
        "",
        "| column | Arrow type | null allowed | meaning |",
        "|---|---|---|---|",
    ]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.doc} |")
    lines += ["", "An integer column may also hold whole numbers written as floats (`1073741824.0`, as "
              "pandas writes an integer column with nulls, or `1e9`); a fraction (`0.5`) is an error."]
    lines += ["", "A `string` column may also come dictionary-encoded (`dictionary<int32, string>`: each "
              "distinct value stored once). The importers produce their string columns this way and "
              "Parquet files keep it. Readers accept either form, and `read_trace` returns plain strings."]
    lines += ["", "## Ops", "", "| op | required | optional | flags | meaning |", "|---|---|---|---|---|"]
    for spec in OP_SPECS.values():
        req = ", ".join(f"`{c}`" for c in spec.required) or "–"
        opt = ", ".join(f"`{c}`" for c in spec.optional) or "–"
        fl = ", ".join(f"`{f}`" for f in spec.flags) or "–"
        lines.append(f"| `{spec.op.name.lower()}` | {req} | {opt} | {fl} | {spec.doc} |")
    lines += ["", "## Flags", "", "| flag | bit | meaning |", "|---|---|---|"]
    for name, f in FLAG_TOKENS.items():
        lines.append(f"| `{name}` | {int(f)} | {_flag_doc(f)} |")
    return "\n".join(lines) + "\n"


def _flag_doc(f: Flag) -> str:
    # the comment after each Flag member is its documentation; keep it in one place
    import inspect

    import core.ops as ops

    src = inspect.getsource(ops.Flag)
    for line in src.splitlines():
        if line.strip().startswith(f"{f.name} ="):
            return line.split("#:", 1)[1].strip() if "#:" in line else ""
    return ""
