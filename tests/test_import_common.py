"""Columnar helpers the importers' speed rests on: each must equal the plain numpy form it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from traces.importers import build, common


def _lexsort_ids(*cols: np.ndarray) -> np.ndarray:
    # the reference: ids of equal tuples numbered in sorted-tuple order, by a multi-key lexsort
    order = np.lexsort(cols[::-1])
    new = np.zeros(cols[0].size, dtype=bool)
    new[0] = True
    for c in cols:
        s = c[order]
        new[1:] |= s[1:] != s[:-1]
    ids = np.empty(cols[0].size, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def test_group_ids_packed_and_lexsort_paths_agree() -> None:
    rng = np.random.default_rng(4)
    job = rng.integers(-10, 1 << 40, 20000)
    job[::3] = job[0]
    index = rng.integers(0, 4, 20000)
    wide = rng.integers(0, 1 << 62, 20000)  # with ``index`` needs 64 bits: the lexsort path
    for cols in ((job, index), (index, job), (job,), (wide, index), (index.astype(np.float64), job)):
        ids = build.group_ids(*cols)
        assert ids.dtype == np.int64
        assert np.array_equal(ids, _lexsort_ids(*cols))


def test_order_key_orders_and_equals_like_group_ids() -> None:
    """``pair`` only sorts and compares its keys: the packed key must do both as the dense ids do."""
    rng = np.random.default_rng(6)
    job = rng.integers(-10, 1 << 40, 20000)
    job[::3] = job[0]
    index = rng.integers(0, 4, 20000)
    wide = rng.integers(0, 1 << 62, 20000)
    for cols in ((job, index), (index, job), (job,), (wide, index)):
        key, ids = build.order_key(*cols), build.group_ids(*cols)
        assert key.dtype == np.int64
        assert np.array_equal(np.argsort(key, kind="stable"), np.argsort(ids, kind="stable"))
        assert np.array_equal(np.unique(key, return_inverse=True)[1].ravel(), ids)


def test_first_seen_ids_number_pairs_as_first_seen_pairs_does() -> None:
    import pyarrow as pa

    rng = np.random.default_rng(7)
    for hi in (12, 1 << 60):  # packed in one int64, and not
        a, b = rng.integers(0, 30, 5000), rng.integers(0, hi, 5000)
        b[::2] = b[1]
        want = build.first_seen_pairs(pa.array(a).cast(pa.string()), pa.array(b).cast(pa.string()))
        assert np.array_equal(build.first_seen_ids(a, b), want)


@pytest.mark.parametrize("seed", range(8))
def test_first_seen_numbers_keys_as_arrow_does(seed) -> None:
    """The compiled hash numbering (when built) gives the reference's (Arrow's dictionary_encode) ids."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 30000))
    keys = [rng.integers(0, 50, n), rng.integers(-(1 << 63), (1 << 63) - 1, n, dtype=np.int64),
            (np.sort(rng.integers(0, 5000, n)) << 40) | rng.integers(0, 1 << 20, n),  # packed pairs
            np.arange(n, dtype=np.int64) << 32, np.full(n, -1, dtype=np.int64)][seed % 5]
    if n and seed % 2:
        keys[rng.integers(0, n, n // 3)] = keys[0]
    got, want = common.first_seen(keys), common.first_seen_pure(keys)
    assert got.dtype == want.dtype == np.int64
    assert np.array_equal(got, want)


def test_first_seen_pairs_numbers_like_joined_strings() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(5)
    a = pa.array(rng.integers(0, 30, 5000)).cast(pa.string())
    b = pa.array(rng.integers(0, 12, 5000)).cast(pa.string())
    joined = pc.binary_join_element_wise(a, b, "\x1f").dictionary_encode().indices.to_numpy()
    assert np.array_equal(build.first_seen_pairs(a, b), joined)
    assert build.first_seen_pairs(a.slice(0, 0), b.slice(0, 0)).size == 0


@pytest.mark.parametrize("seed", range(12))
def test_pair_merge_order_is_the_lexsort(seed: int) -> None:
    """The merged rows of ``lifecycle.pair`` (real rows by key, time and row; implicit starts, one per
    key; handover starts) come in ``np.lexsort((prio, t, k))`` order, whichever way it is computed."""
    from traces.importers.common import NEVER
    from traces.importers.lifecycle import _merged_order

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    key = rng.integers(0, [3, 50, 1 << 40, 1 << 60][seed % 4], n)
    time = rng.integers(0, [5, 1 << 20, 1 << 40][seed % 3], n)
    time[rng.random(n) < 0.05] = NEVER
    order = np.lexsort((time, key))  # stable: rows in order among equal (key, time)
    k, t, rows = key[order], time[order], order
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    synth = first[rng.random(first.size) < 0.5]
    nmoved = int(rng.integers(0, 3)) if seed % 2 else 0
    moved = rng.choice(n, nmoved, replace=False)
    kk = np.concatenate([k, k[synth], key[moved]])
    tt = np.concatenate([t, np.zeros(synth.size, np.int64), time[moved] // 2])
    prio = np.concatenate([np.full(n, 1 << 62, np.int64), np.zeros(synth.size, np.int64),
                           np.full(nmoved, 1 << 62, np.int64)])
    prio |= np.concatenate([rows, rows[synth], moved])
    assert np.array_equal(_merged_order(kk, tt, prio, n, nmoved), np.lexsort((prio, tt, kk)))


def test_valid_mask_is_arrows_validity() -> None:
    """``common.valid_mask`` (an unpacked bitmap) gives ``is_valid().to_numpy()``: slices, chunks, dictionaries."""
    import pyarrow as pa

    from traces.importers.common import valid_mask
    rng = np.random.default_rng(11)
    vals = [None if rng.random() < 0.3 else int(v) for v in rng.integers(0, 9, 1000)]
    ints = pa.array(vals, pa.int64())
    cases = [ints, ints.slice(3), ints.slice(5, 17), ints.slice(0, 0), pa.array(range(20)), pa.nulls(9),
             ints.cast(pa.string()).slice(7), ints.dictionary_encode().slice(2),
             pa.chunked_array([ints.slice(1, 40), ints.slice(333)]), pa.chunked_array([], pa.int64())]
    for arr in cases:
        got = valid_mask(arr)
        assert got.dtype == bool
        assert np.array_equal(got, arr.is_valid().to_numpy(zero_copy_only=False))
