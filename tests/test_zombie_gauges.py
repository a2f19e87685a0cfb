"""The zombie gauges a sample reads (``core.zombie_gauges``): kept as the memcgs change, equal to a count
from scratch (``sample_scan.zombie_scan``), and the invariants notice a change nobody marked. (Every
property test checks the same invariant after every event of its random traces: ``core.invariants``.)"""

from __future__ import annotations

from array import array

from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.memcg import State
from core.ops import Flag, Op
from core.policy import make_policy
from core.sample_scan import HELD_GAUGES, zombie_scan
from core.zombie_gauges import NR_HELD, ZombieGauges, touch

SEC = 1_000_000


def _machine(n: int) -> Machine:
    """``n`` jobs, each writing 8 KiB of tmpfs that outlives it, then removed one by one: ``n`` zombies."""
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy("none"), "zg")
    rows = []
    for i in range(n):
        t = (i + 1) * SEC
        rows += [(t, Op.MKDIR, f"/j{i}", None, None, 0, 0, 0), (t, Op.TASK_START, f"/j{i}", f"t{i}", None, 0, 0, 0),
                 (t, Op.FILE_CREATE, None, f"t{i}", f"/tmp/v{i}", 0, 0, Flag.SHMEM),
                 (t, Op.FILE_WRITE, None, f"t{i}", f"/tmp/v{i}", 0, 8192, 0),
                 (t, Op.TASK_EXIT, None, f"t{i}", None, 0, 0, 0), (t, Op.RMDIR, f"/j{i}", None, None, 0, 0, 0)]
    m.apply(EventBatch.from_rows(rows, "zg"))
    return m


def test_constants_are_the_tables() -> None:
    """The gauges' count and the dying state they compare with (a C constant when compiled: seen through
    ``touch``, which marks a memcg in that state and no other)."""
    assert NR_HELD == len(HELD_GAUGES)
    zg, states = ZombieGauges(), array("i", [int(s) for s in State])
    for m in range(len(states)):
        touch(zg, states, m)
    assert zg.dirty == [list(State).index(State.DYING)]


def test_kept_gauges_follow_offline_writes_and_release() -> None:
    """Zombies held by shmem pages; one file deleted (its memcg freed, the slot reused by a new memcg that
    goes offline in turn): the kept gauges equal the scan at every step."""
    m = _machine(6)
    mem = m.mem
    held, charged, swapped, basis = mem.zg.gauges(mem)
    _, *scan = zombie_scan(m)
    assert [held, charged, swapped, basis] == scan
    assert held[HELD_GAUGES.index("held_shmem")] == 6 and charged == 6 * 2 and basis[0] == 6
    t = 10 * SEC
    m.apply(EventBatch.from_rows([(t, Op.FILE_DELETE, None, None, "/tmp/v2", 0, 0, 0)], "zg"))
    assert len(mem.dying) == 5 and mem.free_slots
    assert list(mem.zg.gauges(mem)) == list(zombie_scan(m)[1:])
    rows = [(t, Op.MKDIR, "/again", None, None, 0, 0, 0), (t, Op.TASK_START, "/again", "ta", None, 0, 0, 0),
            (t, Op.FILE_CREATE, None, "ta", "/tmp/a", 0, 0, Flag.SHMEM),
            (t, Op.FILE_WRITE, None, "ta", "/tmp/a", 0, 3 * 4096, 0),
            (t, Op.TASK_EXIT, None, "ta", None, 0, 0, 0), (t, Op.RMDIR, "/again", None, None, 0, 0, 0)]
    m.apply(EventBatch.from_rows(rows, "zg"))
    assert len(mem.dying) == 6 and check(m) == []
    assert mem.zg.gauges(mem)[1] == 5 * 2 + 3


def test_a_change_nobody_marked_is_an_invariant_violation() -> None:
    """A dying memcg's column written behind the gauges' back (no ``touch``) shows in ``check``; marked,
    the gauges count it."""
    m = _machine(3)
    mem = m.mem
    z = min(mem.dying)
    assert check(m) == []
    mem.nsock[z] += 1  # a socket nobody told the gauges about
    errs = [e for e in check(m) if e.startswith("zombie gauges")]
    assert errs and "kept" in errs[0]
    touch(mem.zg, mem.state, z)
    assert not [e for e in check(m) if e.startswith("zombie gauges")]  # (the socket count itself stays wrong)
    assert mem.zg.gauges(mem)[0][HELD_GAUGES.index("held_sock")] == 1


def test_touch_marks_dying_memcgs_only() -> None:
    m = _machine(2)
    mem = m.mem
    mem.zg.gauges(mem)  # nothing marked after this
    touch(mem.zg, mem.state, 0)  # the root: online
    touch(mem.zg, mem.state, -1)  # a run charged to no memcg
    assert mem.zg.dirty == []
    z = min(mem.dying)
    touch(mem.zg, mem.state, z)
    touch(mem.zg, mem.state, z)
    assert mem.zg.dirty == [z]


def test_marks_past_the_counted_slots_grow_them() -> None:
    zg = ZombieGauges()
    zg.mark(5)
    assert len(zg.flag) >= 6 and len(zg.bits) == len(zg.charged) == len(zg.swapped) == len(zg.flag)
    zg.mark(5)
    zg.mark(200)
    assert zg.dirty == [5, 200] and len(zg.flag) >= 201


def test_a_dying_parent_loses_its_child_hold_when_the_child_is_freed() -> None:
    """/p and /p/c each keep a tmpfs page; both removed, /p is held by its pages and by /p/c. Deleting
    /p/c's file frees /p/c: /p stays dying, held by its pages alone (held_child 1 -> 0), and the
    kept gauges say so (its parent mark at the release)."""
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy("none"), "zgn")
    rows = [(SEC, Op.MKDIR, "/p", None, None, 0, 0, 0), (SEC, Op.MKDIR, "/p/c", None, None, 0, 0, 0)]
    for cg, t, f in (("/p", "tp", "/tmp/p"), ("/p/c", "tc", "/tmp/c")):
        rows += [(SEC, Op.TASK_START, cg, t, None, 0, 0, 0), (SEC, Op.FILE_CREATE, None, t, f, 0, 0, Flag.SHMEM),
                 (SEC, Op.FILE_WRITE, None, t, f, 0, 4096, 0), (SEC, Op.TASK_EXIT, None, t, None, 0, 0, 0)]
    rows += [(2 * SEC, Op.RMDIR, "/p/c", None, None, 0, 0, 0), (2 * SEC, Op.RMDIR, "/p", None, None, 0, 0, 0)]
    m.apply(EventBatch.from_rows(rows, "zgn"))
    mem, child = m.mem, HELD_GAUGES.index("held_child")
    assert len(mem.dying) == 2 and mem.zg.gauges(mem)[0][child] == 1
    m.apply(EventBatch.from_rows([(3 * SEC, Op.FILE_DELETE, None, None, "/tmp/c", 0, 0, 0)], "zgn"))
    assert len(mem.dying) == 1
    held = mem.zg.gauges(mem)[0]
    assert held[child] == 0 and held[HELD_GAUGES.index("held_shmem")] == 1
    assert list(mem.zg.gauges(mem)) == list(zombie_scan(m)[1:])
