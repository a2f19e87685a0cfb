"""Random container lifecycles that reach the states that matter, and what holds each zombie, re-derived.

In: a seed. Out: ``lifecycle_trace(seed)`` — a machine config and a valid native
trace of pods and jobs that come and go on a small machine: jobs read shared files
and libraries first, write tmpfs volumes their neighbours map, pin, mlock, open
sockets that outlive them, dirty files, allocate anon past their limits, get
reclaimed into swap, move tasks out, and are removed while something still holds
them. The weights are set so that a few dozen traces reach zombies, swap-held
zombies, memcg and machine-wide OOM kills, kswapd and policy work
(``tests/test_lifecycle_properties.py`` measures and asserts that).

``machine_state(m)`` is the one place that reads a machine's state beyond its
public views (``summary``, ``stat``, ``counters``); ``holds(state)`` recomputes,
from the page runs, kmem objects, sockets, writeback pins and the tree alone,
what holds every removed memcg — independently of ``core.invariants`` and of the
MemcgTable's own counters, except for the OOM reaper's holds, which are only
visible there (``noom``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from core.memcg import State
from core.ops import Flag, Op
from core.pages import Kind, St

MiB = 1 << 20
SEC = 1_000_000
KERNELS = ("5.10", "6.1", "6.12", "6.18")


@dataclass
class _Job:
    path: str
    pod: str  # parent cgroup path ("/" for a job at the top)
    tasks: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)  # private files and volumes
    limited: bool = False


class _Gen:
    """Builds one trace; keeps just enough bookkeeping that every row is valid."""

    def __init__(self, rng: random.Random, swap: bool) -> None:
        self.rng, self.swap = rng, swap
        self.rows: list[tuple] = []
        self.t = 0
        self.n = 0
        self.jobs: list[_Job] = []
        self.pods: dict[str, int] = {}  # pod path -> live jobs in it
        self.pod_tasks: dict[str, list[str]] = {}  # tasks moved into a pod (they exit before its rmdir)
        self.files: list[str] = []  # shared disk files, existing
        self.vols: list[str] = []  # shared tmpfs volumes, existing
        self.regions: dict[str, tuple[str, bool]] = {}  # anon region -> (task, may have failed)
        self.maps: dict[str, set[str]] = {}  # task -> objects it maps
        self.pins: dict[str, list[tuple]] = {}  # task -> (object, offset, bytes, flags)
        self.socks: list[str] = []
        self.slabs: list[str] = []

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def op(self, op: Op, cgroup=None, task=None, obj=None, offset=None, nbytes=None, flags=0) -> None:
        self.t += self.rng.choice((1_000, 50_000, 300_000, 1 * SEC, 2 * SEC))
        self.rows.append((self.t, op, cgroup, task, obj, offset, nbytes, int(flags)))

    # -- shared objects -------------------------------------------------------------
    def new_file(self) -> None:
        f = self.name("lib")
        self.op(Op.FILE_CREATE, obj=f, nbytes=self.rng.randint(1, 12) * MiB)
        self.files.append(f)

    def new_vol(self) -> None:
        v = self.name("vol")
        self.op(Op.FILE_CREATE, obj=v, flags=Flag.SHMEM)
        self.vols.append(v)

    # -- jobs -----------------------------------------------------------------------
    def start_job(self) -> None:
        rng = self.rng
        pods = [p for p in self.pods]
        if pods and rng.random() < 0.6:
            pod = rng.choice(pods)
        elif rng.random() < 0.5:
            pod = self.name("/pod")
            self.op(Op.MKDIR, cgroup=pod)
            self.pods[pod] = 0
            self.pod_tasks[pod] = []
        else:
            pod = "/"
        job = _Job(f"{pod.rstrip('/')}/{self.name('c')}", pod)
        self.op(Op.MKDIR, cgroup=job.path)
        if pod != "/":
            self.pods[pod] += 1
        if rng.random() < 0.35:
            job.limited = True
            flag = Flag.MAX if rng.random() < 0.7 else Flag.HIGH
            self.op(Op.SET_LIMIT, cgroup=job.path, nbytes=rng.randint(4, 20) * MiB, flags=flag)
        for _ in range(1 if rng.random() < 0.7 else 2):
            self.start_task(job)
        self.jobs.append(job)

    def start_task(self, job: _Job) -> None:
        task = self.name("t")
        self.op(Op.TASK_START, cgroup=job.path, task=task)
        job.tasks.append(task)
        self.maps[task], self.pins[task] = set(), []

    def exit_task(self, task: str) -> None:
        self.op(Op.TASK_EXIT, task=task)
        self.maps.pop(task, None)
        self.pins.pop(task, None)
        for r in [r for r, (tk, _) in self.regions.items() if tk == task]:
            del self.regions[r]

    def end_job(self, job: _Job) -> None:
        rng = self.rng
        for task in job.tasks:
            self.exit_task(task)
        self.op(Op.RMDIR, cgroup=job.path)
        self.jobs.remove(job)
        for obj in job.own:
            if rng.random() < 0.6:  # the rest (logs, caches) outlive the job
                self.op(Op.FILE_DELETE, obj=obj)
        if job.pod != "/":
            self.pods[job.pod] -= 1
            if self.pods[job.pod] == 0 and rng.random() < 0.6:
                for task in self.pod_tasks.pop(job.pod):
                    self.exit_task(task)
                self.op(Op.RMDIR, cgroup=job.pod)
                del self.pods[job.pod]

    # -- what a job does -------------------------------------------------------------
    def act(self, job: _Job) -> None:
        rng = self.rng
        task = rng.choice(job.tasks)
        what = rng.choices(
            ("read", "own_file", "own_vol", "write_vol", "map", "unmap", "anon", "anon_big", "anon_free", "pin", "unpin",
             "sock", "kmem", "reclaim", "move", "task", "swap_and_leave"),
            (8, 3, 2, 4, 4, 1, 5, 2, 1, 2, 1, 1, 2, 3, 2, 2, 1))[0]
        if what == "read" and self.files:
            f = rng.choice(self.files)
            if rng.random() < 0.5:
                self.op(Op.FILE_READ, task=task, obj=f)
            else:
                self.op(Op.FILE_READ, task=task, obj=f, offset=rng.randrange(8) * MiB, nbytes=rng.randint(1, 4) * MiB,
                        flags=Flag.MAYFAIL if rng.random() < 0.1 else 0)
        elif what == "own_file":
            f = self.name("log")
            self.op(Op.FILE_CREATE, obj=f)
            self.op(Op.FILE_WRITE, task=task, obj=f, nbytes=rng.randint(1, 64) * 64 * 1024)  # dirty page cache
            job.own.append(f)
        elif what == "own_vol":  # a private tmpfs file (a job's /tmp or an emptyDir), often kept after it
            v = self.name("tmp")
            self.op(Op.FILE_CREATE, obj=v, flags=Flag.SHMEM)
            self.op(Op.FILE_WRITE, task=task, obj=v, nbytes=rng.randint(1, 4) * MiB)
            job.own.append(v)
        elif what == "write_vol":
            if not self.vols or rng.random() < 0.3:
                self.new_vol()
            v = rng.choice(self.vols)
            self.op(Op.FILE_WRITE, task=task, obj=v, offset=rng.randrange(4) * MiB, nbytes=rng.randint(1, 6) * MiB)
        elif what == "map" and (self.files or self.vols):
            obj = rng.choice(self.files + self.vols)
            self.op(Op.FILE_MAP, task=task, obj=obj)
            self.maps[task].add(obj)
        elif what == "unmap" and self.maps[task]:
            obj = rng.choice(sorted(self.maps[task]))
            self.op(Op.FILE_UNMAP, task=task, obj=obj)
            self.maps[task].discard(obj)
        elif what in ("anon", "anon_big"):
            mine = [r for r, (tk, _) in self.regions.items() if tk == task]
            region = rng.choice(mine) if mine and rng.random() < 0.5 else self.name("heap")
            size = rng.randint(1, 8) * MiB if what == "anon" else rng.randint(16, 40) * MiB
            mayfail = rng.random() < 0.1
            self.op(Op.ANON_ALLOC, task=task, obj=region, nbytes=size, flags=Flag.MAYFAIL if mayfail else 0)
            failed = self.regions.get(region, (task, False))[1]
            self.regions[region] = (task, failed or mayfail)
        elif what == "anon_free":
            mine = [r for r, (tk, failed) in self.regions.items() if tk == task and not failed]
            if mine:
                region = rng.choice(mine)
                self.op(Op.ANON_FREE, task=task, obj=region)
                del self.regions[region]
        elif what == "pin" and (self.files or self.vols):
            obj = rng.choice(self.files + self.vols)
            pin = (obj, 0, rng.randint(1, 4) * MiB, Flag.MLOCK if rng.random() < 0.3 else 0)
            self.op(Op.PIN, task=task, obj=obj, offset=pin[1], nbytes=pin[2], flags=pin[3])
            self.pins[task].append(pin)
        elif what == "unpin" and self.pins[task]:
            pin = self.pins[task].pop(rng.randrange(len(self.pins[task])))
            self.op(Op.UNPIN, task=task, obj=pin[0], offset=pin[1], nbytes=pin[2], flags=pin[3])
        elif what == "sock":
            s = self.name("sock")
            self.op(Op.SOCK_OPEN, task=task, obj=s, nbytes=rng.randint(1, 32) * 4096)
            self.socks.append(s)
        elif what == "kmem":
            k = self.name("k")
            slab = rng.random() < 0.5
            self.op(Op.KMEM_ALLOC, task=task, obj=k, nbytes=rng.randint(1, 64) * 4096,
                    flags=Flag.SLAB if slab else Flag.PAGE)
            if slab:
                self.slabs.append(k)
        elif what == "reclaim":  # proactive reclaim: with swap, tmpfs and anon go to swap
            self.op(Op.RECLAIM, cgroup=job.path, nbytes=rng.randint(1, 16) * MiB)
        elif what == "swap_and_leave" and len(job.tasks) > 1 and job.pod != "/":
            # a helper's heap goes to swap, then the helper moves out: its swap keeps the job's ID
            region = self.name("heap")
            self.op(Op.ANON_ALLOC, task=task, obj=region, nbytes=rng.randint(2, 8) * MiB)
            self.regions[region] = (task, False)
            self.op(Op.RECLAIM, cgroup=job.path, nbytes=16 * MiB)
            job.tasks.remove(task)
            self.op(Op.TASK_MOVE, cgroup=job.pod, task=task)
            self.pod_tasks[job.pod].append(task)
        elif what == "move" and len(job.tasks) > 1 and job.pod != "/":
            job.tasks.remove(task)  # its charges stay with the job (cgroup v2)
            self.op(Op.TASK_MOVE, cgroup=job.pod, task=task)
            self.pod_tasks[job.pod].append(task)
        elif what == "task" and len(job.tasks) < 3:
            self.start_task(job)

    def machine_act(self) -> None:
        rng = self.rng
        what = rng.choices(("drop", "sync", "reclaim_root", "delete", "close", "kfree", "swapcycle"),
                           (1, 1, 2, 2, 2, 1, 0.3 if self.swap else 0))[0]
        if what == "drop":
            self.op(Op.DROP_CACHES)
        elif what == "sync":
            self.op(Op.SYNC)
        elif what == "reclaim_root":
            self.op(Op.RECLAIM, cgroup="/", nbytes=rng.randint(1, 32) * MiB)
        elif what == "delete" and (self.files or self.vols):
            pool = self.files if self.files and (not self.vols or rng.random() < 0.5) else self.vols
            obj = pool.pop(rng.randrange(len(pool)))
            self.op(Op.FILE_DELETE, obj=obj)
            (self.new_file if pool is self.files else self.new_vol)()
        elif what == "close" and self.socks:
            self.op(Op.SOCK_CLOSE, obj=self.socks.pop(rng.randrange(len(self.socks))))
        elif what == "kfree" and self.slabs:
            self.op(Op.KMEM_FREE, obj=self.slabs.pop(rng.randrange(len(self.slabs))))
        elif what == "swapcycle":
            self.op(Op.SWAP_OFF)
            self.op(Op.SWAP_ON, nbytes=rng.choice((16, 64)) * MiB)


def lifecycle_trace(seed: int) -> tuple[dict, list[tuple]]:
    """(MachineConfig keyword arguments, trace rows) of lifecycle trace number ``seed``."""
    rng = random.Random(f"lifecycle:{seed}")
    swap = rng.random() < 0.55
    cfg = {"mem_bytes": rng.choice((32, 48, 64, 96)) * MiB, "swap_bytes": rng.choice((16, 64)) * MiB if swap else 0,
           "kernel": rng.choice(KERNELS), "lru_gen": rng.random() < 0.3, "mapped_hot": rng.random() < 0.7,
           "sample_interval_us": 5 * SEC}
    g = _Gen(rng, swap)
    for _ in range(rng.randint(1, 3)):
        g.new_file()
    g.new_vol()
    for _ in range(rng.randint(40, 160)):
        kind = rng.choices(("start", "end", "act", "machine", "gap"),
                           (3 if len(g.jobs) < 2 else (1 if len(g.jobs) < 6 else 0),
                            1.5 if len(g.jobs) >= 2 else 0.2, 7 if g.jobs else 0, 1, 1))[0]
        if kind == "start":
            g.start_job()
        elif kind == "end" and g.jobs:
            g.end_job(rng.choice(g.jobs))
        elif kind == "act" and g.jobs:
            g.act(rng.choice(g.jobs))
        elif kind == "machine":
            g.machine_act()
        elif kind == "gap":  # let workers run, dirty pages expire, the OOM reaper finish
            g.t += rng.choice((5, 20, 70)) * SEC
    if rng.random() < 0.5:
        for job in list(g.jobs):
            g.end_job(job)
    return cfg, g.rows


# ------------------------------------------------------------------ the machine's state, read in one place
def machine_state(m) -> dict:
    """A plain copy of the state the independent checks need (the one reader of machine internals)."""
    mem, R = m.mem, m.runs
    n = len(mem.path)
    live_runs = np.flatnonzero(R.view("state") != St.FREE)
    slot_cache: dict[int, int] = {}
    for entries in m.slot_cache.values():  # freed swap slots waiting in a CPU's cache keep their record
        for x, k in entries:
            slot_cache[x] = slot_cache.get(x, 0) + k
    return {
        "kernel": m.cfg.kernel,
        "path": list(mem.path), "state": np.asarray(mem.view("state"))[:n].copy(),
        "parent": np.asarray(mem.view("parent"))[:n].copy(), "hidden": set(mem.hidden),
        "noom": np.asarray(mem.view("noom"))[:n].copy(),
        "run_state": R.view("state")[live_runs].copy(), "run_memcg": R.view("memcg")[live_runs].copy(),
        "run_kind": R.view("kind")[live_runs].copy(), "run_pages": R.view("npages")[live_runs].copy(),
        "slot_cache": slot_cache,
        "kmem": [(m.k_memcg[k], m.k_slab[k], m.k_pages[k]) for k in sorted(m.kmem_by_name.values())],
        "socks": [x for x, _ in m.sock_by_name.values() if x >= 0],
        "wb": list(m.wb_pinned.values()),
        "tasks": [m.t_cg[t] for t in range(len(m.t_alive)) if m.t_alive[t]],
    }


def never_made(m, row: tuple) -> bool:
    """Does ``row`` free a kmem object or close a socket that its (OOM-killed) task never made?

    The model ignores a killed task's kmem_alloc and sock_open without recording the name, so
    the trace's later kmem_free / sock_close would fail the replay (a known model gap, see
    ``tests/test_found_by_lifecycles.py``); the property tests skip such rows.
    """
    if row[1] == Op.KMEM_FREE:
        return row[4] not in m.kmem_by_name and row[4] not in m.failed_kmem
    if row[1] == Op.SOCK_CLOSE:
        return row[4] not in m.sock_by_name
    return False


def _kernel_at_least(kernel: str, major: int, minor: int) -> bool:
    a, b = (int(x) for x in kernel.split(".")[:2])
    return (a, b) >= (major, minor)


def holds(s: dict) -> dict[int, set[str]]:
    """What references each memcg, recomputed from runs, kmem, sockets, writeback pins, tasks and the tree."""
    out: dict[int, set[str]] = {}

    def add(x: int, why: str) -> None:
        out.setdefault(int(x), set()).add(why)

    kinds = {int(Kind.ANON): "anon", int(Kind.FILE): "file", int(Kind.SHMEM): "shmem"}
    res = s["run_state"] == St.RESIDENT
    for x, k in set(zip(s["run_memcg"][res].tolist(), s["run_kind"][res].tolist())):
        add(x, kinds[k])
    for x in set(s["run_memcg"][s["run_state"] == St.SWAPPED].tolist()):
        add(x, "swap")
    for x in s["slot_cache"]:
        add(x, "swap")
    slab_moves, page_moves = _kernel_at_least(s["kernel"], 5, 9), _kernel_at_least(s["kernel"], 5, 13)
    for x, slab, _ in s["kmem"]:  # slab is reparented at offline since 5.9, kmem pages since 5.13
        add(x, "kmem_charge")
        if not (slab_moves if slab else page_moves):
            add(x, "kmem")
    for x in s["socks"]:
        add(x, "sock")
    for x in s["wb"]:
        add(x, "cgwb")
    for x in s["tasks"]:
        add(x, "task")
    for x in np.flatnonzero(s["noom"] > 0).tolist():
        add(x, "oom")
    for x, st in enumerate(s["state"].tolist()):
        if st != State.FREED and s["parent"][x] >= 0:
            add(s["parent"][x], "child")
    return out


def lifecycle_errors(s: dict) -> tuple[list[str], dict[int, set[str]]]:
    """Violations of: a zombie is held by something; nothing references a freed memcg; tasks live online.

    Also returns the holds of each dying memcg (for coverage).
    """
    errs, h = [], holds(s)
    state = s["state"]
    dying = {}
    for x, st in enumerate(state.tolist()):
        why = h.get(x, set()) - {"kmem_charge"}  # reparented kmem is on the parent, never still here
        if st == State.DYING:
            if not why:
                errs.append(f"zombie {s['path'][x]}#{x} is held by nothing")
            if "kmem_charge" in h.get(x, ()) and "kmem" not in why:
                errs.append(f"zombie {s['path'][x]}#{x} still charged kmem this kernel reparents at offline")
            dying[x] = why
        elif st == State.FREED and h.get(x):
            errs.append(f"freed memcg {s['path'][x]}#{x} still referenced by {sorted(h[x])}")
    for x in s["tasks"]:
        if state[x] != State.ONLINE:
            errs.append(f"a live task is in {s['path'][x]}#{x}, which is not online")
    return errs, dying
