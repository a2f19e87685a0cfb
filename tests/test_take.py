"""The importers' string gather (``traces.take``): the compiled build gives the pure one's arrays.

In: string bases (sliced, with nulls, empty strings, non-ASCII text), per event rows (-1 = null)
and an output order. Out: assertions that ``traces.take.strings`` (compiled when built) and
``traces.take.strings_pure`` make equal arrays (values, nulls, null counts), that both refuse a
row outside the base, and that a stale or refused build runs the pure gather.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from traces import take, take_build

_built = pytest.mark.skipif(take_build.module() is None, reason=f"string gather {take_build.describe()}")


def _base(rng: np.random.Generator, n: int, nulls: bool) -> pa.Array:
    words = ["", "a", "/job-1/task-0.1", "héllo·wörld", "x" * 300, "task:anon0"]
    vals = [None if nulls and rng.random() < 0.2
            else words[int(rng.integers(len(words)))] + str(i)[: int(rng.integers(4))] for i in range(n)]
    arr = pa.array(vals, pa.string())
    lo = int(rng.integers(0, max(n // 3, 1)))
    return arr.slice(lo)  # a slice: its offsets start inside the buffer


def _case(seed: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = _base(rng, int(rng.integers(1, 400)), nulls=seed % 3 == 0)
    n = int(rng.integers(0, 2000))
    rows = rng.integers(0, len(base), n).astype(np.int32)
    rows[rng.random(n) < [0.0, 0.3, 1.0][seed % 3]] = -1
    order = rng.permutation(n).astype(np.int64)
    if seed % 4 == 1:
        order = np.sort(rng.integers(0, max(n, 1), n)) if n else order  # repeats, nearly in order
    return base, rows, order


def _equal(a: pa.Array, b: pa.Array) -> None:
    assert a.type == b.type == pa.string()
    assert len(a) == len(b) and a.null_count == b.null_count
    assert a.to_pylist() == b.to_pylist()
    a.validate(full=True)


@pytest.mark.parametrize("seed", range(30))
def test_strings_match_the_reference(seed):
    base, rows, order = _case(seed)
    # a null cell of the base reads as "" (the reference's exact-size offsets give it no bytes)
    want = [None if r < 0 else base[int(r)].as_py() or "" for r in rows[order]]
    got = take.strings(base, rows, order)
    _equal(got, take.strings_pure(base, rows, order))
    assert got.to_pylist() == want


@_built
@pytest.mark.parametrize("seed", range(30))
def test_compiled_gather_makes_the_pure_arrays(seed):
    base, rows, order = _case(seed)
    off = np.frombuffer(base.buffers()[1], dtype=np.int32)[base.offset:base.offset + len(base) + 1]
    got = take_build.module().gather(off, np.frombuffer(base.buffers()[2], dtype=np.uint8), rows, order)
    offsets, data, bitmap, nulls = got
    arr = pa.Array.from_buffers(pa.string(), offsets.size - 1,
                                [None if bitmap is None else pa.py_buffer(bitmap), pa.py_buffer(offsets),
                                 pa.py_buffer(data)], null_count=nulls)
    _equal(arr, take.strings_pure(base, rows, order))
    assert data.size == offsets[-1]  # exact size


def test_all_null_and_empty_bases():
    base = pa.array(["a", "bc"], pa.string())
    _equal(take.strings(base, np.full(5, -1, np.int32), np.arange(5)), pa.nulls(5, pa.string()))
    empty = pa.array([], pa.string())
    _equal(take.strings(empty, np.full(3, -1, np.int32), np.array([2, 0, 1])), pa.nulls(3, pa.string()))
    blank = pa.array(["", ""], pa.string())
    _equal(take.strings(blank, np.array([1, -1, 0], np.int32), np.array([0, 1, 2])), pa.array(["", None, ""]))


def test_a_row_outside_the_base_is_refused_in_both_builds():
    base = pa.array(["a", "bc"], pa.string())
    for fn in (take.strings, take.strings_pure):
        with pytest.raises(IndexError):
            fn(base, np.array([0, 2], np.int32), np.array([0, 1]))


@_built
def test_a_refused_build_gathers_with_the_pure_code(monkeypatch):
    """(When a build is refused: tests/test_build_check.py, for every compiled module.)"""
    monkeypatch.setattr(take_build.BUILD, "_state", {})
    monkeypatch.setenv("MEMCG_REPLAY_PURE", "1")
    assert take_build.module() is None
    base, rows, order = _case(4)
    _equal(take.strings(base, rows, order), take.strings_pure(base, rows, order))


# ---------------------------------------------------------------- names formatted from integers

_EDGES = [0, 1, -1, 9, 10, 99, 100, -100, 2**63 - 1, -2**63, 10**18, -10**18, 9999999999999999999 // 10]
_EDGES += [s * (10**k + d) for k in range(19) for d in (-1, 0, 1) for s in (1, -1) if 10**k + d < 2**63]


def _decimal_case(seed: int) -> tuple[list, int | None, np.ndarray | None, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 500)) if seed % 5 else len(_EDGES)
    ints = [np.array(_EDGES, np.int64) if seed % 5 == 0 else
            rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64) // 10 ** int(rng.integers(0, 19))
            for _ in range(3)]
    words = ["/job-", "", "/task-", ".", "é-", ":x"]
    parts: list = []
    for i in range(int(rng.integers(1, 7))):
        parts.append(ints[i % 3] if i % 2 == 0 else words[int(rng.integers(len(words)))])
    head = int(rng.integers(1, len(parts) + 1)) if seed % 3 == 0 else None
    if head is not None and head < len(parts) and not any(not isinstance(p, str) for p in parts[head:]):
        parts.append(ints[0])
    tail = rng.random(n) < 0.6 if head is not None else None
    valid = rng.random(n) < 0.7 if seed % 2 else None
    return parts, head, tail, valid


@pytest.mark.parametrize("seed", range(40))
def test_join_decimal_makes_the_reference_strings(seed):
    """The compiled formatting (when built) gives Arrow's casts and joins: every digit, sign, null and tail."""
    from traces.importers.build import join_decimal, join_decimal_pure
    parts, head, tail, valid = _decimal_case(seed)
    got, want = join_decimal(parts, head, tail, valid), join_decimal_pure(parts, head, tail, valid)
    n = len(want)
    expect = []
    for i in range(n):
        if valid is not None and not valid[i]:
            expect.append(None)
            continue
        upto = len(parts) if head is None or tail is None or tail[i] else head
        expect.append("".join(p if isinstance(p, str) else str(int(p[i])) for p in parts[:upto]))
    assert want.to_pylist() == expect
    _equal(got, want)


@pytest.mark.parametrize("seed", range(12))
def test_suffixes_and_counts_make_the_reference_arrays(seed):
    """emit's gathered-and-suffixed names and its per-path count of "/" (compiled when built) are Arrow's."""
    from traces.importers.emit import _Ref, _suffix, count_char, count_char_pure, suffixed_pure
    rng = np.random.default_rng(seed)
    base = _base(rng, int(rng.integers(1, 300)), nulls=seed % 4 == 0)  # with nulls: the pure path
    idx = rng.integers(0, len(base), int(rng.integers(0, 900)))
    for text in (":anon0", "", "/é"):
        ref = _Ref(base, idx[::2] if seed % 3 == 0 else idx)  # a strided index too
        _equal(_suffix(ref, text), suffixed_pure(ref, text))
    if not base.null_count:
        assert np.array_equal(count_char(base, "/"), count_char_pure(base, "/"))
        assert count_char(base, "/").dtype == np.int64


@pytest.mark.parametrize("seed", range(12))
def test_event_codes_make_the_reference_arrays(seed):
    """The assembly's op, flags, offset and bytes in output order (compiled when built) are numpy's."""
    from traces.importers.codes import event_codes, event_codes_pure
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    meta = rng.integers(0, 14, n).astype(np.uint8) | (rng.integers(0, 3, n) << 4).astype(np.uint8)
    for bit, share in ((64, [1.0, 0.5, 0.0][seed % 3]), (128, [0.7, 1.0, 0.0][seed % 3])):
        meta |= np.where(rng.random(n) < share, bit, 0).astype(np.uint8)
    offset = rng.integers(-(1 << 62), 1 << 62, n)
    nbytes = rng.integers(0, 1 << 40, n)
    order = rng.permutation(n).astype(np.int64) if seed % 2 else np.sort(rng.integers(0, max(n, 1), n))
    got, want = event_codes(order, meta, offset, nbytes), event_codes_pure(order, meta, offset, nbytes)
    for g, w in zip(got, want):
        assert g.type == w.type and g.null_count == w.null_count
        assert g.to_pylist() == w.to_pylist()
        g.validate(full=True)
    assert got[1].null_count == int(np.count_nonzero((meta[order] >> 4 & 3) == 0))
    if n:
        with pytest.raises(IndexError):
            event_codes(np.r_[order, n].astype(np.int64), meta, offset, nbytes)


@pytest.mark.parametrize("seed", range(10))
def test_handovers_make_the_reference_rows_and_times(seed):
    """lifecycle's exits on another machine than their start (compiled when built) are numpy's."""
    from traces.importers.common import NEVER
    from traces.importers.lifecycle import _handovers, _handovers_pure
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    key = rng.integers(0, max(n // 4, 1), n)
    time = rng.integers(0, 1 << 40, n)
    time[rng.random(n) < 0.05] = NEVER
    kind = rng.integers(-1, 3, n).astype(np.int8)
    has_machine = rng.random(n) < 0.9
    machine = rng.integers(0, [2, 5, 1 << 40][seed % 3], n)
    order = np.flatnonzero((kind == 0) | (kind == 1))
    order = order[np.lexsort((time[order], key[order]))]
    got = _handovers(key, time, kind, has_machine, machine, order)
    want = _handovers_pure(key, time, kind, has_machine, machine, order) if order.size >= 2 else (got[0][:0], got[1][:0])
    for g, w in zip(got, want):
        assert g.dtype == np.int64 and np.array_equal(g, w)


def test_count_char_counts_across_eight_byte_words():
    """The compiled count reads eight bytes at a time: every length, position and neighbouring byte."""
    from traces.importers.emit import count_char, count_char_pure
    rng = np.random.default_rng(4)
    alphabet = np.array(list("/./aé\x7f\x00-"))
    vals = ["".join(rng.choice(alphabet, int(rng.integers(0, 40)))) for _ in range(3000)]
    for arr in (pa.array(vals, pa.string()), pa.array(vals, pa.string()).slice(5)):
        for ch in "/.":
            assert np.array_equal(count_char(arr, ch), count_char_pure(arr, ch))
