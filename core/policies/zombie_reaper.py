"""``zombie_reaper``: background reclaim of dying memcgs, every ``interval_us``.

In: memcgs going offline (they arm the reaper) and the machine's clock. Out:
each pass reclaims up to ``pages_per_scan`` pages from the zombies, oldest
zombie first, through the model's ordinary reclaim (``core.vmscan.try_to_free_mem_cgroup_pages``),
so pinned/mlocked pages and mapped pages of live mappers (with ``mapped_hot``)
are never taken; ``may_swap`` lets it swap anon/shmem (the record then names
the nearest online ancestor, which frees the zombie).

Sources: Alibaba Cloud Kernel's "memcg zombie reaper" (Xunlei Pang, 2019:
/sys/kernel/mm/memcg_reaper/scan_interval, default 5 s, and pages_scan,
default 1310720 pages = 5 GiB per scan; its documentation describes the zombies
it targets as held by page cache, hence ``may_swap=False`` by default); Google's
out-of-tree periodic cleaners that "attempt to periodically clean up zombie
memcgs by reclaiming from them" (T.J. Mercier, LSF/MM/BPF topic
<CABdmKX2M6koq4Q0Cmp_-=wbP0Qa190HdEGGaHfxNS05gAkUtPA@mail.gmail.com>).

Weaknesses the model shows: shared-in-use and pinned pages keep their
zombies; the page cache it evicts is refaulted by the jobs still reading it;
every pass costs reclaim work (memcgs visited). The reaper keeps ticking while
any zombie exists, because a pinned or mapped page may become reclaimable later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.pages import Kind, St
from core.policies._common import arm, next_grid, positive
from core.policy import Knobs, Policy, register
from core.vmscan import try_to_free_mem_cgroup_pages

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class ZombieReaperKnobs(Knobs):
    """``interval_us``: period of the scan; ``pages_per_scan``: its budget; ``may_swap``: reclaim anon/shmem too."""

    policy = "zombie_reaper"
    interval_us: int = 5_000_000
    pages_per_scan: int = 1_310_720
    may_swap: bool = False

    def check(self) -> None:
        positive(self.policy, interval_us=self.interval_us, pages_per_scan=self.pages_per_scan)


@register
class ZombieReaper(Policy):
    """Reclaim from dying memcgs periodically (Alibaba's reaper, Google's cleaner)."""

    name = "zombie_reaper"
    source = ("Alibaba Cloud Kernel memcg zombie reaper (Xunlei Pang, 2019; /sys/kernel/mm/memcg_reaper); "
              "Google's out-of-tree periodic cleaner (T.J. Mercier "
              "<CABdmKX2M6koq4Q0Cmp_-=wbP0Qa190HdEGGaHfxNS05gAkUtPA@mail.gmail.com>)")

    Knobs = ZombieReaperKnobs
    knobs: ZombieReaperKnobs

    def __init__(self, knobs: ZombieReaperKnobs | None = None) -> None:
        super().__init__(knobs)
        self._armed = False

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        self._arm(machine)

    def _arm(self, machine: MachineState) -> None:
        arm(self, machine, next_grid(machine.now_us, self.knobs.interval_us), self.reaper_tick)

    def reaper_tick(self, machine: MachineState) -> None:
        """One scan: reclaim from each zombie with reclaimable pages until the page budget is spent."""
        self._armed = False
        mem = machine.mem
        budget = self.knobs.pages_per_scan
        rec = None  # reclaimable pages per memcg, as of the last shrink
        for m in sorted(mem.dying, key=lambda x: (mem.offline_us[x], x)):
            if budget <= 0:
                break
            if rec is None:
                rec = self._reclaimable(machine)
            want = int(rec[m])
            if want:
                got = try_to_free_mem_cgroup_pages(machine, m, min(want, budget), may_swap=self.knobs.may_swap, full_walk=True)
                machine.counters["reaper_reclaimed_pages"] += got
                budget -= max(got, 1)
                rec = None  # the shrink changed the runs (of m's whole subtree)
        if mem.dying:
            self._arm(machine)

    def _reclaimable(self, machine: MachineState) -> np.ndarray:
        """Per memcg slot, its own pages that reclaim could take now (a cheap pre-check before a shrink).

        Resident and unpinned; not mapped page cache or shmem of a live mapper with ``mapped_hot``;
        page cache, or anon/shmem while swap has room and ``may_swap``. One scan of the run
        columns for all memcgs at once.
        """
        R, nslots = machine.runs, len(machine.mem.state)
        if not len(R):
            return np.zeros(nslots, dtype=np.int64)
        kind, mapc = R.view("kind"), R.view("mapc")
        ok = (R.view("state") == St.RESIDENT) & (R.view("pinc") == 0)
        if machine.cfg.mapped_hot:
            ok &= (mapc == 0) | (kind == Kind.ANON)
        if not (self.knobs.may_swap and machine.swap_total > machine.swap_used):
            ok &= kind == Kind.FILE
        return np.bincount(R.view("memcg")[ok], weights=R.view("npages")[ok], minlength=nslots).astype(np.int64)
