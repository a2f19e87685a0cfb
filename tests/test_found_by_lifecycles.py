"""Model defects the lifecycle property tests found, as minimal scenarios (strict xfail until fixed).

Each scenario is a shrunk lifecycle trace (``tests/lifecycle.py``; the seed is
named). They are strict: when the model is fixed the scenario passes, pytest
reports XPASS as a failure, and the marker is removed in the fixing commit. The
lifecycle property tests skip nothing for the overcommit defects: seeds that
reach them fail ``-m slow_props`` (listed in docs/evidence.md).
"""

from __future__ import annotations

import pytest

from core.errors import TraceError
from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.ops import Flag, Op
from core.policy import make_policy
from tests.simkit import MiB, Sim


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="model defect: re-reading a file another job's read left partly evicted charges past "
                          "machine memory (resident 8,448 pages on an 8,192-page machine)")
@pytest.mark.parametrize("lru_gen", [False, True])
def test_a_second_read_of_a_partly_evicted_file_stays_within_machine_memory(lru_gen):
    """Lifecycle seed 56 (every policy): 21 MiB of anon and tmpfs, no swap, a 12 MiB file read twice."""
    sim = Sim(mem_bytes=32 * MiB, kernel="6.12", lru_gen=lru_gen)
    sim.create("lib", size=12 * MiB).mkdir("/a").start("a", "/a").create("tmp", shmem=True).write("a", "tmp", 2 * MiB)
    sim.mkdir("/b").start("b", "/b").anon("b", "heap", 13 * MiB).create("vol", shmem=True)
    sim.mkdir("/c").start("c", "/c").anon("c", "h", 1 * MiB).write("c", "vol", 5 * MiB)
    sim.mkdir("/d").start("d", "/d").read("d", "lib")
    sim.read("c", "lib")  # Sim asserts core.invariants.check after every op


#: lifecycle seed 82 shrunk (recharge_evict, zombie_reaper): 32 MiB machine, 16 MiB swap, 6.12, mapped_hot off
_SEED82 = [
    (2000000, Op.FILE_CREATE, None, None, "lib1", None, 4194304, 0),
    (4000000, Op.FILE_CREATE, None, None, "vol3", None, None, Flag.SHMEM),
    (21003000, Op.MKDIR, "/pod15", None, None, None, None, 0),
    (21303000, Op.MKDIR, "/pod15/c16", None, None, None, None, 0),
    (21603000, Op.TASK_START, "/pod15/c16", "t17", None, None, None, 0),
    (46603000, Op.ANON_ALLOC, None, "t17", "heap18", None, 16777216, 0),
    (46653000, Op.MKDIR, "/pod19", None, None, None, None, 0),
    (46703000, Op.MKDIR, "/pod19/c20", None, None, None, None, 0),
    (49703000, Op.TASK_START, "/pod19/c20", "t22", None, None, None, 0),
    (51703000, Op.FILE_WRITE, None, "t22", "vol3", 2097152, 6291456, 0),
    (72703000, Op.FILE_CREATE, None, None, "log23", None, None, 0),
    (73703000, Op.FILE_WRITE, None, "t17", "log23", None, 3211264, 0),
    (79703000, Op.FILE_MAP, None, "t17", "vol3", None, None, 0),
    (84055000, Op.FILE_READ, None, "t17", "lib1", None, None, 0),
    (84355000, Op.MKDIR, "/c24", None, None, None, None, 0),
    (85355000, Op.TASK_START, "/c24", "t25", None, None, None, 0),
    (85356000, Op.FILE_CREATE, None, None, "tmp26", None, None, Flag.SHMEM),
    (85406000, Op.FILE_WRITE, None, "t17", "tmp26", None, 1048576, 0),
    (85706000, Op.FILE_MAP, None, "t25", "lib1", None, None, 0),
]


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="model defect: mapping a file another job read charges past machine memory when the rest "
                          "is anon, swap-backed tmpfs and dirty page cache")
def test_mapping_a_read_file_under_pressure_stays_within_machine_memory():
    m = Machine(MachineConfig(mem_bytes=32 * MiB, swap_bytes=16 * MiB, kernel="6.12", mapped_hot=False,
                              sample_interval_us=5_000_000), make_policy("none"), "life", seed=82)
    for row in _SEED82:
        m.apply(EventBatch.from_rows([row], "seed82"))
        errs = check(m)
        assert not errs, f"after {Op(row[1]).name} at {row[0]}: {errs}"


@pytest.mark.parametrize("free", ["kmem", "sock"])
def test_ops_on_kernel_objects_a_killed_task_never_made(free):
    """Fixed: the kmem object or socket a killed task never made is remembered, and its free or close is
    ignored (counted in ``ops_ignored``) instead of failing the replay."""
    sim = Sim(mem_bytes=64 * MiB).mkdir("/a").start("t", "/a").limit("/a", 8 * MiB).anon("t", "heap", 16 * MiB)
    assert sim.m.counters["oom_kills"] == 1
    ignored = sim.m.counters["ops_ignored"]
    if free == "kmem":
        sim.kmem("t", "dentries", 4096).kmem_free("dentries")
    else:
        sim.sock_open("t", "s", 4096).sock_close("s")
    assert sim.m.counters["ops_ignored"] == ignored + 2


def test_unmap_of_an_unlinked_file_that_was_mapped_while_empty():
    """Fixed (lifecycle seed 560): an mmap with no page in range still holds the file (vm_file) until munmap."""
    sim = Sim().mkdir("/a").start("t", "/a").create("vol", shmem=True).map("t", "vol")
    sim.write("t", "vol", 5 * MiB).delete("vol").unmap("t", "vol")
