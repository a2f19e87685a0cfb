"""One scenario per modelled rule, with the expected counters after each step.

Each scenario is a tiny native trace driven through ``tests.simkit.Sim``, which
also checks every invariant of ``core.invariants`` after each event.
"""

from __future__ import annotations

import pickle

import pytest

from core.errors import TraceError
from core.ops import Flag, Op
from tests.simkit import GiB, KiB, MiB, Sim


def test_tmpfs_writer_removed_then_file_deleted():
    s = Sim().mkdir("/a").start("a1", "/a").create("shm", shmem=True).write("a1", "shm", 4 * MiB)
    assert s.st("/a")["shmem"] == 4 * MiB
    s.exit("a1").rmdir("/a")
    assert s.dying("/a") and s.st("/")["nr_dying_descendants"] == 1
    assert s.st("/")["memory.current"] == 4 * MiB  # the zombie's charge stays in the root's usage
    s.delete("shm")
    assert not s.dying("/a") and s.st("/")["nr_dying_descendants"] == 0
    assert s.st("/")["memory.current"] == 0


def test_reader_and_mapper_are_not_charged():
    s = Sim().mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("shm", shmem=True).write("a1", "shm", 2 * MiB).read("b1", "shm").map("b1", "shm")
    assert s.current("/b") == 0 and s.current("/a") == 2 * MiB
    assert s.st("/a")["file_mapped"] == 2 * MiB  # mapped by B, still charged to A
    s.exit("a1").rmdir("/a")
    assert s.dying("/a") and s.current("/b") == 0
    s.exit("b1")  # unmapping does not move the charge either
    assert s.dying("/a") and s.current("/b") == 0


def test_memory_reclaim_without_swap_leaves_shmem():
    s = Sim().mkdir("/a").start("a1", "/a").create("shm", shmem=True).write("a1", "shm", 3 * MiB)
    s.reclaim("/a", 3 * MiB)
    assert s.st("/a")["shmem"] == 3 * MiB and s.m.counters["reclaim_eagain"] == 1
    s.exit("a1").rmdir("/a")
    assert s.dying("/a")


def test_memory_reclaim_with_swap_pins_through_the_swap_record():
    s = Sim(swap_bytes=64 * MiB).mkdir("/a").start("a1", "/a").create("shm", shmem=True)
    s.write("a1", "shm", 3 * MiB).reclaim("/a", 3 * MiB)
    st = s.st("/a")
    assert st["shmem"] == 0 and st["memory.swap.current"] == 3 * MiB and st["memory.current"] == 0
    s.exit("a1").rmdir("/a")
    assert s.dying("/a")
    assert s.m.mem.ids_in_use == 2  # root + the zombie's ID, held by its swap entries
    s.delete("shm")
    assert not s.dying("/a") and s.m.mem.ids_in_use == 1 and s.m.swap_used == 0


def test_page_cache_evicted_then_refault_charges_the_reader():
    s = Sim().mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("log", size=0).write("a1", "log", 8 * MiB).sync().exit("a1").rmdir("/a")
    assert s.dying("/a") and s.st("/")["file"] == 8 * MiB
    s.drop_caches()  # clean, so dropped; no shadow: a later read is not a refault
    assert not s.dying("/a")
    s.read("b1", "log")
    assert s.st("/b")["file"] == 8 * MiB and s.st("/b")["workingset_refault"] == 0


def test_reclaim_evicts_zombie_page_cache_and_refault_charges_the_accessor():
    # noatime: under relatime the read would also dirty the inode's atime on a1's cgwb (see the atime tests)
    s = Sim(atime="noatime").mkdir("/p", "/p/a", "/p/b").start("a1", "/p/a").start("b1", "/p/b")
    s.create("lib", size=4 * MiB).read("a1", "lib").exit("a1").rmdir("/p/a")
    assert s.dying("/p/a")
    s.reclaim("/p", 4 * MiB)  # an ancestor's reclaim reaches the zombie (mem_cgroup_iter)
    assert not s.dying("/p/a") and s.st("/p")["nr_dying_descendants"] == 0
    s.read("b1", "lib")
    b = s.st("/p/b")
    assert b["file"] == 4 * MiB and b["workingset_refault"] == 1024


def test_swap_in_charges_the_online_record_else_the_accessor():
    s = Sim(swap_bytes=64 * MiB).mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("shm", shmem=True).write("a1", "shm", 1 * MiB).reclaim("/a", 1 * MiB)
    s.read("b1", "shm")  # record /a online -> /a is charged, not the reader
    assert s.st("/a")["shmem"] == 1 * MiB and s.current("/b") == 0
    s.reclaim("/a", 1 * MiB).exit("a1").rmdir("/a")
    assert s.dying("/a")
    s.read("b1", "shm")  # record /a dying -> the accessor is charged, the zombie goes
    assert s.st("/b")["shmem"] == 1 * MiB and not s.dying("/a")


def test_swap_out_after_rmdir_records_the_online_parent():
    s = Sim(swap_bytes=64 * MiB).mkdir("/p", "/p/a").start("a1", "/p/a").create("shm", shmem=True)
    s.write("a1", "shm", 2 * MiB).exit("a1").rmdir("/p/a")
    assert s.dying("/p/a")
    s.reclaim("/p", 2 * MiB)  # mem_cgroup_id_get_online: the record goes to /p
    assert not s.dying("/p/a")
    assert s.st("/p")["memory.swap.current"] == 2 * MiB and s.m.mem.swap[s.m.mem.by_path["/p"]] == 512


def test_anon_of_a_moved_task_stays_on_the_old_cgroup_until_exit():
    s = Sim().mkdir("/a", "/b").start("t", "/a").anon("t", "heap", 5 * MiB).move("t", "/b")
    assert s.st("/a")["anon"] == 5 * MiB and s.current("/b") == 0
    s.anon("t", "heap", 1 * MiB)  # new faults are charged where the task is now
    assert s.st("/a")["anon"] == 5 * MiB and s.st("/b")["anon"] == 1 * MiB
    s.rmdir("/a")
    assert s.dying("/a")
    s.exit("t")
    assert not s.dying("/a") and s.current("/b") == 0


def test_parent_removed_before_its_zombie_child():
    s = Sim().mkdir("/p", "/p/c").start("c1", "/p/c").create("shm", shmem=True).write("c1", "shm", MiB)
    s.exit("c1").rmdir("/p/c").rmdir("/p")  # a dying child does not block rmdir of the parent
    assert s.dying("/p") and s.dying("/p/c") and s.st("/")["nr_dying_descendants"] == 2
    held_by_child = s.m.mem.children[next(x for x in s.m.mem.dying if s.m.mem.path[x] == "/p")]
    assert held_by_child
    s.delete("shm")
    assert s.n_dying() == 0 and s.st("/")["nr_dying_descendants"] == 0


def test_rmdir_is_busy_with_tasks_or_online_children():
    s = Sim().mkdir("/p", "/p/c").start("t", "/p")
    s.rmdir("/p")
    assert s.m.counters["rmdir_ebusy"] == 1 and not s.dying("/p")
    s.exit("t").rmdir("/p")
    assert s.m.counters["rmdir_ebusy"] == 2
    s.rmdir("/p/c", "/p")
    assert s.n_dying() == 0 and s.m.counters["memcgs_freed"] == 2


@pytest.mark.parametrize("kernel,slab_pins,page_pins", [("5.4", True, True), ("5.10", False, True),
                                                         ("6.1", False, False), ("6.18", False, False)])
@pytest.mark.parametrize("page", [False, True])
def test_kmem_reparenting_by_kernel_version(kernel, slab_pins, page_pins, page):
    # a task of /p/a charges kmem there, then moves to /p (its kmem stays charged to /p/a)
    s = Sim(kernel=kernel).mkdir("/p", "/p/a").start("t", "/p/a").kmem("t", "k", 64 * 1024, page=page)
    s.move("t", "/p").rmdir("/p/a")
    assert s.dying("/p/a") is (page_pins if page else slab_pins)
    assert s.st("/p")["kernel"] == 64 * 1024  # reparented or not, it stays in the parent's usage
    if not s.dying("/p/a"):
        assert s.m.mem.kmem[s.m.mem.by_path["/p"]] == 16  # moved to the parent's own charge


def test_kmem_page_objects_die_with_their_task():
    s = Sim(kernel="5.10").mkdir("/a").start("t", "/a").kmem("t", "stack", 16 * 1024, page=True)
    assert s.st("/a")["kernel"] == 16 * 1024
    s.exit("t").rmdir("/a")
    assert not s.dying("/a")


def test_pinned_pages_survive_reclaim_and_pin_the_zombie():
    s = Sim(swap_bytes=64 * MiB).mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("buf", shmem=True).write("a1", "buf", 2 * MiB).pin("b1", "buf", MiB)
    s.exit("a1").rmdir("/a")
    s.reclaim("/", 2 * MiB)
    assert s.dying("/a") and s.st("/")["shmem"] == MiB  # the unpinned half went to swap
    assert s.m.mem.pinned[next(iter(s.m.mem.dying))] == 256
    s.unpin("b1", "buf", MiB).reclaim("/", MiB)
    assert s.st("/")["shmem"] == 0  # unpinned: reclaimable now (the zombie lost its pages)


def test_mlocked_anon_is_never_swapped():
    s = Sim(swap_bytes=64 * MiB).mkdir("/a").start("t", "/a").anon("t", "heap", 2 * MiB)
    s.pin("t", "heap", MiB, mlock=True).reclaim("/a", 2 * MiB)
    st = s.st("/a")
    assert st["anon"] == MiB and st["memory.swap.current"] == MiB


def test_freeing_part_of_an_mlocked_region_keeps_the_rest_locked():
    # found by random-2-12 (6.1): munmap (or munlock + MADV_DONTNEED) of part of a VM_LOCKED range
    # munlocks that part only (__split_vma, mm/mlock.c); the trace's later munlock of the whole
    # range succeeds and unlocks the rest
    s = Sim(swap_bytes=64 * MiB).mkdir("/a").start("t", "/a").anon("t", "heap", 2 * MiB)
    s.pin("t", "heap", mlock=True).anon_free("t", "heap", 256 * KiB).reclaim("/a", 2 * MiB)
    assert s.st("/a")["anon"] == 2 * MiB - 256 * KiB and s.st("/a")["memory.swap.current"] == 0
    s.unpin("t", "heap", mlock=True)
    assert s.m.counters["ops_ignored"] == 0 and s.m.mem.pinned[s.m.mem.by_path["/a"]] == 0
    s.reclaim("/a", 2 * MiB)
    assert s.st("/a")["anon"] == 0


def test_id_pool_exhaustion_fails_mkdir_with_enospc():
    s = Sim(id_pool_size=4, swap_bytes=16 * MiB).mkdir("/a", "/b", "/c")  # root + 3 = 4 IDs
    s.mkdir("/d")
    assert s.m.counters["mkdir_enospc"] == 1 and "/d" not in s.m.mem.by_path
    s.start("d1", "/d")  # a task of the failed cgroup does not start; its ops are ignored
    s.anon("d1", "heap", MiB)
    assert s.m.counters["tasks_failed"] == 1 and s.m.counters["ops_ignored"] == 1
    s.start("c1", "/c").anon("c1", "heap-c", MiB).reclaim("/c", MiB).exit("c1")
    s.start("a1", "/a").create("shm", shmem=True).write("a1", "shm", MiB).reclaim("/a", MiB).exit("a1")
    s.rmdir("/a")  # dying, but swap entries keep its ID
    s.mkdir("/e")
    assert s.m.counters["mkdir_enospc"] == 2
    s.rmdir("/b").mkdir("/e")  # /b frees its ID at offline
    assert "/e" in s.m.mem.by_path


def test_oom_tie_goes_to_the_task_started_first_even_in_a_reused_slot():
    s = Sim().mkdir("/p", "/p/a", "/p/b").limit("/p", 8 * MiB)
    s.start("x1", "/p/a").start("b1", "/p/b").exit("x1").start("c1", "/p/b")
    slots = s.m.task_by_name
    assert slots["c1"] < slots["b1"]  # c1 took x1's freed slot: slot order is not start order
    s.anon("b1", "hb", 4 * MiB).anon("c1", "hc", 4 * MiB)
    s.start("d1", "/p/a").anon("d1", "hd", MiB)  # no swap, nothing to reclaim: OOM, b1 and c1 tie
    assert s.m.counters["oom_kills"] == 1
    assert not s.m.t_alive[slots["b1"]] and s.m.t_alive[slots["c1"]]


def test_task_slots_are_reused_only_after_the_trace_exit():
    s = Sim().mkdir("/a")
    for i in range(20):
        s.start(f"t{i}", "/a").anon(f"t{i}", f"h{i}", MiB).exit(f"t{i}")
    assert len(s.m.t_name) == 1  # state is bounded by live tasks, not by tasks ever started
    s.mkdir("/p").limit("/p", 2 * MiB).start("k1", "/p").anon("k1", "hk", 2 * MiB).anon("k1", "hk2", MiB)
    k = s.m.t_name.index("k1")
    assert s.m.counters["oom_kills"] == 1 and not s.m.t_alive[k]
    s.start("n1", "/a")  # the killed task's name (and slot) stay until its exit is traced
    assert s.m.task_by_name["n1"] != k
    s.exit("k1").start("n2", "/a")
    assert s.m.task_by_name["n2"] == k


def test_limit_hit_reclaims_then_oom_kills():
    s = Sim().mkdir("/p", "/p/a", "/p/b").limit("/p", 10 * MiB)
    s.start("a1", "/p/a").start("b1", "/p/b").create("lib", size=4 * MiB).read("a1", "lib")
    s.anon("b1", "heap", 6 * MiB)
    assert s.current("/p") == 10 * MiB
    s.anon("b1", "heap", 2 * MiB)  # over /p's max: reclaim the page cache of /p/a
    assert s.current("/p") <= 10 * MiB and s.st("/p")["pgsteal"] >= 512
    assert s.m.counters["oom_kills"] == 0
    s.anon("a1", "heap-a", 3 * MiB)  # nothing reclaimable without swap: OOM-kill the largest (b1)
    assert s.m.counters["oom_kills"] == 1 and not s.m.t_alive[s.m.task_by_name["b1"]]
    assert s.st("/p/a")["anon"] == 3 * MiB and s.current("/p") <= 10 * MiB
    s.anon("b1", "heap", MiB)  # ops of a killed task are ignored
    assert s.m.counters["ops_ignored"] == 1


def test_mayfail_charge_fails_instead_of_oom():
    s = Sim().mkdir("/a").limit("/a", 4 * MiB).start("t", "/a").anon("t", "heap", 4 * MiB)
    s.create("f", size=MiB).read("t", "f", mayfail=True)
    assert s.m.counters["charge_failed"] == 1 and s.m.counters["oom_kills"] == 0
    assert s.st("/a")["file"] == 0


def test_memory_high_reclaims_without_oom():
    s = Sim().mkdir("/a").limit("/a", 4 * MiB, high=True).start("t", "/a")
    s.create("f", size=8 * MiB).read("t", "f")
    assert s.current("/a") <= 4 * MiB and s.m.counters["high_events"] >= 1
    assert s.m.counters["oom_kills"] == 0


def test_global_pressure_wakes_kswapd_and_scrapes_zombies():
    s = Sim(mem_bytes=64 * MiB, watermark_low=0.05, watermark_high=0.1, atime="noatime").mkdir("/a", "/b")
    s.start("a1", "/a").create("img", size=40 * MiB).read("a1", "img").exit("a1").rmdir("/a")
    assert s.dying("/a")
    s.start("b1", "/b").anon("b1", "heap", 58 * MiB)  # needs 34 MiB + the high watermark back
    assert s.m.counters["kswapd_wakeups"] >= 1 and s.m.counters["memcgs_visited"] > 0
    assert not s.dying("/a")  # the zombie's cache was reclaimed; it is freed
    assert s.m.resident + s.m.kmem_total <= s.m.mem_total


def test_global_oom_when_nothing_is_reclaimable():
    s = Sim(mem_bytes=16 * MiB).mkdir("/a", "/b").start("a1", "/a").anon("a1", "ha", 10 * MiB)
    s.start("b1", "/b").anon("b1", "hb", 12 * MiB)  # a1 is the largest task: it is killed, b1 fits
    assert s.m.counters["global_oom_kills"] == 1 and not s.m.t_alive[s.m.task_by_name["a1"]]
    assert s.st("/b")["anon"] == 12 * MiB and s.current("/a") == 0


def test_memory_reclaim_absent_before_5_19():
    s = Sim(kernel="5.10").mkdir("/a").start("t", "/a").create("f", size=MiB).read("t", "f")
    s.reclaim("/a", MiB)
    assert s.m.counters["reclaim_unsupported"] == 1 and s.st("/a")["file"] == MiB


def test_deleted_file_lives_while_mapped():
    s = Sim().mkdir("/a", "/b").start("a1", "/a").start("b1", "/b").create("so", size=2 * MiB)
    s.map("b1", "so").read("a1", "so").delete("so")
    assert s.st("/b")["file"] == 2 * MiB  # the mapper faulted it in first: charged to B
    s.exit("b1")
    assert s.st("/")["file"] == 0


def test_swapoff_reads_everything_back():
    s = Sim(swap_bytes=32 * MiB).mkdir("/a").start("t", "/a").anon("t", "heap", 4 * MiB)
    s.reclaim("/a", 4 * MiB)
    assert s.st("/a")["memory.swap.current"] == 4 * MiB
    s.swap_off()
    assert s.st("/a")["anon"] == 4 * MiB and s.m.swap_used == 0 and s.m.swap_total == 0


def test_exact_page_accounting_one_leftover_page_keeps_the_zombie():
    s = Sim().mkdir("/a").start("t", "/a").create("f", size=0).write("t", "f", 4096 * 10 + 1)
    assert s.st("/a")["file"] == 11 * 4096  # a partial page rounds up
    s.exit("t").rmdir("/a").delete("f")
    assert not s.dying("/a")


def test_trace_errors_name_the_field():
    s = Sim().mkdir("/a")
    with pytest.raises(TraceError, match="task: task ghost was never started"):
        s.anon("ghost", "h", MiB)
    with pytest.raises(TraceError, match="cgroup: no online cgroup /nope"):
        s.rmdir("/nope")


def test_machine_pickles_and_resumes_identically():
    def script(s: Sim, part: int) -> None:
        if part == 0:
            s.mkdir("/a", "/b").start("a1", "/a").create("shm", shmem=True).write("a1", "shm", 3 * MiB)
        else:
            s.exit("a1").rmdir("/a").start("b1", "/b").read("b1", "shm").delete("shm")

    a, b = Sim(swap_bytes=GiB), Sim(swap_bytes=GiB)
    script(a, 0)
    script(b, 0)
    b.m = pickle.loads(pickle.dumps(b.m))
    script(a, 1)
    script(b, 1)
    assert a.m.summary() == b.m.summary()


def test_unlinked_file_can_still_be_unmapped_and_unpinned():
    s = Sim().mkdir("/a").start("t", "/a").create("so", size=2 * MiB).map("t", "so").pin("t", "so", MiB)
    s.delete("so")
    assert s.st("/a")["file"] == 2 * MiB  # unlinked, but mapped and pinned: the pages stay
    s.unpin("t", "so", MiB)
    assert s.st("/a")["file"] == 2 * MiB
    s.unmap("t", "so")
    assert s.st("/a")["file"] == 0


def test_drop_caches_keeps_dirty_page_cache():
    s = Sim().mkdir("/a").start("t", "/a").create("log", size=0).write("t", "log", 2 * MiB)
    s.drop_caches()
    assert s.st("/a")["file"] == 2 * MiB  # invalidate_mapping_pages skips dirty folios
    s.wait(31).drop_caches()  # the flusher wrote it back (dirty_expire): now it goes
    assert s.st("/a")["file"] == 0


def test_dirty_at_rmdir_pins_the_zombie_through_its_writeback_context():
    s = Sim().mkdir("/a").start("t", "/a").create("log", size=0).write("t", "log", 2 * MiB)
    s.exit("t").rmdir("/a").sync().drop_caches()
    assert s.dying("/a") and s.st("/")["file"] == 0  # no page left, yet the cgwb holds it
    assert s.m.mem.wb_pin[next(iter(s.m.mem.dying))] == 1
    s.op(Op.DROP_CACHES, flags=Flag.INODES)  # echo 3: the inode goes, and the cgwb with it
    assert not s.dying("/a")


def test_a_later_offline_retries_the_cgwb_cleanup_once_written_back():
    # mm/backing-dev.c: every wb_memcg_offline() queues cleanup_offline_cgwbs_workfn(), which walks
    # every offline cgwb: one still dirty is skipped again, one written back since has its inodes
    # switched to the nearest live ancestor, and is released with the memcg it pinned
    s = Sim().mkdir("/a", "/b", "/c").start("t", "/a").create("log", size=0).write("t", "log", MiB)
    s.exit("t").rmdir("/a").rmdir("/b")
    assert s.dying("/a")  # still dirty at the retry of /b's offline
    s.sync().drop_caches()
    assert s.dying("/a") and s.st("/")["file"] == 0  # written back and dropped, but nothing re-ran the cleanup
    s.rmdir("/c")
    assert not s.dying("/a") and s.m.o_wb[s.m.obj_by_name["log"]] == 0


def test_a_dirty_inode_keeps_the_whole_cgwb_and_its_clean_inodes():
    # cleanup_offline_cgwbs_workfn skips a wb while wb_has_dirty_io(wb): its clean inodes stay on it too
    s = Sim().mkdir("/p", "/p/a", "/q").start("t", "/p/a").create("x", size=0).create("y", size=0)
    s.write("t", "x", MiB).sync().write("t", "y", MiB).exit("t").rmdir("/p/a")
    a = next(iter(s.m.mem.dying))
    assert s.m.o_wb[s.m.obj_by_name["x"]] == a and s.m.mem.wb_pin[a] == 2
    s.sync().drop_caches().rmdir("/q")
    assert not s.dying("/p/a") and s.m.o_wb[s.m.obj_by_name["x"]] == s.m.mem.by_path["/p"]


def test_reclaim_meeting_dirty_page_cache_wakes_the_flusher_for_every_memcg():
    # D15: shrink_inactive_list (nr_unqueued_dirty == nr_taken) and, under MGLRU,
    # lru_gen_shrink_lruvec (commit 1bc542c6a0d1) call wakeup_flusher_threads(WB_REASON_VMSCAN),
    # which writes back every dirty page and inode of the disk, not only the reclaimed memcg's
    for lru_gen in (False, True):
        s = Sim(lru_gen=lru_gen).mkdir("/job", "/other").start("w", "/job").create("log", size=0)
        s.write("w", "log", 6 * MiB).exit("w").rmdir("/job").start("r", "/other").create("tmp", size=0)
        s.write("r", "tmp", 2 * MiB).reclaim("/other", 512 * KiB).drop_caches()
        assert s.st("/")["file"] == 0 and not s.m.i_dirty  # /job's log was written back too
        s.exit("r").rmdir("/other")
        assert s.n_dying() == 0  # the cleanup at /other's offline released /job's cgwb


def test_reclaim_of_clean_page_cache_leaves_other_dirty_pages_dirty():
    s = Sim().mkdir("/job", "/other").start("w", "/job").create("log", size=0).write("w", "log", 2 * MiB)
    s.start("r", "/other").create("img", size=4 * MiB).read("r", "img").reclaim("/other", MiB).drop_caches()
    assert s.st("/job")["file"] == 2 * MiB  # no dirty page met: no flusher, the log stays dirty


def test_relatime_first_read_attaches_the_uncached_inode_to_the_reader_and_dirties_it():
    # touch_atime -> relatime_need_update (mtime not older than atime) -> generic_update_time ->
    # __mark_inode_dirty(I_DIRTY_SYNC) -> inode_attach_wb(inode, NULL): the reader's memcg's wb
    s = Sim().mkdir("/a", "/b").start("r", "/a").create("img", size=MiB).read("r", "img")
    img = s.m.obj_by_name["img"]
    assert s.m.o_wb[img] == s.m.mem.by_path["/a"]
    s.exit("r").rmdir("/a").drop_caches()
    assert s.dying("/a") and s.st("/")["file"] == 0  # no page left: the dirty inode's cgwb holds it
    s.sync().rmdir("/b")  # written back; the next offline's cleanup switches it to the root
    assert not s.dying("/a") and s.m.o_wb[img] == 0


def test_relatime_updates_atime_again_only_after_a_write_or_a_day():
    s = Sim().mkdir("/a").start("r", "/a").create("img", size=MiB).read("r", "img").sync()
    img = s.m.obj_by_name["img"]
    s.read("r", "img")
    assert img not in s.m.i_dirty  # atime newer than mtime, and less than a day old
    s.wait(24 * 3600).read("r", "img")
    assert img in s.m.i_dirty


def test_inode_times_are_per_object_slot_columns_cleared_when_the_slot_is_freed():
    # created: atime = mtime = now; a write moves mtime; a read a day later moves atime; freed: no times,
    # so a file that reuses the slot starts from its own creation, not the old file's times
    from core.fs_writeback import inode_times

    s = Sim().mkdir("/a").start("r", "/a").create("img", size=MiB)
    img, born = s.m.obj_by_name["img"], s.t
    assert inode_times(s.m, img) == (born, born) and len(s.m.i_atime) == len(s.m.i_mtime) > img
    s.write("r", "img", 4096)
    assert inode_times(s.m, img) == (born, s.t)
    s.wait(24 * 3600).read("r", "img")
    assert inode_times(s.m, img)[0] == s.t
    s.exit("r").delete("img")
    assert inode_times(s.m, img) == (-1, -1) and inode_times(s.m, img + 1000) == (-1, -1)
    s.create("log")
    assert s.m.obj_by_name["log"] == img and inode_times(s.m, img) == (s.t, s.t)


@pytest.mark.parametrize("atime", ["noatime", "lazytime"])
def test_noatime_and_lazytime_reads_leave_no_dirty_inode(atime: str):
    s = Sim(atime=atime).mkdir("/a").start("r", "/a").create("img", size=MiB).read("r", "img")
    img = s.m.obj_by_name["img"]
    # lazytime: I_DIRTY_TIME still attaches the inode (b_dirty_time), but it is not dirty io
    assert s.m.o_wb[img] == (s.m.mem.by_path["/a"] if atime == "lazytime" else -1)
    s.exit("r").rmdir("/a").drop_caches()
    assert not s.dying("/a")


def test_a_dirty_inode_is_not_evicted_by_drop_caches():
    s = Sim().mkdir("/a").start("r", "/a").create("img", size=MiB).read("r", "img").exit("r").rmdir("/a")
    s.drop_caches().op(Op.DROP_CACHES, flags=Flag.INODES)
    assert s.dying("/a")  # inode_lru_isolate skips a dirty inode
    s.sync().op(Op.DROP_CACHES, flags=Flag.INODES)
    assert not s.dying("/a")


def test_clean_at_rmdir_switches_the_inode_to_the_parent():
    s = Sim().mkdir("/p", "/p/a").start("t", "/p/a").create("log", size=0).write("t", "log", MiB).sync()
    s.exit("t").rmdir("/p/a").drop_caches()
    assert not s.dying("/p/a") and s.m.o_wb[s.m.obj_by_name["log"]] == s.m.mem.by_path["/p"]


def test_deleting_the_file_releases_a_pinned_writeback_context():
    s = Sim().mkdir("/a").start("t", "/a").create("log", size=0).write("t", "log", MiB).exit("t").rmdir("/a")
    assert s.dying("/a")
    s.delete("log")
    assert not s.dying("/a")


def test_swapoff_charges_dead_records_to_the_caller():
    s = Sim(swap_bytes=64 * MiB, cpus=1).mkdir("/a", "/b", "/c").start("t", "/a").anon("t", "heap", 8 * MiB)
    s.reclaim("/a", 8 * MiB).move("t", "/b").rmdir("/a")
    assert s.dying("/a")
    s.op(Op.SWAP_OFF, cgroup="/c")
    assert s.st("/c")["anon"] == 8 * MiB and s.current("/b") == 0 and not s.dying("/a")


def test_freed_swap_slots_wait_in_the_slot_cache():
    # 6.1: an unmap frees swap entries one by one through the slot cache (6.12: test below)
    s = Sim(swap_bytes=64 * MiB, cpus=1, kernel="6.1").mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("shm", shmem=True).write("a1", "shm", 64 * 4096 + 15 * 4096).reclaim("/a", MiB)
    s.exit("a1").rmdir("/a").delete("shm")
    assert s.dying("/a") and s.m.swap_used == 15  # 64 freed in one batch, 15 parked, still charged
    s.anon("b1", "heap", MiB).reclaim("/b", MiB).anon_free("b1", "heap")  # b frees 256 slots: flushes
    assert not s.dying("/a")


def test_an_unmap_on_6_12_frees_a_run_of_swap_entries_past_the_slot_cache():
    # zap_pte_range -> free_swap_and_cache_nr -> __swap_entries_free: a batch of more than one entry is
    # uncharged at once (swap_entry_range_free); a tmpfs page (shmem_free_swap, one entry) is still parked
    for kernel, kept in (("6.1", True), ("6.12", False)):
        s = Sim(swap_bytes=64 * MiB, cpus=1, kernel=kernel).mkdir("/a").start("a1", "/a")
        s.anon("a1", "heap", 40 * 4096).reclaim("/a", MiB).exit("a1").rmdir("/a")
        assert s.dying("/a") is kept and s.m.swap_used == (40 if kept else 0), kernel
    s = Sim(swap_bytes=64 * MiB, cpus=1, kernel="6.12").mkdir("/a").start("a1", "/a")
    s.create("shm", shmem=True).write("a1", "shm", 15 * 4096).reclaim("/a", MiB)
    s.exit("a1").rmdir("/a").delete("shm")
    assert s.dying("/a") and s.m.swap_used == 15
    s = Sim(swap_bytes=64 * MiB, cpus=1, kernel="6.12").mkdir("/a").start("a1", "/a")  # longer than a cluster:
    s.anon("a1", "heap", 600 * 4096).reclaim("/a", 4 * MiB).exit("a1").rmdir("/a")  # a batch crosses one
    assert s.dying("/a")


def test_swap_slot_cache_absent_on_newer_kernels():
    s = Sim(swap_bytes=64 * MiB, cpus=1, kernel="6.18").mkdir("/a").start("a1", "/a")
    s.create("shm", shmem=True).write("a1", "shm", 15 * 4096).reclaim("/a", MiB)
    s.exit("a1").rmdir("/a").delete("shm")
    assert not s.dying("/a") and s.m.swap_used == 0


def test_swap_walk_reparents_records_parked_in_the_slot_cache():
    s = Sim("swap_walk", swap_bytes=64 * MiB, cpus=1, kernel="6.12").mkdir("/a").start("a1", "/a")
    s.create("shm", shmem=True).write("a1", "shm", 15 * 4096).reclaim("/a", MiB)
    s.exit("a1").rmdir("/a").delete("shm")
    assert s.dying("/a") and s.m.swap_used == 15  # freed, parked, still naming /a
    s.wait(120).mkdir("/b")  # the walk ran in between
    assert not s.dying("/a") and s.m.swap_used == 15 and s.m.mem.swap[0] == 15


def test_memory_op_sizes_the_machine_and_global_reclaim_follows_it():
    # a 1 GiB machine whose trace says it has 64 MiB: page cache beyond the watermark is reclaimed
    s = Sim().memory(64 * MiB).mkdir("/a").start("a1", "/a")
    assert s.m.mem_total == 64 * MiB // 4096
    s.create("big", size=128 * MiB).read("a1", "big")
    assert s.m.counters["kswapd_wakeups"] > 0 and s.current("/a") <= 64 * MiB


def test_memory_unplug_frees_what_it_can_and_keeps_the_rest_online():
    s = Sim().mkdir("/a").start("a1", "/a").create("lib", size=8 * MiB).read("a1", "lib").anon("a1", "h", 4 * MiB)
    s.memory(6 * MiB)  # the page cache can go, the anon (no swap) cannot
    assert s.current("/a") == 4 * MiB and s.m.mem_total == 6 * MiB // 4096
    s.memory(2 * MiB)
    assert s.m.mem_total == 4 * MiB // 4096 and s.current("/a") == 4 * MiB


def test_socket_keeps_its_memcg_dying_after_the_opener_left_until_it_is_closed():
    # KERNEL-MODEL.md implication 6: sockets pin until closed (sk->sk_memcg, css_tryget)
    s = Sim().mkdir("/a").start("a1", "/a").sock_open("a1", "conn", 64 * KiB).exit("a1").rmdir("/a")
    st = s.st("/a")
    assert st["dying"] and st["sock"] == 64 * KiB and st["memory.current"] == 64 * KiB
    assert s.m.summary()["held_sock"] == 1 and s.m.summary()["sock_bytes"] == 64 * KiB
    s.sock_close("conn")
    assert s.m.summary()["memcgs_dying"] == 0 and s.m.counters["memcgs_freed"] == 1


def test_a_socket_without_buffers_still_pins_and_a_root_task_socket_pins_nothing():
    s = Sim().mkdir("/a").start("a1", "/a").start("r1", "/").sock_open("a1", "idle").sock_open("r1", "rs", MiB)
    s.exit("a1").rmdir("/a")
    assert s.st("/a")["dying"] and s.st("/a")["memory.current"] == 0
    s.sock_close("idle").sock_close("rs")
    assert s.m.summary()["memcgs_dying"] == 0


def test_socket_buffers_over_the_limit_are_refused_not_oom_killed():
    s = Sim().mkdir("/b").limit("/b", MiB).start("b1", "/b").sock_open("b1", "big", 2 * MiB)
    assert s.m.counters["charge_failed"] == 1 and s.m.counters["oom_kills"] == 0
    assert s.st("/b")["sock"] == 0 and s.m.t_alive[s.m.task_by_name["b1"]]
    s.exit("b1").rmdir("/b")
    assert s.st("/b")["dying"]  # the socket still references the memcg


def test_mglru_reclaim_takes_about_half_of_a_zombie_per_visit():
    # the kernel check limit_reclaim_scrapes_zombie: Debian's 6.12 (MGLRU on) kept 3.75 MiB of the
    # zombie's 8 MiB after the sibling's charges, then 1.75 MiB after memory.max was lowered
    s = Sim(kernel="6.12", lru_gen=True, atime="noatime").mkdir("/pod").limit("/pod", 16 * MiB).mkdir("/pod/a")
    s.start("ta", "/pod/a").create("data", size=8 * MiB).read("ta", "data").exit("ta").rmdir("/pod/a")
    s.mkdir("/pod/b").start("tb", "/pod/b").anon("tb", "heap", 10 * MiB)
    assert s.dying("/pod/a") and s.st("/pod")["file"] == 960 * 4 * KiB  # 2048 pages -> 17 batches of 64 taken
    s.limit("/pod", 12 * MiB)
    assert s.dying("/pod/a") and s.st("/pod")["file"] == 448 * 4 * KiB  # 960 -> 8 batches taken
    s.reclaim("/pod", 8 * MiB)  # memory.reclaim asks until done: the halves add up to all of it
    assert not s.dying("/pod/a")


def test_high_and_limit_reclaim_go_in_small_calls_that_stop_at_the_need():
    # the kernel check high_reclaims_zombie: reclaim_high asks for one charge batch (64 pages) per
    # call, so the zombie loses what the excess needs (8 MiB), not a whole priority round more
    s = Sim(kernel="6.1").mkdir("/pod", "/pod/a").start("ta", "/pod/a")
    s.create("data", size=32 * MiB).read("ta", "data").exit("ta").rmdir("/pod/a")
    s.limit("/pod", 48 * MiB, high=True).mkdir("/pod/b").start("tb", "/pod/b")
    passes = s.m.counters["reclaim_passes"]
    s.anon("tb", "heap", 24 * MiB)
    assert s.dying("/pod/a") and s.st("/pod")["file"] == 24 * MiB
    assert s.m.counters["reclaim_passes"] - passes == 8 * MiB // (64 * 4 * KiB)  # one pass per call
    # memory.max: 32 pages a call (the faulting page's reclaim), again just what the charge needs
    s.limit("/pod", None, high=True).limit("/pod", 48 * MiB).anon("tb", "heap2", 4 * MiB)
    assert s.st("/pod")["file"] == 20 * MiB and s.current("/pod") == 48 * MiB


def test_partial_reclaim_walks_resume_where_the_last_call_stopped():
    # 6.12 direct reclaim stops its walk at the target; the next call starts after that memcg
    # (mem_cgroup_iter's position), so small calls spread over the zombies instead of draining the first
    s = Sim(kernel="6.12").mkdir("/pod")
    for i in range(4):
        s.mkdir(f"/pod/z{i}").start(f"t{i}", f"/pod/z{i}").create(f"f{i}", size=4 * MiB)
        s.read(f"t{i}", f"f{i}").exit(f"t{i}").rmdir(f"/pod/z{i}")
    s.limit("/pod", 16 * MiB).mkdir("/pod/b").start("tb", "/pod/b")
    s.anon("tb", "h1", 96 * 4 * KiB).anon("tb", "h2", 96 * 4 * KiB)  # two charges of 3 calls each
    mem = s.m.mem
    left = {mem.path[x]: mem.file[x] for x in mem.dying}
    # z0 z1 z2 by the first charge, then z3 z0 z1: 64 pages off z0 and z1, 32 off z2 and z3
    assert left == {"/pod/z0": 960, "/pod/z1": 960, "/pod/z2": 992, "/pod/z3": 992}


def test_an_oom_victims_memcg_stays_dying_while_the_oom_reaper_holds_the_task():
    # the kernel check oom_after_zombie_scraped: removed right after the kill, the victim's cgroup stays
    # dying until the OOM reaper puts the task, OOM_REAPER_DELAY (2 s) later; from v5.18
    for kernel, held in (("6.1", True), ("5.15", False)):
        s = Sim(kernel=kernel).mkdir("/p").limit("/p", 4 * MiB).start("t", "/p")
        s.step_us = 100_000  # the exit and the rmdir follow the kill within the reaper's delay
        s.anon("t", "h", 8 * MiB)
        assert s.m.counters["oom_kills"] == 1
        s.exit("t").rmdir("/p")
        assert s.dying("/p") is held
        if held:
            assert s.m.sampler.snapshot(s.m.now_us)["held_oom"] == 1
        s.wait(2.5).sync()
        assert not s.dying("/p")


def test_mglru_global_reclaim_stops_at_its_target_instead_of_half_a_zombie():
    # the kernel check global_reclaim_scrapes_zombie: on 6.12 kswapd left 115.25 MiB of a 192 MiB zombie;
    # should_abort_scan ends root reclaim at the target, so the zombie loses what the watermarks need
    def left(lru_gen: bool) -> int:
        s = Sim(kernel="6.12", lru_gen=lru_gen, mem_bytes=440 * MiB, watermark_low=0.008, watermark_high=0.01)
        s.mkdir("/pod", "/pod/a").start("ta", "/pod/a").create("data", size=192 * MiB).read("ta", "data")
        s.exit("ta").rmdir("/pod/a").mkdir("/pod/b").start("tb", "/pod/b").anon("tb", "heap", 320 * MiB)
        assert s.dying("/pod/a") and s.m.counters["kswapd_wakeups"] >= 1
        return s.st("/pod")["file"]
    need = 192 * MiB + 320 * MiB - (440 * MiB - int(440 * MiB // 4096 * 0.01) * 4096)
    assert abs(left(True) - (192 * MiB - need)) <= 64 * 4 * KiB  # within one batch of the need
    assert left(True) > 96 * MiB  # not the half that memcg reclaim would take in one visit


def test_memory_reclaim_is_one_call_on_6_1_and_quarter_calls_from_6_9():
    # the kernel check reclaim_partial_live (pgsteal read in the VM): asked 16 MiB of a live 64 MiB,
    # 6.1 took 6,915 pages in one call's priority rounds; 6.12 with MGLRU exactly 4,096, in calls of a
    # quarter of what is left, each visit a whole number of 64-folio batches
    for kernel, lru_gen, taken, calls in (("6.1", False, 6915, 1), ("6.12", True, 4096, 11)):
        s = Sim(kernel=kernel, lru_gen=lru_gen).mkdir("/a").start("t", "/a")
        s.create("f", size=64 * MiB).read("t", "f")
        passes = s.m.counters["reclaim_passes"]
        s.reclaim("/a", 16 * MiB)
        assert (64 * MiB - s.st("/a")["file"]) // (4 * KiB) == taken
        assert s.m.counters["reclaim_passes"] - passes == calls and s.m.counters["reclaim_eagain"] == 0


def test_an_unpin_after_a_pin_whose_charge_was_refused_is_ignored():
    # found by the policy property test: an smemcg at its limit refuses the pin's fault; the pin
    # never exists, so the trace's unpin is counted as ignored instead of failing the replay
    s = Sim(policy="smemcg", knobs={"smemcg": {"shared": "shmem", "limit_bytes": MiB}})
    s.start("t", "/").create("f", shmem=True).write("t", "f", MiB + 64 * KiB)
    s.pin("t", "f", MiB + 64 * KiB)
    assert s.m.counters["charge_failed"] >= 1 and not s.m.t_pins[s.m.task_by_name["t"]]
    s.unpin("t", "f", MiB + 64 * KiB)
    assert s.m.counters["ops_ignored"] == 1


def test_read_bigger_than_the_room_evicts_its_own_first_pages():
    # kernel check limit_reclaim_anon_vs_file (D10): the read is charged folio by folio, so the pages
    # it already brought in are what limit reclaim finds, not the task's older anon
    s = Sim(kernel="6.12").swap_on(256 * MiB).mkdir("/pod", "/pod/a").limit("/pod", 64 * MiB)
    s.start("ta", "/pod/a").anon("ta", "heap", 32 * MiB).wait(3).create("data", size=48 * MiB).read("ta", "data")
    st = s.st("/pod")
    assert st["anon"] == 32 * MiB and st["memory.swap.current"] == 0
    assert 31 * MiB <= st["file"] <= 32 * MiB and st["memory.current"] <= 64 * MiB


@pytest.mark.parametrize("lru_gen", [False, True])
def test_page_cache_goes_before_older_anon_unless_it_thrashes(lru_gen):
    # kernel check limit_reclaim_cache_before_old_anon (D11): cache_trim_mode / MGLRU's type choice
    # evict page cache first, though the anon is a whole LRU quantum older
    def run(thrash: bool) -> dict:
        s = Sim(kernel="6.12", lru_gen=lru_gen).swap_on(256 * MiB).mkdir("/pod", "/pod/a").limit("/pod", 64 * MiB)
        s.start("ta", "/pod/a").anon("ta", "heap", 32 * MiB).wait(31)
        s.create("data", size=24 * MiB).read("ta", "data")
        if thrash:  # evict the cache and read it back: 6,144 refaults since the pod's last reclaim
            s.reclaim("/pod", 24 * MiB)
            assert s.st("/pod")["memory.swap.current"] == 0  # (this reclaim took page cache only)
            s.read("ta", "data")
            assert s.st("/pod")["workingset_refault"] >= 64
        s.create("data2", size=16 * MiB).read("ta", "data2")
        return s.st("/pod")
    calm = run(False)
    assert calm["memory.swap.current"] == 0 and calm["anon"] == 32 * MiB and calm["file"] <= 32 * MiB
    # after refaults, the next reclaim (one piece of the read) takes the one age order over both kinds (the older anon
    # first); it ends with a new refault snapshot, so the calls after it take page cache first again
    hot = run(True)
    assert 0 < hot["memory.swap.current"] <= MiB and hot["anon"] == 32 * MiB - hot["memory.swap.current"]


def test_anon_bigger_than_the_limit_streams_into_swap_without_oom():
    # D10: charged page by page, a big allocation under memory.max swaps out its own first pages
    # (the kernel's do_anonymous_page charges one folio at a time); one charge for all of it found
    # nothing older to reclaim and OOM-killed the task
    s = Sim(kernel="6.12").swap_on(256 * MiB).mkdir("/pod").limit("/pod", 32 * MiB)
    s.start("t", "/pod").anon("t", "heap", 48 * MiB)
    st = s.st("/pod")
    assert s.m.counters["oom_kills"] == 0 and not s.dying("/pod")
    assert st["anon"] + st["memory.swap.current"] == 48 * MiB and st["memory.swap.current"] >= 16 * MiB
    assert st["memory.current"] <= 32 * MiB and st["memory.peak"] <= 32 * MiB  # never past the limit


def test_read_bigger_than_memory_streams_through_the_page_cache():
    # D10 under machine-wide pressure: the read goes in pieces, kswapd evicting its first pages as
    # it goes; one charge of 96 MiB on a 64 MiB machine found nothing to reclaim and OOM-killed
    s = Sim(mem_bytes=64 * MiB, watermark_low=0.05, watermark_high=0.1).mkdir("/a").start("t", "/a")
    s.create("big", size=96 * MiB).read("t", "big")
    assert s.m.counters["global_oom_kills"] == 0 and s.m.counters["oom_kills"] == 0
    assert s.m.counters["kswapd_wakeups"] >= 1 and s.m.counters["evictions"] >= 32 * MiB // 4096
    assert 48 * MiB <= s.st("/a")["file"] <= 64 * MiB * 0.95  # what fits above the low watermark
    assert s.m.resident + s.m.kmem_total <= s.m.mem_total
