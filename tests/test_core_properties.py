"""Property tests over random valid traces: conservation, no negatives, dying ⇔ referenced, determinism.

A trace is drawn as a list of abstract steps; ``_build`` turns them into a valid
native trace by keeping track of which cgroups, tasks and objects exist, so every
generated trace is one a real host could produce. The machine is checked with
``core.invariants.check`` after every event, for every policy. These short op-level
traces rarely reach zombies under pressure; ``tests/test_lifecycle_properties.py``
generates whole container lifecycles that do, and measures how often.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.ops import Flag, Op
from core.policy import POLICY_NAMES, make_policy

MiB = 1 << 20
ACTIONS = ("mkdir", "rmdir", "start", "exit", "move", "anon", "anon_free", "create", "write", "read",
           "map", "unmap", "delete", "pin", "unpin", "kmem", "kmem_free", "reclaim", "limit", "drop",
           "sock", "sock_close")

step = st.tuples(st.sampled_from(ACTIONS), st.integers(0, 50), st.integers(0, 50), st.integers(1, 64))


def _build(steps: list[tuple[str, int, int, int]]) -> list[tuple]:
    """Abstract steps -> valid event rows (time, op, cgroup, task, object, offset, bytes, flags)."""
    rows: list[tuple] = []
    online = ["/"]
    tasks: dict[str, str] = {}
    files: list[str] = []
    regions: dict[str, str] = {}
    pins: list[tuple[str, str, int]] = []
    kmem: list[str] = []
    socks: list[str] = []  # open sockets: they outlive their openers until closed
    n = 0
    for t, (act, a, b, size) in enumerate(steps):
        time = t * 1_000_000
        pick = lambda seq, i: seq[i % len(seq)] if seq else None  # noqa: E731
        ev = None
        if act in _NEEDS_TASK and not tasks:
            act = "start"  # make the prerequisite instead of dropping the step
        elif act in ("read", "write", "map", "unmap", "delete") and not files:
            act = "create"
        if act == "mkdir":
            parent = pick(online, a)
            path = f"{parent.rstrip('/')}/c{n}"
            n += 1
            online.append(path)
            ev = (Op.MKDIR, path, None, None, None, None, 0)
        elif act == "rmdir" and len(online) > 1:
            leaves = [p for p in online[1:] if not any(q.startswith(p + "/") for q in online)]
            path = pick(leaves, a)
            for task in sorted(k for k, c in tasks.items() if c == path):  # the job ends first
                rows.append((time, *_task_step("exit", task, 0, 1, tasks, online, files, regions, pins,
                                               kmem, rows, time)))
            online.remove(path)
            ev = (Op.RMDIR, path, None, None, None, None, 0)
        elif act == "start":
            name = f"t{n}"
            n += 1
            tasks[name] = pick(online, a)
            ev = (Op.TASK_START, tasks[name], name, None, None, None, 0)
        elif act == "sock" and tasks:
            name = f"s{n}"
            n += 1
            socks.append(name)
            ev = (Op.SOCK_OPEN, None, pick(sorted(tasks), a), name, None, size * 4096 if b % 3 else None, 0)
        elif act == "sock_close" and socks:
            ev = (Op.SOCK_CLOSE, None, None, socks.pop(b % len(socks)), None, None, 0)
        elif act in ("exit", "move", "anon", "anon_free", "read", "write", "map", "unmap", "pin", "unpin",
                     "kmem") and tasks:
            task = pick(sorted(tasks), a)
            ev = _task_step(act, task, b, size, tasks, online, files, regions, pins, kmem, rows, time)
        elif act == "create":
            name = f"f{n}"
            n += 1
            files.append(name)
            ev = (Op.FILE_CREATE, None, None, name, None, size * 65536 if b % 2 else None,
                  Flag.SHMEM if b % 2 == 0 else 0)
        elif act == "delete" and files:
            name = pick(files, b)
            files.remove(name)
            pins[:] = [p for p in pins if p[1] != name]
            ev = (Op.FILE_DELETE, None, None, name, None, None, 0)
        elif act == "kmem_free" and kmem:
            name = pick(kmem, b)
            kmem.remove(name)
            ev = (Op.KMEM_FREE, None, None, name, None, None, 0)
        elif act == "reclaim":
            ev = (Op.RECLAIM, pick(online, a), None, None, None, size * 65536, 0)
        elif act == "limit" and len(online) > 1:
            ev = (Op.SET_LIMIT, pick(online[1:], a), None, None, None, size * MiB, Flag.MAX if b % 2 else Flag.HIGH)
        elif act == "drop":
            ev = (Op.DROP_CACHES, None, None, None, None, None, 0)
        if ev is not None:
            rows.append((time, *ev))
    return rows


_NEEDS_TASK = ("exit", "move", "anon", "anon_free", "read", "write", "map", "unmap", "pin", "unpin", "kmem",
               "sock")


def _task_step(act, task, b, size, tasks, online, files, regions, pins, kmem, rows, time):
    """One step that names a live task; keeps the bookkeeping of ``_build`` right."""
    nbytes = size * 65536
    pick = lambda seq, i: seq[i % len(seq)] if seq else None  # noqa: E731
    if act == "exit":
        del tasks[task]
        for r in [r for r, o in regions.items() if o == task]:
            del regions[r]
            pins[:] = [p for p in pins if p[1] != r]
        pins[:] = [p for p in pins if p[0] != task]
        return (Op.TASK_EXIT, None, task, None, None, None, 0)
    if act == "move":
        tasks[task] = pick(online, b)
        return (Op.TASK_MOVE, tasks[task], task, None, None, None, 0)
    if act == "anon":
        region = f"{task}.r{b % 3}"
        regions[region] = task
        return (Op.ANON_ALLOC, None, task, region, None, nbytes, Flag.MAYFAIL if b % 5 == 0 else 0)
    mine = sorted(r for r, o in regions.items() if o == task)
    if act == "anon_free" and mine:
        region = pick(mine, b)
        if b % 2:
            del regions[region]
            pins[:] = [p for p in pins if p[1] != region]
            return (Op.ANON_FREE, None, task, region, None, None, 0)
        return (Op.ANON_FREE, None, task, region, 4096 * (b % 8), nbytes, 0)
    if act in ("read", "write", "map", "unmap") and files:
        f = pick(files, b)
        op = {"read": Op.FILE_READ, "write": Op.FILE_WRITE, "map": Op.FILE_MAP, "unmap": Op.FILE_UNMAP}[act]
        if act == "unmap":
            return (op, None, task, f, None, None, 0)
        return (op, None, task, f, 4096 * (b % 4), nbytes, 0)
    if act == "pin":
        target = pick(mine + files, b)
        if target is None:
            return None
        flag = Flag.MLOCK if b % 2 else 0
        pins.append((task, target, nbytes, flag))
        return (Op.PIN, None, task, target, None, nbytes, flag)
    if act == "unpin":
        held = [p for p in pins if p[0] == task]
        if not held:
            return None
        p = pick(held, b)
        pins.remove(p)
        return (Op.UNPIN, None, task, p[1], None, p[2], p[3])
    if act == "kmem":
        name = f"k{len(rows)}"
        if b % 2 == 0:
            kmem.append(name)
        return (Op.KMEM_ALLOC, None, task, name, None, 4096 * size, Flag.SLAB if b % 2 == 0 else Flag.PAGE)
    return None


def _machine(policy: str, cfg: dict) -> Machine:
    return Machine(MachineConfig(sample_interval_us=5_000_000, **cfg), make_policy(policy), "prop", seed=3)


def _replay_checked(policy: str, cfg: dict, rows: list[tuple]) -> Machine:
    m = _machine(policy, cfg)
    for row in rows:
        m.apply(EventBatch.from_rows([row], "prop"))
        errs = check(m)
        assert not errs, f"after {Op(row[1]).name} at {row[0]}: {errs[:5]}"
    m.advance_to(rows[-1][0] + 10_000_000 if rows else 0)
    assert not check(m)
    return m


CONFIGS = st.sampled_from([
    {"mem_bytes": 256 * MiB, "swap_bytes": 0, "kernel": "6.12"},
    {"mem_bytes": 64 * MiB, "swap_bytes": 32 * MiB, "kernel": "6.1"},
    {"mem_bytes": 48 * MiB, "swap_bytes": 8 * MiB, "kernel": "5.10", "lru_gen": True},
    {"mem_bytes": 96 * MiB, "swap_bytes": 64 * MiB, "kernel": "6.18", "mapped_hot": False},
])


@pytest.mark.parametrize("policy", POLICY_NAMES)  # every policy every run (sampling left some at 0)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=10, max_size=80), cfg=CONFIGS)
def test_invariants_hold_after_every_event(steps, cfg, policy):
    _replay_checked(policy, cfg, _build(steps))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=10, max_size=80), cfg=CONFIGS, policy=st.sampled_from(POLICY_NAMES),
       cut=st.integers(0, 60))
def test_same_trace_same_metrics_whatever_the_batching_and_checkpoints(steps, cfg, policy, cut):
    rows = _build(steps)
    whole = _machine(policy, cfg)
    whole.apply(EventBatch.from_rows(rows, "p"))
    split = _machine(policy, cfg)
    k = min(cut, len(rows))
    split.apply(EventBatch.from_rows(rows[:k], "p"))
    taken = split.take_jobs()  # freed cgroups' rows handed out as a replay does, then forgotten
    split = pickle.loads(pickle.dumps(split))  # a checkpoint in the middle
    split.apply(EventBatch.from_rows(rows[k:], "p"))
    end = (rows[-1][0] if rows else 0) + 20_000_000
    for m in (whole, split):
        m.advance_to(end)
    a, b = whole.take_samples(), split.take_samples()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    rest = split.job_table()
    assert whole.job_table() == {k: taken[k] + rest[k] for k in rest}
    late = split.take_jobs()  # what was freed after the cut; the machine keeps only live cgroups
    assert late["cgroup"] == rest["cgroup"][:len(late["cgroup"])]
    assert all(f == -1 for f in split.job_table()["freed_us"]) and split.take_jobs()["cgroup"] == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.booleans()), min_size=1, max_size=12),
       st.integers(1, 1 << 21), st.booleans(), st.booleans(), st.booleans())
def test_reclaim_quotas_on_lists_equal_the_vectorised_ones(memcgs, target, full_walk, lru_gen, abort):
    """The batched reclaim's list path takes exactly what the numpy rounds take (with and
    without MGLRU's should_abort_scan cut)."""
    from core.scan_count import _quotas_small
    from core.scan_count import quotas as _quotas
    sizes, dying = [s for s, _ in memcgs], [d for _, d in memcgs]
    q, visited, last = _quotas(np.array(sizes, dtype=np.int64), np.array(dying), target, full_walk, lru_gen,
                               root_abort=abort)
    assert _quotas_small(sizes, dying, target, full_walk, lru_gen, abort) == (q.tolist(), visited, last)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 5000), st.integers(0, 3)), min_size=1, max_size=400),
       st.lists(st.integers(0, 20000), min_size=41, max_size=41), st.randoms(use_true_random=False))
def test_reclaim_takes_in_order_equal_the_numpy_ones(runs, quota, rnd):
    """``_select_oldest``'s takes after its sort (compiled: one C pass, ``_take_in_order``) are the numpy
    ones (``_take_in_order_np``, the pure build's): run ids and pages, memcg by memcg in sort order."""
    import core
    from core.vmscan import _take_in_order, _take_in_order_np
    ids = np.array(rnd.sample(range(10 * len(runs)), len(runs)), dtype=np.int64)
    owners = np.array([m for m, _, _ in runs], dtype=np.int64)
    npages = np.array([n for _, n, _ in runs], dtype=np.int64)
    order = np.lexsort((np.array([a for _, _, a in runs]), owners))  # the memcgs' runs grouped, as the sort does
    per_slot = np.array(quota, dtype=np.int64)
    want = _take_in_order_np(order, ids, owners, npages, per_slot)
    if core.BUILD == "compiled":
        assert _take_in_order(order, ids, owners, npages, per_slot) == want
    assert all(t > 0 for t in want[1])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1 << 40), st.booleans()), min_size=1, max_size=700),
       st.integers(1, 1 << 42), st.booleans(), st.booleans(), st.booleans())
def test_reclaim_quotas_equal_the_numpy_rounds(memcgs, target, full_walk, lru_gen, abort):
    """``quotas`` (compiled: C loops over the memcgs, ``_quotas_c``) takes exactly what the numpy
    rounds (``_quotas_np``, the pure build's) take, for global reclaim's hundreds of memcgs too."""
    from core.scan_count import _quotas_np, quotas
    sizes = np.array([s for s, _ in memcgs], dtype=np.int64)
    dying = np.array([d for _, d in memcgs])
    q, visited, last = quotas(sizes, dying, target, full_walk, lru_gen, root_abort=abort)
    ref, ref_visited, ref_last = _quotas_np(sizes, dying, target, full_walk, lru_gen, root_abort=abort)
    assert q.dtype == ref.dtype == np.int64
    assert (q.tolist(), visited, last) == (ref.tolist(), ref_visited, ref_last)
