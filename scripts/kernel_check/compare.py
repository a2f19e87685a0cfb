"""Diff the kernel's per-step observations against the simulator's.

In: ``parse.VmRun`` (what Linux showed), ``simulate.SimRun`` (what the model
says) and the translated ``Script`` (labels of the steps).
Out: ``ScenarioResult`` — every check made, the ones that failed, and a
per-step text table.

Checks after every step:
- the set of online cgroups (a failed mkdir/rmdir shows up here);
- ``nr_dying_descendants`` of every online cgroup and the root: exact. A dying
  cgroup has left cgroupfs, so this is how the kernel shows "dying or not";
- for every online non-root cgroup, usage by kind: ``anon``, ``file`` (page
  cache including shmem, as in memory.stat), ``shmem``, ``file_mapped``,
  ``memory.swap.current``, within max(5 %, 256 KiB);
- ``memory.current`` minus ``kernel`` (memory.stat) against the model's
  ``memory.current`` minus its ``kernel``, within max(5 %, 256 KiB) + 256 KiB.
  The kernel charges page tables, stacks and slab of the helper process, which
  the trace does not describe, hence "minus kernel"; the extra 256 KiB is the
  per-CPU charge stock (MEMCG_CHARGE_BATCH = 64 pages, one vCPU) that
  memory.current may hold precharged; both ``anon`` and this get 64 KiB more per live helper
  process in the cgroup's subtree past the first (each helper's own stack and data, which the
  trace does not describe; found by the random traces, which start up to six tasks in a cgroup);
- whether the step failed: the shell status in the VM against the model's
  failure counters (EBUSY, EAGAIN, ENOSPC, failed charges, OOM kills).
The root's usage is not compared: it holds the VM's own init, busybox and
initramfs pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scripts.kernel_check.parse import VmRun
from scripts.kernel_check.simulate import SimRun
from scripts.kernel_check.translate import Script

KIB = 1024
TOL_FRACTION = 0.05
TOL_BYTES = 256 * KIB
STOCK_BYTES = 256 * KIB
HELPER_BYTES = 64 * KIB  #: one helper process's own anon (stack, data: about 45-56 KiB), per helper past the first
USAGE_KEYS = ("anon", "file", "shmem", "file_mapped", "memory.swap.current")
FAIL_COUNTERS = ("rmdir_ebusy", "mkdir_enospc", "mkdir_failed", "reclaim_eagain", "reclaim_unsupported",
                 "charge_failed", "oom_kills", "global_oom_kills", "tasks_failed", "ops_ignored")


@dataclass(frozen=True)
class Check:
    """One comparison: kernel value vs model value of ``key`` for ``cgroup`` after ``step``."""

    step: int
    cgroup: str
    key: str
    kernel: int
    model: int
    tolerance: int

    @property
    def ok(self) -> bool:
        return abs(self.kernel - self.model) <= self.tolerance

    def formatted(self) -> tuple[str, str]:
        """(kernel value, model value) as text: MiB with two decimals, or a plain count."""
        def fmt(v: int) -> str:
            return f"{v / (1 << 20):.2f}M" if self.key not in _COUNT_KEYS else str(v)

        return fmt(self.kernel), fmt(self.model)

    def describe(self) -> str:
        kernel, model = self.formatted()
        tol = f" (tol {self.tolerance // KIB}K)" if self.tolerance else ""
        return f"{self.cgroup} {self.key}: kernel {kernel} model {model}{tol}"


_COUNT_KEYS = {"nr_dying_descendants", "online", "failed"}


@dataclass
class ScenarioResult:
    """All checks of one scenario on one kernel."""

    name: str
    release: str  #: uname -r in the VM
    kernel: str  #: the model's kernel setting
    steps: list[tuple[int, str]] = field(default_factory=list)  #: (index, label)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    accel: str = ""
    build: str = ""  #: the exact kernel build: "uname -r (Debian package version)"
    observed: "VmRun | None" = None  #: what the VM showed (live runs; records keep it)
    kernel_build: object = None  #: records.Build of a live run (package, version, uname -r, MGLRU)

    @property
    def failed_steps(self) -> set[int]:
        """Steps with at least one failed check."""
        return {c.step for c in self.failures}

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def steps_agreeing(self) -> int:
        bad = {c.step for c in self.failures}
        return sum(1 for i, _ in self.steps if i not in bad)

    @property
    def agrees(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """Per-step text table: step, op, verdict, and every failed check."""
        lines = [f"{'step':>4}  {'op':<40} verdict"]
        for i, label in self.steps:
            bad = [c for c in self.failures if c.step == i]
            lines.append(f"{i:>4}  {label[:40]:<40} {'ok' if not bad else 'DIFF'}")
            lines.extend(f"{'':>6}{c.describe()}" for c in bad)
        return "\n".join(lines)


def tolerance(model_value: int, extra: int = 0) -> int:
    """max(5 % of the model's value, 256 KiB), plus ``extra``."""
    return max(int(TOL_FRACTION * abs(model_value)), TOL_BYTES) + extra


def _user_bytes(stats: dict[str, int]) -> int:
    return stats.get("memory.current", 0) - stats.get("kernel", 0)


def _usage_checks(step: int, cg: str, vm: dict[str, int], sim: dict[str, int], helpers: int = 0) -> list[Check]:
    own = HELPER_BYTES * max(0, helpers - 1)  # the first helper's anon is inside TOL_BYTES already
    out = [Check(step, cg, k, vm.get(k, 0), sim.get(k, 0), tolerance(sim.get(k, 0), own if k == "anon" else 0))
           for k in USAGE_KEYS]
    user = _user_bytes(sim)
    out.append(Check(step, cg, "memory.current-kernel", _user_bytes(vm), user,
                     tolerance(user, STOCK_BYTES + own)))
    return out


def step_checks(step: int, vm: dict[str, dict[str, int]], sim: dict[str, dict[str, int]],
                cgroups: list[str], helpers: dict[str, int] | None = None) -> list[Check]:
    """Checks of one step; ``cgroups`` are the trace's cgroups (root always added); ``helpers``: live
    helper processes per cgroup subtree (``Script.helpers``), whose own anon the trace does not describe."""
    out = []
    for cg in ["/"] + [c for c in cgroups if c != "/"]:
        in_vm, in_sim = cg in vm, cg in sim
        out.append(Check(step, cg, "online", int(in_vm), int(in_sim), 0))
        if not (in_vm and in_sim):
            continue
        out.append(Check(step, cg, "nr_dying_descendants", vm[cg].get("nr_dying_descendants", 0),
                         sim[cg].get("nr_dying_descendants", 0), 0))
        if cg != "/":
            out.extend(_usage_checks(step, cg, vm[cg], sim[cg], (helpers or {}).get(cg, 0)))
    return out


def compare(name: str, script: Script, vm: VmRun, sim: SimRun, seconds: float = 0.0) -> ScenarioResult:
    """Every check of every step of one scenario."""
    res = ScenarioResult(name, vm.release, sim.kernel, seconds=seconds, build=vm.release)
    for step in script.steps:
        res.steps.append((step.index, step.label))
        res.checks.extend(step_checks(step.index, vm.steps.get(step.index, {}),
                                      sim.steps.get(step.index, {}), script.cgroups, script.helpers.get(step.index)))
        # a write of memory.max below usage that ends in an OOM kill still succeeds (memory_max_write,
        # mm/memcontrol.c, returns nbytes after mem_cgroup_out_of_memory): the kill is not the step's failure
        counted = FAIL_COUNTERS if step.op != "set_limit" else tuple(k for k in FAIL_COUNTERS if "oom" not in k)
        model_failed = any(sim.counters.get(step.index, {}).get(k) for k in counted)
        res.checks.append(Check(step.index, "-", "failed", int(vm.rc.get(step.index, 0) != 0),
                                int(model_failed), 0))
    return res
