"""The whole state of one simulated machine, as plain typed fields: ``MachineConfig`` and ``MachineState``.

In: a ``MachineConfig`` (validated here), a policy, a machine id and a seed. Out: a
``MachineState`` holding every field the kernel-named modules of ``core`` work on:
the memcg table, the page runs, tasks, objects, kmem objects, sockets, writeback and
swap-slot bookkeeping, counters, the work queue and the release queue. Nothing here
has behaviour beyond construction: the functions over this state live in the modules
named after the kernel files they model (``core.memcontrol``, ``core.vmscan``, ...),
and the event loop in ``core.machine``.

Tasks, objects and kmem objects are parallel columns indexed by slot; a slot is reused
once what it held is gone, so the state stays bounded by what is alive.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from core.counters import COUNTERS
from core.errors import ConfigError
from core.kernel import REAL_MACHINE_SHRINKERS, Kernel, memcg_bytes
from core.memcg import MemcgTable
from core.pages import RunTable

if TYPE_CHECKING:
    from core.metrics import Sampler
    from core.policy import Policy

#: the disk filesystems' atime mount options; ``MachineState.atime_mode`` is the index of ``cfg.atime``
ATIME_MODES = ("relatime", "noatime", "lazytime", "strictatime")


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
    lru_gen: bool = False  # MGLRU: a dying memcg loses about half per memcg-reclaim visit (core/vmscan.py)
    mapped_hot: bool = True  # mapped page cache/shmem of live mappers counts as referenced
    shrinkers: int = REAL_MACHINE_SHRINKERS  # memcg-aware shrinkers (shrinker_info in the cost model)
    age_quantum_us: int = 30_000_000  # LRU age resolution: accesses within one quantum are equally young
    dirty_expire_us: int = 30_000_000  # vm.dirty_expire_centisecs: dirty page cache older than this is written back
    swap_slot_cache: str = "auto"  # per-CPU freed-slot cache (mm/swap_slots.c): auto (< v6.15) | on | off
    atime: str = "relatime"  # disk filesystems' atime mount option: relatime | noatime | lazytime | strictatime

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
        if self.atime not in ATIME_MODES:
            raise ConfigError(f"atime must be relatime, noatime, lazytime or strictatime, not {self.atime!r}")
        if not 2 <= self.id_pool_size <= 65535:
            raise ConfigError("id_pool_size must be in 2 .. 65535 (MEM_CGROUP_ID_MAX)")
        if not 0 <= self.watermark_low <= self.watermark_high < 1:
            raise ConfigError("need 0 <= watermark_low <= watermark_high < 1")
        Kernel.parse(self.kernel)


#: one pin a task holds: (object, first page, end page, mlock 0/1, (offset, bytes) as traced)
Pin = tuple[int, int, int, int, tuple[int, int]]
#: a pin ended before the trace's unpin (``anon_free``, a refused fault): (task, object, mlock, (offset, bytes))
DroppedPin = tuple[int, int, int, tuple[int, int]]

#: one queued piece of work: (time, sequence number, fn, args); ``fn(machine, *args)`` runs at that time
QueueEntry = tuple[int, int, Callable[..., None], tuple[Any, ...]]


class MachineState:
    """Every field of one machine (see the module docstring); built empty from its config."""

    def __init__(self, cfg: MachineConfig, policy: "Policy", machine_id: str = "m", seed: int = 0) -> None:
        cfg.validate()
        self.cfg = cfg
        self.kernel = Kernel.parse(cfg.kernel)
        self.machine_id = machine_id
        # the RNG is made on first use (one policy draws from it): an unused one costs nothing to
        # checkpoint, where a Mersenne Twister state is 625 numbers
        self._rng: random.Random | None = None
        self._rng_seed = f"{seed}:{machine_id}"
        #: bumped by whatever may change the state (events applied, queued work run): the sampler
        #: computes a new row only after it moved (``Sampler.can_idle``), and a checkpoint may reuse a
        #: machine's pickle while it is unchanged (``core.machine.Machine.clock``)
        self.changes = 0
        self.policy: Policy = policy
        self.kernel_targets = policy.kernel_targets  # (a policy is the machine's for its life)
        self.wants_access = policy.wants_access
        self.now_us = 0
        # config and kernel facts the per-event paths read, copied once (a C field each in the
        # compiled build, where reading ``cfg`` or a ``Kernel`` property is a Python lookup)
        self.age_quantum_us = cfg.age_quantum_us
        self.dirty_expire_us = cfg.dirty_expire_us
        self.atime_mode = ATIME_MODES.index(cfg.atime)  # read per read of a disk file (touch_atime)
        self.watermark_low, self.watermark_high = float(cfg.watermark_low), float(cfg.watermark_high)
        self.slab_reparented = self.kernel.slab_reparented
        self.kmem_reparented = self.kernel.kmem_reparented
        self.charge_reclaims_high = self.kernel.at_least(5, 18)  # try_charge_memcg reclaims memory.high too
        # memory: memcgs, page runs, machine-wide page totals (4 KiB pages)
        self.mem = MemcgTable(cfg.id_pool_size)
        self.runs = RunTable()
        self.mem_total = cfg.mem_bytes // 4096
        self.swap_total = cfg.swap_bytes // 4096
        self.swap_used = 0
        self.resident = 0
        self.kmem_total = 0
        self.reserved = 0  # pages charged by try_charge_memcg and not yet made resident
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.pending_events = 0  # events applied and not yet in counters["events"] (Machine.apply)
        self.percpu_bytes, self.memcg_cost = memcg_bytes(self.kernel, cfg.cpus, cfg.numa_nodes, cfg.shrinkers)
        # work queue (core.workqueue) and the memcgs queued for release (core.cgroup)
        self.queue: list[QueueEntry] = []
        self.queue_seq = 0
        self.release_q: list[int] = []
        self.reclaim_pos: dict[int, int] = {}  # subtree top -> memcg where the last partial reclaim walk stopped
        # tasks: parallel lists by task slot; a slot is reused once its task has exited and the
        # trace's do_exit has been seen (state stays bounded by live tasks). ``t_seq`` numbers
        # tasks in start order, for choices that must not depend on slot reuse (OOM ties).
        self.t_name: list[str] = []
        self.t_seq: list[int] = []
        self.free_tasks: list[int] = []
        self.tasks_started = 0
        self.t_cg: list[int] = []
        self.t_alive: list[bool] = []
        self.t_anon: list[int] = []
        self.t_swap: list[int] = []
        self.t_kpages: list[int] = []
        self.t_regions: list[set[int]] = []
        self.t_maps: list[list[tuple[int, int, int]]] = []
        self.t_pins: list[list[Pin]] = []
        self.t_kmem: list[set[int]] = []
        self.task_by_name: dict[str, int] = {}
        self.t_killed: set[int] = set()
        self.dropped_pins: set[DroppedPin] = set()  # pins ended by anon_free or never made (their unpin is ignored)
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
        self.o_wb: list[int] = []  # per object: memcg whose wb the inode is attached to, or -1
        self.obj_by_name: dict[str, int] = {}
        self.free_objs: list[int] = []
        # kmem objects
        self.k_memcg: list[int] = []
        self.k_pages: list[int] = []
        self.k_slab: list[bool] = []
        self.k_task: list[int] = []
        self.k_name: list[str] = []
        self.kmem_by_name: dict[str, int] = {}
        self.failed_kmem: set[str] = set()  # kmem objects whose charge was refused
        self.kmem_of: dict[int, set[int]] = {}
        self.free_kmem: list[int] = []
        # open sockets: name -> (sk_memcg or -1 when not associated, buffer pages charged)
        self.sock_by_name: dict[str, tuple[int, int]] = {}
        self.failed_socks: set[str] = set()  # sockets a killed task never opened (their close is ignored)
        # cgroup writeback (core.fs_writeback)
        self.wb_inodes: dict[int, set[int]] = {}  # memcg -> inodes attached to its (live) wb
        self.wb_pinned: dict[int, int] = {}  # inode -> dying memcg its cgwb pins
        # the per-CPU freed swap slot cache (core.swap_slots)
        mode = cfg.swap_slot_cache
        self.slot_cache_enabled = mode == "on" or (mode == "auto" and not self.kernel.at_least(6, 15))
        self.slot_cache: dict[int, list[list[int]]] = {}  # cpu -> [[memcg, pages], ...]
        self.slot_cache_fill: dict[int, int] = {}  # cpu -> pages parked
        self.sampler: Sampler  # set by core.machine.Machine
        # disk-file inode times and metadata dirtiness (core.fs_writeback: touch_atime, file_update_time)
        # per object slot: a disk file's atime and mtime in µs, -1 before its first (int64 columns, read
        # through their buffers on every read and write of a disk file)
        self.i_atime = array("q")
        self.i_mtime = array("q")
        self.i_dirty: dict[int, int] = {}  # inode -> time its metadata was dirtied (I_DIRTY_SYNC), until written

    @property
    def rng(self) -> random.Random:
        """The machine's own RNG, seeded with (run seed, machine id); made on first use."""
        if self._rng is None:
            self._rng = random.Random(self._rng_seed)
        return self._rng
