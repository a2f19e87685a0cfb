"""The cgroupfs view of one machine (memory.current, memory.stat, cgroup.stat).

In: a cgroup path. Out: what the kernel would show for the online cgroup at that
path, or for the newest dying one that had it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State, normalize_path

if TYPE_CHECKING:
    from core.state import MachineState


def cgroup_paths(machine: MachineState) -> list[str]:
    """Paths of every online and dying cgroup (dying ones may repeat an online path)."""
    return [machine.mem.path[m] for m in machine.mem.live()]


def memory_stat(machine: MachineState, path: str) -> dict:
    """What cgroupfs would show for the online cgroup at ``path`` (or the newest dying one)."""
    m = find_cgroup(machine, normalize_path(path))
    mem = machine.mem
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


def find_cgroup(machine: MachineState, path: str) -> int:
    m = machine.mem.by_path.get(path, -1)
    if m >= 0:
        return m
    dying = [x for x in machine.mem.dying if machine.mem.path[x] == path]
    if not dying:
        raise KeyError(f"no cgroup {path} on machine {machine.machine_id}")
    return max(dying, key=lambda x: (machine.mem.offline_us[x], x))
