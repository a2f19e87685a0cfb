"""Transforms of native traces: machine sampling, time window, shift, scale, concatenation.

In: Arrow tables in ``traces.schema.TRACE_SCHEMA``. Out: new tables in the
same schema; every transform is deterministic (same input and seed => same
rows in the same order) and keeps a valid trace valid:

* ``sample_machines`` keeps whole machines, so nothing of a kept machine is lost.
  With a fraction, a machine is kept when a keyed hash of (seed, id), read as a
  number in [0, 1), is below the fraction: each machine's fate is its own, so
  adding or removing other machines never changes it (the count kept is close to,
  not exactly, fraction x machines). With a count, machines are ranked by the same
  hash and the first ``count`` kept: exact, but a rank cut, so whether a machine
  is kept depends on the others.
* ``window`` drops events at or after ``end_us`` and collapses every event
  before ``start_us`` onto ``start_us`` (in order), so state built before the
  window (cgroups, tasks, files, and the zombies left by earlier exits) exists
  when the window starts; nothing needs re-creating.
* ``shift_to_zero`` / ``scale_time`` change times monotonically (order kept).
* ``concat`` appends traces in time (each after the previous one ends) and
  prefixes names with ``p<i>.`` so that no task id or object is reused.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces.schema import TRACE_SCHEMA


def machine_ids(table: pa.Table) -> list[str]:
    """Distinct machine ids, sorted."""
    return sorted(pc.unique(table.column("machine")).to_pylist())


def _rank_key(seed: int, machine: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{machine}".encode()).digest()


def _unit(seed: int, machine: str) -> float:
    # the first 64 bits of the keyed hash as a number in [0, 1)
    return int.from_bytes(_rank_key(seed, machine)[:8], "big") / 2.0**64


def sample_machines(table: pa.Table, fraction: float | None = None, count: int | None = None,
                    seed: int = 0) -> pa.Table:
    """Rows of a deterministic sample of machines: each machine with probability ``fraction``
    (decided by its own keyed hash), or exactly ``count`` of them (a rank cut by that hash)."""
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction or count")
    ids = machine_ids(table)
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction {fraction} outside [0, 1]")
        keep = [m for m in ids if _unit(seed, m) < fraction]
        return table.filter(pc.is_in(table.column("machine"), value_set=pa.array(keep, pa.string())))
    if count < 0:
        raise ValueError(f"count {count} is negative")
    keep = sorted(ids, key=lambda m: _rank_key(seed, m))[:count]
    return table.filter(pc.is_in(table.column("machine"), value_set=pa.array(keep, pa.string())))


def window(table: pa.Table, start_us: int = 0, end_us: int | None = None) -> pa.Table:
    """Events before ``end_us``; those before ``start_us`` are moved to ``start_us`` (see module doc)."""
    if end_us is not None and end_us < start_us:
        raise ValueError(f"window end {end_us} before start {start_us}")
    t = table.column("time_us")
    if end_us is not None:
        table = table.filter(pc.less(t, end_us))
        t = table.column("time_us")
    return _set_time(table, pc.max_element_wise(t, pa.scalar(start_us, pa.int64())))


def shift_to_zero(table: pa.Table) -> pa.Table:
    """Times shifted so that the earliest event is at 0 (one shift for all machines)."""
    if not table.num_rows:
        return table
    lo = pc.min(table.column("time_us")).as_py()
    return _set_time(table, pc.subtract(table.column("time_us"), pa.scalar(lo, pa.int64())))


def scale_time(table: pa.Table, factor: float) -> pa.Table:
    """Times multiplied by ``factor`` > 0 (rounded down to whole microseconds)."""
    if not factor > 0:
        raise ValueError(f"time scale factor must be > 0, got {factor}")
    t = table.column("time_us").to_numpy()
    scaled = np.floor(t.astype(np.float64) * factor)
    if scaled.size and scaled.max() >= 2.0**63:
        raise ValueError("scaled times overflow int64")
    return _set_time(table, pa.array(scaled.astype(np.int64)))


def concat(tables: list[pa.Table], gap_us: int = 0, tag_names: bool = True) -> pa.Table:
    """One trace: each input after the previous one's last event (+``gap_us``), shifted to start there.

    With ``tag_names`` task ids, object names and the top cgroup level get a
    ``p<i>.`` prefix per input, so names of different inputs never collide.
    """
    out, offset = [], 0
    for i, t in enumerate(tables):
        t = shift_to_zero(t)
        t = _set_time(t, pc.add(t.column("time_us"), pa.scalar(offset, pa.int64())))
        if tag_names and len(tables) > 1:
            t = _tag(t, f"p{i}.")
        out.append(t.cast(TRACE_SCHEMA))
        if t.num_rows:
            offset = pc.max(t.column("time_us")).as_py() + gap_us
    return pa.concat_tables(out) if out else TRACE_SCHEMA.empty_table()


def _tag(t: pa.Table, prefix: str) -> pa.Table:
    t = t.cast(TRACE_SCHEMA)  # plain strings: the string kernels below take no dictionary columns
    cols = {}
    for name in ("task", "object"):
        cols[name] = pc.binary_join_element_wise(pa.scalar(prefix), t.column(name), "")
    # '/a/b' -> '/p0.a/b'; the root '/' stays the root
    cols["cgroup"] = pc.replace_substring_regex(t.column("cgroup"), r"^/(.)", "/" + prefix + r"\1")
    for name, col in cols.items():
        t = t.set_column(t.schema.get_field_index(name), t.schema.field(name), col)
    return t


def _set_time(table: pa.Table, col: pa.Array | pa.ChunkedArray) -> pa.Table:
    i = table.schema.get_field_index("time_us")
    return table.set_column(i, table.schema.field(i), col)
