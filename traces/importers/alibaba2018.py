"""Importer for Alibaba cluster-trace-v2018 (headerless CSV).

In: ``machine_meta``, ``container_meta``, ``batch_instance`` and
``machine_usage`` files (each optional, at least one lifecycle file for tasks).
Out: a native trace table and an ``ImportReport``.

Assumptions (also in docs/importers.md):

* time: seconds since the trace start -> microseconds; 0 means before the
  window and becomes 0.
* units: memory is normalised to [0, 100] (100 = the largest machine);
  ``machine_bytes`` is the bytes of 100.
* containers (``container_meta``): rows are status snapshots, not events.
  A container's run on a machine starts at its first row and exits
  ``container_interval_s`` after its last row, unless that last row is within
  one interval of the file's last time stamp (still running at the end). It
  runs in ``/app-<app_du>/<container_id>`` as task ``<container_id>``; its
  memory.max is ``mem_size``.
* batch instances (``batch_instance``): one row = one run from start_time to
  end_time (an end of 0 or before the start = still running) in
  ``/batch-<job>/<task>.<instance>.<n>``; rows without a machine were never
  placed and are skipped. No limit; anon = mem_avg.
* no page cache is reported anywhere in this trace: containers get
  anon = ``anon_fraction`` x mem_size and private page cache =
  ``cache_fraction`` x mem_size (batch: x mem_avg), and the sharing rules add
  the shared image per app_du / job (``job_image``).
* ``machine_usage`` with ``background_fraction`` > 0: a ``/background``
  cgroup per machine whose anon follows fraction x mem_util_percent of the
  machine (it includes the containers' memory, so keep the fraction small).
* ``machine_meta``: every row becomes a ``sync`` marker; the last mem_size
  gives the machine's bytes in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces.importers.params import ImportParams
from traces.importers import build
from traces.importers.common import (NEVER, Col, ImportReport, ProgressFn, Rejects, check_fraction, check_times,
                                     np_col, read_csv, str_col)
from traces.importers.emit import Cgroups, ProfileParams, Samples, Updates, emit

GiB = 1 << 30
US = 1_000_000

MACHINE_META = [Col("machine_id", "str", True), Col("time_stamp", "int", True), Col("failure_domain_1", "str"),
                Col("failure_domain_2", "str"), Col("cpu_num", "float"), Col("mem_size", "float"),
                Col("status", "str")]
CONTAINER_META = [Col("container_id", "str", True), Col("machine_id", "str", True),
                  Col("time_stamp", "int", True), Col("app_du", "str"), Col("status", "str"),
                  Col("cpu_request", "float"), Col("cpu_limit", "float"), Col("mem_size", "float")]
BATCH_INSTANCE = [Col("instance_name", "str", True), Col("task_name", "str", True), Col("job_name", "str", True),
                  Col("task_type", "str"), Col("status", "str"), Col("start_time", "int"), Col("end_time", "int"),
                  Col("machine_id", "str"), Col("seq_no", "int"), Col("total_seq_no", "int"),
                  Col("cpu_avg", "float"), Col("cpu_max", "float"), Col("mem_avg", "float"),
                  Col("mem_max", "float")]
MACHINE_USAGE = [Col("machine_id", "str", True), Col("time_stamp", "int", True), Col("cpu_util_percent", "float"),
                 Col("mem_util_percent", "float"), Col("mem_gps", "float"), Col("mkpi", "float"),
                 Col("net_in", "float"), Col("net_out", "float"), Col("disk_io_percent", "float")]


@dataclass(frozen=True)
class Params(ImportParams):
    """Alibaba 2018 import parameters; every default is an assumption documented in docs/importers.md."""

    machine_bytes: int = 96 * GiB
    container_interval_s: int = 300
    background_fraction: float = 0.0
    profile: ProfileParams = field(default_factory=ProfileParams)


def import_alibaba2018(machine_meta: str | None = None, container_meta: Sequence[str] = (),
                       batch_instance: Sequence[str] = (), machine_usage: Sequence[str] = (),
                       params: Params = Params(), lenient: bool = False,
                       progress: ProgressFn | None = None) -> tuple[pa.Table, ImportReport, Rejects]:
    """Read the given files and return (trace table, report, rejects)."""
    report = ImportReport("alibaba2018")
    rejects = Rejects(report, lenient)
    markers = _machines(machine_meta, params, rejects, report, progress) if machine_meta else None
    parts = []
    for path in container_meta:
        parts.append(_containers(_read(path, CONTAINER_META, rejects, progress), params, report))
    for path in batch_instance:
        parts.append(_batch(_read(path, BATCH_INSTANCE, rejects, progress), params, report))
    samples = Samples.empty()
    if machine_usage:
        usage = pa.concat_tables([_read(p, MACHINE_USAGE, rejects, progress) for p in machine_usage])
        if params.background_fraction > 0:
            bg, samples = _background(usage, params, report)
            parts.append(bg)
        else:
            report.skipped["machine_usage row (background off)"] += usage.num_rows
    cg = _stack(parts, params)
    if parts and params.background_fraction > 0 and machine_usage:
        samples.cg += len(cg) - len(parts[-1])  # background rows come last
    table = emit(cg, samples, Updates.empty(), params.rules, params.profile, report,
                 markers if params.machine_markers else None)
    return table, report, rejects


def _read(path: str, cols: list[Col], rejects: Rejects, progress: ProgressFn | None) -> pa.Table:
    """One file's rows; a time stamp that is negative or after the replay's horizon is a bad row."""
    t = read_csv(path, cols, rejects, progress)
    for c in cols:
        if c.kind == "int" and c.name in ("time_stamp", "start_time", "end_time"):
            t = check_times(t, c.name, rejects, [path], scale_us=US, never=False)
        if c.name in ("mem_size", "mem_avg"):  # sizes normalised to 100 = the largest machine
            t = check_fraction(t, c.name, rejects, [path], top=100.0)
    return t


def _stack(parts: list[Cgroups], params: Params) -> Cgroups:
    out = _empty()
    for p in parts:
        out = build.concat(out, p, second_parents_in_first=False)
    if not params.job_parent:
        out.path = pc.replace_substring_regex(out.path, r"^(/[^/]+)/", r"\1-")  # /app-a/c_1 -> /app-a-c_1
        return out
    return _with_job_parents(out)


def _empty() -> Cgroups:
    z = np.zeros(0, dtype=np.int64)
    s = pa.array([], pa.string())
    return Cgroups(s, s, s, z, z, z, z, z, z, {})


def _with_job_parents(cg: Cgroups) -> Cgroups:
    # a parent per (machine, group) where group is the first path component of tasks that have one
    group = pc.if_else(pc.greater(pc.count_substring(cg.path, "/"), 1),
                       pc.extract_regex(cg.path, r"^/(?P<g>[^/]+)/").field("g"), pa.nulls(len(cg), pa.string()))
    group = pc.if_else(cg.task.is_valid(), group, pa.nulls(len(cg), pa.string()))
    parents, pidx = build.parents_by(cg.machine, group, "")
    cg.parent = pidx
    return build.concat(parents, cg)


def _containers(t: pa.Table, params: Params, report: ImportReport) -> Cgroups:
    cid, mid = str_col(t, "container_id"), str_col(t, "machine_id")
    time = np_col(t, "time_stamp") * US
    gid = build.group_ids(cid.dictionary_encode().indices.to_numpy(), mid.dictionary_encode().indices.to_numpy())
    ng = int(gid.max()) + 1 if gid.size else 0
    first = np.full(ng, NEVER, dtype=np.int64)
    last = np.zeros(ng, dtype=np.int64)
    np.minimum.at(first, gid, time)
    np.maximum.at(last, gid, time)
    row = np.full(ng, -1, dtype=np.int64)
    row[gid[::-1]] = np.arange(t.num_rows)[::-1]  # a representative row (the first in the file)
    mem = np.zeros(ng)
    np.maximum.at(mem, gid, np_col(t, "mem_size", fill=0.0))
    horizon = int(time.max()) if time.size else 0
    interval = params.container_interval_s * US
    end = np.where(last + interval > horizon, NEVER, last + interval)
    report.notes["container still running at the end of its file"] += int((end == NEVER).sum())
    report.notes["container snapshot rows folded into runs"] += int(t.num_rows - ng)
    take = pa.array(row)
    name = cid.take(take)
    app = pc.fill_null(str_col(t, "app_du").take(take), "unknown")
    byts = mem / 100 * params.machine_bytes
    return Cgroups(mid.take(take), build.join("/app-", app, "/", name), name, np.full(ng, -1, np.int64),
                   first, end, np.where(byts > 0, byts, -1).astype(np.int64),
                   (byts * params.anon_fraction).astype(np.int64), (byts * params.cache_fraction).astype(np.int64),
                   {"job": app})


def _batch(t: pa.Table, params: Params, report: ImportReport) -> Cgroups:
    placed = t.column("machine_id").is_valid().to_numpy(zero_copy_only=False)
    report.skipped["batch instance without machine (never placed)"] += int((~placed).sum())
    t = t.filter(pa.array(placed))
    start = np_col(t, "start_time", fill=0) * US
    end = np_col(t, "end_time", fill=0) * US
    end = np.where(end <= start, NEVER, end)
    report.notes["batch instance without end (still running)"] += int((end == NEVER).sum())
    mid = str_col(t, "machine_id")
    label = build.join(str_col(t, "task_name"), ".", str_col(t, "instance_name"))
    n = _run_numbers(mid, label, start)
    job = str_col(t, "job_name")
    task = build.join(job, ".", label, ".", pa.array(n).cast(pa.string()))
    avg = np_col(t, "mem_avg", fill=0.0) / 100 * params.machine_bytes
    return Cgroups(mid, build.join("/batch-", job, "/", label, ".", pa.array(n).cast(pa.string())), task,
                   np.full(t.num_rows, -1, np.int64), start, end, np.full(t.num_rows, -1, np.int64),
                   avg.astype(np.int64), (avg * params.cache_fraction).astype(np.int64), {"job": job})


def _run_numbers(machine: pa.Array, label: pa.Array, start: np.ndarray) -> np.ndarray:
    # 0, 1, ... for repeated (machine, label) pairs in start order: keeps names unique per machine
    gid = build.group_ids(machine.dictionary_encode().indices.to_numpy(),
                          label.dictionary_encode().indices.to_numpy())
    order = np.lexsort((np.arange(gid.size), start, gid))
    sg = gid[order]
    firsts = np.r_[True, sg[1:] != sg[:-1]] if sg.size else np.zeros(0, bool)
    pos = np.arange(sg.size)
    out = np.empty(sg.size, dtype=np.int64)
    out[order] = pos - np.maximum.accumulate(np.where(firsts, pos, 0))
    return out


def _background(usage: pa.Table, params: Params, report: ImportReport) -> tuple[Cgroups, Samples]:
    mid = str_col(usage, "machine_id")
    enc = mid.dictionary_encode()
    code = enc.indices.to_numpy().astype(np.int64)
    nm = len(enc.dictionary)
    time = np_col(usage, "time_stamp") * US
    start = np.full(nm, NEVER, dtype=np.int64)
    np.minimum.at(start, code, time)
    util = np_col(usage, "mem_util_percent", fill=-1.0)
    valid = (util >= 0) & (util <= 100)  # -1 / 101 mark invalid samples
    report.skipped["machine_usage row with invalid mem_util_percent"] += int((~valid).sum())
    cap = np.array([report.machines.get(m, params.machine_bytes) for m in enc.dictionary.to_pylist()])
    anon = (util / 100 * cap[code] * params.background_fraction).astype(np.int64)
    z = np.zeros(nm, dtype=np.int64)
    cg = Cgroups(enc.dictionary, pa.array(["/background"] * nm, pa.string()), pa.array(["background"] * nm, pa.string()),
                 np.full(nm, -1, np.int64), start, np.full(nm, NEVER, np.int64), np.full(nm, -1, np.int64),
                 z, z.copy(), {})
    v = np.flatnonzero(valid)
    zero = np.zeros(v.size, dtype=np.int64)
    return cg, Samples(code[v], time[v], anon[v], zero, zero, zero)


def _machines(path: str, params: Params, rejects: Rejects, report: ImportReport,
              progress: ProgressFn | None) -> tuple[pa.Array, np.ndarray]:
    mm = _read(path, MACHINE_META, rejects, progress)
    mid = str_col(mm, "machine_id")
    mem = np_col(mm, "mem_size", fill=-1.0)
    for m, v in zip(mid.to_pylist(), mem.tolist()):  # last known size wins
        if v >= 0:
            report.machines[m] = int(v / 100 * params.machine_bytes)
    return mid, np_col(mm, "time_stamp") * US


def import_trace(path: str, params: Params = Params()) -> pa.Table:
    """Native trace of a container_meta file, or of a directory with ``machine_meta.csv``,
    ``container_meta*.csv``, ``batch_instance*.csv`` and ``machine_usage*.csv``. Strict: bad rows raise."""
    from pathlib import Path

    from traces.importers.common import find_files
    if not Path(path).is_dir():
        return import_alibaba2018(None, [path], params=params)[0]
    meta = find_files(path, ("machine_meta*.csv",))
    table, _, _ = import_alibaba2018(meta[0] if meta else None, find_files(path, ("container_meta*.csv",)),
                                     find_files(path, ("batch_instance*.csv",)),
                                     find_files(path, ("machine_usage*.csv", "*/machine_usage*.csv")), params)
    return table
