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
