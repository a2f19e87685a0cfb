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
    rows, a, b = _interleaved()
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
