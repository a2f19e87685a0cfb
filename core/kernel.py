"""Kernel versions, the features that depend on them, and the cost of one memcg.

In: a version string such as "6.12". Out: ``Kernel`` with feature predicates
used by the model and ``memcg_bytes()`` — the bytes one memcg (online or dying)
keeps allocated, from KERNEL-MODEL.md §3.

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

# Percpu bytes per possible CPU: A + B·N (N = NUMA nodes), KERNEL-MODEL.md §3 "Total per CPU"
# (MEMCG_V1=y builds). Non-percpu slab: D + E·N, §3 "Non-percpu slab memory per zombie".
_COST_TABLE: dict[tuple[int, int], tuple[int, int, float, float]] = {
    (6, 1): (1324, 688, 9.3 * KIB, 4.0 * KIB),
    (6, 12): (1412, 496, 9.3 * KIB, 3.0 * KIB),
    (6, 18): (1620, 528, 7.4 * KIB, 2.9 * KIB),
}

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


def shrinker_info_bytes(kernel: Kernel, shrinkers: int) -> int:
    """Per-node shrinker_info of one memcg for S memcg-aware shrinkers.

    6.1: kvzalloc(8·S + S/8 + 32) (mm/vmscan.c alloc_shrinker_info); 6.7+: units
    of 520 B, each for 64 shrinkers (mm/shrinker.c alloc_shrinker_info).
    """
    if shrinkers <= 0:
        return 0
    if kernel.at_least(6, 7):
        return 520 * math.ceil(shrinkers / 64)
    return 8 * shrinkers + shrinkers // 8 + 32


def memcg_bytes(kernel: Kernel, cpus: int, nodes: int, shrinkers: int = 0) -> tuple[int, int]:
    """(percpu bytes, total bytes) that one memcg keeps allocated until css_free.

    bytes = C·(A + B·N) + D + E·N + N·shrinker_info(S), KERNEL-MODEL.md §3 and
    Modeling implication 9; C = possible CPUs, N = NUMA nodes.
    """
    if cpus < 1 or nodes < 1:
        raise ConfigError(f"cpus={cpus}, numa_nodes={nodes}: both must be >= 1")
    a, b, d, e = _COST_TABLE[kernel.cost_basis]
    percpu = cpus * (a + b * nodes)
    total = percpu + int(round(d + e * nodes)) + nodes * shrinker_info_bytes(kernel, shrinkers)
    return percpu, total
