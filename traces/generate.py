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

import numpy as np
import pyarrow as pa

from core.ops import Flag, Op, format_flags
from traces.importers.machine_memory import with_machine_memory
from traces.schema import TRACE_SCHEMA

MIB = 1 << 20
GIB = 1 << 30
SEC = 1_000_000  #: microseconds per second
SYNTH_PARAMS_KEY = b"memcg_replay.synth_params"
_MAX_ACCESSES = 200  # per task: keeps a days-long task from dominating a machine's events


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
    def from_values(values: dict) -> "SynthParams":
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
}


def generate(params: SynthParams, seed: int = 0) -> pa.Table:
    """The whole fleet's trace: machines in id order, each sorted by time."""
    problems = SynthParams.problems_of(dataclasses.asdict(params))
    if problems:
        raise ValueError("; ".join(p for _, p in problems))
    parts = [generate_machine(params, seed, i) for i in range(params.machines)]
    # each machine's size as a `memory` row, as the importers write it: a replay of the file
    # (trace=file) then runs machines of the size the sizes were drawn against
    sizes = {machine_name(i): params.mem_bytes for i in range(params.machines)}
    table = with_machine_memory(pa.concat_tables(parts), sizes)
    meta = dict(TRACE_SCHEMA.metadata) | {SYNTH_PARAMS_KEY: params.to_json().encode()}
    return table.replace_schema_metadata(meta)


def machine_name(index: int) -> str:
    """Id of machine ``index``: sorts in index order."""
    return f"m-{index:04d}"


def generate_machine(params: SynthParams, seed: int, index: int) -> pa.Table:
    """One machine's events, sorted by time; depends only on (params, seed, index)."""
    rng = np.random.default_rng([seed, index])
    ev = _Events(int(params.duration_s * SEC))
    files = _machine_setup(ev, rng, params)
    arrivals = np.sort(rng.uniform(0.0, params.duration_s, rng.poisson(params.pod_arrival_per_s * params.duration_s)))
    lifetimes = np.maximum(rng.lognormal(math.log(params.pod_lifetime_median_s), params.pod_lifetime_sigma,
                                         arrivals.size), 1.0)
    for n, (t0, life) in enumerate(zip(arrivals.tolist(), lifetimes.tolist())):
        t0_us = int(t0 * SEC) + 1  # t=0 belongs to the machine setup
        _pod(ev, rng, params, files, n, t0_us, t0_us + int(life * SEC))
    return ev.table(machine_name(index))


@dataclass
class _SharedFiles:
    """The machine's image layers / libraries: name ids, sizes, choice weights."""

    ids: list[int]
    sizes: list[int]
    weights: np.ndarray


def _machine_setup(ev: "_Events", rng: np.random.Generator, p: SynthParams) -> _SharedFiles:
    if p.swap_bytes > 0:
        ev.emit(0, Op.SWAP_ON, nbytes=p.swap_bytes)
    sizes = _lognormal_bytes(rng, p.shared_file_bytes_median, p.shared_file_bytes_sigma, p.shared_files)
    ids = [ev.name(f"/layers/layer-{i:04d}") for i in range(p.shared_files)]
    for obj, size in zip(ids, sizes):
        ev.emit(0, Op.FILE_CREATE, obj=obj, nbytes=size)
    weights = 1.0 / np.arange(1, p.shared_files + 1) ** p.shared_zipf_s
    return _SharedFiles(ids, sizes, weights / weights.sum())


def _lognormal_bytes(rng: np.random.Generator, median: int, sigma: float, n: int) -> list[int]:
    """``n`` sizes, whole 4 KiB pages, at least one page."""
    raw = rng.lognormal(math.log(max(median, 4096)), sigma, n)
    return (np.maximum(np.round(raw / 4096), 1).astype(np.int64) * 4096).tolist()


# ---------------------------------------------------------------- one pod


@dataclass
class _Pod:
    """What the tasks of one pod share."""

    n: int
    t0: int
    end: int
    files: list[tuple[int, int, bool]]  # (object id, bytes, mapped?)
    vol: int = -1  # tmpfs volume object id, or -1
    vol_bytes: int = 0


def _pod(ev: "_Events", rng: np.random.Generator, p: SynthParams, shared: _SharedFiles,
         n: int, t0: int, end: int) -> None:
    """All events of pod ``n`` living [t0, end] microseconds."""
    n_ctr = int(rng.integers(1, p.containers_per_pod_max + 1))
    k = min(p.shared_files_per_pod, len(shared.ids))
    chosen = rng.choice(len(shared.ids), size=k, replace=False, p=shared.weights) if k else []
    mapped = rng.random(k) < p.shared_map_fraction
    pod = _Pod(n, t0, end, [(shared.ids[i], shared.sizes[i], bool(m)) for i, m in zip(chosen, mapped)])
    cg = ev.name(f"/pod-{n}")
    ev.emit(t0, Op.MKDIR, cg=cg)
    n_tasks = rng.integers(1, p.tasks_per_container_max + 1, n_ctr)
    anon = _lognormal_bytes(rng, p.anon_bytes_median, p.anon_bytes_sigma, int(n_tasks.sum()))
    logs = _lognormal_bytes(rng, p.log_bytes_median, p.log_bytes_sigma, n_ctr)
    if n_ctr > 1 and rng.random() < p.tmpfs_fraction:
        pod.vol = ev.name(f"/dev/shm/pod-{n}/vol")
        pod.vol_bytes = _lognormal_bytes(rng, p.tmpfs_bytes_median, p.tmpfs_bytes_sigma, 1)[0]
        ev.emit(t0, Op.FILE_CREATE, obj=pod.vol, flags=Flag.SHMEM)
    if rng.random() < p.limit_fraction:
        footprint = sum(anon) + sum(logs) + pod.vol_bytes + sum(b for _, b, _ in pod.files)
        ev.emit(t0, Op.SET_LIMIT, cg=cg, nbytes=int(footprint * p.limit_headroom), flags=Flag.MAX)
    heaps = iter(anon)
    for j in range(n_ctr):
        _container(ev, rng, p, pod, j, [next(heaps) for _ in range(int(n_tasks[j]))], logs[j])
    _pod_teardown(ev, rng, p, pod, cg, n_ctr)


def _pod_teardown(ev: "_Events", rng: np.random.Generator, p: SynthParams, pod: _Pod, cg: int,
                  n_ctr: int) -> None:
    # containers were removed at end+1..end+n_ctr (see _container); the pod goes last
    ev.emit(pod.end + n_ctr + 1, Op.RMDIR, cg=cg)
    if pod.vol >= 0:
        outlive = rng.random() < p.tmpfs_outlive_fraction
        ev.emit(_later(rng, pod.end + 1, p.tmpfs_outlive_s) if outlive else pod.end + 1,
                Op.FILE_DELETE, obj=pod.vol)


def _later(rng: np.random.Generator, t: int, mean_s: float) -> int:
    """``t`` plus an exponential delay of mean ``mean_s`` (0 = never: beyond any trace)."""
    if mean_s <= 0:
        return 1 << 62
    return t + 1 + int(rng.exponential(mean_s) * SEC)


def _container(ev: "_Events", rng: np.random.Generator, p: SynthParams, pod: _Pod, j: int,
               heaps: list[int], log_bytes: int) -> None:
    """Container ``j`` of ``pod``: its cgroup, log file and tasks."""
    cg = ev.name(f"/pod-{pod.n}/ctr-{j}")
    t_mk = pod.t0 + 1 + j
    ev.emit(t_mk, Op.MKDIR, cg=cg)
    log = ev.name(f"/var/log/pods/pod-{pod.n}/ctr-{j}.log")
    ev.emit(t_mk, Op.FILE_CREATE, obj=log, nbytes=0)
    for k, heap in enumerate(heaps):
        start = t_mk + 1 + k if k == 0 else int(rng.uniform(t_mk + 1, max(pod.end - SEC, t_mk + 2)))
        end = pod.end if k == 0 else int(rng.uniform(start + SEC // 2, max(pod.end, start + SEC)))
        end = min(end, pod.end)
        role = _Role(writer=j == 0 and k == 0, reader=j > 0 and k == 0, log=log if k == 0 else -1,
                     log_bytes=log_bytes)
        _task(ev, rng, p, pod, cg, f"p{pod.n}c{j}t{k}", start, end, heap, role)
    ev.emit(pod.end + 1 + j, Op.RMDIR, cg=cg)
    keep = rng.random() < p.log_keep_fraction
    ev.emit(_later(rng, pod.end + 1 + j, p.log_keep_s) if keep else pod.end + 1 + j, Op.FILE_DELETE, obj=log)


@dataclass
class _Role:
    """Which pod-level objects a task touches besides the image files."""

    writer: bool  # fills the pod's tmpfs volume
    reader: bool  # maps or reads the pod's tmpfs volume
    log: int  # log object it appends to, or -1
    log_bytes: int


# ---------------------------------------------------------------- one task


def _task(ev: "_Events", rng: np.random.Generator, p: SynthParams, pod: _Pod, cg: int, name: str,
          start: int, end: int, heap: int, role: _Role) -> None:
    """One task from task_start to task_exit, with startup, running and teardown phases."""
    task = ev.name(name)
    ev.emit(start, Op.TASK_START, cg=cg, task=task)
    t = start + 1
    kstack, dentries, region = ev.name(f"kmem:{name}:stack"), ev.name(f"kmem:{name}:dentries"), ev.name(f"anon:{name}")
    ev.emit(t, Op.KMEM_ALLOC, task=task, obj=kstack, nbytes=p.kmem_page_bytes, flags=Flag.PAGE)
    ev.emit(t, Op.KMEM_ALLOC, task=task, obj=dentries, nbytes=p.kmem_slab_bytes, flags=Flag.SLAB)
    if p.socket_fraction > 0 and rng.random() < p.socket_fraction:  # no draw when off: same traces
        sock = ev.name(f"sock:{name}")
        ev.emit(t, Op.SOCK_OPEN, task=task, obj=sock, nbytes=p.socket_bytes)
        ev.emit(_later(rng, end, p.socket_linger_s), Op.SOCK_CLOSE, obj=sock)
    step = max(heap // max(p.anon_steps, 1) // 4096, 1) * 4096
    ev.emit(t + 1, Op.ANON_ALLOC, task=task, obj=region, nbytes=step)
    mapped = _startup_files(ev, task, pod, t + 2)
    if role.writer and pod.vol >= 0:
        ev.emit(t + 3, Op.FILE_WRITE, task=task, obj=pod.vol, offset=0, nbytes=pod.vol_bytes)
    pins = _pins(ev, rng, p, task, region, step, mapped, t + 4)
    lo, hi = t + 10, end - 10
    if hi > lo:
        _running(ev, rng, p, pod, task, region, heap, step, role, lo, hi, mapped)
    for key in pins:
        ev.emit(end - 3, Op.UNPIN, task=task, obj=key[0], offset=0, nbytes=key[1], flags=key[2])
    for obj in mapped:
        ev.emit(end - 2, Op.FILE_UNMAP, task=task, obj=obj)
    ev.emit(end, Op.TASK_EXIT, task=task)
    ev.emit(_later(rng, end, p.slab_free_s), Op.KMEM_FREE, obj=dentries)


def _startup_files(ev: "_Events", task: int, pod: _Pod, t: int) -> list[int]:
    """Map or read the pod's image files (the loader does this for every process)."""
    mapped = []
    for obj, size, is_mapped in pod.files:
        if is_mapped:
            ev.emit(t, Op.FILE_MAP, task=task, obj=obj, offset=0, nbytes=size)
            mapped.append(obj)
        else:
            ev.emit(t, Op.FILE_READ, task=task, obj=obj)
    return mapped


def _pins(ev: "_Events", rng: np.random.Generator, p: SynthParams, task: int, region: int, heap_bytes: int,
          mapped: list[int], t: int) -> list[tuple[int, int, int]]:
    """Maybe pin memory: mlock part of the heap, or a long-term pin of a mapped file."""
    if rng.random() >= p.pinned_fraction:
        return []
    want = _lognormal_bytes(rng, p.pin_bytes_median, 1.0, 1)[0]
    if mapped and rng.random() < 0.5:
        key = (mapped[0], want, int(Flag.NONE))
    else:
        key = (region, min(want, heap_bytes), int(Flag.MLOCK))
    ev.emit(t, Op.PIN, task=task, obj=key[0], offset=0, nbytes=key[1], flags=key[2])
    return [key]


def _running(ev: "_Events", rng: np.random.Generator, p: SynthParams, pod: _Pod, task: int, region: int,
             heap: int, step: int, role: _Role, lo: int, hi: int, mapped: list[int]) -> None:
    """Events while the task runs, at uniform times in (lo, hi)."""
    for t in np.sort(rng.integers(lo, hi, max(p.anon_steps - 1, 0))).tolist():
        ev.emit(t, Op.ANON_ALLOC, task=task, obj=region, nbytes=step)
    if p.anon_free_fraction > 0:
        freed = int(heap * p.anon_free_fraction) // 4096 * 4096
        if freed:
            ev.emit(int(rng.integers(lo, hi)), Op.ANON_FREE, task=task, obj=region, offset=0, nbytes=freed)
    if role.reader and pod.vol >= 0:
        _read_volume(ev, rng, p, pod, task, lo, hi, mapped)
    n_acc = _n_accesses(rng, p, hi - lo)
    if n_acc and pod.files:
        _reaccess(ev, rng, pod, task, n_acc, lo, hi)
    if role.log >= 0:
        _write_log(ev, rng, task, role, n_acc + 1, lo, hi)


def _n_accesses(rng: np.random.Generator, p: SynthParams, span_us: int) -> int:
    if p.access_interval_s <= 0:
        return 0
    return min(int(rng.poisson(span_us / SEC / p.access_interval_s)), _MAX_ACCESSES)


def _read_volume(ev: "_Events", rng: np.random.Generator, p: SynthParams, pod: _Pod, task: int,
                 lo: int, hi: int, mapped: list[int]) -> None:
    # the writer fills the volume right after its start; readers come later
    t = int(rng.integers(lo, hi))
    if rng.random() < p.shared_map_fraction:
        ev.emit(t, Op.FILE_MAP, task=task, obj=pod.vol, offset=0, nbytes=pod.vol_bytes)
        mapped.append(pod.vol)
    else:
        ev.emit(t, Op.FILE_READ, task=task, obj=pod.vol)


def _reaccess(ev: "_Events", rng: np.random.Generator, pod: _Pod, task: int, n: int, lo: int, hi: int) -> None:
    """Re-read random ranges of the pod's image files (refaults after reclaim charge the reader)."""
    times = np.sort(rng.integers(lo, hi, n)).tolist()
    which = rng.integers(0, len(pod.files), n).tolist()
    frac = rng.random(n).tolist()
    for t, w, f in zip(times, which, frac):
        obj, size, _ = pod.files[w]
        pages = size // 4096
        first = int(f * pages)
        length = max(1, min(pages - first, 256))  # a read() of up to 1 MiB
        ev.emit(t, Op.FILE_READ, task=task, obj=obj, offset=first * 4096, nbytes=length * 4096)


def _write_log(ev: "_Events", rng: np.random.Generator, task: int, role: _Role, n: int, lo: int, hi: int) -> None:
    """Append the container's log in ``n`` writes (page cache charged to the writer)."""
    n = max(1, min(n, role.log_bytes // 4096))
    chunk = role.log_bytes // n
    for k, t in enumerate(np.sort(rng.integers(lo, hi, n)).tolist()):
        ev.emit(t, Op.FILE_WRITE, task=task, obj=role.log, offset=k * chunk, nbytes=chunk)


# ---------------------------------------------------------------- columns


class _Events:
    """Column lists of one machine's events; names interned into one table."""

    def __init__(self, horizon_us: int) -> None:
        self.horizon = horizon_us
        self.cols: tuple[list[int], ...] = tuple([] for _ in range(8))
        self.names: list[str] = []

    def name(self, text: str) -> int:
        """Intern a name (each entity is named once, so no lookup table is needed)."""
        self.names.append(text)
        return len(self.names) - 1

    def emit(self, t: int, op: Op, cg: int = -1, task: int = -1, obj: int = -1,
             offset: int = -1, nbytes: int = -1, flags: int = 0) -> None:
        """Append one event; -1 means null. Events at or past the horizon are dropped."""
        if t >= self.horizon:
            return
        c = self.cols  # unrolled: this runs once per event
        c[0].append(t)
        c[1].append(int(op))
        c[2].append(cg)
        c[3].append(task)
        c[4].append(obj)
        c[5].append(offset)
        c[6].append(nbytes)
        c[7].append(int(flags))

    def table(self, machine: str) -> pa.Table:
        """The events sorted by time (ties keep emission order) as a TRACE_SCHEMA table."""
        t, op, cg, task, obj, off, nb, fl = (np.asarray(c, dtype=np.int64) for c in self.cols)
        order = np.argsort(t, kind="stable")
        names = pa.array(self.names, type=pa.string())
        op_names = pa.array([o.name.lower() for o in Op], type=pa.string())
        flag_values = np.unique(fl)
        flag_names = pa.array([format_flags(int(b)) or None for b in flag_values], type=pa.string())
        arrays = [
            pa.array(t[order]),
            pa.array(np.full(t.size, machine, dtype=object), type=pa.string()),
            _decode(op[order], op_names),
            _decode(cg[order], names), _decode(task[order], names), _decode(obj[order], names),
            _nullable(off[order]), _nullable(nb[order]),
            _decode(np.searchsorted(flag_values, fl[order]), flag_names),
        ]
        return pa.Table.from_arrays(arrays, schema=TRACE_SCHEMA)


def _decode(idx: np.ndarray, dictionary: pa.Array) -> pa.Array:
    ids = pa.array(idx.astype(np.int32), mask=idx < 0)
    return pa.DictionaryArray.from_arrays(ids, dictionary).cast(pa.string())


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=values < 0)
