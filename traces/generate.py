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
from array import array
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


# Op and flag codes as plain ints: events are packed into an int64 buffer (see _Events)
_SWAP_ON, _MKDIR, _RMDIR, _SET_LIMIT = int(Op.SWAP_ON), int(Op.MKDIR), int(Op.RMDIR), int(Op.SET_LIMIT)
_TASK_START, _TASK_EXIT = int(Op.TASK_START), int(Op.TASK_EXIT)
_FILE_CREATE, _FILE_DELETE, _FILE_READ = int(Op.FILE_CREATE), int(Op.FILE_DELETE), int(Op.FILE_READ)
_FILE_WRITE, _FILE_MAP, _FILE_UNMAP = int(Op.FILE_WRITE), int(Op.FILE_MAP), int(Op.FILE_UNMAP)
_ANON_ALLOC, _ANON_FREE, _PIN, _UNPIN = int(Op.ANON_ALLOC), int(Op.ANON_FREE), int(Op.PIN), int(Op.UNPIN)
_KMEM_ALLOC, _KMEM_FREE, _SOCK_OPEN, _SOCK_CLOSE = (int(Op.KMEM_ALLOC), int(Op.KMEM_FREE), int(Op.SOCK_OPEN),
                                                     int(Op.SOCK_CLOSE))
_F_NONE, _F_SHMEM, _F_MAX, _F_MLOCK = int(Flag.NONE), int(Flag.SHMEM), int(Flag.MAX), int(Flag.MLOCK)
_F_PAGE, _F_SLAB = int(Flag.PAGE), int(Flag.SLAB)


@dataclass
class _SharedFiles:
    """The machine's image layers / libraries: name ids, sizes, choice weights (and their cdf)."""

    ids: list[int]
    sizes: list[int]
    weights: np.ndarray
    cdf: np.ndarray


def _machine_setup(ev: _Events, rng: np.random.Generator, p: SynthParams) -> _SharedFiles:
    if p.swap_bytes > 0:
        ev.put((0, _SWAP_ON, -1, -1, -1, -1, p.swap_bytes, 0))
    sizes = _lognormal_bytes(rng, p.shared_file_bytes_median, p.shared_file_bytes_sigma, p.shared_files)
    ids = [ev.name(f"/layers/layer-{i:04d}") for i in range(p.shared_files)]
    for obj, size in zip(ids, sizes):
        ev.put((0, _FILE_CREATE, -1, -1, obj, -1, size, 0))
    weights = 1.0 / np.arange(1, p.shared_files + 1) ** p.shared_zipf_s
    weights = weights / weights.sum()
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return _SharedFiles(ids, sizes, weights, cdf)


def _lognormal_bytes(rng: np.random.Generator, median: int, sigma: float, n: int) -> list[int]:
    """``n`` sizes, whole 4 KiB pages (rounded half to even, as ``np.round``), at least one page."""
    raw = rng.lognormal(math.log(max(median, 4096)), sigma, n).tolist()
    return [max(round(x / 4096), 1) * 4096 for x in raw]


def _choose(rng: np.random.Generator, shared: _SharedFiles, k: int) -> list[int]:
    """``rng.choice(len(shared.ids), size=k, replace=False, p=shared.weights)``, draw for draw.

    numpy's weighted choice without replacement draws ``k`` uniforms, looks them up in the
    cdf and, if some repeat, draws again for the missing ones with the found files' weights
    zeroed. The first round's cdf is the same for every pod of a machine, so it is computed
    once (``shared.cdf``); the rare later rounds follow numpy's code exactly. Equality with
    ``rng.choice`` is tested (tests/test_generate.py).
    """
    new = shared.cdf.searchsorted(rng.random(k), side="right")
    out = new.tolist()
    if len(set(out)) == k:
        return out
    p = shared.weights.copy()
    found = np.zeros(k, dtype=np.int64)
    n = 0
    while n < k:
        if n > 0:
            x = rng.random((k - n,))
            p[found[0:n]] = 0
            cdf = np.cumsum(p)
            cdf /= cdf[-1]
            new = cdf.searchsorted(x, side="right")
        _, first = np.unique(new, return_index=True)
        first.sort()
        new = new.take(first)
        found[n:n + new.size] = new
        n += new.size
    return found.tolist()


def _integers(rng: np.random.Generator, lo: int, hi: int, n: int) -> list[int]:
    """``rng.integers(lo, hi, n).tolist()``, draw for draw.

    numpy fills an array of bounded integers with the same bit-generator calls as that many
    scalar calls (32-bit ranges draw 32 bits each, wider ones 64; tested equal), and a scalar
    call costs a seventh of an array call's fixed overhead: small counts are drawn one by one.
    """
    if n > 6:
        return rng.integers(lo, hi, n).tolist()
    return [int(rng.integers(lo, hi)) for _ in range(n)]


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
    startup: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)  # (op, obj, offset, nbytes)
    mapped: list[int] = dataclasses.field(default_factory=list)  # image files every task maps at start
    file_obj: np.ndarray | None = None  # image files as arrays, for re-reads
    file_pages: np.ndarray | None = None


def _pod(ev: _Events, rng: np.random.Generator, p: SynthParams, shared: _SharedFiles,
         n: int, t0: int, end: int) -> None:
    """All events of pod ``n`` living [t0, end] microseconds."""
    n_ctr = int(rng.integers(1, p.containers_per_pod_max + 1))
    k = min(p.shared_files_per_pod, len(shared.ids))
    chosen = _choose(rng, shared, k) if k else []
    mapped = rng.random(k) < p.shared_map_fraction
    pod = _Pod(n, t0, end, [(shared.ids[i], shared.sizes[i], m) for i, m in zip(chosen, mapped.tolist())])
    _pod_files(pod)
    cg = ev.name(f"/pod-{n}")
    put = ev.put
    put((t0, _MKDIR, cg, -1, -1, -1, -1, 0))
    n_tasks = _integers(rng, 1, p.tasks_per_container_max + 1, n_ctr)
    anon = _lognormal_bytes(rng, p.anon_bytes_median, p.anon_bytes_sigma, sum(n_tasks))
    logs = _lognormal_bytes(rng, p.log_bytes_median, p.log_bytes_sigma, n_ctr)
    if n_ctr > 1 and rng.random() < p.tmpfs_fraction:
        pod.vol = ev.name(f"/dev/shm/pod-{n}/vol")
        pod.vol_bytes = _lognormal_bytes(rng, p.tmpfs_bytes_median, p.tmpfs_bytes_sigma, 1)[0]
        put((t0, _FILE_CREATE, -1, -1, pod.vol, -1, -1, _F_SHMEM))
    if rng.random() < p.limit_fraction:
        footprint = sum(anon) + sum(logs) + pod.vol_bytes + sum(b for _, b, _ in pod.files)
        put((t0, _SET_LIMIT, cg, -1, -1, -1, int(footprint * p.limit_headroom), _F_MAX))
    at = 0
    for j in range(n_ctr):
        _container(ev, rng, p, pod, j, anon[at:at + n_tasks[j]], logs[j])
        at += n_tasks[j]
    _pod_teardown(ev, rng, p, pod, cg, n_ctr)


def _pod_files(pod: _Pod) -> None:
    # what every task of the pod does with the image files at its start, and their arrays for re-reads
    pod.startup = [(_FILE_MAP, obj, 0, size) if m else (_FILE_READ, obj, -1, -1) for obj, size, m in pod.files]
    pod.mapped = [obj for obj, _, m in pod.files if m]
    if pod.files:
        pod.file_obj = np.array([f[0] for f in pod.files], dtype=np.int64)
        pod.file_pages = np.array([f[1] // 4096 for f in pod.files], dtype=np.int64)


def _pod_teardown(ev: _Events, rng: np.random.Generator, p: SynthParams, pod: _Pod, cg: int,
                  n_ctr: int) -> None:
    # containers were removed at end+1..end+n_ctr (see _container); the pod goes last
    ev.put((pod.end + n_ctr + 1, _RMDIR, cg, -1, -1, -1, -1, 0))
    if pod.vol >= 0:
        outlive = rng.random() < p.tmpfs_outlive_fraction
        t = _later(rng, pod.end + 1, p.tmpfs_outlive_s) if outlive else pod.end + 1
        ev.put((t, _FILE_DELETE, -1, -1, pod.vol, -1, -1, 0))


def _later(rng: np.random.Generator, t: int, mean_s: float) -> int:
    """``t`` plus an exponential delay of mean ``mean_s`` (0 = never: beyond any trace)."""
    if mean_s <= 0:
        return 1 << 62
    return t + 1 + int(rng.exponential(mean_s) * SEC)


def _container(ev: _Events, rng: np.random.Generator, p: SynthParams, pod: _Pod, j: int,
               heaps: list[int], log_bytes: int) -> None:
    """Container ``j`` of ``pod``: its cgroup, log file and tasks."""
    cg = ev.name(f"/pod-{pod.n}/ctr-{j}")
    t_mk = pod.t0 + 1 + j
    put = ev.put
    put((t_mk, _MKDIR, cg, -1, -1, -1, -1, 0))
    log = ev.name(f"/var/log/pods/pod-{pod.n}/ctr-{j}.log")
    put((t_mk, _FILE_CREATE, -1, -1, log, -1, 0, 0))
    for k, heap in enumerate(heaps):
        if k == 0:
            start, end = t_mk + 1, pod.end
        else:
            start = int(rng.uniform(t_mk + 1, max(pod.end - SEC, t_mk + 2)))
            end = min(int(rng.uniform(start + SEC // 2, max(pod.end, start + SEC))), pod.end)
        role = _Role(writer=j == 0 and k == 0, reader=j > 0 and k == 0, log=log if k == 0 else -1,
                     log_bytes=log_bytes)
        _task(ev, rng, p, pod, cg, f"p{pod.n}c{j}t{k}", start, end, heap, role)
    put((pod.end + 1 + j, _RMDIR, cg, -1, -1, -1, -1, 0))
    keep = rng.random() < p.log_keep_fraction
    t = _later(rng, pod.end + 1 + j, p.log_keep_s) if keep else pod.end + 1 + j
    put((t, _FILE_DELETE, -1, -1, log, -1, -1, 0))


@dataclass
class _Role:
    """Which pod-level objects a task touches besides the image files."""

    writer: bool  # fills the pod's tmpfs volume
    reader: bool  # maps or reads the pod's tmpfs volume
    log: int  # log object it appends to, or -1
    log_bytes: int


# ---------------------------------------------------------------- one task


def _task(ev: _Events, rng: np.random.Generator, p: SynthParams, pod: _Pod, cg: int, name: str,
          start: int, end: int, heap: int, role: _Role) -> None:
    """One task from task_start to task_exit, with startup, running and teardown phases."""
    task = ev.name(name)
    put = ev.put
    put((start, _TASK_START, cg, task, -1, -1, -1, 0))
    t = start + 1
    kstack, dentries, region = ev.name(f"kmem:{name}:stack"), ev.name(f"kmem:{name}:dentries"), ev.name(f"anon:{name}")
    put((t, _KMEM_ALLOC, -1, task, kstack, -1, p.kmem_page_bytes, _F_PAGE))
    put((t, _KMEM_ALLOC, -1, task, dentries, -1, p.kmem_slab_bytes, _F_SLAB))
    if p.socket_fraction > 0 and rng.random() < p.socket_fraction:  # no draw when off: same traces
        sock = ev.name(f"sock:{name}")
        put((t, _SOCK_OPEN, -1, task, sock, -1, p.socket_bytes, 0))
        put((_later(rng, end, p.socket_linger_s), _SOCK_CLOSE, -1, -1, sock, -1, -1, 0))
    step = max(heap // max(p.anon_steps, 1) // 4096, 1) * 4096
    put((t + 1, _ANON_ALLOC, -1, task, region, -1, step, 0))
    for op, obj, off, nb in pod.startup:  # the loader maps or reads the pod's image files
        put((t + 2, op, -1, task, obj, off, nb, 0))
    mapped = list(pod.mapped)
    if role.writer and pod.vol >= 0:
        put((t + 3, _FILE_WRITE, -1, task, pod.vol, 0, pod.vol_bytes, 0))
    pin = _pin(ev, rng, p, task, region, step, mapped, t + 4)
    lo, hi = t + 10, end - 10
    if hi > lo:
        _running(ev, rng, p, pod, task, region, heap, step, role, lo, hi, mapped)
    if pin is not None:
        put((end - 3, _UNPIN, -1, task, pin[0], 0, pin[1], pin[2]))
    for obj in mapped:
        put((end - 2, _FILE_UNMAP, -1, task, obj, -1, -1, 0))
    put((end, _TASK_EXIT, -1, task, -1, -1, -1, 0))
    put((_later(rng, end, p.slab_free_s), _KMEM_FREE, -1, -1, dentries, -1, -1, 0))


def _pin(ev: _Events, rng: np.random.Generator, p: SynthParams, task: int, region: int, heap_bytes: int,
         mapped: list[int], t: int) -> tuple[int, int, int] | None:
    """Maybe pin memory: mlock part of the heap, or a long-term pin of a mapped file."""
    if rng.random() >= p.pinned_fraction:
        return None
    want = _lognormal_bytes(rng, p.pin_bytes_median, 1.0, 1)[0]
    if mapped and rng.random() < 0.5:
        key = (mapped[0], want, _F_NONE)
    else:
        key = (region, min(want, heap_bytes), _F_MLOCK)
    ev.put((t, _PIN, -1, task, key[0], 0, key[1], key[2]))
    return key


def _running(ev: _Events, rng: np.random.Generator, p: SynthParams, pod: _Pod, task: int, region: int,
             heap: int, step: int, role: _Role, lo: int, hi: int, mapped: list[int]) -> None:
    """Events while the task runs, at uniform times in (lo, hi)."""
    put = ev.put
    for t in sorted(_integers(rng, lo, hi, p.anon_steps - 1)):
        put((t, _ANON_ALLOC, -1, task, region, -1, step, 0))
    if p.anon_free_fraction > 0:
        freed = int(heap * p.anon_free_fraction) // 4096 * 4096
        if freed:
            put((int(rng.integers(lo, hi)), _ANON_FREE, -1, task, region, 0, freed, 0))
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


def _read_volume(ev: _Events, rng: np.random.Generator, p: SynthParams, pod: _Pod, task: int,
                 lo: int, hi: int, mapped: list[int]) -> None:
    # the writer fills the volume right after its start; readers come later
    t = int(rng.integers(lo, hi))
    if rng.random() < p.shared_map_fraction:
        ev.put((t, _FILE_MAP, -1, task, pod.vol, 0, pod.vol_bytes, 0))
        mapped.append(pod.vol)
    else:
        ev.put((t, _FILE_READ, -1, task, pod.vol, -1, -1, 0))


def _reaccess(ev: _Events, rng: np.random.Generator, pod: _Pod, task: int, n: int, lo: int, hi: int) -> None:
    """Re-read random ranges of the pod's image files (refaults after reclaim charge the reader)."""
    times = np.sort(np.array(_integers(rng, lo, hi, n), dtype=np.int64))
    which = np.array(_integers(rng, 0, len(pod.files), n), dtype=np.int64)
    frac = rng.random(n)
    pages = pod.file_pages[which]
    first = (frac * pages).astype(np.int64)  # int(f * pages) for f in [0, 1): truncation as int() does
    length = np.maximum(1, np.minimum(pages - first, 256))  # a read() of up to 1 MiB
    ev.block(times, _FILE_READ, -1, task, pod.file_obj[which], first * 4096, length * 4096, 0)


def _write_log(ev: _Events, rng: np.random.Generator, task: int, role: _Role, n: int, lo: int, hi: int) -> None:
    """Append the container's log in ``n`` writes (page cache charged to the writer)."""
    n = max(1, min(n, role.log_bytes // 4096))
    chunk = role.log_bytes // n
    times = np.sort(np.array(_integers(rng, lo, hi, n), dtype=np.int64))
    ev.block(times, _FILE_WRITE, -1, task, role.log, np.arange(n, dtype=np.int64) * chunk, chunk, 0)


# ---------------------------------------------------------------- columns


class _Events:
    """One machine's events packed in an int64 buffer, 8 per event, in emission order; names interned.

    ``put((time, op, cgroup, task, object, offset, bytes, flags))`` appends one event (-1 = null);
    ``block`` appends many at once from numpy columns. Events at or past the horizon are dropped
    when the table is built, so the emitting code never tests for them.
    """

    def __init__(self, horizon_us: int) -> None:
        self.horizon = horizon_us
        self.buf = array("q")
        self.put = self.buf.extend
        self.names: list[str] = []

    def name(self, text: str) -> int:
        """Intern a name (each entity is named once, so no lookup table is needed)."""
        self.names.append(text)
        return len(self.names) - 1

    def block(self, t: np.ndarray, op: int, cg: int, task: int, obj: np.ndarray | int,
              offset: np.ndarray | int, nbytes: np.ndarray | int, flags: int) -> None:
        """Append ``t.size`` events at once: per-event arrays or one value for all."""
        rows = np.empty((t.size, 8), dtype=np.int64)
        for c, v in enumerate((t, op, cg, task, obj, offset, nbytes, flags)):
            rows[:, c] = v
        self.buf.frombytes(rows.tobytes())

    def table(self, machine: str) -> pa.Table:
        """The events sorted by time (ties keep emission order) as a TRACE_SCHEMA table."""
        return events_table(np.frombuffer(self.buf, dtype=np.int64), self.names, self.horizon, machine)


# the name tables every machine's table shares: built once (a cell generates thousands of machines)
_OP_NAMES = pa.array([o.name.lower() for o in Op], type=pa.string())
_FLAG_NAMES = pa.array([format_flags(b) or None for b in range(64)], type=pa.string())  # the generator's flags < 64


def events_table(buf: np.ndarray, names: list[str], horizon: int, machine: str) -> pa.Table:
    """Packed events (int64, 8 per event in emission order, -1 = null) -> a TRACE_SCHEMA table.

    Events at or past ``horizon`` are dropped; the rest are sorted by time, ties in emission
    order. Name columns index ``names``; op codes index ``Op``; flags are bits below 64.
    """
    ev = buf.reshape(-1, 8)
    ev = ev[ev[:, 0] < horizon]
    ev = ev[np.argsort(ev[:, 0], kind="stable")]
    t, op, cg, task, obj, off, nb, fl = (ev[:, c] for c in range(8))
    name_array = pa.array(names, type=pa.string())
    arrays = [
        pa.array(np.ascontiguousarray(t)),
        pa.repeat(machine, t.size),
        _OP_NAMES.take(op.astype(np.int32)),
        _decode(cg, name_array), _decode(task, name_array), _decode(obj, name_array),
        _nullable(off), _nullable(nb),
        _FLAG_NAMES.take(fl.astype(np.int32)),
    ]
    return pa.Table.from_arrays(arrays, schema=TRACE_SCHEMA)


def _decode(idx: np.ndarray, names: pa.Array) -> pa.Array:
    # names[idx], null where idx < 0
    return names.take(pa.array(idx.astype(np.int32), mask=idx < 0))


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values), mask=values < 0)
