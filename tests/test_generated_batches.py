"""A replay shard's generated batches, made straight from the generator's arrays, are the table path's.

In: machines of the presets (``traces.generate.generated_batches``, compiled and pure) and packed
events made up here (``batch_columns``: repeated and None names, nulls, values the lookup tables do
not cover). Out: assertions that every field of every ``EventBatch`` (each column's dtype, shape and
values, the name tables, row numbers, source) equals what ``traces.batches.machine_batches`` makes
of ``pa.concat_tables([generate_machine(...), ...])``, and that the comparison itself catches a
change to any one field.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from core.errors import TraceError
from core.events import EventBatch
from core.ops import Op
from traces import synth_build
from traces.batches import machine_batches
from traces.generate import PRESETS, batch_columns, events_table, generate_machine, generated_batches

_BUILDS = [pytest.param(False, id="pure"),
           pytest.param(True, id="compiled", marks=pytest.mark.skipif(
               synth_build.module() is None, reason=f"generator {synth_build.describe()}"))]


def _short(name: str, days: float = 0.5) -> object:
    p = PRESETS[name]
    return dataclasses.replace(p, duration_s=min(p.duration_s, days * 86400.0))


def _assert_same(got: list[tuple[str, EventBatch]], want: list[tuple[str, EventBatch]]) -> None:
    """Every field of every batch equal: arrays in dtype, shape and values, the rest in type and value."""
    assert [m for m, _ in got] == [m for m, _ in want]
    for (machine, a), (_, b) in zip(got, want):
        for f in dataclasses.fields(EventBatch):
            x, y = getattr(a, f.name), getattr(b, f.name)
            where = f"{machine}.{f.name}"
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray), where
                assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), where
            else:
                assert type(x) is type(y) and x == y, where
                if isinstance(x, list):
                    assert [type(v) for v in x] == [type(v) for v in y], where


def _table_path(params, seed: int, indices, source: str) -> list[tuple[str, EventBatch]]:
    return list(machine_batches(pa.concat_tables([generate_machine(params, seed, i) for i in indices]), source))


@pytest.mark.parametrize("compiled", _BUILDS)
@pytest.mark.parametrize("name, seed, indices", [
    ("google2011_cell", 0, range(4)),
    ("google2011_cell", 11, [7, 3, 12582]),
    ("tiny", 5, [9998, 9999, 10000, 3]),  # m-10000 sorts before m-9998: rows stay in generation order
    ("default", 2, range(2)),
    ("machine_day", 1, [0]),
    ("fb2019_host", 3, [1, 0]),
])
def test_generated_batches_are_the_table_paths(name, seed, indices, compiled):
    params = _short(name)
    source = f"synthetic seed {seed}"
    want = _table_path(params, seed, indices, source)
    assert want and all(len(b) for _, b in want)
    _assert_same(generated_batches(params, seed, indices, source, compiled=compiled), want)
    for _, b in want:  # after 1000 rows of earlier machines: the numbers move on, nothing else
        b.row += 1000
    _assert_same(generated_batches(params, seed, indices, source, rows_before=1000, compiled=compiled), want)


def test_the_comparison_catches_any_changed_field():
    params = _short("tiny")
    want = _table_path(params, 1, range(2), "s")
    _assert_same(generated_batches(params, 1, range(2), "s"), want)
    changes = {
        "time_us": lambda b: b.time_us.__setitem__(-1, b.time_us[-1] + 1),
        "op": lambda b: setattr(b, "op", b.op.astype(np.int32)),
        "cgroup": lambda b: setattr(b, "cgroup", b.cgroup.astype(np.int64)),
        "task": lambda b: b.task.__setitem__(0, b.task[0] + 1),
        "obj": lambda b: b.obj.__setitem__(-1, b.obj[-1] - 1),
        "offset": lambda b: setattr(b, "offset", b.offset[:-1]),
        "nbytes": lambda b: b.nbytes.__setitem__(0, b.nbytes[0] + 1),
        "flags": lambda b: setattr(b, "flags", b.flags | 64),
        "cgroups": lambda b: b.cgroups.reverse(),
        "tasks": lambda b: b.tasks.append("x"),
        "objects": lambda b: b.objects.__setitem__(0, b.objects[0] + "/"),
        "row": lambda b: setattr(b, "row", b.row - 1),
        "source": lambda b: setattr(b, "source", "t"),
    }
    for field, change in changes.items():
        got = generated_batches(params, 1, range(2), "s")
        change(got[1][1])
        with pytest.raises(AssertionError, match=f"m-0001.{field}"):
            _assert_same(got, want)


def _events(rows: list[tuple]) -> np.ndarray:
    return np.array(rows, dtype=np.int64).reshape(-1)


@pytest.mark.parametrize("compiled", _BUILDS)
def test_repeated_and_none_names_nulls_and_the_horizon_as_the_table_has_them(compiled):
    module = synth_build.module() if compiled else None
    names = ["/a", "/b", "/a", None, "x", "/b", "y"]  # /a and /b twice: one entry each in a name table
    op, fl = int(Op.FILE_READ), 5
    buf = _events([(30, op, 2, 4, 6, -1, 10, fl), (10, op, 0, 3, 4, 8, -1, -1), (10, op, 5, -1, 6, -7, 0, 0),
                   (20, int(Op.MKDIR), 1, 4, -1, 0, -3, 63), (99, op, 0, 0, 0, 0, 0, 0), (25, op, 3, 4, 2, 1, 1, 1)])
    for before in (0, 17):
        got = batch_columns(buf, names, 50, "src", before, module)
        want = [b for _, b in machine_batches(events_table(buf, names, 50, "m-0000"), "src")]
        want[0].row += before
        _assert_same([("m-0000", got)], [("m-0000", want[0])])
    assert got.cgroups == ["/a", "/b"] and got.objects == ["x", "y", "/a"] and len(got) == 5
    empty = batch_columns(buf[:8], names, 30, "src", 0, module)  # its one event at the horizon
    assert len(empty) == 0 and not list(machine_batches(events_table(buf[:8], names, 30, "m-0000"), "src"))


@pytest.mark.parametrize("compiled", _BUILDS)
@pytest.mark.parametrize("column, value, error", [
    (1, -1, TraceError), (1, len(Op), IndexError), (7, 64, IndexError), (7, -2, None), (2, 7, IndexError),
    (4, 9, IndexError),
])
def test_values_the_lookups_do_not_cover_go_through_the_table(compiled, column, value, error):
    module = synth_build.module() if compiled else None
    names = ["/a", "b", "c", "d", "e", "f", "g"]
    row = [5, int(Op.FILE_READ), 0, 1, 2, 0, 4096, 0]
    row[column] = value
    buf = _events([row, [1, int(Op.MKDIR), 0, -1, -1, -1, -1, 0]])
    assert batch_columns(buf, names, 100, "src", 0, module) is None
    if error is not None:  # the table's path raises: so does the direct one, the same error
        with pytest.raises(error):
            list(machine_batches(events_table(buf, names, 100, "m-0000"), "src"))
        with pytest.raises(error):
            _generated_from(buf, names, module)
    else:  # a flag id below -1 is null, as -1
        want = list(machine_batches(events_table(buf, names, 100, "m-0000"), "src"))
        _assert_same(_generated_from(buf, names, module), want)


def _generated_from(buf: np.ndarray, names: list, module) -> list[tuple[str, EventBatch]]:
    # generated_batches with this machine's events in place of the generator's
    import traces.generate as g

    real = g.machine_events
    g.machine_events = lambda *args, **kwargs: (buf, names)
    try:
        return generated_batches(dataclasses.replace(PRESETS["tiny"], duration_s=1.0), 0, [0], "src",
                                 compiled=module is not None)
    finally:
        g.machine_events = real


@pytest.mark.skipif(synth_build.module() is None, reason=f"generator {synth_build.describe()}")
@pytest.mark.parametrize("seed", range(12))
def test_compiled_batch_columns_make_the_pure_ones(seed):
    # random packed events: ties, nulls, repeated and None names, the horizon, and now and then a
    # value outside the lookups (both give None then), against the numpy reference
    r = np.random.default_rng(seed)
    n = int(r.choice([0, 1, 7, 1000, 70_000]))
    m = int(r.choice([1, 5, 300, 20_000]))
    names = [f"n{i}" for i in range(m)]
    for i in np.flatnonzero(r.random(m) < 0.2).tolist():  # some names again, or None
        names[i] = None if r.random() < 0.2 else names[int(r.integers(0, m))]
    span = int(r.choice([1, 3, 1 << 20, 1 << 40]))
    buf = np.empty((n, 8), dtype=np.int64)
    buf[:, 0] = r.integers(-span // 4, span, size=n)
    buf[:, 1] = r.integers(0, len(Op), size=n)
    buf[:, 2:5] = np.where(r.random((n, 3)) < 0.2, -r.integers(1, 5, size=(n, 3)), r.integers(0, m, size=(n, 3)))
    buf[:, 5:7] = r.integers(-3, 1 << 40, size=(n, 2))
    buf[:, 7] = np.where(r.random(n) < 0.1, -1, r.integers(0, 64, size=n))
    if n and seed % 3 == 2:  # one value outside the lookups
        buf[int(r.integers(0, n)), int(r.choice([1, 2, 7]))] = int(r.choice([-1, len(Op), 64, m]))
    buf = buf.reshape(-1)
    for horizon in (span // 2, span + 1):
        want = batch_columns(buf, names, horizon, "src", 5, None)
        got = batch_columns(buf, names, horizon, "src", 5, synth_build.module())
        assert (got is None) == (want is None)
        if want is not None:
            _assert_same([("m", got)], [("m", want)])
