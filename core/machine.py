"""One simulated machine: replays its events through the memcg model.

In: ``EventBatch``es of this machine (``apply``) and target times
(``advance_to``). Out: metric samples at a fixed simulated interval
(``take_samples``), a per-cgroup view like cgroupfs (``stat``), a per-job
table of released cgroups and end-of-run totals (``summary``).

The rules implemented are KERNEL-MODEL.md's "Modeling implications"; each
handler cites the kernel function it stands for. Runtime outcomes a real
kernel would report (ENOSPC, EBUSY, OOM kills, failed charges, ops of killed
tasks) are counted in ``counters``; a trace that contradicts itself raises
``TraceError`` naming file, row and field.

The machine owns its clock, its event queue (policy ticks) with a
per-instance sequence counter, and its RNG, so two machines in one process
never share ordering state and a pickled machine resumes identically.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import reclaim
from core.charge import ChargeMixin
from core.policy_ops import PolicyOpsMixin
from core.swapslots import SwapSlotsMixin
from core.writeback import WritebackMixin
from core.errors import ConfigError, TraceError
from core.events import NULL, EventBatch
from core.kernel import Kernel, memcg_bytes
from core.memcg import ROOT, Errno, MemcgTable, State, normalize_path
from core.metrics import COUNTERS, Sampler
from core.ops import Flag, Op
from core.pages import PAGE, Kind, RunTable, pages_of

if TYPE_CHECKING:
    from core.policy import Policy

_EMPTY_SET: frozenset = frozenset()

# plain ints: IntFlag's own ``&`` is a Python-level call on the per-event path
_MAX, _HIGH, _MAYFAIL = int(Flag.MAX), int(Flag.HIGH), int(Flag.MAYFAIL)
_SHMEM, _MLOCK, _PAGE, _INODES = int(Flag.SHMEM), int(Flag.MLOCK), int(Flag.PAGE), int(Flag.INODES)
# and for the same reason plain ints for the kinds (an IntEnum member lookup costs ~160 ns)
_ANON, _FILE = int(Kind.ANON), int(Kind.FILE)


@dataclass
class MachineConfig:
    """Parameters of one simulated machine.

    Sizes are bytes; times are microseconds. ``kernel`` selects version-dependent
    behaviour and the cost model (``core.kernel``).
    """

    mem_bytes: int = 64 << 30
    swap_bytes: int = 0
    cpus: int = 64
    numa_nodes: int = 1
    kernel: str = "6.12"
    sample_interval_us: int = 60_000_000
    id_pool_size: int = 65535
    watermark_low: float = 0.01  # kswapd wakes when free memory falls below this fraction
    watermark_high: float = 0.015  # ... and reclaims until free memory is back above this one
    lru_gen: bool = False  # MGLRU: a dying memcg loses about half per memcg-reclaim visit (core/reclaim.py)
    mapped_hot: bool = True  # mapped page cache/shmem of live mappers counts as referenced
    shrinkers: int = 0  # memcg-aware shrinkers (shrinker_info in the cost model)
    age_quantum_us: int = 30_000_000  # LRU age resolution: accesses within one quantum are equally young
    dirty_expire_us: int = 30_000_000  # vm.dirty_expire_centisecs: dirty page cache older than this is written back
    swap_slot_cache: str = "auto"  # per-CPU freed-slot cache (mm/swap_slots.c): auto (< v6.15) | on | off

    def validate(self) -> None:
        """Raise ConfigError for values the model cannot run with."""
        if self.mem_bytes <= 0 or self.swap_bytes < 0:
            raise ConfigError("mem_bytes must be > 0 and swap_bytes >= 0")
        if self.sample_interval_us <= 0:
            raise ConfigError("sample_interval_us must be > 0")
        if self.age_quantum_us <= 0 or self.dirty_expire_us < 0:
            raise ConfigError("age_quantum_us must be > 0 and dirty_expire_us >= 0")
        if self.swap_slot_cache not in ("auto", "on", "off"):
            raise ConfigError(f"swap_slot_cache must be auto, on or off, not {self.swap_slot_cache!r}")
        if not 2 <= self.id_pool_size <= 65535:
            raise ConfigError("id_pool_size must be in 2 .. 65535 (MEM_CGROUP_ID_MAX)")
        if not 0 <= self.watermark_low <= self.watermark_high < 1:
            raise ConfigError("need 0 <= watermark_low <= watermark_high < 1")
        Kernel.parse(self.kernel)


class Machine(ChargeMixin, PolicyOpsMixin, WritebackMixin, SwapSlotsMixin):
    """The memcg hierarchy, tasks, objects and page runs of one host, driven by its events."""

    def __init__(self, cfg: MachineConfig, policy: "Policy | None" = None, machine_id: str = "m",
                 seed: int = 0) -> None:
        from core.policy import make_policy

        cfg.validate()
        self.cfg = cfg
        self.kernel = Kernel.parse(cfg.kernel)
        self.machine_id = machine_id
        self.rng = random.Random(f"{seed}:{machine_id}")
        self.now_us = 0
        self.mem = MemcgTable(cfg.id_pool_size)
        self.runs = RunTable()
        self.mem_total = cfg.mem_bytes // 4096
        self.swap_total = cfg.swap_bytes // 4096
        self.swap_used = 0
        self.resident = 0
        self.kmem_total = 0
        self.reserved = 0
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.percpu_bytes, self.memcg_cost = memcg_bytes(self.kernel, cfg.cpus, cfg.numa_nodes, cfg.shrinkers)
        self._init_tasks_objects()
        self._wb_init()
        self._slots_init()
        self._queue: list[tuple[int, int, int, str, tuple]] = []
        self._seq = 0
        self._release_q: list[int] = []
        self.reclaim_pos: dict[int, int] = {}  # subtree top -> memcg where the last partial reclaim walk stopped
        self.sampler = Sampler(self)
        self.policy = policy if policy is not None else make_policy("none")
        self.policy.attach(self)

    def _init_tasks_objects(self) -> None:
        # tasks: parallel lists by task slot; a slot is reused once its task has exited and the
        # trace's task_exit has been seen (state stays bounded by live tasks). ``t_seq`` numbers
        # tasks in start order, for choices that must not depend on slot reuse (OOM ties).
        self.t_name: list[str] = []
        self.t_seq: list[int] = []
        self._free_tasks: list[int] = []
        self._tasks_started = 0
        self.t_cg: list[int] = []
        self.t_alive: list[bool] = []
        self.t_anon: list[int] = []
        self.t_swap: list[int] = []
        self.t_kpages: list[int] = []
        self.t_regions: list[set[int]] = []
        self.t_maps: list[list[tuple[int, int, int]]] = []
        self.t_pins: list[list[tuple]] = []  # (obj, lo, hi, mlock, (offset, bytes) as traced)
        self.t_kmem: list[set[int]] = []
        self.task_by_name: dict[str, int] = {}
        self.t_killed: set[int] = set()
        self.dropped_pins: set[tuple] = set()  # (task, obj, mlock, key) of pins ended by anon_free
        self.failed_cgroups: set[str] = set()
        # objects: files, tmpfs objects and anon regions, slots reused after free
        self.o_name: list[str] = []
        self.o_kind: list[int] = []
        self.o_size: list[int] = []
        self.o_owner: list[int] = []
        self.o_alive: list[bool] = []
        self.o_deleted: list[bool] = []
        self.o_maps: list[list[tuple[int, int, int]]] = []
        self.o_pins: list[int] = []
        self.obj_by_name: dict[str, int] = {}
        self._free_objs: list[int] = []
        # kmem objects
        self.k_memcg: list[int] = []
        self.k_pages: list[int] = []
        self.k_slab: list[bool] = []
        self.k_task: list[int] = []
        self.k_name: list[str] = []
        self.kmem_by_name: dict[str, int] = {}
        self.failed_kmem: set[str] = set()  # kmem objects whose charge was refused
        self.kmem_of: dict[int, set[int]] = {}
        self._free_kmem: list[int] = []
        # open sockets: name -> (sk_memcg or -1 when not associated, buffer pages charged)
        self.sock_by_name: dict[str, tuple[int, int]] = {}

    # ================================================================== time and queue
    def lru_age(self) -> int:
        """The LRU age stamped on pages touched now: the number of ``age_quantum_us`` quanta elapsed.

        The kernel orders pages only coarsely (active/inactive lists; at most
        MAX_NR_GENS = 4 MGLRU generations), so pages touched within one quantum are
        treated as equally young — which also lets neighbouring runs merge.
        """
        return self.now_us // self.cfg.age_quantum_us

    def schedule(self, t_us: int, target: str, method: str, *args: Any) -> None:
        """Queue work at simulated ``t_us``: ``policy.method(machine, *args)`` or ``machine.method(*args)``."""
        self._seq += 1
        heapq.heappush(self._queue, (int(t_us), self._seq, 0, f"{target}.{method}", args))

    def advance_to(self, t_us: int) -> None:
        """Run queued work and take samples due at or before ``t_us``; idempotent for t <= now."""
        t_us = int(t_us)
        sampler = self.sampler
        while True:
            qt = self._queue[0][0] if self._queue else None
            st = sampler.next_us
            if st <= t_us and (qt is None or st <= qt):
                self.now_us = max(self.now_us, st)
                sampler.sample(st)
            elif qt is not None and qt <= t_us:
                when, _, _, name, args = heapq.heappop(self._queue)
                self.now_us = max(self.now_us, when)
                target, method = name.split(".", 1)
                if target == "policy":
                    getattr(self.policy, method)(self, *args)  # policies keep no machine reference
                else:
                    getattr(self, method)(*args)
                self.reap()
            else:
                break
        self.now_us = max(self.now_us, t_us)

    def take_samples(self) -> dict:
        """Metric samples taken since the last call, as columns (``core.metrics.SAMPLE_COLUMNS``)."""
        return self.sampler.take()

    # ================================================================== events
    def apply(self, batch: EventBatch) -> None:
        """Replay one batch of this machine's events in order."""
        if len(batch) == 0:
            return
        times = batch.time_us.tolist()
        ops = batch.op.tolist()
        cg = batch.cgroup.tolist()
        tk = batch.task.tolist()
        ob = batch.obj.tolist()
        off = batch.offset.tolist()
        nb = batch.nbytes.tolist()
        fl = batch.flags.tolist()
        rows = batch.row.tolist() if batch.row is not None else list(range(1, len(times) + 1))
        # a trailing None makes index NULL (-1) decode to None without a test per column and event
        names_c, names_t, names_o = ([*batch.cgroups, None], [*batch.tasks, None], [*batch.objects, None])
        handlers, counters, queue, release_q = self._handlers, self.counters, self._queue, self._release_q
        # one event object refilled per row: no handler keeps it, and filling slots costs less
        # than constructing an object per event
        ev = _Ev(batch.source, 0, None, None, None, NULL, NULL, 0)
        next_due = self._next_due()
        # one zip over the columns: cheaper than indexing nine lists per event
        for t, op, row, c, tsk, obj, of, n, f in zip(times, ops, rows, cg, tk, ob, off, nb, fl):
            if t < self.now_us:
                raise TraceError(batch.source, row, "time_us",
                                 f"time {t} before machine {self.machine_id}'s clock {self.now_us}")
            if t >= next_due:
                self.advance_to(t)
                next_due = self._next_due()
            self.now_us = t
            ev.row, ev.cgroup, ev.task, ev.obj = row, names_c[c], names_t[tsk], names_o[obj]
            ev.offset, ev.nbytes, ev.flags = of, n, f
            handlers[op](self, ev)
            counters["events"] += 1
            if release_q:
                self.reap()
            if queue and queue[0][0] <= t:
                next_due = t

    def _next_due(self) -> int:
        qt = self._queue[0][0] if self._queue else self.sampler.next_us
        return min(qt, self.sampler.next_us)

    # ------------------------------------------------------------------ cgroups
    def _op_mkdir(self, ev: "_Ev") -> None:
        path = normalize_path(ev.need_cgroup())
        parent = path.rsplit("/", 1)[0] or "/"
        if parent in self.failed_cgroups:
            self.failed_cgroups.add(path)
            self.counters["mkdir_failed"] += 1
            return
        err, m = self.mem.mkdir(path, self.now_us)
        if err == Errno.ENOSPC:
            self.failed_cgroups.add(path)
            self.counters["mkdir_enospc"] += 1
        elif err != Errno.OK:
            raise ev.error("cgroup", f"mkdir {path}: {err.name}")
        else:
            self.failed_cgroups.discard(path)

    def _op_rmdir(self, ev: "_Ev") -> None:
        m = self._cgroup(ev)
        if m < 0:
            return
        if m == ROOT:
            raise ev.error("cgroup", "cannot remove the root cgroup")
        if self.mem.rmdir_check(m) != Errno.OK:
            self.counters["rmdir_ebusy"] += 1
            return
        self.policy.pre_rmdir(self, m)
        if self.mem.rmdir_check(m) != Errno.OK:  # a policy may not add tasks, but be safe
            self.counters["rmdir_ebusy"] += 1
            return
        self.css_offline(m)

    def css_offline(self, m: int) -> None:
        """rmdir -> offline: drop the ID, reparent kmem objcgs, run the policy (mem_cgroup_css_offline)."""
        self.mem.offline(m, self.now_us)
        self._reparent_kmem(m)
        self.cgwb_offline(m)
        self.policy.css_offline(self, m)
        self._release_q.append(m)
        self.reap()

    def _op_set_limit(self, ev: "_Ev") -> None:
        m = self._cgroup(ev)
        if m < 0:
            return
        if m == ROOT:
            raise ev.error("cgroup", "the root cgroup has no memory.max or memory.high")
        limit = (1 << 62) if ev.nbytes == NULL else pages_of(ev.nbytes)
        if ev.flags & _MAX:
            self.mem.max[m] = limit
            self._enforce_max(m)
        elif ev.flags & _HIGH:
            self.mem.high[m] = limit
            self._reclaim_high(m)
        else:
            raise ev.error("flags", "set_limit needs flag max or high")

    # ------------------------------------------------------------------ tasks
    def _op_task_start(self, ev: "_Ev") -> None:
        name = ev.need_task()
        if name in self.task_by_name:
            raise ev.error("task", f"task {name} started twice")
        path = normalize_path(ev.need_cgroup())
        m = self.mem.by_path.get(path, -1)
        self._new_task_slot(name, m)
        if m < 0:
            if path not in self.failed_cgroups:
                raise ev.error("cgroup", f"task_start into missing cgroup {path}")
            self.counters["tasks_failed"] += 1
            return
        self.mem.ntasks[m] += 1

    def _new_task_slot(self, name: str, m: int) -> int:
        """A slot for a task starting in memcg ``m`` (-1: its cgroup failed), reusing a freed one."""
        self._tasks_started += 1
        fields = (name, self._tasks_started, m, m >= 0, 0, 0, 0, set(), [], [], set())
        cols = (self.t_name, self.t_seq, self.t_cg, self.t_alive, self.t_anon, self.t_swap, self.t_kpages,
                self.t_regions, self.t_maps, self.t_pins, self.t_kmem)
        if self._free_tasks:
            t = self._free_tasks.pop()
            for col, v in zip(cols, fields):
                col[t] = v
        else:
            t = len(self.t_name)
            for col, v in zip(cols, fields):
                col.append(v)
        self.task_by_name[name] = t
        return t

    def _op_task_exit(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t >= 0:
            self.task_exit(t)
        else:  # killed earlier or never started: its exit is now recorded and its slot free
            t = self.task_by_name.pop(ev.task)
            self.t_killed.discard(t)
            self._free_tasks.append(t)

    def _op_task_move(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        m = self._cgroup(ev)
        if m < 0:
            return
        self.mem.ntasks[self.t_cg[t]] -= 1
        self.mem.ntasks[m] += 1
        self.t_cg[t] = m  # charges stay where they are (cgroup-v2.rst, Memory Ownership)

    def task_exit(self, t: int) -> None:
        """exit(2): drop pins and mappings, free anon regions (and their swap), free kmem pages."""
        for pin in list(self.t_pins[t]):
            self._unpin(t, pin)
        for o in {o for o, _, _ in self.t_maps[t]}:
            self._unmap(t, o)
        for o in list(self.t_regions[t]):
            self.free_object(o)
        for k in list(self.t_kmem[t]):
            self._kmem_free(k)
        self.t_alive[t] = False
        self.mem.ntasks[self.t_cg[t]] -= 1
        if self.dropped_pins:
            self.dropped_pins = {d for d in self.dropped_pins if d[0] != t}
        if t not in self.t_killed:  # a killed task's name (and slot) stays until the trace's own exit
            del self.task_by_name[self.t_name[t]]
            self._free_tasks.append(t)
        # an exited task keeps only its scalar columns (state stays bounded by live tasks)
        self.t_regions[t], self.t_maps[t], self.t_pins[t], self.t_kmem[t] = _EMPTY_SET, [], [], _EMPTY_SET

    # ------------------------------------------------------------------ anon
    def _op_anon_alloc(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        name = ev.need_object()
        o = self.obj_by_name.get(name, -1)
        if o < 0:
            o = self._new_object(name, Kind.ANON, 0, t)
            self.t_regions[t].add(o)
        elif self.o_kind[o] != Kind.ANON or self.o_owner[o] != t:
            raise ev.error("object", f"{name} is not an anon region of task {ev.task}")
        lo = self.o_size[o]
        hi = lo + pages_of(ev.need_bytes())
        self.o_size[o] = hi
        if not self.fault_range(t, o, lo, hi, bool(ev.flags & _MAYFAIL)):
            if self.o_alive[o]:
                self.o_size[o] = max(lo, self._object_end(o))

    def _op_anon_free(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        o = self._object(ev)
        if self.o_kind[o] != Kind.ANON or self.o_owner[o] != t:
            raise ev.error("object", f"{ev.obj} is not an anon region of task {ev.task}")
        if ev.nbytes == NULL and ev.offset in (NULL, 0):
            self.free_object(o)  # the region is gone (munmap of the whole VMA)
        else:
            lo, hi = ev.range(self.o_size[o])
            for pin in [p for p in self.t_pins[t] if p[0] == o and p[1] < hi and lo < p[2]]:
                self._unpin(t, pin)  # munmap drops the mlock / pin of what it unmaps ...
                self.dropped_pins.add((t, o, pin[3], pin[4]))  # ... so the trace's own unpin is a no-op
            self.free_range(o, lo, hi)  # a hole; the region may grow again

    # ------------------------------------------------------------------ files
    def _op_file_create(self, ev: "_Ev") -> None:
        name = ev.need_object()
        if name in self.obj_by_name:
            raise ev.error("object", f"object {name} already exists")
        kind = Kind.SHMEM if ev.flags & _SHMEM else Kind.FILE
        size = 0 if ev.nbytes == NULL else pages_of(ev.nbytes)
        self._new_object(name, kind, size, -1)

    def _op_file_write(self, ev: "_Ev") -> None:
        self._file_access(ev, "write")

    def _op_file_map(self, ev: "_Ev") -> None:
        self._file_access(ev, "map")

    def _file_access(self, ev: "_Ev", how: str = "read") -> None:
        # the common case of _task / _object inline (a live task, an existing object): the
        # most frequent op; anything else takes the full lookup, which counts or raises
        t = self.task_by_name.get(ev.task, -1)
        if t < 0 or not self.t_alive[t]:
            t = self._task(ev)
            if t < 0:
                return
        o = self.obj_by_name.get(ev.obj, -1)
        if o < 0:
            o = self._object(ev)
        kind = self.o_kind[o]
        if kind == _ANON:
            raise ev.error("object", f"{ev.obj} is an anon region, not a file")
        off, nb = ev.offset, ev.nbytes
        if how == "write":
            if nb < 0:
                ev.need_bytes()  # raises: a write needs a size
            if off < 0:  # NULL (or negative) offset: from the start
                off = 0
            lo = off // 4096
            hi = -(-(off + nb) // 4096)  # pages_of, inlined
            if hi > self.o_size[o]:
                self.o_size[o] = hi
        elif off >= 0 and nb >= 0:  # ev.range() inlined for the usual offset + bytes (NULL is negative)
            lo = off // 4096
            hi = -(-(off + nb) // 4096)  # pages_of
            size = self.o_size[o]
            if hi > size:
                hi = size
        else:
            lo, hi = ev.range(self.o_size[o])
        if hi <= lo:
            return
        if how == "map":
            self._map(t, o, lo, hi)
        holes = how != "read" or kind == _FILE
        if self.policy.wants_access:
            self.policy.on_access(self, o, lo, hi, self.t_cg[t], how)
        if how == "write" and kind == _FILE:  # the fault stamps the pages dirty
            stamp = self.now_us // self.cfg.age_quantum_us + 1  # 1 + the LRU quantum; 0 means clean
            if self.fault_range(t, o, lo, hi, ev.flags & _MAYFAIL != 0, True, stamp) and self.o_wb[o] < 0:
                self.attach_wb(t, o)
        else:
            self.fault_range(t, o, lo, hi, ev.flags & _MAYFAIL != 0, holes)

    # reads are the most frequent op: the handler is _file_access itself, no wrapper call
    _op_file_read = _file_access

    def _op_file_unmap(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        self._unmap(t, self._held_object(ev, t))

    def _op_file_delete(self, ev: "_Ev") -> None:
        o = self._object(ev)
        if self.o_kind[o] == Kind.ANON:
            raise ev.error("object", f"{ev.obj} is an anon region; use anon_free")
        self.o_deleted[o] = True
        del self.obj_by_name[self.o_name[o]]
        self._maybe_free_deleted(o)

    def _map(self, t: int, o: int, lo: int, hi: int) -> None:
        self.o_maps[o].append((t, lo, hi))
        self.t_maps[t].append((o, lo, hi))
        self._add_count(o, lo, hi, "mapc", +1)

    def _unmap(self, t: int, o: int) -> None:
        """Remove every mapping of ``o`` by task ``t``."""
        mine: list[tuple[int, int, int]] = []
        keep: list[tuple[int, int, int]] = []
        for mp in self.o_maps[o]:  # one pass: an object can have many mappers
            (mine if mp[0] == t else keep).append(mp)
        if not mine:
            return
        self.o_maps[o] = keep
        self.t_maps[t] = [mp for mp in self.t_maps[t] if mp[0] != o]
        for _, lo, hi in mine:
            self._add_count(o, lo, hi, "mapc", -1)
        if self.policy.wants_access:
            self.policy.on_access(self, o, 0, self.o_size[o], self.t_cg[t], "unmap")
        self._maybe_free_deleted(o)

    def _maybe_free_deleted(self, o: int) -> None:
        if self.o_alive[o] and self.o_deleted[o] and not self.o_maps[o] and not self.o_pins[o]:
            self.free_object(o)

    # ------------------------------------------------------------------ pins
    def _op_pin(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        o = self._object(ev)
        lo, hi = ev.range(self.o_size[o])
        mlock, key = 1 if ev.flags & _MLOCK else 0, (ev.offset, ev.nbytes)
        if hi > lo and not self.fault_range(t, o, lo, hi, False, fill_holes=True) \
                or not self.t_alive[t] or not self.o_alive[o]:
            # the pages could not be made resident (a refused charge, e.g. an smemcg at its limit,
            # or an OOM kill): no pin, and the trace's unpin of it is then ignored, not an error
            if self.t_alive[t]:
                self.dropped_pins.add((t, o, mlock, key))
            return
        pin = (o, lo, hi, mlock, key)
        self.t_pins[t].append(pin)
        self.o_pins[o] += 1
        self._add_count(o, lo, hi, "pinc", +1)

    def _op_unpin(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        o = self._held_object(ev, t)
        key = (ev.offset, ev.nbytes)
        mlock = 1 if ev.flags & _MLOCK else 0
        pin = next((p for p in self.t_pins[t] if p[0] == o and p[3] == mlock and p[4] == key), None)
        if pin is None and (t, o, mlock, key) in self.dropped_pins:
            self.dropped_pins.discard((t, o, mlock, key))
            self.counters["ops_ignored"] += 1
            return
        if pin is None:
            raise ev.error("object", f"unpin of {ev.obj} (offset {ev.offset}, bytes {ev.nbytes}) "
                                     "without a matching pin")
        self._unpin(t, pin)

    def _unpin(self, t: int, pin: tuple) -> None:
        """Drop one pin (o, lo, hi, mlock, key) held by task ``t``."""
        o, lo, hi = pin[0], pin[1], pin[2]
        self.t_pins[t].remove(pin)
        self.o_pins[o] -= 1
        self._add_count(o, lo, hi, "pinc", -1)
        self._maybe_free_deleted(o)

    # ------------------------------------------------------------------ kmem
    def _op_kmem_alloc(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        name = ev.need_object()
        if name in self.kmem_by_name:
            raise ev.error("object", f"kmem object {name} already exists")
        m = self.t_cg[t]
        n = pages_of(ev.need_bytes())
        if not self.try_charge(m, n, bool(ev.flags & _MAYFAIL), t):
            self.failed_kmem.add(name)  # its kmem_free will be ignored
            return
        self.reserved -= n
        slab = not (ev.flags & _PAGE)
        k = self._free_kmem.pop() if self._free_kmem else len(self.k_memcg)
        if k == len(self.k_memcg):
            for lst in (self.k_memcg, self.k_pages, self.k_slab, self.k_task, self.k_name):
                lst.append(0)
        self.k_memcg[k], self.k_pages[k], self.k_slab[k], self.k_name[k] = m, n, slab, name
        self.k_task[k] = -1 if slab else t
        self.kmem_by_name[name] = k
        self.kmem_of.setdefault(m, set()).add(k)
        if not slab:
            self.t_kmem[t].add(k)
            self.t_kpages[t] += n
        self._kmem_account(k, +1, hier=False)
        self.handle_over_high(m)

    def _op_kmem_free(self, ev: "_Ev") -> None:
        name = ev.need_object()
        k = self.kmem_by_name.get(name, -1)
        if k < 0:
            if name in self.failed_kmem:
                self.failed_kmem.discard(name)
                self.counters["ops_ignored"] += 1
                return
            raise ev.error("object", f"kmem object {name} does not exist")
        self._kmem_free(k)

    def _kmem_free(self, k: int) -> None:
        self._kmem_account(k, -1, hier=True)
        self.kmem_of[self.k_memcg[k]].discard(k)
        t = self.k_task[k]
        if t >= 0:
            self.t_kmem[t].discard(k)
            self.t_kpages[t] -= self.k_pages[k]
        del self.kmem_by_name[self.k_name[k]]
        self._free_kmem.append(k)

    def _kmem_pins(self, k: int) -> bool:
        # Reparented via objcg at offline: slab since v5.9, kmem pages since v5.13.
        return not (self.kernel.slab_reparented if self.k_slab[k] else self.kernel.kmem_reparented)

    def _kmem_account(self, k: int, sign: int, hier: bool) -> None:
        m, n = self.k_memcg[k], self.k_pages[k] * sign
        self.mem.kmem[m] += n
        if self._kmem_pins(k):
            self.mem.kmem_pin[m] += n
        if hier:
            self.mem.charge(m, n)
        self.kmem_total += n
        if sign < 0 and self.mem.state[m] == State.DYING:
            self._release_q.append(m)

    def _reparent_kmem(self, m: int) -> None:
        """memcg_offline_kmem -> memcg_reparent_objcgs: kmem charges follow the objcg to the parent."""
        p = self.mem.parent[m]
        for k in sorted(self.kmem_of.get(m, ())):
            if self._kmem_pins(k):
                continue
            n = self.k_pages[k]
            self.mem.kmem[m] -= n
            self.mem.usage[m] -= n  # the parent's hierarchical usage already contains it
            self.mem.kmem[p] += n
            self.k_memcg[k] = p
            self.kmem_of[m].discard(k)
            self.kmem_of.setdefault(p, set()).add(k)

    # ------------------------------------------------------------------ sockets
    def _op_sock_open(self, ev: "_Ev") -> None:
        t = self._task(ev)
        if t < 0:
            return
        name = ev.need_object()
        if name in self.sock_by_name:
            raise ev.error("object", f"socket {name} is already open")
        m = self.t_cg[t]
        if m == ROOT:  # mem_cgroup_sk_alloc(): a root task's socket gets no sk_memcg
            self.sock_by_name[name] = (-1, 0)
            return
        n = 0 if ev.nbytes == NULL else pages_of(ev.nbytes)
        # mem_cgroup_charge_skmem(): a refused charge leaves the socket under memory pressure
        # (fewer buffers), never OOM-kills; socket buffers are kernel memory, not LRU pages
        if n and self.try_charge(m, n, True, t):
            self.reserved -= n
            self.kmem_total += n
            self.mem.sock[m] += n
        else:
            n = 0
        self.mem.nsock[m] += 1  # css_tryget in mem_cgroup_sk_alloc()
        self.sock_by_name[name] = (m, n)
        if n:
            self.handle_over_high(m)

    def _op_sock_close(self, ev: "_Ev") -> None:
        name = ev.need_object()
        got = self.sock_by_name.pop(name, None)
        if got is None:
            raise ev.error("object", f"socket {name} is not open")
        m, n = got
        if m < 0:
            return
        if n:
            self.mem.charge(m, -n)
            self.mem.sock[m] -= n
            self.kmem_total -= n
        self.mem.nsock[m] -= 1  # mem_cgroup_sk_free(): css_put
        if self.mem.state[m] == State.DYING:
            self._release_q.append(m)

    # ------------------------------------------------------------------ machine-wide
    def _op_reclaim(self, ev: "_Ev") -> None:
        m = self._cgroup(ev)
        if m < 0:
            return
        if not self.kernel.has_memory_reclaim:
            self.counters["reclaim_unsupported"] += 1
            return
        self.memory_reclaim(m, pages_of(ev.need_bytes()))

    def memory_reclaim(self, m: int, target: int) -> int:
        """Write to memory.reclaim (memory_reclaim(), v5.19+): proactive, full walk, never OOM.

        v6.1 asks for the whole request in one call (the kernel check saw 6.1 take 6,915 pages for
        4,096 asked, as one call's priority rounds do). From v6.9 (commit 287d5fedb377; the version
        is believed, not verified) each call asks for a quarter of what is left; in between, kernels
        asked SWAP_CLUSTER_MAX a call, which is not modelled. Returns pages reclaimed; short of the
        target it counts an EAGAIN.
        """
        got = reclaim.shrink(self, m, target, may_swap=True, full_walk=True, quarter=self.kernel.at_least(6, 9))
        if got < target:
            self.counters["reclaim_eagain"] += 1
        return got

    def _op_memory(self, ev: "_Ev") -> None:
        # a trace that knows its machine's RAM overrides the configured size (MachineConfig.mem_bytes)
        nbytes = ev.need_bytes()
        if nbytes < PAGE:
            raise ev.error("bytes", f"memory of {nbytes} bytes: a machine needs at least one page")
        want = nbytes // PAGE
        used = self.mem_total - self._free_pages()  # resident, kernel and reserved pages
        if want < used:  # unplugging memory in use: offline_pages() must first free it
            reclaim.shrink(self, ROOT, used - want, full_walk=True)
            used = self.mem_total - self._free_pages()
        self.mem_total = max(want, used)  # what cannot be freed stays online (offline_pages: EBUSY)

    def _op_swap_on(self, ev: "_Ev") -> None:
        self.swap_total = max(pages_of(ev.need_bytes()), self.swap_used)

    def _op_swap_off(self, ev: "_Ev") -> None:
        caller = ROOT if ev.cgroup is None else self._cgroup(ev)
        self.swapoff(max(caller, ROOT))

    def _op_drop_caches(self, ev: "_Ev") -> None:
        self.drop_caches()
        if ev.flags & _INODES:
            self.evict_inodes()

    def _op_sync(self, ev: "_Ev") -> None:
        self.sync_all()

    _handlers: dict[int, Any] = {}

    # ================================================================== lookups
    def _cgroup(self, ev: "_Ev") -> int:
        path = normalize_path(ev.need_cgroup())
        m = self.mem.by_path.get(path, -1)
        if m < 0:
            if path in self.failed_cgroups:
                self.counters["ops_ignored"] += 1
                return -1
            raise ev.error("cgroup", f"no online cgroup {path}")
        return m

    def _task(self, ev: "_Ev") -> int:
        name = ev.need_task()
        t = self.task_by_name.get(name, -1)
        if t < 0:
            raise ev.error("task", f"task {name} was never started or has already exited")
        if not self.t_alive[t]:
            if self.t_cg[t] < 0 or t in self.t_killed:  # failed to start, or OOM-killed
                self.counters["ops_ignored"] += 1
                return -1
            raise ev.error("task", f"task {name} already exited")
        return t

    def _object(self, ev: "_Ev") -> int:
        name = ev.need_object()
        o = self.obj_by_name.get(name, -1)
        if o < 0:
            raise ev.error("object", f"object {name} does not exist")
        return o

    def _held_object(self, ev: "_Ev", t: int) -> int:
        """The object a task's unmap/unpin names: by name, or an unlinked one it still maps or pins."""
        name = ev.need_object()
        o = self.obj_by_name.get(name, -1)
        if o >= 0:
            return o
        for o in [mp[0] for mp in self.t_maps[t]] + [p[0] for p in self.t_pins[t]]:
            if self.o_alive[o] and self.o_name[o] == name:
                return o
        raise ev.error("object", f"object {name} does not exist")

    def _new_object(self, name: str, kind: int, size: int, owner: int) -> int:
        if self._free_objs:
            o = self._free_objs.pop()
            self.o_name[o], self.o_kind[o], self.o_size[o], self.o_owner[o] = name, kind, size, owner
            self.o_alive[o], self.o_deleted[o], self.o_maps[o], self.o_pins[o] = True, False, [], 0
            self.o_wb[o] = -1
        else:
            o = len(self.o_name)
            for lst, v in ((self.o_name, name), (self.o_kind, kind), (self.o_size, size),
                           (self.o_owner, owner), (self.o_alive, True), (self.o_deleted, False),
                           (self.o_pins, 0)):
                lst.append(v)
            self.o_maps.append([])
            self.o_wb.append(-1)
        self.obj_by_name[name] = o
        return o

    def _object_end(self, o: int) -> int:
        runs = self.runs.obj_runs.get(o)
        if not runs:
            return 0
        r = runs[-1]
        return self.runs.start[r] + self.runs.npages[r]

    # ================================================================== views
    def cgroup_paths(self) -> list[str]:
        """Paths of every online and dying cgroup (dying ones may repeat an online path)."""
        return [self.mem.path[m] for m in self.mem.live()]

    def stat(self, path: str) -> dict:
        """What cgroupfs would show for the online cgroup at ``path`` (or the newest dying one)."""
        m = self._find(normalize_path(path))
        mem = self.mem
        sub = mem.subtree(m)
        tot = {k: sum(getattr(mem, k)[x] for x in sub)
               for k in ("anon", "file", "shmem", "mapped", "kmem", "sock", "pgscan", "pgsteal", "refault")}
        return {
            "dying": mem.state[m] == State.DYING,
            "memory.current": mem.usage[m] * 4096,
            "memory.swap.current": mem.swap_usage[m] * 4096,
            "anon": tot["anon"] * 4096, "file": (tot["file"] + tot["shmem"]) * 4096,
            "shmem": tot["shmem"] * 4096, "file_mapped": tot["mapped"] * 4096,
            "kernel": tot["kmem"] * 4096, "sock": tot["sock"] * 4096,
            "pgscan": tot["pgscan"], "pgsteal": tot["pgsteal"],
            "workingset_refault": tot["refault"],
            "nr_dying_descendants": mem.nr_dying_desc[m],
            "memory.peak": mem.peak[m] * 4096,
        }

    def _find(self, path: str) -> int:
        m = self.mem.by_path.get(path, -1)
        if m >= 0:
            return m
        dying = [x for x in self.mem.dying if self.mem.path[x] == path]
        if not dying:
            raise KeyError(f"no cgroup {path} on machine {self.machine_id}")
        return max(dying, key=lambda x: (self.mem.offline_us[x], x))

    def summary(self) -> dict:
        """End-of-run totals: counters, zombies, cost bytes, IDs in use."""
        return self.sampler.summary()

    def job_table(self) -> dict[str, list]:
        """Released cgroups not yet taken, then live ones: path, born/offline/freed times, peak bytes, OOM kills."""
        return self.sampler.jobs()

    def take_jobs(self) -> dict[str, list]:
        """Job-table rows of the cgroups released since the last call (then forgotten by the machine).

        A replay that takes them as it goes keeps only live cgroups in the machine's state;
        these rows followed by ``job_table()`` at the end equal ``job_table()`` alone.
        """
        return self.sampler.take_jobs()


class _Ev:
    """One decoded event; its ``need_*`` accessors raise TraceError naming the field."""

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


Machine._handlers = {
    int(op): getattr(Machine, f"_op_{op.name.lower()}") for op in Op
}
