"""Importer for Google ClusterData 2019 (clusterdata-2019, trace format v3, JSON shards).

In: newline-delimited JSON shards (optionally gzipped) of ``instance_events``,
``machine_events`` and ``instance_usage``, as exported from BigQuery: int64 and
enum values are strings and fields holding their default (0, empty) are
omitted, so a missing ``type`` is 0 (SUBMIT) and a missing ``machine_id`` is
0 (NO_MACHINE). Out: a native trace table and an ``ImportReport``.

Assumptions (also in docs/importers.md):

* time, units, incarnations: as for 2011 (native = time - 600 s, 0 = before
  the window, 2^63-1 = never; normalised memory x ``machine_bytes``); SCHEDULE
  (3) starts a run, EVICT/FAIL/FINISH/KILL/LOST (4-8) end it, UPDATE_RUNNING
  (10) sets memory.max; SUBMIT/QUEUE/ENABLE/UPDATE_PENDING (0-2, 9) are not on
  a machine. ``machine_id`` 0 (none) and -1 (dedicated, unknown) place nothing.
* alloc sets: an alloc instance (``collection_type`` 1) is a cgroup without a
  task ``/alloc-<collection>-<index>.<n>`` whose memory.max is its request;
  a task with ``alloc_collection_id`` != 0 is nested in the alloc instance
  running on its machine at its start, or in an implicit one (spanning its
  tasks) when the alloc's own events are not in the input. Tasks in an alloc
  get no limit of their own (their usage rows show assigned_memory 0).
  Other tasks go under ``/job-<collection>`` as in 2011.
* usage: a window becomes a sample at its start; page cache =
  page_cache_memory; anon = average_usage.memory - page_cache_memory when
  ``usage_includes_cache`` (UNVERIFIED in the v3 docs; 2011's canonical
  usage did include cache), else average_usage.memory; mapped =
  ``profile.mapped_fraction`` x page cache (2019 has no mapped split).
  Alloc-instance usage rows are skipped (their memory is their tasks').
* sharing: ``job_image`` keyed by collection_id, ``pod_tmpfs`` by alloc
  instance; no user key (the user lives in collection_events, not read).
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
                                     check_times, last_known, np_col, read_ndjson)
from traces.importers.emit import Cgroups, ProfileParams, Samples, Updates, emit, shared_bytes
from traces.importers.google2011 import to_native_time
from traces.importers.lifecycle import END, IGNORE, START, UPDATE, Incarnations, pair

GiB = 1 << 30

INSTANCE_EVENTS = [Col("time", "int"), Col("type", "int"), Col("collection_id", "int", True),
                   Col("instance_index", "int"), Col("machine_id", "int"), Col("collection_type", "int"),
                   Col("alloc_collection_id", "int"), Col("alloc_instance_index", "int"),
                   Col("resource_request.memory", "float"), Col("priority", "int")]
MACHINE_EVENTS = [Col("time", "int"), Col("machine_id", "int", True), Col("type", "int"),
                  Col("capacity.memory", "float")]
INSTANCE_USAGE = [Col("start_time", "int"), Col("end_time", "int"), Col("collection_id", "int", True),
                  Col("instance_index", "int"), Col("machine_id", "int"), Col("collection_type", "int"),
                  Col("average_usage.memory", "float"), Col("maximum_usage.memory", "float"),
                  Col("assigned_memory", "float"), Col("page_cache_memory", "float")]

EVENT_KIND = np.full(11, IGNORE, dtype=np.int8)
EVENT_KIND[3] = START
EVENT_KIND[4:9] = END
EVENT_KIND[10] = UPDATE


@dataclass(frozen=True)
class Params(ImportParams):
    """Google 2019 import parameters; every default is an assumption documented in docs/importers.md."""

    time_origin_us: int = 600_000_000
    usage_includes_cache: bool = True
    default_request: float = 0.004
    profile: ProfileParams = field(default_factory=ProfileParams)


def import_google2019(instance_events: Sequence[str], machine_events: Sequence[str] = (),
                      instance_usage: Sequence[str] = (), params: Params = Params(), lenient: bool = False,
                      progress: ProgressFn | None = None) -> tuple[pa.Table, ImportReport, Rejects]:
    """Read the given shards and return (trace table, report, rejects)."""
    report = ImportReport("google2019")
    rejects = Rejects(report, lenient)
    ev = _read(instance_events, INSTANCE_EVENTS, rejects, progress)
    ev = check_codes(ev, "type", 0, 10, rejects, instance_events)
    ev = check_times(ev, "time", rejects, instance_events, params.time_origin_us)
    ev = check_fraction(ev, "resource_request.memory", rejects, instance_events)
    cg, inc, off = _cgroups(ev, params, report)
    samples = Samples.empty()
    if instance_usage:
        usage = _read(instance_usage, INSTANCE_USAGE, rejects, progress)
        usage = check_times(usage, "start_time", rejects, instance_usage, params.time_origin_us, never=False)
        samples = _samples(usage, ev, inc, off, cg, params, report)
    markers = _machines(machine_events, params, rejects, report, progress) if machine_events else None
    updates = _updates(ev, inc, off, cg, params)
    table = emit(cg, samples, updates, params.rules, params.profile, report,
                 markers if params.machine_markers else None)
    return table, report, rejects


def _read(paths: Sequence[str], cols: list[Col], rejects: Rejects, progress: ProgressFn | None) -> pa.Table:
    tables = [read_ndjson(p, cols, rejects, progress) for p in paths]
    tables = [t.append_column("_file", pa.array(np.full(t.num_rows, i, dtype=np.int64)))
              for i, t in enumerate(tables)]
    if not tables:
        return pa.Table.from_arrays([pa.array([], type=pa.int64() if c.kind == "int" else
                                     pa.float64() if c.kind == "float" else pa.string()) for c in cols] +
                                    [pa.array([], pa.int64()), pa.array([], pa.int64())],
                                    names=[c.name for c in cols] + ["_row", "_file"])
    return pa.concat_tables(tables)


def _ints(t: pa.Table, name: str) -> np.ndarray:
    return np_col(t, name, fill=0)  # omitted = the proto default, 0


def _key(ev_ct: np.ndarray, ev_cid: np.ndarray, ev_idx: np.ndarray) -> np.ndarray:
    return build.group_ids(ev_ct, ev_cid, ev_idx)


def _cgroups(ev: pa.Table, params: Params, report: ImportReport) -> tuple[Cgroups, Incarnations, int]:
    kind = EVENT_KIND[_ints(ev, "type")]  # check_codes has rejected the types the format does not define
    report.skipped["SUBMIT/QUEUE/ENABLE/UPDATE_PENDING (not on a machine)"] += int((kind == IGNORE).sum())
    mid = _ints(ev, "machine_id")
    key = _key(_ints(ev, "collection_type"), _ints(ev, "collection_id"), _ints(ev, "instance_index"))
    time = to_native_time(_ints(ev, "time"), params.time_origin_us)
    inc = pair(key, time, kind, mid > 0, report.skipped, report.notes, machine=mid)
    rows = inc.machine_row
    is_alloc = _ints(ev, "collection_type")[rows] == 1
    req = np.clip(np_col(ev, "resource_request.memory", fill=0.0)[rows], 0, None)
    machine = pa.array(mid[rows]).cast(pa.string())
    cid = pa.array(_ints(ev, "collection_id")[rows]).cast(pa.string())
    idx = pa.array(_ints(ev, "instance_index")[rows]).cast(pa.string())
    num = pa.array(inc.number).cast(pa.string())
    limit = np.where(req > 0, (req * params.machine_bytes).astype(np.int64), -1)
    sizes = np.where(req > 0, req, params.default_request) * params.machine_bytes
    names = build.join(cid, "-", idx, ".", num)
    alloc_of = _alloc_parent(ev, inc, key, is_alloc, mid)
    in_alloc = (_ints(ev, "alloc_collection_id")[rows] != 0) & ~is_alloc
    task = pc.if_else(pa.array(is_alloc), pa.nulls(len(names), pa.string()), names)
    limit = np.where(in_alloc, -1, limit)
    cg = Cgroups(machine, build.join("/alloc-", names), task, np.full(len(names), -1, np.int64),
                 inc.start_us.copy(), inc.end_us.copy(), limit,
                 np.where(is_alloc, 0, sizes * params.anon_fraction).astype(np.int64),
                 np.where(is_alloc, 0, sizes * params.cache_fraction).astype(np.int64), {"job": cid})
    cg = _nest(cg, ev, rows, is_alloc, in_alloc, alloc_of, cid, idx, num, params, report)
    return cg, inc, len(cg) - len(names)  # runs follow the implicit parents


def _alloc_parent(ev: pa.Table, inc: Incarnations, key: np.ndarray, is_alloc: np.ndarray,
                  mid: np.ndarray) -> np.ndarray:
    # for every run: the alloc-instance run it is nested in (same machine, running at its start), else -1
    rows = inc.machine_row
    akey_all = build.group_ids(np.r_[_ints(ev, "collection_id")[rows[is_alloc]], _ints(ev, "alloc_collection_id")[rows]],
                               np.r_[_ints(ev, "instance_index")[rows[is_alloc]], _ints(ev, "alloc_instance_index")[rows]],
                               np.r_[mid[rows[is_alloc]], mid[rows]])
    n_alloc = int(is_alloc.sum())
    run_key, q_key = akey_all[:n_alloc], akey_all[n_alloc:]
    aidx = np.flatnonzero(is_alloc)
    if not n_alloc:  # no alloc instance in the input: every task in an alloc gets an implicit one
        return np.full(rows.size, -1, dtype=np.int64)
    found = build.assign_to_runs(run_key, inc.start_us[aidx], inc.end_us[aidx], q_key, inc.start_us)
    return np.where(found >= 0, aidx[np.maximum(found, 0)], -1)


def _nest(cg: Cgroups, ev: pa.Table, rows: np.ndarray, is_alloc: np.ndarray, in_alloc: np.ndarray,
          alloc_of: np.ndarray, cid: pa.Array, idx: pa.Array, num: pa.Array, params: Params,
          report: ImportReport) -> Cgroups:
    """Put tasks under their alloc instance (explicit or implicit) or their job cgroup."""
    n = len(cg)
    explicit = in_alloc & (alloc_of >= 0)
    implicit = in_alloc & (alloc_of < 0)
    report.notes["task in an alloc whose instance has no events (implicit alloc cgroup)"] += int(implicit.sum())
    aname = build.join(pa.array(_ints(ev, "alloc_collection_id")[rows]), "-",
                       pa.array(_ints(ev, "alloc_instance_index")[rows]), ".implicit")
    plain = ~is_alloc & ~in_alloc
    group = pc.if_else(pa.array(implicit), build.join("alloc-", aname),
                       pc.if_else(pa.array(plain & params.job_parent), build.join("job-", cid),
                                  pa.nulls(n, pa.string())))
    parents, pidx = build.parents_by(cg.machine, group, "")
    parent = np.where(pidx >= 0, pidx, np.where(explicit, alloc_of + len(parents), -1))
    ppath = pa.concat_arrays([parents.path, cg.path]).take(pa.array(np.maximum(parent, 0)))
    leaf = pc.if_else(pa.array(plain & params.job_parent), build.join("/task-", idx, ".", num),
                      build.join("/task-", cid, "-", idx, ".", num))
    path = pc.if_else(pa.array(is_alloc), cg.path, pc.if_else(pa.array(parent >= 0), build.join(ppath, leaf), leaf))
    cg.path = path
    cg.parent = parent
    pod = pc.if_else(pa.array(in_alloc), pc.utf8_slice_codeunits(ppath, 1), pa.nulls(n, pa.string()))
    cg.keys = {"job": pc.if_else(pa.array(is_alloc), pa.nulls(n, pa.string()), cid), "pod": pod}
    return build.concat(parents, cg, second_parents_in_first=True)


def _updates(ev: pa.Table, inc: Incarnations, off: int, cg: Cgroups, params: Params) -> Updates:
    """UPDATE_RUNNING sets memory.max of a run, except of a task inside an alloc: its limit is the
    alloc's (its usage rows show assigned_memory 0)."""
    own_limit = ~((_ints(ev, "alloc_collection_id")[inc.machine_row] != 0)
                  & (_ints(ev, "collection_type")[inc.machine_row] != 1))
    keep = own_limit[inc.update_inc]
    rows, runs = inc.update_row[keep], inc.update_inc[keep]
    if not rows.size:
        return Updates.empty()
    req = np_col(ev, "resource_request.memory", fill=0.0)[rows]
    limit = np.where(req > 0, (req * params.machine_bytes).astype(np.int64), -1)
    time = to_native_time(_ints(ev, "time")[rows], params.time_origin_us)
    return Updates(runs + off, time, limit)


def _samples(usage: pa.Table, ev: pa.Table, inc: Incarnations, off: int, cg: Cgroups, params: Params,
             report: ImportReport) -> Samples:
    ct = np.r_[_ints(ev, "collection_type"), _ints(usage, "collection_type")]
    gid = _key(ct, np.r_[_ints(ev, "collection_id"), _ints(usage, "collection_id")],
               np.r_[_ints(ev, "instance_index"), _ints(usage, "instance_index")])
    ev_key, u_key = gid[:ev.num_rows], gid[ev.num_rows:]
    alloc_rows = _ints(usage, "collection_type") == 1
    report.skipped["instance_usage row of an alloc instance"] += int(alloc_rows.sum())
    t = to_native_time(_ints(usage, "start_time"), params.time_origin_us)
    run = build.assign_to_runs(ev_key[inc.machine_row], inc.start_us, inc.end_us, u_key, t)
    run = np.where(alloc_rows, -2, run)
    report.skipped["usage row matching no running task"] += int((run == -1).sum())
    ok = run >= 0
    cgi = run[ok] + off
    mb = params.machine_bytes
    avg = np_col(usage, "average_usage.memory", fill=0.0)[ok] * mb
    cache = np_col(usage, "page_cache_memory", fill=0.0)[ok] * mb
    anon = np.maximum(avg - cache, 0) if params.usage_includes_cache else avg
    shared, _ = shared_bytes(cg, params.rules)
    priv = np.maximum(cache - shared[cgi], 0)
    mapped = priv * params.profile.mapped_fraction
    time = np.maximum(t[ok], cg.start_us[cgi])
    return Samples(cgi, time, anon.astype(np.int64), priv.astype(np.int64), mapped.astype(np.int64),
                   np.zeros(cgi.size, dtype=np.int64))


def _machines(paths: Sequence[str], params: Params, rejects: Rejects, report: ImportReport,
              progress: ProgressFn | None) -> tuple[pa.Array, np.ndarray]:
    me = check_times(_read(paths, MACHINE_EVENTS, rejects, progress), "time", rejects, paths,
                     params.time_origin_us)
    me = check_fraction(me, "capacity.memory", rejects, paths)
    mid = pa.array(_ints(me, "machine_id")).cast(pa.string())
    time = _ints(me, "time")
    for m, v in last_known(mid, time, np_col(me, "capacity.memory", fill=-1.0)).items():
        report.machines[m] = int(v * params.machine_bytes)
    after = time == NEVER  # "after the window": not an event, nothing to mark
    report.skipped["machine event after the window (time 2^63-1)"] += int(after.sum())
    add = np.flatnonzero((_ints(me, "type") == 1) & ~after)
    t = to_native_time(time[add], params.time_origin_us)
    return mid.take(pa.array(add)), t


def import_trace(path: str, params: Params = Params()) -> pa.Table:
    """Native trace of an instance_events shard, or of a directory holding ``instance_events*``,
    ``machine_events*`` and ``instance_usage*`` shards. Strict: bad rows raise."""
    from pathlib import Path

    from traces.importers.common import find_files
    if not Path(path).is_dir():
        return import_google2019([path], params=params)[0]
    pats = ("{0}*.json*", "*/{0}*.json*")
    table, _, _ = import_google2019(find_files(path, tuple(p.format("instance_events") for p in pats)),
                                    find_files(path, tuple(p.format("machine_events") for p in pats)),
                                    find_files(path, tuple(p.format("instance_usage") for p in pats)), params)
    return table
