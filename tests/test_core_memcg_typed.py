"""MemcgTable's per-event methods at the edges of their columns: the compiled build reads and
writes the columns through their buffers (``core/memcg.pxd`` types them as array.array), and
must still answer and raise what the pure model does.

In: small tables built here. Out: assertions on the values and exception types; the suite runs
them on whichever build is importable (compiled by default, pure with ``MEMCG_REPLAY_PURE=1``).
"""

from __future__ import annotations

from array import array

import pytest

from core.memcg import UNLIMITED, MemcgTable, State, add_i32


def _chain() -> tuple[MemcgTable, int, int]:
    """Root, /a, /a/b; returns (table, a, b)."""
    mem = MemcgTable()
    _, a = mem.mkdir("/a", 1)
    _, b = mem.mkdir("/a/b", 2)
    return mem, a, b


def test_charge_walks_to_the_root_and_keeps_peaks() -> None:
    mem, a, b = _chain()
    mem.charge(b, 7)
    mem.charge(a, 3)
    mem.charge(b, -5)
    assert [mem.usage[x] for x in (0, a, b)] == [5, 5, 2]
    assert [mem.peak[x] for x in (0, a, b)] == [10, 10, 7]
    mem.charge(-1, 99)  # no memcg: nothing charged
    assert mem.usage[0] == 5


def test_charge_past_int64_raises_overflow_error() -> None:
    mem, a, b = _chain()
    mem.charge(b, (1 << 63) - 1)
    with pytest.raises(OverflowError):
        mem.charge(b, 1)


def test_charge_swap_past_int32_raises_overflow_error() -> None:
    mem, a, b = _chain()
    mem.charge_swap(b, (1 << 31) - 1)
    assert mem.swap_usage[0] == (1 << 31) - 1
    with pytest.raises(OverflowError):
        mem.charge_swap(b, 1)
    mem.charge_swap(b, -((1 << 31) - 1))
    assert [mem.swap_usage[x] for x in (0, a, b)] == [0, 0, 0]


def test_count_refault_counts_own_and_subtree() -> None:
    mem, a, b = _chain()
    mem.count_refault(b, 4)
    mem.count_refault(a, 1)
    assert [mem.refault[x] for x in (0, a, b)] == [0, 1, 4]
    assert [mem.refault_tree[x] for x in (0, a, b)] == [5, 5, 4]


def test_a_slot_outside_the_table_raises_index_error() -> None:
    mem, a, b = _chain()
    for call in (lambda: mem.charge(99, 1), lambda: mem.charge_swap(99, 1), lambda: mem.count_refault(99, 1),
                 lambda: mem.over_limit(99, 1), lambda: mem.held(99)):
        with pytest.raises(IndexError):
            call()


def test_over_limit_finds_the_nearest_breached_max_without_overflowing() -> None:
    mem, a, b = _chain()
    mem.max[a] = 10
    mem.charge(b, 8)
    assert mem.over_limit(b, 2) == -1
    assert mem.over_limit(b, 3) == a
    assert mem.over_limit(b, -(1 << 70)) == -1
    assert mem.over_limit(b, UNLIMITED) == b  # b's own max is UNLIMITED: 8 + UNLIMITED breaks it
    mem.usage[b] = (1 << 63) - 1
    assert mem.over_limit(b, 1 << 62) == b  # the sum does not fit 64 bits; Python ints compare it
    mem.usage[b] = -(1 << 63)
    assert mem.over_limit(b, -(1 << 62)) == -1


def test_own_pages_sums_the_int32_columns_in_64_bits() -> None:
    # compiled, the six columns are read through their buffers as C ints: the sum must not wrap at 32 bits
    mem, a, b = _chain()
    for col in (mem.anon, mem.file, mem.shmem, mem.kmem, mem.sock, mem.borrow):
        col[b] = (1 << 31) - 1
    assert mem.own_pages(b) == 6 * ((1 << 31) - 1)
    assert mem.own_pages(a) == 0
    with pytest.raises(IndexError):
        mem.own_pages(99)


def test_held_and_release_follow_the_columns() -> None:
    mem, a, b = _chain()
    mem.charge(b, 1)
    mem.anon[b] = 1
    mem.offline(b, 5)
    assert mem.held(b)
    assert mem.try_release(b, 6) == 0
    mem.anon[b] = 0
    assert not mem.held(b)
    assert mem.held(a)  # its child
    mem.offline(a, 7)
    assert mem.try_release(b, 8) == 2
    assert mem.state[a] == mem.state[b] == State.FREED
    assert mem.live() == [0]


def test_reused_slots_start_from_the_defaults() -> None:
    mem, a, b = _chain()
    fresh = {name: col[b] for name, col in mem.columns().items() if name not in ("born_us",)}
    mem.charge(b, 3)
    mem.max[b] = 9
    mem.swap_usage[b] = 4
    mem.offline(b, 5)
    mem.charge(b, -3)
    mem.swap_usage[b] = 0
    assert mem.try_release(b, 6) == 1
    mem.peak[a] = mem.usage[a] = mem.peak[0] = mem.usage[0] = 0
    _, c = mem.mkdir("/a/c", 7)
    assert c == b
    again = {name: col[c] for name, col in mem.columns().items() if name not in ("born_us",)}
    assert again == fresh
    assert mem.born_us[c] == 7
    assert mem.nr_dying_desc[a] == 0


def test_add_i32_on_a_64_bit_column_adds_to_that_element() -> None:
    # the compiled buffer path reads int32 elements: a wider column must take the array's own +=
    col = array("q", [0, 0, 0])
    add_i32(col, 1, 1024)
    add_i32(col, 2, (1 << 40))
    assert col.tolist() == [0, 1024, 1 << 40]
    narrow = array("i", [0, 5])
    add_i32(narrow, 1, 7)
    assert narrow.tolist() == [0, 12]
    with pytest.raises(OverflowError):
        add_i32(narrow, 1, 1 << 31)
    assert narrow.tolist() == [0, 12]


def test_a_reused_slot_takes_an_int64_value_and_refuses_one_past_it() -> None:
    mem, a, b = _chain()
    mem.offline(b, 5)
    assert mem.try_release(b, 6) == 1
    with pytest.raises(OverflowError):
        mem.mkdir("/a/c", 1 << 70)  # born_us is int64: as the array itself refuses it, in both builds
    mem.free_slots.append(b)  # (the refused mkdir took the slot before its store failed)
    _, c = mem.mkdir("/a/d", 1 << 40)
    assert c == b and mem.born_us[c] == 1 << 40 and mem.parent[c] == a and mem.max[c] == mem.max[a]


def test_new_slots_after_a_pickle_go_into_the_restored_columns() -> None:
    """``_new_slot`` writes through ``column_arrays``: after a pickle round trip (a checkpoint) those
    must still be the table's own columns, or a new memcg's row would land in arrays nobody reads."""
    import pickle

    mem, a, b = _chain()
    mem.offline(b, 5)
    mem.try_release(b, 6)  # a free slot to reuse, then one appended
    back = pickle.loads(pickle.dumps(mem))
    names = list(back.columns())
    assert len(names) == len(back.column_arrays) > 30
    assert all(col is getattr(back, name) for col, name in zip(back.column_arrays, names))
    _, c = back.mkdir("/c", 7)
    _, d = back.mkdir("/d", 8)
    assert (c, d) == (b, 3) and back.born_us[c] == 7 and back.born_us[d] == 8
    assert back.parent[d] == 0 and back.max[d] == UNLIMITED and len(back.anon) == 4
