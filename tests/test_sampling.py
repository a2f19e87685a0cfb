"""Samples as change points: an unchanged machine costs O(1) per stretch, and the columns are exact.

The reference is the same machine sampled in full at every interval (``Sampler.full``): the
change-point timeline must give the same columns bit for bit (zombie ages included, which keep
growing while nothing else changes), whatever the batching and wherever the samples are taken.
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.metrics import ROW, SAMPLE_COLUMNS
from core.ops import Flag, Op
from core.policy import POLICY_NAMES, make_policy
from tests.lifecycle import lifecycle_trace, never_made

SEC = 1_000_000
DAY = 86_400 * SEC


def _replay(policy: str, seed: int, full: bool) -> dict[str, np.ndarray]:
    """Lifecycle trace ``seed`` in random batches with samples taken at random points; all samples."""
    cfg, rows = lifecycle_trace(seed)
    m = Machine(MachineConfig(**cfg), make_policy(policy), "s", seed=seed)
    m.sampler.full = full
    rng = random.Random(seed)
    parts: list[dict[str, np.ndarray]] = []
    batch: list[tuple] = []
    for row, nxt in zip(rows, [r[0] for r in rows[1:]] + [rows[-1][0]]):
        if never_made(m, row):
            continue
        batch.append(row)
        if rng.random() < 0.2:
            m.apply(EventBatch.from_rows(batch, "s"))
            batch = []
            if rng.random() < 0.3:  # up to the next row's time, at most
                m.advance_to(rng.choice((row[0], nxt)))
                parts.append(m.take_samples())
    if batch:
        m.apply(EventBatch.from_rows(batch, "s"))
    m.advance_to(rows[-1][0] + 3_600 * SEC)
    parts.append(m.take_samples())
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].tobytes() == b[k].tobytes(), f"column {k} differs"


@pytest.mark.parametrize("seed", range(24))
def test_change_points_equal_full_sampling(seed: int) -> None:
    policy = POLICY_NAMES[seed % len(POLICY_NAMES)]
    _assert_same(_replay(policy, seed, full=False), _replay(policy, seed, full=True))


def _zombie_machine(n_zombies: int, ties: int = 1) -> Machine:
    """A machine with ``n_zombies`` dying memcgs (each holds a tmpfs page), removed at different times
    (``ties`` > 1: that many at a time)."""
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy("none"), "z")
    rows = []
    for i in range(n_zombies):
        t = (i // ties * 37 + 1) * SEC
        rows += [(t, Op.MKDIR, f"/j{i}", None, None, 0, 0, 0), (t, Op.TASK_START, f"/j{i}", f"t{i}", None, 0, 0, 0),
                 (t, Op.FILE_CREATE, None, f"t{i}", f"/tmp/v{i}", 0, 0, Flag.SHMEM),
                 (t, Op.FILE_WRITE, None, f"t{i}", f"/tmp/v{i}", 0, 8192, 0),
                 (t + SEC, Op.TASK_EXIT, None, f"t{i}", None, 0, 0, 0), (t + SEC, Op.RMDIR, f"/j{i}", None, None, 0, 0, 0)]
    m.apply(EventBatch.from_rows(sorted(rows, key=lambda r: r[0]), "z"))
    return m


@pytest.mark.parametrize("n_zombies", [0, 1, 2, 5, 6])
def test_idle_day_is_one_stored_row_and_ages_exact(n_zombies: int) -> None:
    fast, ref = _zombie_machine(n_zombies), _zombie_machine(n_zombies)
    ref.sampler.full = True
    for m in (fast, ref):
        m.advance_to(DAY)
    # samples while the events ran (the last at <= 4 min), then one stored row for the idle rest of the day
    reps = list(fast.sampler._rows)[1::ROW]  # each stored row's repeat count
    assert len(reps) <= 5 and reps[-1] >= DAY // (60 * SEC) - 4
    a, b = fast.take_samples(), ref.take_samples()
    _assert_same(a, b)
    assert len(a["time_us"]) == DAY // (60 * SEC) + 1
    assert int(a["memcgs_dying"][-1]) == n_zombies
    if n_zombies:
        assert a["zombie_age_max_s"][-1] > a["zombie_age_max_s"][-2] > 0


def test_idle_stretch_split_by_takes_and_pickles() -> None:
    """Taking samples mid-stretch or resuming from a pickle gives the columns of one long stretch."""
    whole, split = _zombie_machine(3), _zombie_machine(3)
    whole.advance_to(DAY)
    parts = []
    for t in (3_600 * SEC, 3_600 * SEC + 1, 7 * 3_600 * SEC):
        split.advance_to(t)
        parts.append(split.take_samples())
        split = pickle.loads(pickle.dumps(split))
    split.advance_to(DAY)
    parts.append(split.take_samples())
    _assert_same(whole.take_samples(), {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def test_queued_work_breaks_an_idle_stretch() -> None:
    """A policy's periodic work changes the state: samples after it are computed, not repeated."""
    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy("zombie_reaper"), "q")
    ref = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy("zombie_reaper"), "q")
    ref.sampler.full = True
    for x in (m, ref):
        x.apply(EventBatch.from_rows([(0, Op.MKDIR, "/a", None, None, 0, 0, 0),
                                      (SEC, Op.RMDIR, "/a", None, None, 0, 0, 0)], "q"))
        x.advance_to(6 * 3_600 * SEC)
    _assert_same(m.take_samples(), ref.take_samples())


@pytest.mark.parametrize("row_group", [37, 360, 1000, 1 << 20])
def test_compact_timeline_is_written_as_the_expanded_one(row_group: int, monkeypatch) -> None:
    """The per-machine Parquet written chunk by chunk from change points is byte for byte the file of
    the expanded table, whatever the chunk boundaries; the last samples agree too."""
    import replay.outputs as outputs
    from core.metrics import expand_columns, points_columns
    from replay.coordinator import last_samples

    parts = []
    for i in range(7):
        m = _zombie_machine(i)
        m.advance_to(DAY // 4)
        parts.append(m.take_sample_points())
    compact = points_columns(parts, list(range(7)))
    full = expand_columns(compact)
    monkeypatch.setattr(outputs, "ROW_GROUP", row_group)
    assert outputs.parquet_bytes(compact) == outputs.parquet_bytes(full)
    _assert_same(last_samples(compact), last_samples(full))


def test_zombie_ages_from_the_basis_are_np_median_bit_for_bit() -> None:
    """Full samples and repeats both derive ages from ``_age_basis``: check the derivation itself
    (the columns' numpy form and a full sample's scalar one) against np.median and max of
    ``(t - offline) / 1e6``, odd and even counts, large times, the offline times as a list or an array."""
    from core.metrics import _zombie_ages, _zombie_ages_at
    from core.sample_scan import age_basis as _age_basis

    rng = np.random.default_rng(7)
    for i in range(3000):
        off = rng.integers(0, 10**13, size=int(rng.integers(1, 12)), dtype=np.int64)
        t = int(rng.integers(10**13, 3 * 10**13))
        basis = _age_basis(off.tolist() if i % 2 else off)
        p50, oldest = _zombie_ages(np.array([t]), *(np.array([x]) for x in basis))
        ages = (t - off) / 1e6
        assert p50[0] == np.median(ages) and oldest[0] == ages.max(), (off.tolist(), t)
        assert _zombie_ages_at(t, basis) == (p50[0], oldest[0]), (off.tolist(), t)


def test_a_sample_puts_each_value_under_its_column() -> None:
    """``Sampler`` stores a row's values positionally: each must land under its own column."""
    m = _zombie_machine(3)  # 3 dying memcgs, each charged 2 shmem pages, none online
    m.counters["oom_kills"] = 7
    snap = m.sampler.snapshot(m.now_us)
    assert list(snap) == list(SAMPLE_COLUMNS) and len(m.sampler._values(m.now_us)) == len(SAMPLE_COLUMNS)
    assert snap["time_us"] == m.now_us and snap["memcgs_online"] == 0 and snap["memcgs_dying"] == 3
    assert snap["held_shmem"] == 3 and snap["held_file"] == 0 and snap["held_child"] == 0
    assert snap["zombie_charged_bytes"] == snap["shmem_bytes"] == 6 * 4096 and snap["anon_bytes"] == 0
    assert snap["cost_dying_bytes"] == 3 * m.memcg_cost and snap["percpu_dying_bytes"] == 3 * m.percpu_bytes
    assert snap["ids_in_use"] == m.mem.ids_in_use and snap["events"] == m.counters["events"] == 18
    assert snap["oom_kills"] == 7 and snap["borrowed_bytes"] == 0


def test_a_counter_outside_counters_is_refused() -> None:
    m = _zombie_machine(1)
    m.counters["not_a_counter"] = 1
    with pytest.raises(RuntimeError, match="not_a_counter"):
        m.sampler.snapshot(m.now_us)


def test_age_basis_of_many_zombies_is_the_sorted_order_statistics() -> None:
    """Thousands of zombies take numpy's partition, a few Python's sort: both give the sorted set's
    middle and first values, whatever form the offline times come in, ties included."""
    from array import array

    from core.sample_scan import age_basis as _age_basis

    rng = np.random.default_rng(11)
    for i in range(400):
        n = int(rng.integers(1, 4000))
        off = rng.integers(0, 10**13, size=n, dtype=np.int64)
        if i % 3 == 0:
            off[: n // 2] = off[0]  # ties
        s = np.sort(off)
        want = (n, int(s[(n - 1) // 2]), int(s[n // 2]), int(s[0]))
        for form in (off, off.tolist(), array("q", off.tolist())):
            assert _age_basis(form) == want, (n, type(form))


@pytest.mark.parametrize("n_zombies", [0, 1, 2, 5, 64, 65, 150])
def test_the_kept_zombie_gauges_give_the_basis_of_the_offline_times(n_zombies: int) -> None:
    """The kept gauges read the offline times in ``dying_order`` (a C walk when compiled, numpy when
    pure); the basis is that of sorting them, with memcgs removed at the same time and some of them
    freed (holes in the order)."""
    import core.sample_scan as scan
    from core.zombie_gauges import order_basis

    m = _zombie_machine(n_zombies, ties=3)
    _free_some(m, every=4)
    assert check(m) == []
    mem = m.mem
    want = scan.age_basis([mem.offline_us[i] for i in sorted(mem.dying)])
    assert mem.zg.gauges(mem)[3] == want == scan.zombie_scan(m)[4]
    assert order_basis(mem.dying_order, mem.dying_off, len(mem.dying)) == want
    with pytest.raises(RuntimeError, match="dying_order lists"):  # a middle past the listed memcgs
        order_basis(mem.dying_order, mem.dying_off, 2 * len(mem.dying) + 2)
    if len(mem.dying) > 1:  # more listed than the dying set: both builds walk the whole order and say so
        with pytest.raises(RuntimeError, match="dying_order lists"):
            order_basis(mem.dying_order, mem.dying_off, len(mem.dying) - 1)


def _free_some(m: Machine, every: int) -> None:
    """Free every ``every``-th zombie of ``m`` (truncate its tmpfs file: nothing holds it any more)."""
    gone = sorted(m.mem.dying)[::every]
    rows = [(m.now_us + SEC, Op.FILE_DELETE, None, None, f"/tmp/v{m.mem.path[x][2:]}", 0, 0, 0)
            for x in gone]
    if rows:
        m.apply(EventBatch.from_rows(rows, "z"))
    assert not set(gone) & m.mem.dying


def test_the_offline_order_keeps_ties_holes_and_a_clock_that_goes_back() -> None:
    """``dying_order``: offline order by time; freed memcgs leave holes that are dropped once half of
    it; a table driven with an earlier time (not the machine's clock) still gets it in order."""
    from core.memcg import MemcgTable

    m = _zombie_machine(40, ties=4)
    mem = m.mem
    _free_some(m, every=3)
    assert check(m) == [] and mem.dying_holes > 0
    _free_some(m, every=1)  # all of them: the entries are rewritten without holes
    assert check(m) == [] and len(mem.dying_order) <= 2 * mem.dying_holes + 1
    t = MemcgTable()
    for path, when in (("/a", 50), ("/b", 20), ("/c", 50), ("/d", 10), ("/e", 20)):
        t.offline(t.mkdir(path, 0)[1], when)
    assert list(t.dying_off) == [10, 20, 20, 50, 50]
    assert [t.path[x] for x in t.dying_order] == ["/d", "/b", "/e", "/a", "/c"]
    bad = _zombie_machine(3)
    live = sorted(bad.mem.dying)[-1]
    bad.mem.dying_order.append(live)  # listed twice: the invariants say so
    bad.mem.dying_off.append(bad.mem.offline_us[live])
    assert any("dying_order lists" in e for e in check(bad))
    orphan = _zombie_machine(2)
    orphan.mem.children[0].discard(max(orphan.mem.children[0]))  # what a sample's held_child reads
    assert any(e.startswith("children[/#0]") for e in check(orphan))


def test_rows_are_int64_fields_in_one_buffer_and_an_overflow_stores_nothing() -> None:
    """A machine's stored rows are ``ROW`` int64 fields each in one typed buffer (no object per row);
    a value that does not fit 64 bits is an error, as in the pure build, and leaves the stored rows as
    they were."""
    m = _zombie_machine(2)
    m.advance_to(3_600 * SEC)
    rows = m.sampler._rows
    assert rows.typecode == "q" and len(rows) % ROW == 0 and len(rows) > 0
    before = rows.tolist()
    m.counters["oom_kills"] = 1 << 63
    m.changes += 1
    with pytest.raises(OverflowError):
        m.advance_to(4 * 3_600 * SEC)
    assert m.sampler._rows.tolist() == before
    m.counters["oom_kills"] = 0
    m.advance_to(4 * 3_600 * SEC)
    pts = m.take_sample_points()
    assert pts.dtype == np.int64 and pts.shape[1] == ROW


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_stored_row_is_the_pure_builds_fields(policy: str) -> None:
    """A stored row (compiled: filled by C from the typed state) holds what the pure build computes from
    ``_zombies``, ``_usage`` and the counters, field for field, after a generated trace's first hours
    (zombies, and under smemcg hidden memcgs, under deferred recharge parked pages)."""
    from core.metrics import ROW_HEADER
    from traces.batches import machine_batches
    from traces.generate import PRESETS, generate

    m = Machine(MachineConfig(mem_bytes=1 << 30, sample_interval_us=60 * SEC), make_policy(policy), "g")
    for _, b in machine_batches(generate(PRESETS["tiny"], seed=5), source="g"):
        m.apply(b)
        break
    s = m.sampler
    t = m.now_us + 7
    z, basis = s._zombies()
    want = [t, 1, s.interval, *basis, *z, *s._usage(), *s._counters()]
    s._rows = type(s._rows)("q")
    s._append(t)
    assert len(want) == ROW == len(ROW_HEADER) + len(SAMPLE_COLUMNS) - 3
    assert list(s._rows) == want
    assert z[1] > 0  # the row has zombies to count
