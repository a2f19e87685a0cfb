"""Scenarios for ``smemcg``: shared objects charged to their own controller, borrowers carry borrow counters."""

from __future__ import annotations

from tests.simkit import MiB
from tests.simkit import NoatimeSim as Sim  # disk files noatime: these tests are about page charges


def _pair(**cfg) -> Sim:
    s = Sim("smemcg", **cfg).mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    return s.create("shm", shmem=True).write("a1", "shm", 4 * MiB)


def test_shared_pages_go_to_the_objects_smemcg_not_the_writer():
    s = _pair()
    sm = s.m.summary()
    assert s.current("/a") == 0 and sm["smemcg_bytes"] == 4 * MiB and sm["memcgs_online"] == 2
    assert s.m.cgroup_paths().count("/.smemcg/shm") == 1 and "/.smemcg/shm" not in s.m.mem.by_path


def test_mapping_borrows_and_counts_in_the_borrowers_usage_and_peak():
    s = _pair().map("b1", "shm", 2 * MiB).map("a1", "shm")
    assert s.current("/b") == 2 * MiB and s.current("/a") == 4 * MiB
    assert s.m.summary()["borrowed_bytes"] == 6 * MiB
    s.map("b1", "shm", MiB, offset=MiB)  # an overlapping second mapping borrows nothing new
    assert s.current("/b") == 2 * MiB
    s.unmap("b1", "shm")
    assert s.current("/b") == 0 and s.st("/b")["memory.peak"] == 2 * MiB


def test_no_zombie_from_shared_memory_and_no_charge_moves():
    s = _pair().map("b1", "shm").create("lib", size=2 * MiB).read("a1", "lib")
    s.exit("a1").rmdir("/a")
    c = s.m.counters
    assert s.n_dying() == 0 and c["recharged_pages"] == 0 and c["reparented_pages"] == 0
    assert s.current("/b") == 4 * MiB  # /b's borrow is the same whoever wrote the pages


def test_smemcg_is_freed_with_its_object():
    s = _pair().map("b1", "shm").delete("shm")
    assert s.m.summary()["smemcg_bytes"] == 4 * MiB  # still mapped: the object lives
    s.exit("b1")
    assert s.m.summary()["smemcg_bytes"] == 0 and "/.smemcg/shm" not in s.m.cgroup_paths()
    assert s.m.mem.ids_in_use == 3 and s.current("/b") == 0


def test_borrow_follows_a_moved_task_when_its_old_cgroup_goes():
    s = _pair().map("b1", "shm").move("b1", "/a").rmdir("/b")
    assert s.n_dying() == 0 and s.current("/a") == 4 * MiB


def test_smemcg_limit_fails_the_fault_without_oom():
    s = Sim("smemcg", {"smemcg": {"limit_bytes": 2 * MiB}}).mkdir("/a").start("a1", "/a")
    s.create("shm", shmem=True).write("a1", "shm", 4 * MiB)
    assert s.m.counters["charge_failed"] == 1 and s.m.counters["oom_kills"] == 0
    assert s.m.summary()["smemcg_bytes"] == 0


def test_shmem_only_mode_leaves_page_cache_first_touch():
    s = Sim("smemcg", {"smemcg": {"shared": "shmem"}}).mkdir("/a").start("a1", "/a")
    s.create("lib", size=MiB).read("a1", "lib").exit("a1").rmdir("/a")
    assert s.dying("/a") and s.m.summary()["held_file"] == 1


def test_swapped_smemcg_pages_come_back_to_the_smemcg():
    s = _pair(swap_bytes=64 * MiB).reclaim("/", 4 * MiB)
    assert s.m.summary()["smemcg_bytes"] == 0 and s.m.swap_used == 1024
    s.read("b1", "shm")
    assert s.m.summary()["smemcg_bytes"] == 4 * MiB and s.current("/b") == 0
