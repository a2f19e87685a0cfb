"""Synthetic container churn: pods come and go on a fleet of machines.

In: ``SynthParams`` (rates, lifetimes, sizes, sharing, pinning, swap, limits)
and a seed. Out: an Arrow table in ``traces.schema.TRACE_SCHEMA``, sorted by
(machine, time_us), valid under ``traces.validate.validate_table``, with the
parameters stored as JSON in the schema metadata (``SYNTH_PARAMS_KEY``). The
whole-fleet table (``generate``) starts each machine with a ``memory`` row of
``mem_bytes``, as the importers do, so a replay of the file sizes machines as
they were generated; ``generate_machine`` (what replay shards generate for
themselves, sized by the run's config) has no such row.

What one machine sees (all sizes are per machine and drawn per entity):
- t=0: optional ``swap_on``; the machine's shared image layers / libraries
  are created on disk (uncached). Their popularity is Zipf-like, so a few are
  read by almost every pod and stay in the page cache, charged to whichever
  container read them first -- the main source of zombie memcgs.
- pods arrive as a Poisson process (``/pod-N``, optional ``memory.max``),
  each with 1..k containers (``/pod-N/ctr-M``) of 1..j tasks. A task
  allocates kmem (a ``page`` stack and ``slab`` dentries that outlive it),
  maps or reads the pod's image files, grows an anon heap, re-reads files
  while it runs, writes its container's log file on disk, and may pin memory
  or hold a connection socket that outlives it (handed to a proxy or helper).
- containers of a pod share a tmpfs volume: one writes it, the others map or
  read it. Some volumes outlive the pod (host ``/dev/shm``), as do some logs.
- teardown order is the kernel's: unpin, unmap, task_exit, rmdir containers,
  then rmdir the pod.
Events past ``duration_s`` are dropped; because every use follows its
creation in time, any prefix of the timeline is itself a valid trace.

Determinism: machine ``i`` draws from ``numpy.random.default_rng([seed, i])``
only, so its events do not depend on how many machines are generated.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pyarrow as pa

from core.events import NULL, EventBatch
from core.ops import Op, format_flags
from traces import synth, synth_build
from traces.batches import _flag_bits, _op_code, machine_batches
from traces.schema import TRACE_SCHEMA
from traces.synth import SEC

MIB = 1 << 20
GIB = 1 << 30
SYNTH_PARAMS_KEY = b"memcg_replay.synth_params"
__all__ = ["GIB", "MIB", "PRESETS", "SEC", "SYNTH_PARAMS_KEY", "SynthParams", "generate", "generate_machine",
           "generated_batches", "machine_events", "machine_name"]


@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic churn. Sizes in bytes, times in seconds, rates per machine."""

    machines: int = 4  #: number of machines (ids m-0000, m-0001, ...)
    duration_s: float = 3600.0  #: simulated length; events at or after it are dropped
    mem_bytes: int = 32 * GIB  #: machine memory the sizes are chosen against (use it as MachineConfig.mem_bytes)
    swap_bytes: int = 0  #: size of the swap device enabled at t=0 (0 = no swap)
    pod_arrival_per_s: float = 0.1  #: Poisson rate of new pods per machine
    pod_lifetime_median_s: float = 600.0  #: median pod lifetime (lognormal)
    pod_lifetime_sigma: float = 1.2  #: sigma of ln(lifetime)
    containers_per_pod_max: int = 3  #: containers per pod, uniform in 1..this
    tasks_per_container_max: int = 2  #: tasks per container, uniform in 1..this (task 0 lives as long as the pod)
    anon_bytes_median: int = 48 * MIB  #: median anon heap of one task (lognormal)
    anon_bytes_sigma: float = 1.0  #: sigma of ln(anon bytes)
    anon_steps: int = 3  #: anon_alloc calls that grow a heap to its size
    anon_free_fraction: float = 0.25  #: part of the heap freed (anon_free) while the task runs
    shared_files: int = 128  #: image layers / library files on the machine's disk, created at t=0
    shared_file_bytes_median: int = 32 * MIB  #: median size of one shared file (lognormal)
    shared_file_bytes_sigma: float = 1.0  #: sigma of ln(shared file bytes)
    shared_files_per_pod: int = 6  #: distinct shared files one pod's image uses
    shared_zipf_s: float = 1.1  #: popularity exponent: file i is chosen with weight 1/(i+1)**s
    shared_map_fraction: float = 0.5  #: fraction of a pod's shared files that are mmapped (the rest are read)
    access_interval_s: float = 120.0  #: mean time between re-reads of files by a running task (0 = none)
    tmpfs_fraction: float = 0.6  #: fraction of multi-container pods with a shared tmpfs volume
    tmpfs_bytes_median: int = 64 * MIB  #: median size of a pod's tmpfs volume (lognormal)
    tmpfs_bytes_sigma: float = 1.0  #: sigma of ln(tmpfs bytes)
    tmpfs_outlive_fraction: float = 0.1  #: fraction of volumes not deleted at pod teardown (host /dev/shm)
    tmpfs_outlive_s: float = 3600.0  #: mean extra life of such a volume (exponential)
    log_bytes_median: int = 8 * MIB  #: median bytes a container writes to its log file (lognormal)
    log_bytes_sigma: float = 1.0  #: sigma of ln(log bytes)
    log_keep_fraction: float = 0.5  #: fraction of log files kept (cached) after their container is removed
    log_keep_s: float = 3600.0  #: mean time a kept log survives before deletion (exponential)
    pinned_fraction: float = 0.05  #: fraction of tasks that pin memory (mlock their heap or pin a mapped file)
    pin_bytes_median: int = 8 * MIB  #: median pinned range (lognormal, sigma 1; capped by the object size)
    kmem_page_bytes: int = 64 * 1024  #: kmem `page` object per task (stack, page tables), freed at exit
    kmem_slab_bytes: int = 256 * 1024  #: kmem `slab` object per task (dentries, inodes), outlives the task
    slab_free_s: float = 1800.0  #: mean time after task exit until its slab object is freed (0 = never)
    socket_fraction: float = 0.0  #: fraction of tasks holding a connection that outlives them (passed to a proxy or helper)
    socket_bytes: int = 256 * 1024  #: socket buffer memory of such a connection
    socket_linger_s: float = 1800.0  #: mean time such a socket stays open after its opener exits (0 = never closed)
    limit_fraction: float = 0.5  #: fraction of pods given memory.max
    limit_headroom: float = 1.5  #: memory.max = headroom x the pod's expected footprint

    def to_json(self) -> str:
        """The parameters as canonical JSON (stored in the output's metadata)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def problems_of(values: dict) -> list[tuple[str, str]]:
        """(field, "field: what is wrong") for every value the generator cannot use.

        Types: an ``int`` field takes an integer (an integral float is accepted), a ``float``
        field any finite number, never a bool or text. Ranges: counts that draw ``1..n`` are
        >= 1, medians and lengths > 0, fractions in [0, 1], memory at least a page, everything
        else >= 0.
        """
        out = []
        for f in dataclasses.fields(SynthParams):
            v = values.get(f.name, f.default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                out.append((f.name, f"{f.name}: {v!r} is not a finite number"))
            elif f.type == "int" and v != int(v):
                out.append((f.name, f"{f.name}: {v!r} is not an integer"))
            elif not _within(v, *(bound := _BOUNDS.get(f.name) or _bound_by_name(f.name))):
                out.append((f.name, f"{f.name}: {v!r} must be {_describe(*bound)}"))
        return out

    @staticmethod
    def from_values(values: dict) -> SynthParams:
        """``SynthParams(**values)`` with integral floats of ``int`` fields made ints (check first)."""
        ints = {f.name for f in dataclasses.fields(SynthParams) if f.type == "int"}
        return SynthParams(**{k: int(v) if k in ints else v for k, v in values.items()})


# (lowest, highest, lowest excluded) per parameter; the rest by name in _bound_by_name
_BOUNDS: dict[str, tuple] = {
    "machines": (1, None, False), "anon_steps": (1, None, False),
    "containers_per_pod_max": (1, None, False), "tasks_per_container_max": (1, None, False),
    "duration_s": (0, None, True), "pod_lifetime_median_s": (0, None, True),
    "shared_files": (1, None, False), "limit_headroom": (0, None, True), "mem_bytes": (4096, None, False),
}


def _bound_by_name(name: str) -> tuple:
    if name.endswith("_fraction"):
        return (0, 1, False)
    if name.endswith("_median"):
        return (0, None, True)
    return (0, None, False)


def _within(v: float, lo: float, hi: float | None, open_lo: bool) -> bool:
    return (v > lo if open_lo else v >= lo) and (hi is None or v <= hi)


def _describe(lo: float, hi: float | None, open_lo: bool) -> str:
    if hi is not None:
        return f"between {lo} and {hi}"
    return f"> {lo}" if open_lo else f">= {lo}"


PRESETS: dict[str, SynthParams] = {
    # a few machines for a few minutes: fast tests, every feature present
    "tiny": SynthParams(machines=3, duration_s=600.0, mem_bytes=2 * GIB, swap_bytes=1 * GIB, limit_headroom=0.6,
                        pod_arrival_per_s=0.2, pod_lifetime_median_s=60.0, pod_lifetime_sigma=0.8,
                        shared_files=16, shared_file_bytes_median=8 * MIB, anon_bytes_median=16 * MIB,
                        access_interval_s=20.0, tmpfs_outlive_s=300.0, log_keep_s=300.0,
                        slab_free_s=120.0, pinned_fraction=0.2, socket_fraction=0.1, socket_linger_s=120.0),
    # the README's main job: a dozen machines, four hours, hundreds of zombies each under `none`
    "default": SynthParams(machines=12, duration_s=4 * 3600.0, mem_bytes=32 * GIB, swap_bytes=4 * GIB,
                           socket_fraction=0.02),
    # ONE machine for a day, >= 1M events, under memory pressure: the benchmark. 56 GiB makes kswapd
    # reclaim about every 20 min (with 64 GiB the day never reclaimed), and a headroom of 0.8 makes
    # some pods hit memory.max (limit reclaim, a few OOM kills)
    "machine_day": SynthParams(machines=1, duration_s=24 * 3600.0, mem_bytes=56 * GIB, swap_bytes=8 * GIB,
                               pod_arrival_per_s=0.16, shared_files=256, access_interval_s=90.0,
                               socket_fraction=0.02, limit_headroom=0.8),
    # a 2019 Facebook-like host for a week, as in Roman Gushchin's measurement of dying cgroups
    # (docs/kernel-validation.md "A published fleet figure": why each value; pod_arrival_per_s is
    # the one knob fitted to the published curve)
    "fb2019_host": SynthParams(machines=1, duration_s=7 * 86400.0, mem_bytes=64 * GIB, swap_bytes=0,
                               pod_arrival_per_s=0.0014, pod_lifetime_median_s=120.0, pod_lifetime_sigma=1.5,
                               containers_per_pod_max=1, tasks_per_container_max=2, anon_bytes_median=64 * MIB,
                               access_interval_s=300.0, tmpfs_fraction=0.0, pinned_fraction=0.0,
                               log_keep_fraction=0.5, log_keep_s=3600.0, slab_free_s=0.0,
                               socket_fraction=0.0, limit_fraction=0.0),
    # a Google 2011 cell-month (scripts/bench_cell.py): 12,583 machines x 29 days, arrivals, lifetimes and
    # memory measured on the excerpts in ../shared/traces (`python scripts/bench_cell.py --calibrate`, numbers
    # and method in docs/benchmarks.md); one Google task = one pod of one container of one task
    "google2011_cell": SynthParams(machines=12583, duration_s=29 * 86400.0, mem_bytes=32 * GIB, swap_bytes=0,
                                   pod_arrival_per_s=6.74e-4, pod_lifetime_median_s=232.0, pod_lifetime_sigma=0.77,
                                   containers_per_pod_max=1, tasks_per_container_max=1,
                                   anon_bytes_median=1094 * MIB, anon_bytes_sigma=0.45,
                                   log_bytes_median=547 * MIB, log_bytes_sigma=0.45,
                                   shared_files_per_pod=2, shared_file_bytes_median=128 * MIB,
                                   limit_fraction=1.0, limit_headroom=1.33),
}


def generate(params: SynthParams, seed: int = 0) -> pa.Table:
    """The whole fleet's trace: machines in id order, each sorted by time (one chunk per machine)."""
    problems = SynthParams.problems_of(dataclasses.asdict(params))
    if problems:
        raise ValueError("; ".join(p for _, p in problems))
    # each machine's size as a `memory` row first, as the importers write it
    # (traces.importers.machine_memory): a replay of the file (trace=file) then runs machines of
    # the size the sizes were drawn against. The row goes in as each machine's table is built,
    # which saves a gather of the whole fleet's table
    horizon = int(params.duration_s * SEC)
    parts = [events_table(*machine_events(params, seed, i), horizon, machine_name(i), memory_bytes=params.mem_bytes)
             for i in range(params.machines)]
    table = pa.concat_tables(parts)
    meta = dict(TRACE_SCHEMA.metadata) | {SYNTH_PARAMS_KEY: params.to_json().encode()}
    return table.replace_schema_metadata(meta)


def machine_name(index: int) -> str:
    """Id of machine ``index``: sorts in index order."""
    return f"m-{index:04d}"


def generate_machine(params: SynthParams, seed: int, index: int) -> pa.Table:
    """One machine's events, sorted by time; depends only on (params, seed, index)."""
    buf, names = machine_events(params, seed, index)
    return events_table(buf, names, int(params.duration_s * SEC), machine_name(index))


def generated_batches(params: SynthParams, seed: int, indices: range | list[int], source: str = "",
                      rows_before: int = 0, compiled: bool | None = None) -> list[tuple[str, EventBatch]]:
    """Machines ``indices``' events as ``(machine id, EventBatch)``, made straight from the generator's arrays.

    Out: exactly what ``traces.batches.machine_batches(pa.concat_tables([generate_machine(params,
    seed, i) for i in indices]), source)`` yields -- machines in sorted id order, one batch each,
    those without events left out; the same columns, dtypes, name tables (names in order of first
    use, equal names one entry) and ``source`` --, with the row numbers moved on by ``rows_before``
    (the rows of the machines generated before these), but without the Arrow table in between:
    the op, flag and name ids are mapped through small lookup tables instead of strings made per
    event and hashed again (``batch_columns``, compiled when the generator is). A machine whose events hold a value that mapping
    does not cover (an op or flag id out of range, a name id past the names: the table's path
    raises on those) is made through its table. ``compiled`` forces the compiled generator and
    its column functions or the pure ones (True needs the build), as ``machine_events``.
    """
    module = synth_build.module() if compiled is None or compiled else None
    if compiled and module is None:
        raise RuntimeError(f"traces: no current compiled generator ({synth_build.describe()})")
    horizon = int(params.duration_s * SEC)
    out = []
    rows = rows_before
    for index in indices:
        buf, names = machine_events(params, seed, index, compiled)
        batch = batch_columns(buf, names, horizon, source, rows, module)
        if batch is None:
            table = events_table(buf, names, horizon, machine_name(index))
            batch = next((b for _, b in machine_batches(table, source)), None)
            if batch is not None and batch.row is not None:
                batch.row += rows
        if batch is not None and len(batch):
            out.append((machine_name(index), batch))
            rows += len(batch)
        del buf  # the compiled generator's next machine reuses its buffer (traces/_synth.pyx, _free_buffer)
    out.sort(key=lambda pair: pair[0])
    return out


def machine_events(params: SynthParams, seed: int, index: int,
                   compiled: bool | None = None) -> tuple[np.ndarray, list[str]]:
    """Machine ``index``'s packed events (``traces.synth``'s int64 format, emission order) and names.

    The events come from the compiled mirror of ``traces.synth`` (``traces._synth.machine``) when
    it is built and current (``traces.synth_build``), else from ``traces.synth``: the same draws,
    the same buffer and names. ``compiled`` forces one or the other (True needs the build). Where
    the compiled build raises OverflowError (a value an int64 cannot hold, a parameter numpy would
    reject) the machine is rerun pure, which gives Python's result or numpy's own error.
    """
    module = synth_build.module() if compiled is None or compiled else None
    if compiled and module is None:
        raise RuntimeError(f"traces: no current compiled generator ({synth_build.describe()})")
    rng = np.random.default_rng([seed, index])
    if module is not None:
        try:
            return module.machine(rng, params)
        except OverflowError:
            return machine_events(params, seed, index, compiled=False)
    ev, files, starts, ends = synth.machine_start(params, rng)
    synth.pods(ev, rng, params, files, starts, ends)
    return np.frombuffer(ev.buf, dtype=np.int64), ev.names


# the name tables every machine's table shares: built once (a cell generates thousands of machines)
_MEMORY = int(Op.MEMORY)
_OP_LIST: list[str | None] = [o.name.lower() for o in Op]
_FLAG_LIST: list[str | None] = [format_flags(b) or None for b in range(64)]  # the generator's flags are < 64
_OP_NAMES = pa.array(_OP_LIST, type=pa.string())
_FLAG_NAMES = pa.array(_FLAG_LIST, type=pa.string())


def events_table(buf: np.ndarray, names: list[str], horizon: int, machine: str,
                 memory_bytes: int = 0) -> pa.Table:
    """Packed events (int64, 8 per event in emission order, -1 = null) -> a TRACE_SCHEMA table.

    Events at or past ``horizon`` are dropped; the rest are sorted by time, ties in emission
    order. Name columns index ``names``; op codes index ``Op``; flags are bits below 64.
    ``memory_bytes`` > 0 puts a ``memory`` row of that size first, at the first event's time (none
    without events), as ``traces.importers.machine_memory.with_machine_memory`` does.
    """
    module = synth_build.module()
    if module is not None:
        columns = module.sorted_columns(buf, horizon, memory_bytes, _MEMORY)
    else:
        columns = sorted_columns(buf, horizon, memory_bytes)
    t, op, cg, task, obj, off, nb, fl = columns
    if module is not None:  # the strings copied once into exact-size buffers, straight from the lists
        strings = [*_take_names(module, _OP_LIST, [op]), *_take_names(module, names, [cg, task, obj]),
                   *_take_names(module, _FLAG_LIST, [fl])]
    else:
        name_array = pa.array(names, type=pa.string())
        strings = [_OP_NAMES.take(op), *(_decode(ids, name_array) for ids in (cg, task, obj)), _FLAG_NAMES.take(fl)]
    arrays = [pa.array(t), pa.repeat(machine, t.size), *strings[:4], _nullable(off), _nullable(nb), strings[4]]
    return pa.Table.from_arrays(arrays, schema=TRACE_SCHEMA)


def _take_names(module: ModuleType, names: list[str | None], id_arrays: list[np.ndarray]) -> list[pa.Array]:
    """``pa.array(names).take(ids)`` for each ids, null where ids < 0, by the compiled ``take_names``."""
    out = []
    for ids, taken in zip(id_arrays, module.take_names(names, id_arrays)):
        if taken is None:  # past a string array's size: Arrow's take says so
            out.append(pa.array(names, type=pa.string()).take(pa.array(ids, mask=ids < 0)))
            continue
        offsets, data, validity, nulls = taken
        buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)]
        out.append(pa.Array.from_buffers(pa.string(), ids.size, buffers, nulls))
    return out


def sorted_columns(buf: np.ndarray, horizon: int, memory_bytes: int = 0) -> list[np.ndarray]:
    """The table's columns as numbers: time, op, cgroup, task, object, offset, bytes, flags.

    In: packed events (int64, 8 per event, emission order). Out: the values of the events before
    ``horizon``, sorted by time with ties in emission order; time, offset and bytes int64, the
    others int32 (-1 = null). ``memory_bytes`` > 0: a ``memory`` row first, at the first time.
    The compiled generator has the same function (a radix sort and one pass over the rows).
    """
    ev = buf.reshape(-1, 8)
    t = ev[:, 0]
    keep = t < horizon
    if keep.all():  # the usual case: no filtered copy
        order = np.argsort(t, kind="stable")
    else:
        kept = np.flatnonzero(keep)
        order = kept[np.argsort(t[kept], kind="stable")]
    # one gather per column, straight from the packed rows (no sorted copy of all eight)
    memory = (int(t[order[0]]), _MEMORY, -1, -1, -1, -1, memory_bytes, 0) if memory_bytes > 0 and order.size else None
    return [_gather(ev[:, c], order, None if memory is None else memory[c], c in (0, 5, 6)) for c in range(8)]


def _gather(column: np.ndarray, order: np.ndarray, first: int | None, wide: bool) -> np.ndarray:
    # column[order] (int64 if wide, else cast to int32 as astype does), after ``first`` if given
    out = np.empty(order.size + (first is not None), dtype=np.int64)
    if first is not None:
        out[0] = first
    column.take(order, out=out[1:] if first is not None else out)
    return out if wide else out.astype(np.int32)


def _decode(idx: np.ndarray, names: pa.Array) -> pa.Array:
    # names[idx] (int32 ids), null where idx < 0
    return names.take(pa.array(idx, mask=idx < 0))


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=values < 0)


# the op and flag codes an EventBatch holds per op and flag id of the packed events, as
# ``traces.batches`` maps the table's strings (``_OP_LIST``, ``_FLAG_LIST``); a null flag (id -1) last
_OP_CODES = np.array([_op_code(text) for text in _OP_LIST], dtype=np.uint8)
_FLAG_CODES = np.array([_flag_bits(text) for text in _FLAG_LIST] + [_flag_bits(None)], dtype=np.int32)


def batch_columns(buf: np.ndarray, names: list[str], horizon: int, source: str = "", rows_before: int = 0,
                  module: ModuleType | None = None) -> EventBatch | None:
    """Packed events (int64, 8 per event in emission order, -1 = null) and their names -> an EventBatch.

    Out: the batch ``traces.batches.machine_batches`` makes of ``events_table(buf, names, horizon,
    machine)``, with row numbers ``rows_before + 1, ...``: the events before ``horizon`` sorted by
    time (``sorted_columns``), ops as ``uint8`` and flags as ``int32`` codes looked up per id (a
    null flag: no bits), negative offsets and sizes ``NULL``, each name column numbered in order
    of first use into its own name table (``first_use``; equal names are one, a None name null).
    None (the caller then goes through the table, which raises on them) for an op id outside
    ``Op``, a flag id outside -1..63 or a name id past ``names``. ``module``: the compiled
    generator, whose ``batch_columns`` does all that in one pass over the sorted rows (None:
    ``sorted_columns``, the lookups and ``first_use`` in numpy, the reference).
    """
    if module is not None:  # the same in one compiled pass over the sorted rows
        got = module.batch_columns(buf, horizon, names, _canonical(names), _OP_CODES, _FLAG_CODES, rows_before + 1)
        if got is None:
            return None
        t, op, cg, task, obj, off, nb, fl, row, cgroups, tasks, objects = got
        return EventBatch(time_us=t, op=op, cgroup=cg, task=task, obj=obj, offset=off, nbytes=nb, flags=fl,
                          cgroups=cgroups, tasks=tasks, objects=objects, row=row, source=source)
    t, op, cg, task, obj, off, nb, fl = sorted_columns(buf, horizon)
    n = t.size
    if n == 0:
        return EventBatch(t, op.astype(np.uint8), cg, task, obj, off, nb, fl, row=np.zeros(0, np.int64),
                          source=source)
    if (int(op.min()) < 0 or int(op.max()) >= _OP_CODES.size or int(fl.min()) < -1 or int(fl.max()) >= 64
            or max(int(cg.max()), int(task.max()), int(obj.max())) >= len(names)):
        return None
    canon = _canonical(names)
    (cg, cg_used), (task, task_used), (obj, obj_used) = (first_use(ids, canon) for ids in (cg, task, obj))
    return EventBatch(
        time_us=t, op=_OP_CODES[op], cgroup=cg, task=task, obj=obj,
        offset=np.maximum(off, NULL, out=off), nbytes=np.maximum(nb, NULL, out=nb), flags=_FLAG_CODES[fl],
        cgroups=[names[i] for i in cg_used.tolist()], tasks=[names[i] for i in task_used.tolist()],
        objects=[names[i] for i in obj_used.tolist()],
        row=np.arange(rows_before + 1, rows_before + n + 1, dtype=np.int64), source=source,
    )


def _canonical(names: list[str]) -> np.ndarray:
    """Per name id (int32) the first id with its text, NULL for a None name: the generator names each
    entity once, so mostly ``0, 1, ...``; an EventBatch's name table holds each text once."""
    distinct = set(names)
    if len(distinct) == len(names) and None not in distinct:
        return np.arange(len(names), dtype=np.int32)
    first: dict[str, int] = {}
    return np.array([NULL if text is None else first.setdefault(text, i) for i, text in enumerate(names)],
                    dtype=np.int32)


def first_use(ids: np.ndarray, canon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A name column's ids renumbered in order of first use, as ``traces.batches`` encodes a batch's names.

    In: ``ids`` (int32 name ids, < 0 = null) and ``canon`` (int32, per name id the id that stands
    for its text, NULL for none: ``_canonical``). Out: per row its code (int32, ``NULL`` for null:
    0 for the first name used, 1 for the next new one, ...) and the ids behind codes 0, 1, ...
    (int32). An id past ``canon`` is an IndexError. The compiled generator's ``batch_columns``
    numbers the names the same way, as it goes through the rows.
    """
    m, n = canon.size, ids.size
    if n and int(ids.max()) >= m:
        raise IndexError(f"name id {int(ids.max())} past the {m} names")
    c = np.append(canon, np.int32(NULL))[np.maximum(ids, NULL)]  # null ids take the appended NULL
    at = np.flatnonzero(c >= 0)
    first = np.full(m, n, dtype=np.int64)
    np.minimum.at(first, c[at], at)
    used = np.flatnonzero(first < n)
    used = used[np.argsort(first[used])].astype(np.int32)  # the first rows are distinct: any sort will do
    code = np.full(m + 1, NULL, dtype=np.int32)  # NULL rows take the last
    code[used] = np.arange(used.size, dtype=np.int32)
    return code[c], used
