"""Importer for Google ClusterData 2011 (clusterdata-2011-2, trace format v2.1).

In: headerless (gzipped) CSV parts of ``machine_events`` (optional),
``task_events`` (one or more) and ``task_usage`` (optional). Out: a native trace
table (``traces.schema.TRACE_SCHEMA``) and an ``ImportReport``.

Assumptions (also in docs/importers.md):

* time: native = trace time - 600 s (the trace starts at 600 s); time 0 (state
  before the window) becomes 0; 2^63-1 (after the window) means "never".
* units: memory is normalised to the largest machine; ``machine_bytes`` (the
  bytes of normalised 1.0) turns it into bytes.
* each SCHEDULE (event 1) on a machine starts a new incarnation = a new cgroup
  ``/job-<job>/task-<index>.<n>`` (n counts the task's runs in the input) with
  task ``<job>-<index>.<n>``; EVICT/FAIL/FINISH/KILL/LOST (2-6) end it
  (task_exit then rmdir); UPDATE_RUNNING (8) sets memory.max to the new
  request; SUBMIT and UPDATE_PENDING do not touch a machine. The job cgroup
  (``job_parent``) lives on a machine from its first task's start to its last
  task's end there.
* memory.max = memory request (column 11) x machine_bytes (none if 0 or empty).
* with ``task_usage``: each window becomes a sample at its start time:
  anon = max(0, canonical - total page cache), page cache = total page cache,
  mapped = total - unmapped page cache. Tasks without usage rows get
  anon = ``anon_fraction`` x request and private page cache =
  ``cache_fraction`` x request at start.
* sharing (``sharing.py``): ``job_image`` keyed by job ID, ``user_libs`` by
  the user hash; shared bytes are taken out of each task's own page cache.
* machine_events ADD rows become ``sync`` markers (a no-op) so that every
  machine of the cell appears in the trace; capacities go to the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces.importers.params import ImportParams
from traces.importers import build
from traces.importers.common import (NEVER, Col, ImportReport, ProgressFn, Rejects, check_codes, check_fraction,
                                     check_times, last_known, np_col, read_csv, str_col, valid_mask)
from traces.importers.emit import Cgroups, ProfileParams, Samples, Updates, emit, shared_bytes
from traces.importers.lifecycle import END, IGNORE, START, UPDATE, pair

GiB = 1 << 30

MACHINE_EVENTS = [Col("time", "int", True), Col("machine_id", "int", True), Col("event_type", "int", True),
                  Col("platform_id", "str"), Col("cpus", "float"), Col("memory", "float")]
TASK_EVENTS = [Col("time", "int", True), Col("missing_info", "int"), Col("job_id", "int", True),
               Col("task_index", "int", True), Col("machine_id", "int"), Col("event_type", "int", True),
               Col("user", "dict"), Col("scheduling_class", "int"), Col("priority", "int"),
               Col("cpu_request", "float"), Col("memory_request", "float"), Col("disk_request", "float"),
               Col("different_machines", "int")]
TASK_USAGE = [Col("start_time", "int", True), Col("end_time", "int", True), Col("job_id", "int", True),
              Col("task_index", "int", True), Col("machine_id", "int", True), Col("cpu_rate", "float"),
              Col("canonical_memory", "float"), Col("assigned_memory", "float"),
              Col("unmapped_page_cache", "float"), Col("total_page_cache", "float"),
              Col("maximum_memory", "float")] + [Col(f"c{i}", "str") for i in range(12, 21)]

EVENT_KIND = np.full(9, IGNORE, dtype=np.int8)
EVENT_KIND[1] = START
EVENT_KIND[2:7] = END
EVENT_KIND[8] = UPDATE


@dataclass(frozen=True)
class Params(ImportParams):
    """Google 2011 import parameters; every default is an assumption documented in docs/importers.md."""

    time_origin_us: int = 600_000_000
    default_request: float = 0.004  #: normalised request assumed when a start row has none
    profile: ProfileParams = field(default_factory=ProfileParams)


def to_native_time(t: np.ndarray, origin_us: int) -> np.ndarray:
    """Trace microseconds -> native microseconds since the window start (NEVER kept)."""
    return np.where(t >= NEVER, NEVER, np.maximum(t - origin_us, 0))


def import_google2011(task_events: Sequence[str], machine_events: str | None = None,
                      task_usage: Sequence[str] = (), params: Params = Params(),
                      lenient: bool = False, progress: ProgressFn | None = None) -> tuple[pa.Table, ImportReport, Rejects]:
    """Read the given files and return (trace table, report, rejects)."""
    report = ImportReport("google2011")
    rejects = Rejects(report, lenient)
    ev = _read_many(task_events, TASK_EVENTS, rejects, progress)
    ev = check_codes(ev, "event_type", 0, 8, rejects, task_events)
    ev = check_times(ev, "time", rejects, task_events, params.time_origin_us)
    ev = check_fraction(ev, "memory_request", rejects, task_events)
    cg, runs_key = _task_cgroups(ev, params, report)
    samples = Samples.empty()
    if task_usage:
        usage = _read_many(task_usage, TASK_USAGE, rejects, progress)
        usage = check_times(usage, "start_time", rejects, task_usage, params.time_origin_us, never=False)
        samples = _usage_samples(usage, ev, cg, runs_key, params, report)
        del usage
    markers = None
    if machine_events:
        markers = _machines(machine_events, params, rejects, report, progress)
    updates = _updates(ev, cg, runs_key, params)
    del ev  # the raw rows are done with: their memory is reused by the event assembly instead of fresh pages
    table = emit(cg, samples, updates, params.rules, params.profile, report,
                 markers if params.machine_markers else None)
    return table, report, rejects


def _read_many(paths: Sequence[str], cols: list[Col], rejects: Rejects,
               progress: ProgressFn | None) -> pa.Table:
    tables = [read_csv(p, cols, rejects, progress) for p in paths]
    for i, t in enumerate(tables):
        tables[i] = t.append_column("_file", pa.array(np.full(t.num_rows, i, dtype=np.int64)))
    return pa.concat_tables(tables) if tables else pa.table({})


class _Runs:
    """Incarnation bookkeeping kept for the usage and update passes: ``rows[i]`` is incarnation ``i``'s cgroup."""

    def __init__(self, inc, rows: np.ndarray) -> None:
        self.inc, self.rows = inc, rows


def _task_cgroups(ev: pa.Table, params: Params, report: ImportReport) -> tuple[Cgroups, _Runs]:
    """The task cgroups (under one parent per machine and job with ``job_parent``), already grouped by
    machine as ``emit`` orders them: every row in the order of the sorted machine ids, parents before
    tasks on each machine, parents in their order of first appearance, tasks in incarnation order.

    The rows are ordered on integers first and their names formatted once, in that order: grouping
    finished string columns would gather each of them again.
    """
    etype = np_col(ev, "event_type")
    key = build.order_key(np_col(ev, "job_id"), np_col(ev, "task_index"))
    time = to_native_time(np_col(ev, "time"), params.time_origin_us)
    has_machine = valid_mask(ev.column("machine_id"))
    kind = EVENT_KIND[etype]
    report.skipped["SUBMIT/UPDATE_PENDING (not on a machine)"] += int((kind == IGNORE).sum())
    machine_all = np_col(ev, "machine_id", fill=-1)
    inc = pair(key, time, kind, has_machine, report.skipped, report.notes, machine=machine_all)
    mrow = inc.machine_row
    n = mrow.size
    machine, job = machine_all[mrow], np_col(ev, "job_id")[mrow]
    names, mcode = _machine_ranks(machine)
    if params.job_parent:
        # one parent per (machine, job), numbered in order of first appearance among the tasks
        pidx = build.first_seen_ids(mcode, job)
        first = np.full(int(pidx.max()) + 1 if n else 0, -1, dtype=np.int64)
        first[pidx[::-1]] = np.arange(n - 1, -1, -1)  # each parent's lowest task
    else:
        pidx, first = np.full(n, -1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    npar = first.size
    # the rows: parents, then tasks; grouped by machine, each group keeping that order
    src = _grouped(np.concatenate([mcode[first], mcode]))
    rep = np.concatenate([first, np.arange(n)])[src]  # per row its incarnation (a parent's: its first task's)
    is_task = src >= npar
    ti = np.flatnonzero(is_task)
    t = src[ti] - npar
    new = np.empty(src.size, dtype=np.int64)
    new[src] = np.arange(src.size)
    parent = np.full(src.size, -1, dtype=np.int64)
    parent[ti] = np.where(pidx[t] >= 0, new[np.maximum(pidx[t], 0)], -1)
    job, index, number = job[rep], np_col(ev, "task_index")[mrow[rep]], inc.number[rep]
    req = _requests(ev, mrow[t], params)
    byts = (req * params.machine_bytes).astype(np.int64)
    sizes = (np.where(req > 0, req, params.default_request) * params.machine_bytes)
    limit, anon, cache, end = (np.full(src.size, v, dtype=np.int64) for v in (-1, 0, 0, 0))
    limit[ti] = np.where(req > 0, byts, -1)
    anon[ti] = (sizes * params.anon_fraction).astype(np.int64)
    cache[ti] = np.maximum((sizes * params.cache_fraction).astype(np.int64), 0)
    start = np.full(src.size, NEVER, dtype=np.int64)
    start[ti], end[ti] = inc.start_us[t], inc.end_us[t]
    # the sharing keys dictionary-encoded (the rules group tasks by their codes: no strings hashed);
    # (a take with null indices is slower than one without and a mask afterwards)
    user = ev.column("user").unify_dictionaries().combine_chunks().take(pa.array(mrow[rep]))
    user = pa.DictionaryArray.from_arrays(_masked(user.indices, is_task), user.dictionary)
    jobs = pa.array(job).dictionary_encode()
    jobs = pa.DictionaryArray.from_arrays(_masked(jobs.indices, is_task),
                                          build.join_decimal([jobs.dictionary.to_numpy()]))
    if params.job_parent:  # a parent's path is "/job-<job>"
        path = build.join_decimal(["/job-", job, "/task-", index, ".", number], head=2, tail=is_task)
    else:
        path = build.join_decimal(["/job-", job, "-task-", index, ".", number])
    # the machine column dictionary-encoded by its ranks (no string per row, none hashed again by emit)
    machines = pa.DictionaryArray.from_arrays(pa.array(mcode[rep].astype(np.int32)), names, safe=False)
    cg = Cgroups(machines, path,
                 build.join_decimal([job, "-", index, ".", number], valid=is_task), parent, start, end, limit, anon,
                 cache, {"job": jobs, "user": user})
    rows = np.empty(n, dtype=np.int64)
    rows[t] = ti
    return cg, _Runs(inc, rows)


def _machine_ranks(machine: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The distinct machine ids as strings, sorted as strings (the output's machine order); per row its rank."""
    enc = pa.array(machine).dictionary_encode()  # a hash of the ids, then a sort of the distinct few
    names = enc.dictionary.cast(pa.string())
    order = pc.sort_indices(names).to_numpy()
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return names.take(pa.array(order)), rank[enc.indices.to_numpy()]


def _grouped(code: np.ndarray) -> np.ndarray:
    """The rows stably sorted by ``code`` (a small non-negative integer per row)."""
    # numpy's stable sort of 16-bit keys is a radix sort
    return np.argsort(code.astype(np.int16) if code.size and int(code.max()) < 1 << 15 else code, kind="stable")


def _masked(arr: pa.Array, keep: np.ndarray) -> pa.Array:
    """``arr`` (a plain array) with null wherever ``keep`` is False, and where it is null already."""
    valid = keep & valid_mask(arr) if arr.null_count else keep
    if bool(valid.all()):
        return arr
    if arr.offset:
        return pc.if_else(pa.array(valid), arr, pa.scalar(None, arr.type))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(arr.type, len(arr), [bitmap, *arr.buffers()[1:]],
                                 null_count=len(arr) - int(np.count_nonzero(valid)))


def _requests(ev: pa.Table, rows: np.ndarray, params: Params) -> np.ndarray:
    req = np_col(ev, "memory_request", fill=0.0)[rows]
    return np.clip(req, 0.0, None)


def _updates(ev: pa.Table, cg: Cgroups, runs: _Runs, params: Params) -> Updates:
    inc = runs.inc
    if not inc.update_row.size:
        return Updates.empty()
    req = np_col(ev, "memory_request", fill=0.0)[inc.update_row]
    limit = np.where(req > 0, (req * params.machine_bytes).astype(np.int64), -1)
    time = to_native_time(np_col(ev, "time")[inc.update_row], params.time_origin_us)
    return Updates(runs.rows[inc.update_inc], time, limit)


def _usage_samples(usage: pa.Table, ev: pa.Table, cg: Cgroups, runs: _Runs, params: Params,
                   report: ImportReport) -> Samples:
    # usage rows join their task's incarnation by (job, index) and time
    job_all = np.concatenate([np_col(ev, "job_id"), np_col(usage, "job_id")])
    idx_all = np.concatenate([np_col(ev, "task_index"), np_col(usage, "task_index")])
    gid = build.group_ids(job_all, idx_all)
    ev_key, u_key = gid[:ev.num_rows], gid[ev.num_rows:]
    inc = runs.inc
    run_key = ev_key[inc.machine_row]
    t = to_native_time(np_col(usage, "start_time"), params.time_origin_us)
    run = build.assign_to_runs(run_key, inc.start_us, inc.end_us, u_key, t)
    ok = run >= 0
    report.skipped["usage row matching no running task"] += int((~ok).sum())
    cgi = runs.rows[run[ok]]
    mb = params.machine_bytes
    canon = np_col(usage, "canonical_memory", fill=0.0)[ok] * mb
    total = np_col(usage, "total_page_cache", fill=0.0)[ok] * mb
    unmapped = np_col(usage, "unmapped_page_cache", fill=0.0)[ok] * mb
    shared, shared_mapped = shared_bytes(cg, params.rules)
    anon = np.maximum(canon - total, 0).astype(np.int64)
    cache = np.maximum(total - shared[cgi], 0).astype(np.int64)
    mapped = np.minimum(np.maximum(total - unmapped - shared_mapped[cgi], 0), cache).astype(np.int64)
    time = np.maximum(t[ok], cg.start_us[cgi])
    return Samples(cgi, time, anon, cache, mapped, np.zeros(cgi.size, dtype=np.int64))


def _machines(path: str, params: Params, rejects: Rejects, report: ImportReport,
              progress: ProgressFn | None) -> tuple[pa.Array, np.ndarray]:
    me = check_times(read_csv(path, MACHINE_EVENTS, rejects, progress), "time", rejects, [path],
                     params.time_origin_us)
    me = check_fraction(me, "memory", rejects, [path])
    etype = np_col(me, "event_type")
    mid = str_col(me, "machine_id")
    time = np_col(me, "time")
    for m, v in last_known(mid, time, np_col(me, "memory", fill=-1.0)).items():
        report.machines[m] = int(v * params.machine_bytes)
    after = time == NEVER  # "after the window": not an event, nothing to mark
    report.skipped["machine event after the window (time 2^63-1)"] += int(after.sum())
    add = np.flatnonzero((etype == 0) & ~after)
    t = to_native_time(time[add], params.time_origin_us)
    return mid.take(pa.array(add)), t


def import_trace(path: str, params: Params = Params()) -> pa.Table:
    """Native trace of a task_events file, or of a directory laid out like the bucket
    (``task_events/``, optional ``machine_events/`` and ``task_usage/``). Strict: bad rows raise."""
    from pathlib import Path

    from traces.importers.common import find_files
    if not Path(path).is_dir():
        return import_google2011([path], params=params)[0]
    machines = find_files(path, ("machine_events/*.csv*", "machine_events*.csv*"))
    table, _, _ = import_google2011(find_files(path, ("task_events/*.csv*", "task_events*.csv*")),
                                    machines[0] if machines else None,
                                    find_files(path, ("task_usage/*.csv*", "task_usage*.csv*")), params)
    return table
