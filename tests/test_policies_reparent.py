"""Scenarios for ``reparent`` and ``swap_walk``: charges and swap records moving up the tree.

Each step's expected counters are written out; ``tests.simkit.Sim`` checks every
invariant (conservation, hierarchy, dying ⇔ held, IDs) after each event.
"""

from __future__ import annotations

from core.memcg import ROOT
from tests.simkit import MiB
from tests.simkit import NoatimeSim as Sim  # disk files noatime: these tests are about page charges


def _own(s: Sim, path: str) -> int:
    """Pages charged to the online cgroup at ``path`` itself (not its children)."""
    return s.m.mem.own_pages(s.m.mem.by_path[path])


def test_reparent_moves_lru_charges_to_the_parent_and_frees_the_zombie():
    s = Sim("reparent").mkdir("/p", "/p/a").start("a1", "/p/a").create("lib", size=4 * MiB).read("a1", "lib")
    s.exit("a1").rmdir("/p/a")
    assert s.n_dying() == 0 and s.m.counters["reparented_pages"] == 1024
    assert _own(s, "/p") == 1024 and s.current("/p") == 4 * MiB  # hierarchy unchanged, zombie hidden
    assert s.m.summary()["misattributed_bytes"] == 4 * MiB


def test_reparent_inflates_the_parents_own_reclaim_stats():
    s = Sim("reparent").mkdir("/p", "/p/a").start("a1", "/p/a").create("lib", size=4 * MiB).read("a1", "lib")
    s.exit("a1").rmdir("/p/a").reclaim("/p", 4 * MiB)
    p = s.m.mem.by_path["/p"]
    assert s.m.mem.pgsteal[p] == 1024 and s.m.mem.pgscan[p] >= 1024
    n = Sim().mkdir("/p", "/p/a").start("a1", "/p/a").create("lib", size=4 * MiB).read("a1", "lib")
    n.exit("a1").rmdir("/p/a").reclaim("/p", 4 * MiB)
    assert n.m.mem.pgsteal[n.m.mem.by_path["/p"]] == 0  # under none the zombie's own stats took them


def test_reparent_cascades_to_the_root_where_memory_is_unowned():
    s = Sim("reparent").mkdir("/a", "/a/b", "/a/b/c").start("t", "/a/b/c").create("f", size=2 * MiB)
    s.read("t", "f").exit("t")
    s.rmdir("/a/b/c")
    assert _own(s, "/a/b") == 512
    s.rmdir("/a/b")
    assert _own(s, "/a") == 512
    s.rmdir("/a")
    assert s.m.mem.own_pages(ROOT) == 512 and s.m.summary()["root_charged_bytes"] == 2 * MiB
    assert s.n_dying() == 0


def test_reparent_leaves_swap_records_so_the_zombie_stays():
    s = Sim("reparent", swap_bytes=64 * MiB).mkdir("/p", "/p/a").start("a1", "/p/a").create("shm", shmem=True)
    s.write("a1", "shm", 2 * MiB).reclaim("/p/a", MiB).exit("a1").rmdir("/p/a")
    assert s.dying("/p/a") and s.m.summary()["held_swap"] == 1
    swapped = s.m.counters["swapouts"]
    assert 0 < swapped < 512 and s.m.counters["reparented_pages"] == 512 - swapped
    assert s.m.counters["swap_records_reparented"] == 0


def test_reparent_moves_pinned_pages_too():
    s = Sim("reparent").mkdir("/p", "/p/a", "/p/b").start("a1", "/p/a").start("b1", "/p/b")
    s.create("buf", shmem=True).write("a1", "buf", MiB).pin("b1", "buf").exit("a1").rmdir("/p/a")
    assert s.n_dying() == 0 and s.m.mem.pinned[s.m.mem.by_path["/p"]] == 256


def _swapped_zombie(policy: str, knobs: dict | None = None) -> Sim:
    s = Sim(policy, knobs, swap_bytes=64 * MiB).mkdir("/p", "/p/a").start("a1", "/p/a")
    s.create("shm", shmem=True).write("a1", "shm", 2 * MiB).reclaim("/p/a", 2 * MiB)
    return s.exit("a1").rmdir("/p/a")


def test_swap_walk_reparents_swap_records_on_its_grid_and_frees_the_zombie():
    s = _swapped_zombie("swap_walk", {"swap_walk": {"interval_us": 10_000_000}})
    assert s.dying("/p/a") and s.m.summary()["held_swap"] == 1  # t = 7 s, the walk runs at 10 s
    s.m.advance_to(10_000_000)
    assert not s.dying("/p/a") and s.m.counters["swap_records_reparented"] == 512
    p = s.m.mem.by_path["/p"]
    assert s.m.mem.swap[p] == 512 and s.st("/p")["memory.swap.current"] == 2 * MiB
    assert s.m.counters["policy_walk_steps"] == 1 and s.m.mem.ids_in_use == 2


def test_swap_in_after_the_walk_charges_the_online_ancestor_named_by_the_record():
    s = _swapped_zombie("swap_walk", {"swap_walk": {"interval_us": 10_000_000}}).mkdir("/q").start("q1", "/q")
    s.m.advance_to(10_000_000)
    s.t = 10_000_000
    s.read("q1", "shm")
    assert s.current("/q") == 0 and s.st("/p")["shmem"] == 2 * MiB  # the parent pays for the reader


def test_swap_walk_budget_takes_several_passes():
    s = _swapped_zombie("swap_walk", {"swap_walk": {"interval_us": 10_000_000, "records_per_tick": 256}})
    s.m.advance_to(10_000_000)
    assert s.dying("/p/a") and s.m.counters["swap_records_reparented"] == 256
    s.m.advance_to(20_000_000)
    assert not s.dying("/p/a") and s.m.counters["swap_records_reparented"] == 512


def test_swap_walk_goes_to_the_nearest_online_ancestor_past_dying_parents():
    s = Sim("swap_walk", swap_bytes=64 * MiB).mkdir("/p", "/p/a").start("a1", "/p/a").create("shm", shmem=True)
    s.write("a1", "shm", MiB).reclaim("/p/a", MiB).exit("a1").rmdir("/p/a", "/p")
    assert s.dying("/p") and s.dying("/p/a")
    s.m.advance_to(60_000_000)
    assert s.n_dying() == 0 and s.m.mem.swap[ROOT] == 256


def test_manual_reclaim_plus_swap_walk_frees_what_manual_reclaim_alone_leaves():
    def run(policy: str) -> Sim:
        s = Sim(policy, swap_bytes=64 * MiB).mkdir("/a").start("a1", "/a").create("shm", shmem=True)
        s.write("a1", "shm", MiB).exit("a1").rmdir("/a")
        s.m.advance_to(120_000_000)
        return s
    assert run("manual_reclaim").dying("/a")
    assert not run("manual_reclaim+swap_walk").dying("/a")
