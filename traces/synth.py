"""One machine's synthetic events, pure Python: the reference the compiled build mirrors.

In: ``SynthParams`` and the machine's ``numpy.random.Generator`` (``default_rng([seed, index])``).
Out: the events packed in an int64 buffer, 8 values per event in emission order (``time_us, op,
cgroup, task, object, offset, bytes, flags``; -1 = null; names as indices into a list of names),
which ``traces.generate.events_table`` sorts by time and turns into a table. What the events mean
is in ``traces.generate``'s docstring.

The draws decide the events and their order, so every draw here is made in a fixed sequence;
``traces/_synth.pyx`` (compiled, optional) makes the same draws through numpy's C API on the same
bit generator and must produce the same buffer (``tests/test_generate.py`` compares them). An edit
here or there makes ``traces.generate`` run this module until the compiled one is rebuilt.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.ops import Flag, Op

if TYPE_CHECKING:
    from traces.generate import SynthParams

SEC = 1_000_000  #: microseconds per second
_MAX_ACCESSES = 200  # per task: keeps a days-long task from dominating a machine's events
_FEW = 16  # re-reads or log writes made row by row in Python below this, as numpy blocks above


def machine_start(p: SynthParams, rng: np.random.Generator) -> tuple[_Events, _SharedFiles, list[int], list[int]]:
    """The machine's setup events (swap, shared files) and its pods' lifetimes [start, end] in us.

    Draws: the shared files' sizes, the pod count, the arrival times, the lifetimes.
    """
    ev = _Events(int(p.duration_s * SEC))
    files = _machine_setup(ev, rng, p)
    arrivals = np.sort(rng.uniform(0.0, p.duration_s, rng.poisson(p.pod_arrival_per_s * p.duration_s)))
    lifetimes = np.maximum(rng.lognormal(math.log(p.pod_lifetime_median_s), p.pod_lifetime_sigma,
                                         arrivals.size), 1.0)
    starts = [int(t0 * SEC) + 1 for t0 in arrivals.tolist()]  # t=0 belongs to the machine setup
    ends = [t0 + int(life * SEC) for t0, life in zip(starts, lifetimes.tolist())]
    return ev, files, starts, ends


def pods(ev: _Events, rng: np.random.Generator, p: SynthParams, files: _SharedFiles, starts: list[int],
         ends: list[int]) -> None:
    """Every pod's events, pod ``n`` living [starts[n], ends[n]] microseconds, appended to ``ev``."""
    for n, (t0, end) in enumerate(zip(starts, ends)):
        _pod(ev, rng, p, files, n, t0, end)


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
    first = len(ev.names)
    ev.names.extend(_layer_names(p.shared_files))
    ids = list(range(first, first + p.shared_files))
    ev.block(np.zeros(len(ids), dtype=np.int64), _FILE_CREATE, -1, -1, np.array(ids, dtype=np.int64), -1,
             np.array(sizes, dtype=np.int64), 0)
    weights, cdf = _zipf(p.shared_files, p.shared_zipf_s)
    return _SharedFiles(ids, sizes, weights, cdf)


@functools.lru_cache(maxsize=16)
def _layer_names(n: int) -> tuple[str, ...]:
    # every machine names its shared files alike: made once per count
    return tuple(f"/layers/layer-{i:04d}" for i in range(n))


@functools.lru_cache(maxsize=16)
def _zipf(n: int, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Choice weights 1/(i+1)**s normalized, and their cdf; the same for every machine, so made once (read-only)."""
    weights = 1.0 / np.arange(1, n + 1) ** s
    weights = weights / weights.sum()
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    weights.flags.writeable = cdf.flags.writeable = False
    return weights, cdf


def _lognormal_bytes(rng: np.random.Generator, median: int, sigma: float, n: int) -> list[int]:
    """``n`` sizes, whole 4 KiB pages (rounded half to even, as ``np.round``), at least one page."""
    raw = rng.lognormal(math.log(max(median, 4096)), sigma, n)
    if n > 8:  # a machine's shared files: np.rint rounds half to even as round() does, exact below 2**50 pages
        pages = raw / 4096
        if np.all(pages < 2.0**50):
            return (np.maximum(np.rint(pages), 1.0).astype(np.int64) * 4096).tolist()
    return [max(round(x / 4096), 1) * 4096 for x in raw.tolist()]


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
    return choose_again(rng, shared.weights, new, k)


def choose_again(rng: np.random.Generator, weights: np.ndarray, new: np.ndarray, k: int) -> list[int]:
    """The rest of ``_choose`` once the first round's files ``new`` (int64) repeat: numpy's later rounds.

    The compiled generator has the same rounds in C (``_Gen.choose_again``).
    """
    p = weights.copy()
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
    file_pages_list: list[int] = dataclasses.field(default_factory=list)  # the same as ints, for a few re-reads


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
        pod.file_pages_list = [f[1] // 4096 for f in pod.files]
        pod.file_pages = np.array(pod.file_pages_list, dtype=np.int64)


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
    times = sorted(_integers(rng, lo, hi, n))
    which = _integers(rng, 0, len(pod.files), n)
    frac = rng.random(n)
    if n <= _FEW:  # a few rows: Python ints cost less than numpy's calls, and compute the same
        rows: list[int] = []
        for t, w, f in zip(times, which, frac.tolist()):
            pages = pod.file_pages_list[w]
            first = int(f * pages)  # as numpy's float64 product truncated by astype
            rows += (t, _FILE_READ, -1, task, pod.files[w][0], first * 4096, max(1, min(pages - first, 256)) * 4096, 0)
        ev.buf.extend(rows)
        return
    idx = np.array(which, dtype=np.int64)
    pages_a = pod.file_pages[idx]
    first_a = (frac * pages_a).astype(np.int64)  # int(f * pages) for f in [0, 1): truncation as int() does
    length = np.maximum(1, np.minimum(pages_a - first_a, 256))  # a read() of up to 1 MiB
    ev.block(np.array(times, dtype=np.int64), _FILE_READ, -1, task, pod.file_obj[idx], first_a * 4096,
             length * 4096, 0)


def _write_log(ev: _Events, rng: np.random.Generator, task: int, role: _Role, n: int, lo: int, hi: int) -> None:
    """Append the container's log in ``n`` writes (page cache charged to the writer)."""
    n = max(1, min(n, role.log_bytes // 4096))
    chunk = role.log_bytes // n
    times = sorted(_integers(rng, lo, hi, n))
    if n <= _FEW:
        rows: list[int] = []
        for i, t in enumerate(times):
            rows += (t, _FILE_WRITE, -1, task, role.log, i * chunk, chunk, 0)
        ev.buf.extend(rows)
        return
    ev.block(np.array(times, dtype=np.int64), _FILE_WRITE, -1, task, role.log,
             np.arange(n, dtype=np.int64) * chunk, chunk, 0)


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
