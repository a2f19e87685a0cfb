"""``reparent``: LRU charges move to the parent at offline; swap records stay.

In: a memcg going offline. Out: each of its resident runs charged to the parent
(own counters move, the hierarchy is unchanged), the zombie freed unless swap
records or dying children still hold it.

Source: Muchun Song, "Use obj_cgroup APIs to charge the LRU pages" (v6,
<20220621125658.64935-1-songmuchun@bytedance.com>), revived by Muchun Song /
Qi Zheng as "Eliminate Dying Memory Cgroup" (v3,
cover.1768389889.git.zhengqi.arch@bytedance.com; in linux-next as of
next-20260408): folios are charged to an objcg that is repointed to the
parent, and the LRU lists are spliced into the parent's, keeping their order
(the run's LRU age is kept). Swap-entry IDs are not reparented (KERNEL-MODEL.md §5).

Weaknesses the model shows (talk, "Non-fixes"): the parent owns memory it
never used (misattributed bytes), zombie memory is hidden in it (no zombie, but
the bytes stay), the parent's pgscan/pgsteal count the moved pages, reclaim no
longer scrapes them as a dying memcg's, and repeated offlining cascades them to
the root, where they become unowned (root_charged_bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.policy import Policy, register
from core.recharge import reparent_run, resident_runs

if TYPE_CHECKING:
    from core.state import MachineState


@register
class Reparent(Policy):
    """Move every resident run of an offlined memcg to its parent."""

    name = "reparent"
    source = ("Muchun Song, 'Use obj_cgroup APIs to charge the LRU pages' v6 "
              "<20220621125658.64935-1-songmuchun@bytedance.com>; 'Eliminate Dying Memory Cgroup' v3 "
              "cover.1768389889.git.zhengqi.arch@bytedance.com (linux-next 2026); talk non-fix 'Reparent'")

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        # No walk cost is counted: the series splices whole LRU lists under the lruvec locks.
        runs = resident_runs(machine, memcg)
        objs = set()
        for r in runs:
            objs.add(machine.runs.obj[r])
            reparent_run(machine, r)
        for o in sorted(objs):  # neighbouring runs now in the parent may merge again
            machine.runs.coalesce(o, 0, 1 << 62)
