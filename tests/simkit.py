"""A tiny driver for scenario tests: one method per op, invariants checked after every step.

In: calls like ``sim.write("a1", "shm", 4 * MiB)``. Out: a ``core.machine.Machine``
advanced one event at a time (times 1, 2, 3 … s), with ``core.invariants.check``
asserted clean after each event, and short accessors for the counters tests assert.
"""

from __future__ import annotations

from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.ops import Flag, Op
from core.policy import make_policy

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class Sim:
    """Drives one machine through single events; see the module docstring."""

    def __init__(self, policy: str = "none", knobs: dict | None = None, **cfg) -> None:
        cfg.setdefault("mem_bytes", 1 * GiB)
        cfg.setdefault("sample_interval_us", 3_600_000_000)
        self.m = Machine(MachineConfig(**cfg), make_policy(policy, knobs), machine_id="sim", seed=1)
        self.t = 0
        self.step_us = 1_000_000  # simulated time between two ops

    def op(self, op: Op, cgroup=None, task=None, obj=None, offset=None, nbytes=None, flags=0) -> "Sim":
        self.t += self.step_us
        self.m.apply(EventBatch.from_rows([(self.t, op, cgroup, task, obj, offset, nbytes, flags)], "sim"))
        errs = check(self.m)
        assert not errs, f"after {op.name} {cgroup or ''} {task or ''} {obj or ''}: {errs}"
        return self

    # one helper per op -------------------------------------------------------------
    def mkdir(self, *paths: str) -> "Sim":
        for p in paths:
            self.op(Op.MKDIR, cgroup=p)
        return self

    def rmdir(self, *paths: str) -> "Sim":
        for p in paths:
            self.op(Op.RMDIR, cgroup=p)
        return self

    def start(self, task: str, cgroup: str) -> "Sim":
        return self.op(Op.TASK_START, cgroup=cgroup, task=task)

    def exit(self, task: str) -> "Sim":
        return self.op(Op.TASK_EXIT, task=task)

    def move(self, task: str, cgroup: str) -> "Sim":
        return self.op(Op.TASK_MOVE, cgroup=cgroup, task=task)

    def create(self, obj: str, shmem: bool = False, size: int | None = None) -> "Sim":
        return self.op(Op.FILE_CREATE, obj=obj, nbytes=size, flags=Flag.SHMEM if shmem else 0)

    def write(self, task: str, obj: str, nbytes: int, offset: int = 0) -> "Sim":
        return self.op(Op.FILE_WRITE, task=task, obj=obj, offset=offset, nbytes=nbytes)

    def read(self, task: str, obj: str, nbytes: int | None = None, offset: int = 0, mayfail=False) -> "Sim":
        return self.op(Op.FILE_READ, task=task, obj=obj, offset=offset, nbytes=nbytes,
                       flags=Flag.MAYFAIL if mayfail else 0)

    def map(self, task: str, obj: str, nbytes: int | None = None, offset: int = 0) -> "Sim":
        return self.op(Op.FILE_MAP, task=task, obj=obj, offset=offset, nbytes=nbytes)

    def unmap(self, task: str, obj: str) -> "Sim":
        return self.op(Op.FILE_UNMAP, task=task, obj=obj)

    def delete(self, obj: str) -> "Sim":
        return self.op(Op.FILE_DELETE, obj=obj)

    def anon(self, task: str, region: str, nbytes: int, mayfail=False) -> "Sim":
        return self.op(Op.ANON_ALLOC, task=task, obj=region, nbytes=nbytes,
                       flags=Flag.MAYFAIL if mayfail else 0)

    def anon_free(self, task: str, region: str, nbytes: int | None = None, offset: int = 0) -> "Sim":
        return self.op(Op.ANON_FREE, task=task, obj=region, offset=offset, nbytes=nbytes)

    def pin(self, task: str, obj: str, nbytes: int | None = None, mlock: bool = False) -> "Sim":
        return self.op(Op.PIN, task=task, obj=obj, nbytes=nbytes, flags=Flag.MLOCK if mlock else 0)

    def unpin(self, task: str, obj: str, nbytes: int | None = None, mlock: bool = False) -> "Sim":
        return self.op(Op.UNPIN, task=task, obj=obj, nbytes=nbytes, flags=Flag.MLOCK if mlock else 0)

    def kmem(self, task: str, obj: str, nbytes: int, page: bool = False) -> "Sim":
        return self.op(Op.KMEM_ALLOC, task=task, obj=obj, nbytes=nbytes, flags=Flag.PAGE if page else Flag.SLAB)

    def kmem_free(self, obj: str) -> "Sim":
        return self.op(Op.KMEM_FREE, obj=obj)

    def reclaim(self, cgroup: str, nbytes: int) -> "Sim":
        return self.op(Op.RECLAIM, cgroup=cgroup, nbytes=nbytes)

    def limit(self, cgroup: str, nbytes: int | None, high: bool = False) -> "Sim":
        return self.op(Op.SET_LIMIT, cgroup=cgroup, nbytes=nbytes, flags=Flag.HIGH if high else Flag.MAX)

    def sock_open(self, task: str, sock: str, nbytes: int | None = None) -> "Sim":
        return self.op(Op.SOCK_OPEN, task=task, obj=sock, nbytes=nbytes)

    def sock_close(self, sock: str) -> "Sim":
        return self.op(Op.SOCK_CLOSE, obj=sock)

    def memory(self, nbytes: int) -> "Sim":
        return self.op(Op.MEMORY, nbytes=nbytes)

    def swap_on(self, nbytes: int) -> "Sim":
        return self.op(Op.SWAP_ON, nbytes=nbytes)

    def swap_off(self) -> "Sim":
        return self.op(Op.SWAP_OFF)

    def drop_caches(self) -> "Sim":
        return self.op(Op.DROP_CACHES)

    def sync(self) -> "Sim":
        return self.op(Op.SYNC)

    def wait(self, seconds: float) -> "Sim":
        """Let simulated time pass (the next event comes ``seconds`` later)."""
        self.t += int(seconds * 1_000_000)
        return self

    # accessors -------------------------------------------------------------------------
    def st(self, path: str) -> dict:
        return self.m.stat(path)

    def dying(self, path: str) -> bool:
        """True when a removed cgroup at ``path`` is still a zombie."""
        mem = self.m.mem
        return any(mem.path[x] == path for x in mem.dying)

    def current(self, path: str) -> int:
        return self.m.stat(path)["memory.current"]

    def n_dying(self) -> int:
        return len(self.m.mem.dying)


def NoatimeSim(policy: str = "none", knobs: dict | None = None, **cfg) -> Sim:
    """A ``Sim`` whose disk files are mounted ``noatime``: for tests of page charges and policies, where
    the relatime inode pin (a read dirties the inode on the reader's cgwb until writeback; D14, the
    atime tests in tests/test_core_scenarios.py) would add a zombie the test is not about."""
    cfg.setdefault("atime", "noatime")
    return Sim(policy, knobs, **cfg)



def object_runs(runs, o: int) -> list[int]:
    """Run ids of object ``o`` in page order from a ``RunTable``'s per-object index (empty without any)."""
    index = runs.obj_runs
    return list(index[o] or ()) if 0 <= o < len(index) else []
