"""The fault path calls a policy's charge and swap-in targets only when the policy has its own.

In: every registered policy, compositions, and two small policies overriding one hook each. Out:
assertions that ``Policy.kernel_targets`` says whether both hooks are the kernel's (per class, and
for a composition per part), and that an overriding policy's hook decides the payer on a replay
(a page faulted in, a page swapped back in), so the inline kernel rules never shadow it.
"""

from __future__ import annotations

from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.memcg import ROOT
from core.memory import fault_range
from core.ops import Op
from core.policy import REGISTRY, Policy, make_policy

MiB = 1 << 20


class _ChargeRoot(Policy):
    """Every new page is charged to the root memcg."""

    name = "test_charge_root"

    def charge_target(self, machine, obj, memcg):
        return ROOT


class _SwapInToRoot(Policy):
    """Every swap-in is charged to the root memcg."""

    name = "test_swapin_root"

    def swapin_target(self, machine, run, record, memcg):
        return ROOT


def test_kernel_targets_names_the_policies_that_keep_both_hooks():
    for name, cls in REGISTRY.items():
        own = cls.charge_target is not Policy.charge_target or cls.swapin_target is not Policy.swapin_target
        assert make_policy(name).kernel_targets is not own, name
    assert make_policy("none").kernel_targets and make_policy("zombie_reaper+reparent").kernel_targets
    assert not make_policy("none+smemcg").kernel_targets and not make_policy("smemcg+zombie_reaper").kernel_targets
    assert not _ChargeRoot().kernel_targets and not _SwapInToRoot().kernel_targets


def _replay(policy: Policy, rows: list[tuple]) -> Machine:
    m = Machine(MachineConfig(mem_bytes=256 * MiB, swap_bytes=256 * MiB), policy, machine_id="m", seed=0)
    m.apply(EventBatch.from_rows(rows, source="hooks"))
    return m


_START = [(0, Op.MKDIR, "/j", None, None, None, None, 0),
          (1, Op.TASK_START, "/j", "t", None, None, None, 0),
          (2, Op.ANON_ALLOC, None, "t", "heap", None, 8 * MiB, 0)]


def test_an_overridden_charge_target_pays_for_new_pages():
    m = _replay(_ChargeRoot(), _START)
    j = m.mem.by_path["/j"]
    assert m.mem.anon[ROOT] == 2048 and m.mem.anon[j] == 0
    kernel = _replay(Policy(), _START)
    assert kernel.mem.anon[kernel.mem.by_path["/j"]] == 2048


def test_an_overridden_swapin_target_pays_for_swapped_in_pages():
    reclaim = (3, Op.RECLAIM, "/j", None, None, None, 8 * MiB, 0)  # memory.reclaim: swaps the heap out
    m = _replay(_SwapInToRoot(), _START + [reclaim])
    j = m.mem.by_path["/j"]
    swapped = m.mem.swap[j]
    assert swapped > 0, "the reclaim swapped the heap out"
    # the task touches its whole heap again: the swapped pages come back, charged to the root
    assert fault_range(m, m.task_by_name["t"], m.obj_by_name["heap"], 0, 2048, False)
    assert m.mem.anon[ROOT] == swapped and m.mem.anon[j] == 2048 - swapped
