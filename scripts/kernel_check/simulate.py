"""Run a scenario trace through the simulator one row at a time, like the VM does.

In: an Arrow trace table (one machine) and the kernel series of the VM.
Out: ``SimRun`` — after every row, the ``Machine.stat`` view of every online
cgroup (the cgroups that the VM's cgroupfs would list) and the model's
counters that changed in that step (EBUSY, EAGAIN, ...).

The machine is configured like the VM: policy ``none``, the VM's kernel
version and MGLRU setting, one CPU, one NUMA node, the VM's RAM, no swap
until ``swap_on``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pyarrow as pa

from core.machine import Machine, MachineConfig
from core.policy import make_policy
from scripts.kernel_check.translate import mount_option
from traces.batches import machine_batches

Stats = dict[str, int]


@dataclass
class SimRun:
    """Per-step model observations, keyed like ``parse.VmRun``."""

    kernel: str
    steps: dict[int, dict[str, Stats]] = field(default_factory=dict)
    counters: dict[int, dict[str, int]] = field(default_factory=dict)  #: counters that grew in the step


def machine_config(kernel: str, mem_bytes: int, lru_gen: bool,
                   watermarks: tuple[int, int] | None = None, atime: str = "relatime") -> MachineConfig:
    """The simulator's stand-in for the VM (kernel "6.1" or "6.12"; MGLRU as the VM boots it).

    ``mem_bytes`` is what the VM had free at boot, so the model's free memory starts where the
    VM's did; ``watermarks`` are the VM's (low, high) zone watermarks in pages, when known.
    """
    cfg = MachineConfig(mem_bytes=mem_bytes, swap_bytes=0, cpus=1, numa_nodes=1, kernel=kernel,
                        lru_gen=lru_gen, atime=atime)
    if watermarks and all(watermarks) and mem_bytes > 0:
        pages = mem_bytes // 4096
        cfg = replace(cfg, watermark_low=watermarks[0] / pages, watermark_high=watermarks[1] / pages)
    return cfg


def _online_stats(m: Machine) -> dict[str, Stats]:
    out: dict[str, Stats] = {}
    for path in sorted(set(m.cgroup_paths()) | {"/"}):
        st = m.stat(path)
        if not st["dying"]:
            out[path] = {k: int(v) for k, v in st.items() if k != "dying"}
    return out


def simulate(table: pa.Table, source: str, kernel: str, mem_bytes: int, lru_gen: bool = False,
             watermarks: tuple[int, int] | None = None) -> SimRun:
    """Replay ``table`` row by row; observations after each row (step -1: before the first)."""
    batches = list(machine_batches(table, source))
    if len(batches) != 1:
        raise ValueError(f"{source}: the kernel harness replays exactly one machine, got {len(batches)}")
    machine_id, batch = batches[0]
    m = Machine(machine_config(kernel, mem_bytes, lru_gen, watermarks, mount_option(source)), policy=make_policy("none"),
                machine_id=machine_id, seed=0)
    run = SimRun(kernel)
    run.steps[-1] = _online_stats(m)
    before = dict(m.counters)
    for i in range(len(batch)):
        m.apply(batch.slice(i, i + 1))
        run.steps[i] = _online_stats(m)
        now = dict(m.counters)
        grown = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
        run.counters[i] = {k: v for k, v in grown.items() if k != "events"}
        before = now
    return run
