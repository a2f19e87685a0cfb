"""Kernel versions, the features that depend on them, and the cost of one memcg.

In: a version string such as "6.12". Out: ``Kernel`` with feature predicates
used by the model and ``memcg_cost()`` / ``memcg_bytes()`` — the bytes one memcg (online
or dying) keeps allocated: percpu, slab and the percpu chunks' vmalloc'd metadata, from
KERNEL-MODEL.md §3's allocation sites, fitted to the VM measurement of Debian's 6.1 and
6.12 builds (scripts/kernel_check/cost.py, docs/kernel-validation.md).

Feature cut-offs (each cited where it is used):
- slab objects reparented at offline since v5.9 (Gushchin, "The new cgroup slab
  memory controller"); before that they pin the memcg (the issue's contract; v5.3's
  kmem_cache reparenting is not modelled separately).
- non-slab kmem pages reparented since v5.13 (Muchun Song, "mm: memcontrol: use
  obj_cgroup APIs to charge kmem pages").
- memory.reclaim exists since v5.19 (mm/memcontrol.c: memory_reclaim()).
- cgroup.stat nr_dying_subsys_memory since ≈v6.11 (Waiman Long).
- MGLRU memcg reclaim stops at its target like root reclaim from 6.12.118 in the 6.12
  series (the stable backport of "mm: remove '!root_reclaim' checking in
  should_abort_scan()", found by the kernel check, docs/kernel-validation.md D12). A
  version names a patch level for that: "6.12" is 6.12.0, "6.12.118" the stable release.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import ConfigError

KIB = 1024

PAGE_SIZE = 4096

# Per kernel basis: (A, B, D, E). Percpu bytes per possible CPU: A + B·N (N = NUMA nodes);
# slab bytes outside shrinker_info: D + E·N. Fitted to the VM measurement of Debian's builds
# (docs/kernel-validation.md "Cost of a zombie memcg"; tests/kernel_scenarios/cost/*.json) on one
# node — B and E are §3's struct sums in kmalloc classes, checked on two nodes — whose objects
# are listed in ``memcg_cost``. 6.18 was not measured: KERNEL-MODEL.md §3's
# struct sums (MEMCG_V1=y, SCHED_CORE=y), slab without kmalloc rounding.
_COST_TABLE: dict[tuple[int, int], tuple[int, int, float, float]] = {
    (6, 1): (1296, 688, 10042, 4096),
    (6, 12): (1300, 496, 10265, 3072),
    (6, 18): (1620, 528, 7.4 * KIB, 2.9 * KIB),
}

#: memcg-aware shrinkers on a real host (``shrinker_nr_max``): the default of MachineConfig.shrinkers
#: and of the replay config's machine.shrinkers.
#: The VM's Debian 6.1 kernel, with 7 filesystems mounted, has 27 (each superblock registers one,
#: fs/super.c alloc_super, plus the kernel's own: mm/workingset.c workingset_init's shadow nodes,
#: mm/huge_memory.c's THP deferred split ...);
#: a systemd host mounts ~20 more (securityfs, pstore, bpf, mqueue, hugetlbfs, debugfs, tracefs,
#: configfs, fusectl, /boot, /run/user, ...), so ≈ 48: one 64-shrinker unit on either kernel.
REAL_MACHINE_SHRINKERS = 48

#: vmalloc'd chunk metadata per byte of a percpu unit (mm/percpu.c pcpu_alloc_chunk, pcpu_mem_zalloc
#: vmallocs anything over a page): obj_cgroups / obj_exts, one 8-byte pointer per 4-byte map bit
#: (PCPU_MIN_ALLOC_SIZE) = 2; alloc_map and bound_map, one bit each per 4 bytes = 2/32; md_blocks,
#: one 32-byte pcpu_block_md per page = 32/4096.
PCPU_CHUNK_META_PER_BYTE = 8 / 4 + 2 / 32 + 32 / PAGE_SIZE

SUPPORTED = ("5.4", "5.10", "5.15", "6.1", "6.6", "6.12", "6.18")


@dataclass(frozen=True)
class Kernel:
    """A kernel version and what the model does differently because of it."""

    major: int
    minor: int
    patch: int = 0  #: the stable release within the series ("6.12.118" -> 118; "6.12" -> 0)

    @classmethod
    def parse(cls, text: str) -> "Kernel":
        """'6.12' -> Kernel(6, 12, 0), '6.12.118' -> Kernel(6, 12, 118); ConfigError for anything else."""
        parts = str(text).strip().split(".")
        try:
            major, minor = int(parts[0]), int(parts[1])
            patch = int(parts[2]) if len(parts) > 2 else 0
        except (IndexError, ValueError):
            raise ConfigError(f"kernel: {text!r} is not a version like '6.12' or '6.12.118'") from None
        if len(parts) > 3 or patch < 0:
            raise ConfigError(f"kernel: {text!r} is not a version like '6.12' or '6.12.118'")
        if (major, minor) < (5, 4) or (major, minor) > (6, 18):
            raise ConfigError(f"kernel: {text!r} outside the modelled range 5.4 .. 6.18")
        return cls(major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" + (f".{self.patch}" if self.patch else "")

    def at_least(self, major: int, minor: int) -> bool:
        """True when this kernel is v<major>.<minor> or newer."""
        return (self.major, self.minor) >= (major, minor)

    @property
    def slab_reparented(self) -> bool:
        """Slab objects follow the objcg to the parent at offline (v5.9+)."""
        return self.at_least(5, 9)

    @property
    def kmem_reparented(self) -> bool:
        """Non-slab kmem pages follow the objcg to the parent at offline (v5.13+)."""
        return self.at_least(5, 13)

    @property
    def has_memory_reclaim(self) -> bool:
        """The memory.reclaim interface file exists (v5.19+)."""
        return self.at_least(5, 19)

    @property
    def mglru_memcg_reclaim_aborts(self) -> bool:
        """MGLRU memcg reclaim ends after the 64-folio batch that meets its target (D12).

        should_abort_scan() lost its "don't abort memcg reclaim to ensure fairness" early
        return ("mm: remove '!root_reclaim' checking in should_abort_scan()"); Debian's
        6.12.118 carries the backport and 6.12.117 does not (kernel check records of both).
        Its mainline release and other stable series are not verified here, so it is
        modelled for the 6.12 series from 6.12.118 only.
        """
        return (self.major, self.minor) == (6, 12) and self.patch >= 118

    @property
    def zap_frees_swap_batched(self) -> bool:
        """Unmapping (exit, munmap) frees a run of a process's swap entries at once, past the
        per-CPU slot cache: zap_pte_range() (mm/memory.c) hands free_swap_and_cache_nr() a batch
        of PTEs with consecutive swap entries (swap_pte_batch()), and __swap_entries_free()
        (mm/swapfile.c) frees a batch of more than one entry, each mapped once and not in the
        swap cache, with swap_entry_range_free() -> mem_cgroup_uncharge_swap(); a single entry
        still goes to free_swap_slot() (D4). Barry Song's "mm: attempt to batch free swap entries
        for zap_pte_range()", in the 6.12 series (6.12.118 shows it, random traces of seed 3),
        not in 6.1 (6.1.192 keeps such slots parked); the first release is not verified here.
        """
        return self.at_least(6, 12)

    @property
    def cost_basis(self) -> tuple[int, int]:
        """The measured tree whose struct sizes stand for this kernel.

        Only 6.1, 6.12 and 6.18 were measured; older kernels use 6.1's sizes and
        6.6 uses 6.1's (the stats shrink came in ≈v6.10) — an approximation.
        """
        if self.at_least(6, 18):
            return (6, 18)
        if self.at_least(6, 10):
            return (6, 12)
        return (6, 1)


def kmalloc_size(n: int) -> int:
    """The bytes a kmalloc(n) takes: its size class (mm/slab_common.c kmalloc_info: 8 .. 8 KiB,
    powers of two and 96 and 192), whole pages above that (kmalloc_large); kvmalloc
    (mm/util.c kvmalloc_node) is the same while kmalloc succeeds."""
    if n <= 0:
        return 0
    if n > 2 * PAGE_SIZE:
        return -(-n // PAGE_SIZE) * PAGE_SIZE
    size = 8
    while size < n:
        if size == 64 and n <= 96:
            return 96
        if size == 128 and n <= 192:
            return 192
        size *= 2
    return size


def shrinker_info_bytes(kernel: Kernel, shrinkers: int) -> int:
    """Slab bytes of one memcg's per-node shrinker_info for S = ``shrinker_nr_max`` shrinkers.

    6.1 (mm/vmscan.c alloc_shrinker_info): one kvzalloc of the 32-byte header, a bitmap of
    ceil(S/64) longs and S rounded up to 64 deferred counters (8 B each) — 552 B, a 1 KiB object,
    for up to 64. 6.7+ (mm/shrinker.c alloc_shrinker_info, shrinker_unit_alloc): a header of 24 B
    plus one pointer per 64-shrinker unit, and one kzalloc'd ``shrinker_info_unit`` (64 counters
    and a one-long bitmap, 520 B: a 1 KiB object) per unit.
    """
    if shrinkers <= 0:
        return 0
    units = math.ceil(shrinkers / 64)
    if kernel.at_least(6, 7):
        return kmalloc_size(24 + 8 * units) + units * kmalloc_size(520)
    return kmalloc_size(32 + 8 * units + 8 * 64 * units)


@dataclass(frozen=True)
class MemcgCost:
    """Bytes one memcg keeps allocated until css_free, by where they live."""

    percpu: int  #: percpu pages (/proc/meminfo Percpu), all possible CPUs
    slab: int  #: slab objects (/proc/meminfo Slab), shrinker_info included
    vmalloc: int  #: its share of the percpu chunks' vmalloc'd metadata (/proc/meminfo VmallocUsed)
    total: int


def memcg_cost(kernel: Kernel, cpus: int, nodes: int, shrinkers: int = 0) -> MemcgCost:
    """The bytes of one memcg on C possible CPUs, N NUMA nodes and S memcg-aware shrinkers.

    percpu = C·(A + B·N): mm/memcontrol.c mem_cgroup_alloc (vmstats_percpu, the objcg
    percpu_ref, memcg_wb_domain_init's fprop counter) and alloc_mem_cgroup_per_node_info
    (lruvec_stats_percpu, per node); the css percpu_ref (kernel/cgroup/cgroup.c css_create);
    the pinned cgroup's rstat (kernel/cgroup/rstat.c), percpu_ref and psi_group_cpu
    (kernel/sched/psi.c psi_cgroup_alloc). A is fitted: §3's struct sums less SCHED_CORE's
    forceidle field (Debian builds it off) and a further 12 (6.1) / 56 (6.12) bytes not identified.
    slab = D + E·N + N·shrinker_info(S), measured per cache on 1 node, kmalloc classes —
    6.1: mem_cgroup 4 KiB, memcg_vmstats 2 KiB, cgroup 2 KiB, psi_group 1 KiB, objcg and
    small objects, the cgroup's kernfs_node and dentry, list_lru xarray nodes (D);
    mem_cgroup_per_node 4 KiB (E). 6.12: mem_cgroup 4 KiB, memcg_vmstats 2 KiB, cgroup 2 KiB
    (kmalloc-cg), psi_group 1 KiB, the same small objects (D); mem_cgroup_per_node 2 KiB and
    lruvec_stats 1 KiB (kmalloc-cg) (E). The per-node terms were checked on a 2-node VM.
    vmalloc = PCPU_CHUNK_META_PER_BYTE · (percpu bytes per CPU): the chunk metadata grows with
    the unit bytes the memcg takes, whatever the CPU count (mm/percpu.c pcpu_alloc_chunk).
    """
    if cpus < 1 or nodes < 1:
        raise ConfigError(f"cpus={cpus}, numa_nodes={nodes}: both must be >= 1")
    a, b, d, e = _COST_TABLE[kernel.cost_basis]
    per_cpu = a + b * nodes
    percpu = cpus * per_cpu
    slab = round(d + e * nodes) + nodes * shrinker_info_bytes(kernel, shrinkers)
    vmalloc = round(PCPU_CHUNK_META_PER_BYTE * per_cpu)
    return MemcgCost(percpu, slab, vmalloc, percpu + slab + vmalloc)


def memcg_bytes(kernel: Kernel, cpus: int, nodes: int, shrinkers: int = 0) -> tuple[int, int]:
    """(percpu bytes, total bytes) that one memcg keeps allocated until css_free (``memcg_cost``)."""
    cost = memcg_cost(kernel, cpus, nodes, shrinkers)
    return cost.percpu, cost.total
