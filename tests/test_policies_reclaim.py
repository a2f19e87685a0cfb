"""Scenarios for the reclaim-based policies: ``manual_reclaim`` and ``zombie_reaper``.

Tiny traces through ``tests.simkit.Sim`` (invariants checked after every event),
with the expected counters after each step, plus the cases that separate these
policies from ``none`` and from each other.
"""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.policy import make_policy
from tests.simkit import MiB
from tests.simkit import NoatimeSim as Sim  # disk files noatime: these tests are about page charges


def _job_a(s: Sim) -> Sim:
    """/a reads a library, writes a tmpfs file, and /b maps a file /a touched first."""
    s.mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("lib", size=4 * MiB).read("a1", "lib")
    s.create("shm", shmem=True).write("a1", "shm", 2 * MiB)
    s.create("so", size=MiB).read("a1", "so").map("b1", "so")
    return s.exit("a1")


def test_manual_reclaim_without_swap_frees_page_cache_but_not_shmem_or_mapped():
    s = _job_a(Sim("manual_reclaim")).rmdir("/a")
    assert s.m.counters["policy_evicted_pages"] == 1024  # the unmapped library only
    assert s.m.counters["reclaim_eagain"] == 1  # shmem without swap, and the mapped .so, stay
    sm = s.m.summary()
    assert s.dying("/a") and sm["held_shmem"] == 1 and sm["held_file"] == 1


def test_manual_reclaim_with_swap_leaves_a_zombie_held_by_swap_records():
    s = _job_a(Sim("manual_reclaim", swap_bytes=64 * MiB)).delete("so")
    s.exit("b1").rmdir("/a")
    assert s.m.counters["swapouts"] == 512 and s.m.counters["evictions"] == 1024  # the .so went with b1
    sm = s.m.summary()
    assert s.dying("/a") and sm["held_swap"] == 1 and sm["zombie_charged_bytes"] == 0
    assert sm["ids_in_use"] == 3  # root, /b, and the zombie's ID held by its swap entries


def test_manual_reclaim_cannot_touch_pinned_pages():
    s = Sim("manual_reclaim", swap_bytes=64 * MiB).mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("buf", shmem=True).write("a1", "buf", MiB).pin("b1", "buf")
    s.exit("a1").rmdir("/a")
    assert s.dying("/a") and s.m.summary()["held_pinned"] == 1 and s.m.counters["swapouts"] == 0


def test_manual_reclaim_is_absent_before_5_19():
    s = _job_a(Sim("manual_reclaim", kernel="5.15")).rmdir("/a")
    assert s.m.counters["reclaim_unsupported"] == 1 and s.m.counters["policy_evicted_pages"] == 0


def test_manual_reclaim_knobs_are_checked():
    with pytest.raises(ConfigError, match="fraction"):
        make_policy("manual_reclaim", {"manual_reclaim": {"fraction": 0}})


def test_reaper_frees_page_cache_zombies_on_its_interval_only():
    s = _job_a(Sim("zombie_reaper", {"zombie_reaper": {"interval_us": 10_000_000}})).exit("b1").rmdir("/a")
    assert s.dying("/a") and s.m.counters["reaper_reclaimed_pages"] == 0  # t = 14 s: first scan at 20 s
    s.m.advance_to(20_000_000)
    assert s.m.counters["reaper_reclaimed_pages"] == 1024 + 256  # page cache only: shmem stays
    assert s.dying("/a") and s.m.summary()["held_shmem"] == 1


def test_reaper_with_swap_frees_shmem_zombies_too():
    knobs = {"zombie_reaper": {"may_swap": True, "interval_us": 10_000_000}}
    s = _job_a(Sim("zombie_reaper", knobs, swap_bytes=64 * MiB)).exit("b1").rmdir("/a")
    s.m.advance_to(20_000_000)
    assert not s.dying("/a") and s.m.counters["reaper_reclaimed_pages"] == 1024 + 256 + 512
    assert s.m.mem.swap[0] == 512  # the swap records name the root, the nearest online ancestor


def test_reaper_budget_limits_each_scan_and_it_keeps_scanning():
    knobs = {"zombie_reaper": {"pages_per_scan": 512, "interval_us": 10_000_000}}
    s = _job_a(Sim("zombie_reaper", knobs)).exit("b1").rmdir("/a")
    s.m.advance_to(20_000_000)
    got = s.m.counters["reaper_reclaimed_pages"]
    assert 512 <= got < 1024 + 256 and s.dying("/a")  # a scan may overshoot by reclaim's rounding
    s.m.advance_to(40_000_000)
    assert s.m.counters["reaper_reclaimed_pages"] == 1024 + 256


def test_reaper_leaves_shared_in_use_and_pinned_pages():
    s = _job_a(Sim("zombie_reaper", swap_bytes=64 * MiB)).rmdir("/a")
    s.m.advance_to(60_000_000)
    assert s.dying("/a") and s.m.summary()["held_file"] == 1  # the .so /b still maps
