"""EventBatch: the columnar form in which trace events reach one machine.

In: decoded trace columns for one machine (``traces.batches`` builds these from
Arrow). Out: a plain container of numpy arrays that ``core.machine.Machine``
consumes without touching Arrow, pandas or Python objects per event.

Names (cgroup paths, task ids, object names) are interned per batch: a column
holds an index into the batch's own name list, or -1 where the trace had null.
The machine maps batch-local indices onto its own stable ids, so batches can be
cut anywhere and checkpoints stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import TraceError
from core.pages import pages_of

NULL = -1  #: value of an integer column where the trace had null


@dataclass
class EventBatch:
    """Time-ordered events of one machine.

    Attributes:
        time_us: int64 simulated time of each event, microseconds.
        op: uint8 ``core.ops.Op`` codes.
        cgroup, task, obj: int32 indices into ``cgroups``/``tasks``/``objects`` (or NULL).
        offset, nbytes: int64 byte offset / size (NULL where absent).
        flags: int32 ``core.ops.Flag`` bits.
        row: int64 1-based data row of each event in its source file (for error messages).
        names: the name tables as ``Machine.apply`` decodes them (filled by its first call), shared
            with every ``slice``.
        columns: the columns as ``Machine.apply`` reads them (``core.machine._columns``), kept by its
            first call: a shard applies a machine's batch a round at a time (``apply``'s start, stop).
    """

    time_us: np.ndarray
    op: np.ndarray
    cgroup: np.ndarray
    task: np.ndarray
    obj: np.ndarray
    offset: np.ndarray
    nbytes: np.ndarray
    flags: np.ndarray
    cgroups: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    row: np.ndarray | None = None
    source: str = ""
    names: list = field(default_factory=list, repr=False, compare=False)
    columns: list = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.time_us.shape[0])

    def slice(self, start: int, stop: int) -> "EventBatch":
        """Rows [start, stop) sharing this batch's name tables."""
        return EventBatch(
            self.time_us[start:stop], self.op[start:stop], self.cgroup[start:stop],
            self.task[start:stop], self.obj[start:stop], self.offset[start:stop],
            self.nbytes[start:stop], self.flags[start:stop],
            self.cgroups, self.tasks, self.objects,
            None if self.row is None else self.row[start:stop], self.source, self.names,
        )

    @classmethod
    def from_rows(cls, rows: list[tuple], source: str = "<rows>") -> "EventBatch":
        """Build a batch from Python tuples (tests, small scenarios).

        Each row is ``(time_us, op, cgroup, task, object, offset, bytes, flags)`` where
        op is a ``core.ops.Op``, names are str or None, numbers int or None and
        flags ``core.ops.Flag`` bits (or 0).
        """
        tables: dict[str, dict[str, int]] = {"c": {}, "t": {}, "o": {}}

        def idx(kind: str, name: str | None) -> int:
            if name is None:
                return NULL
            return tables[kind].setdefault(name, len(tables[kind]))

        n = len(rows)
        cols = {k: np.full(n, NULL, dtype=np.int64) for k in ("t", "c", "k", "o", "off", "b")}
        op = np.zeros(n, dtype=np.uint8)
        flags = np.zeros(n, dtype=np.int32)
        for i, (t, o, cg, tk, ob, off, nb, fl) in enumerate(rows):
            cols["t"][i] = t
            op[i] = int(o)
            cols["c"][i] = idx("c", cg)
            cols["k"][i] = idx("t", tk)
            cols["o"][i] = idx("o", ob)
            cols["off"][i] = NULL if off is None else off
            cols["b"][i] = NULL if nb is None else nb
            flags[i] = int(fl or 0)
        return cls(
            cols["t"], op, cols["c"].astype(np.int32), cols["k"].astype(np.int32),
            cols["o"].astype(np.int32), cols["off"], cols["b"], flags,
            list(tables["c"]), list(tables["t"]), list(tables["o"]),
            np.arange(1, n + 1, dtype=np.int64), source,
        )


class TraceEvent:
    """One decoded event of a batch, as the op handlers (``core.syscalls``) see it; its ``need_*``
    accessors raise TraceError naming the field."""

    __slots__ = ("source", "row", "cgroup", "task", "obj", "offset", "nbytes", "flags")

    def __init__(self, source: str, row: int, cgroup: str | None, task: str | None, obj: str | None,
                 offset: int, nbytes: int, flags: int) -> None:
        self.source, self.row = source, row
        self.cgroup, self.task, self.obj = cgroup, task, obj
        self.offset, self.nbytes, self.flags = offset, nbytes, flags

    def error(self, field: str, message: str) -> TraceError:
        """A TraceError at this event's row (1-based, as in the source file)."""
        return TraceError(self.source, self.row, field, message)

    def need_cgroup(self) -> str:
        if self.cgroup is None:
            raise self.error("cgroup", "required for this op")
        return self.cgroup

    def need_task(self) -> str:
        if self.task is None:
            raise self.error("task", "required for this op")
        return self.task

    def need_object(self) -> str:
        if self.obj is None:
            raise self.error("object", "required for this op")
        return self.obj

    def need_bytes(self) -> int:
        if self.nbytes == NULL or self.nbytes < 0:
            raise self.error("bytes", "a non-negative size is required for this op")
        return self.nbytes

    def range(self, size_pages: int) -> tuple[int, int]:
        """[lo, hi) pages of a range op, clipped to ``size_pages``; null bytes = to the end."""
        off = 0 if self.offset == NULL else self.offset
        if off < 0:
            raise self.error("offset", "negative offset")
        lo = off // 4096
        hi = size_pages if self.nbytes == NULL else min(size_pages, pages_of(off + self.nbytes))
        return lo, max(lo, hi)
