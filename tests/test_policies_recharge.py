"""Scenarios for the recharge policies: ``recharge_evict``, ``recharge_mapper``, ``recharge_deferred``,
``recharge_async_walk`` — the same tiny trace for all, then the cases that separate them.

The shared trace (``_scene``): /p/a first-touches an unmapped library, a .so
that /p/b maps, a tmpfs file, and a file /p/b pins; then /p/a is removed.
"""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.policy import make_policy
from tests.simkit import MiB
from tests.simkit import NoatimeSim as Sim  # disk files noatime: these tests are about page charges


def _scene(policy: str, knobs: dict | None = None, **cfg) -> Sim:
    s = Sim(policy, knobs, **cfg).mkdir("/p", "/p/a", "/p/b").start("a1", "/p/a").start("b1", "/p/b")
    s.create("lib", size=4 * MiB).read("a1", "lib")
    s.create("so", size=2 * MiB).map("a1", "so").map("b1", "so")
    s.create("shm", shmem=True).write("a1", "shm", 3 * MiB)
    s.create("pinf", size=MiB).read("a1", "pinf").pin("b1", "pinf")
    return s.exit("a1").rmdir("/p/a")


def _settle(s: Sim, dt_us: int = 10_000_000) -> Sim:
    s.t += dt_us
    s.m.advance_to(s.t)
    return s


def _own(s: Sim, path: str) -> int:
    return s.m.mem.own_pages(s.m.mem.by_path[path])


def test_none_keeps_the_zombie_for_every_reason():
    sm = _settle(_scene("none")).m.summary()
    assert sm["memcgs_dying"] == 1 and sm["held_file"] == 1 and sm["held_shmem"] == 1 and sm["held_pinned"] == 1


def test_evict_frees_unmapped_page_cache_reparents_shmem_keeps_mapped_and_pinned():
    s = _scene("recharge_evict")
    c = s.m.counters
    assert c["policy_evicted_pages"] == 1024 and c["reparented_pages"] == 768
    assert s.dying("/p/a") and _own(s, "/p") == 768  # the .so (mapped) and the pinned file stay
    s.read("b1", "lib")
    assert c["refaults"] == 1024 and s.current("/p/b") == 4 * MiB  # the reader pays after the eviction


def test_evict_mapped_and_swap_mode():
    s = _scene("recharge_evict", {"recharge_evict": {"evict_mapped": True, "swap_backed": "swap"}},
               swap_bytes=64 * MiB)
    c = s.m.counters
    assert c["policy_evicted_pages"] == 1024 + 512 + 768 and c["swapouts"] == 768
    assert c["reparented_pages"] == 0 and s.m.mem.swap[s.m.mem.by_path["/p"]] == 768
    assert s.dying("/p/a") and s.m.summary()["held_pinned"] == 1 and s.m.summary()["held_file"] == 1


def test_evict_swap_mode_without_swap_room_falls_back_to_reparenting():
    s = _scene("recharge_evict", {"recharge_evict": {"swap_backed": "swap"}})
    assert s.m.counters["swapouts"] == 0 and s.m.counters["reparented_pages"] == 768


def test_mapper_recharges_only_mapped_pages_after_its_delay():
    s = _scene("recharge_mapper")
    assert s.m.counters["recharged_pages"] == 0  # asynchronous: the worker runs 1 ms later
    _settle(s)
    c = s.m.counters
    assert c["recharged_pages"] == 512 and s.current("/p/b") == 2 * MiB
    assert s.dying("/p/a") and s.m.summary()["held_file"] == 1 and s.m.summary()["held_pinned"] == 1


def test_mapper_recharges_anon_of_a_task_that_moved_away():
    s = Sim("recharge_mapper").mkdir("/a", "/b").start("t", "/a").anon("t", "heap", 2 * MiB).move("t", "/b")
    s.rmdir("/a")
    _settle(s)
    assert not s.dying("/a") and s.st("/b")["anon"] == 2 * MiB and s.m.counters["recharged_pages"] == 512


def _limited(on_limit: str) -> Sim:
    """/b maps a 4 MiB .so that /a touched first, under a 5 MiB limit with 3 MiB of its own anon."""
    s = Sim("recharge_mapper", {"recharge_mapper": {"on_limit": on_limit}}).mkdir("/a", "/b")
    s.limit("/b", 5 * MiB).start("a1", "/a").start("b1", "/b")
    s.create("so", size=4 * MiB).map("a1", "so").map("b1", "so").anon("b1", "heap", 3 * MiB)
    s.exit("a1").rmdir("/a")
    return _settle(s, 120_000_000)


def test_mapper_retry_gives_up_after_backoff_and_never_ooms():
    s = _limited("retry")
    c = s.m.counters
    assert c["recharged_pages"] == 0 and c["oom_kills"] == 0 and c["policy_oom_kills"] == 0
    assert c["recharge_retries"] == 16 and c["recharge_failed"] == 17 * 1024  # 1 + 16 attempts
    assert s.dying("/a")


def test_mapper_oom_kills_inside_the_target():
    s = _limited("oom")
    c = s.m.counters
    assert c["policy_oom_kills"] == 1 and c["oom_kills"] == 1 and not s.m.t_alive[s.m.task_by_name["b1"]]
    # the kill made room: the dead neighbour's .so is now billed to /b, whose job was killed for it
    assert c["recharged_pages"] == 1024 and s.current("/b") == 4 * MiB and not s.dying("/a")


def test_mapper_force_goes_over_the_limit():
    s = _limited("force")
    assert s.m.counters["recharged_pages"] == 1024 and s.current("/b") == 7 * MiB and not s.dying("/a")


def test_mapper_knobs_are_checked():
    with pytest.raises(ConfigError, match="on_limit"):
        make_policy("recharge_mapper", {"recharge_mapper": {"on_limit": "maybe"}})


def test_deferred_parks_everything_then_the_next_accessor_pays():
    s = _scene("recharge_deferred")
    c = s.m.counters
    assert not s.dying("/p/a") and c["reparented_pages"] == 1024 + 512 + 768 + 256
    sm = s.m.summary()
    assert sm["parked_bytes"] == 10 * MiB and sm["misattributed_bytes"] == 10 * MiB
    work = c["access_path_work"]
    s.read("b1", "lib")
    assert c["recharged_pages"] == 1024 and s.current("/p/b") == 4 * MiB
    assert c["access_path_work"] == work + 1024 and s.m.summary()["parked_bytes"] == 6 * MiB
    assert s.m.summary()["misattributed_bytes"] == 6 * MiB  # the reader is the owner now


def test_deferred_recharge_fails_over_the_accessors_limit_and_stays_parked():
    s = _scene("recharge_deferred").limit("/p/b", MiB)
    s.read("b1", "lib")
    assert s.m.counters["recharged_pages"] == 0 and s.m.counters["oom_kills"] == 0
    assert s.m.summary()["parked_bytes"] == 10 * MiB


def test_none_does_no_access_path_work():
    s = _scene("none")
    s.read("b1", "lib")
    assert s.m.counters["access_path_work"] == 0


def test_async_walk_evicts_parks_recharges_and_skips_pinned():
    s = _scene("recharge_async_walk")
    assert s.m.counters["policy_walk_steps"] == 0
    _settle(s)
    c = s.m.counters
    assert c["policy_evicted_pages"] == 1024 and c["recharged_pages"] == 512 and c["reparented_pages"] == 768
    assert s.dying("/p/a") and s.m.summary()["held_pinned"] == 1
    assert c["policy_walk_steps"] == 4


def test_async_walk_takes_simulated_time_with_a_small_budget():
    knobs = {"recharge_async_walk": {"pages_per_tick": 256, "tick_us": 1_000_000}}
    s = Sim("recharge_async_walk", knobs).mkdir("/a").start("a1", "/a")
    for i in range(4):
        s.create(f"f{i}", size=MiB).read("a1", f"f{i}")
    s.exit("a1").rmdir("/a")
    s.m.advance_to(s.t + 1000)
    assert s.m.counters["policy_evicted_pages"] == 256 and s.dying("/a")
    s.m.advance_to(s.t + 3_001_000)
    assert s.m.counters["policy_evicted_pages"] == 1024 and not s.dying("/a")


def test_async_walk_deferred_mode_parks_mapped_pages():
    s = _settle(_scene("recharge_async_walk", {"recharge_async_walk": {"mapped": "deferred"}}))
    assert s.m.counters["recharged_pages"] == 0 and s.m.summary()["parked_bytes"] == 5 * MiB
    s.map("b1", "so")
    assert s.m.counters["recharged_pages"] == 512 and s.st("/p/b")["file"] == 2 * MiB


def test_async_walk_plus_swap_walk_frees_swap_held_zombies():
    def run(policy: str) -> Sim:
        s = Sim(policy, swap_bytes=64 * MiB).mkdir("/a").start("a1", "/a").create("shm", shmem=True)
        s.write("a1", "shm", MiB).reclaim("/a", MiB).exit("a1").rmdir("/a")
        return _settle(s, 120_000_000)
    assert run("recharge_async_walk").dying("/a")
    assert not run("recharge_async_walk+swap_walk").dying("/a")
