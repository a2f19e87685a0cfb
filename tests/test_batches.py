"""Arrow table -> per-machine EventBatches."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import TraceError
from core.events import NULL
from core.ops import Flag, Op
from tests.tracehelp import ev, pod_rows, table
from traces.batches import machine_batches, machine_ids


def _interleaved():
    a, b = pod_rows("m2"), pod_rows("m1", t0=100)
    return [r for pair in zip(a, b) for r in pair], a, b


def test_machines_sorted_and_rows_kept_in_order():
    rows, _, b = _interleaved()
    t = table(rows)
    assert machine_ids(t) == ["m1", "m2"]
    out = list(machine_batches(t, source="x.parquet"))
    assert [m for m, _ in out] == ["m1", "m2"]
    m1 = out[0][1]
    assert m1.time_us.tolist() == [r[0] for r in b]
    assert m1.op.tolist() == [int(Op[r[2].upper()]) for r in b]
    # rows are 1-based positions in the source table: m1 sits at even positions 2, 4, ...
    assert m1.row.tolist() == list(range(2, 2 * len(b) + 1, 2))
    assert m1.source == "x.parquet"


def test_names_are_interned_per_batch_and_nulls_are_minus_one():
    _, batch = next(machine_batches(table(pod_rows())))
    rows = pod_rows()
    for col, names, k in ((batch.cgroup, batch.cgroups, 3), (batch.task, batch.tasks, 4),
                          (batch.obj, batch.objects, 5)):
        decoded = [None if i == NULL else names[i] for i in col.tolist()]
        assert decoded == [r[k] for r in rows]
        assert len(names) == len(set(names))
    assert batch.nbytes[0] == 1 << 30 and batch.offset[0] == NULL
    assert batch.flags[3] == int(Flag.MAX) and batch.flags[6] == int(Flag.PAGE)
    assert batch.op.dtype == np.uint8 and batch.cgroup.dtype == np.int32 and batch.time_us.dtype == np.int64


def test_max_rows_splits_with_own_name_tables():
    rows = pod_rows()
    parts = list(machine_batches(table(rows), max_rows=7))
    assert [len(b) for _, b in parts] == [7, 7, 7, len(rows) - 21]
    last = parts[-1][1]
    assert set(last.cgroups) == {r[3] for r in rows[21:] if r[3]}
    assert np.concatenate([b.row for _, b in parts]).tolist() == list(range(1, len(rows) + 1))


def test_unknown_op_raises_with_row():
    rows = pod_rows() + [ev(99, "teleport")]
    with pytest.raises(TraceError) as err:
        list(machine_batches(table(rows), source="f.csv"))
    assert (err.value.row, err.value.field) == (len(rows), "op")



def _dictionary_columns(t, *names):
    import pyarrow.compute as pc
    for name in names:
        t = t.set_column(t.schema.get_field_index(name), name, pc.dictionary_encode(t.column(name)))
    return t


def test_an_importers_dictionary_columns_batch_as_plain_strings_do():
    rows, _, _ = _interleaved()
    plain = list(machine_batches(table(rows), max_rows=5))
    enc = list(machine_batches(_dictionary_columns(table(rows), "machine", "op", "flags", "cgroup"), max_rows=5))
    assert [m for m, _ in enc] == [m for m, _ in plain]
    for (_, a), (_, b) in zip(plain, enc):
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("time_us", "op", "cgroup", "flags", "row"))
        assert (a.cgroups, a.tasks, a.objects) == (b.cgroups, b.tasks, b.objects)


def test_a_dictionary_value_no_row_uses_is_no_machine_and_no_error():
    import pyarrow as pa
    rows = pod_rows("m1")
    t = table(rows)
    for name, extra in (("machine", "m0"), ("op", "teleport")):
        col = t.column(name).combine_chunks()
        d = pa.array([extra] + sorted(set(col.to_pylist())))
        idx = pa.array([d.to_pylist().index(v) for v in col.to_pylist()], pa.int32())
        t = t.set_column(t.schema.get_field_index(name), name, pa.DictionaryArray.from_arrays(idx, d))
    (machine, batch), = machine_batches(t)
    assert machine == "m1" and batch.op.tolist() == [int(Op[r[2].upper()]) for r in rows]


def test_the_first_unknown_op_in_the_table_is_named_whatever_the_dictionary_order():
    rows = pod_rows() + [ev(98, "levitate"), ev(99, "teleport")]
    t = _dictionary_columns(table(rows), "op")
    col = t.column("op").combine_chunks()
    order = sorted(col.dictionary.to_pylist(), reverse=True)  # "teleport" before "levitate"
    import pyarrow as pa
    idx = pa.array([order.index(v) for v in col.to_pylist()], pa.int32())
    t = t.set_column(t.schema.get_field_index("op"), "op", pa.DictionaryArray.from_arrays(idx, pa.array(order)))
    with pytest.raises(TraceError) as err:
        list(machine_batches(t))
    assert err.value.row == len(rows) - 1 and "levitate" in str(err.value)

def test_generated_trace_round_trips_through_batches():
    from traces.generate import PRESETS, generate

    t = generate(PRESETS["tiny"], seed=3)
    total = 0
    for machine, batch in machine_batches(t, max_rows=5000):
        assert np.all(np.diff(batch.time_us) >= 0)
        names = np.array(batch.tasks, dtype=object)
        assert all(n.startswith("p") for n in names[np.unique(batch.task[batch.task >= 0])])
        total += len(batch)
    assert total == t.num_rows


@pytest.mark.benchmark
def test_bench_traces_machine_day():
    """Prints generate/write/read/validate/batch rates (run with -m benchmark -s); asserts validity only."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_traces.py"
    spec = importlib.util.spec_from_file_location("bench_traces", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run("machine_day")
    assert result["problems"] == 0 and result["rows"] >= 1_000_000


# -- the names hashed once and renumbered per batch, against a per-batch encoding -------------

def _reference(t, max_rows=None):
    """What every batch's name columns must be: the batch's own strings encoded in order of first use."""
    import pyarrow as pa
    import pyarrow.compute as pc
    out = []
    for machine, b in machine_batches(t, max_rows=max_rows):
        rows = (b.row - 1).tolist()
        names = []
        for col in ("cgroup", "task", "object"):
            chunks = [c.cast(c.type.value_type) if hasattr(c, "dictionary") else c for c in t.column(col).chunks]
            arr = pa.chunked_array(chunks, pa.string()).take(rows).combine_chunks()
            enc = pc.dictionary_encode(arr)
            names.append((pc.fill_null(enc.indices, NULL).to_numpy(zero_copy_only=False).tolist(),
                          enc.dictionary.to_pylist()))
        out.append((machine, names))
    return out


def _got(t, max_rows=None):
    return [(m, [(b.cgroup.tolist(), b.cgroups), (b.task.tolist(), b.tasks), (b.obj.tolist(), b.objects)])
            for m, b in machine_batches(t, max_rows=max_rows)]


def _chunked_dictionaries(t, rng, dup_value=False, null_value=False, narrow=False):
    """``t`` with every string column split into chunks, each chunk with its own shuffled dictionary
    (some sharing one), optionally a repeated value, a null value or int8 indices."""
    import pyarrow as pa
    cuts = sorted(set(rng.integers(0, t.num_rows, 5).tolist()) | {0, t.num_rows})
    for name in ("machine", "op", "flags", "cgroup", "task", "object"):
        col = t.column(name).combine_chunks().to_pylist()
        chunks, shared = [], None
        for a, b in zip(cuts, cuts[1:]):
            part = col[a:b]
            if shared is not None and rng.random() < 0.3 and set(part) <= set(shared):
                d = shared
            else:
                d = [v for v in dict.fromkeys(part) if v is not None]
                d = [d[i] for i in rng.permutation(len(d))] + ["never-used"]
                if dup_value and d:
                    d = d + [d[0]]  # rows below use the repeat
                if null_value:
                    d = d + [None]
                shared = d
            where = {}
            for i, v in enumerate(d):
                where[v] = i  # a repeated value: the rows take its last place, the dictionary keeps both
            idx = [None if v is None and not null_value else where[v] for v in part]
            itype = pa.int8() if narrow and len(d) < 120 else pa.int32()
            chunks.append(pa.DictionaryArray.from_arrays(pa.array(idx, itype), pa.array(d, pa.string())))
        t = t.set_column(t.schema.get_field_index(name), name, pa.chunked_array(chunks))
    return t


@pytest.fixture(params=["per-machine", "whole-table"])
def dictionaries(request, monkeypatch):
    """Both ways of ``traces.batches._Names`` with a dictionary column: each machine decoded and hashed
    (small batches), or the table's dictionaries unified once and every batch renumbered (big ones)."""
    import traces.batches
    monkeypatch.setattr(traces.batches, "_WHOLE", 1 << 62 if request.param == "per-machine" else 0)
    return request.param


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_rows", [None, 1, 7, 40])
def test_names_of_every_batch_are_its_own_in_order_of_first_use(seed, max_rows, dictionaries):
    import pyarrow as pa

    from traces.generate import PRESETS, generate
    rng = np.random.default_rng(seed)
    t = generate(PRESETS["tiny"], seed=seed).slice(0, 400)
    t = pa.Table.from_batches(t.to_batches(max_chunksize=37))  # plain strings, many chunks
    for variant in (t, _chunked_dictionaries(t, rng), _chunked_dictionaries(t, rng, dup_value=True, narrow=True),
                    _chunked_dictionaries(t, rng, null_value=True)):
        assert _got(variant, max_rows) == _reference(variant, max_rows)
        plain = list(machine_batches(t, max_rows=max_rows))
        for (m1, a), (m2, b) in zip(plain, machine_batches(variant, max_rows=max_rows)):
            assert m1 == m2 and all(np.array_equal(getattr(a, f), getattr(b, f))
                                    for f in ("time_us", "op", "flags", "row", "cgroup", "task", "obj"))
            assert (a.cgroups, a.tasks, a.objects) == (b.cgroups, b.tasks, b.objects)


def test_an_unknown_op_in_a_later_chunks_dictionary_is_found_at_its_first_row():
    import pyarrow as pa
    rows = pod_rows() + [ev(98, "levitate"), ev(99, "teleport")]
    t = table(rows)
    ops = t.column("op").to_pylist()
    chunks = []
    for a, b in ((0, 10), (10, len(rows))):
        d = sorted(set(ops[a:b]) | {"never"}, reverse=True)
        chunks.append(pa.DictionaryArray.from_arrays(pa.array([d.index(v) for v in ops[a:b]], pa.int32()),
                                                     pa.array(d)))
    t = t.set_column(t.schema.get_field_index("op"), "op", pa.chunked_array(chunks))
    with pytest.raises(TraceError) as err:
        list(machine_batches(t))
    assert err.value.row == len(rows) - 1 and "levitate" in str(err.value)


@pytest.mark.parametrize("max_rows", [None, 300])
def test_a_parquet_file_read_with_its_dictionaries_batches_as_read_trace_does(tmp_path, monkeypatch, max_rows,
                                                                             dictionaries):
    import pyarrow as pa

    import traces.io
    from traces.batches import STRING_COLUMNS, read_parquet
    from traces.generate import PRESETS, generate
    from traces.io import read_trace, write_trace

    monkeypatch.setattr(traces.io, "ROW_GROUP_ROWS", 500)  # row groups, each with its own dictionaries
    write_trace(generate(PRESETS["tiny"], 4), tmp_path / "t.parquet")
    got = read_parquet(tmp_path / "t.parquet")
    assert all(pa.types.is_dictionary(got.schema.field(c).type) for c in STRING_COLUMNS)
    assert got.column("object").num_chunks > 2
    plain = list(machine_batches(read_trace(tmp_path / "t.parquet"), "t", max_rows))
    enc = list(machine_batches(got, "t", max_rows))
    assert len(plain) == len(enc) > 2
    for (m1, a), (m2, b) in zip(plain, enc):
        assert m1 == m2 and (a.cgroups, a.tasks, a.objects) == (b.cgroups, b.tasks, b.objects)
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
                   for f in ("time_us", "op", "cgroup", "task", "obj", "offset", "nbytes", "flags", "row"))
