"""Transforms: deterministic machine sampling, window, shift, scale, concat — each keeps a trace valid."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from traces import transforms
from traces.cli import main as cli_main
from traces.importers.google2019 import import_google2019
from traces.io import read_trace, write_trace
from traces.validate import validate_table

DATA = Path(__file__).parent / "data" / "google2019"


@pytest.fixture(scope="module")
def trace():
    t, _, _ = import_google2019([str(DATA / "handwritten" / "instance_events.json")],
                                [str(DATA / "machine_events-mod4-head2000.json.gz")],
                                [str(DATA / "handwritten" / "instance_usage.json")])
    return t


def _machines(t) -> set:
    return set(pc.unique(t.column("machine")).to_pylist())


def test_sample_is_deterministic_and_whole_machines(trace):
    a = transforms.sample_machines(trace, fraction=0.25, seed=7)
    b = transforms.sample_machines(trace, fraction=0.25, seed=7)
    c = transforms.sample_machines(trace, fraction=0.25, seed=8)
    assert a.equals(b) and not a.equals(c)
    n = len(_machines(trace))
    assert abs(len(_machines(a)) - 0.25 * n) <= 3 * (n * 0.25 * 0.75) ** 0.5  # each machine on its own hash
    for m in list(_machines(a))[:50]:  # every row of a kept machine is kept
        assert a.filter(pc.equal(a.column("machine"), m)).num_rows == trace.filter(
            pc.equal(trace.column("machine"), m)).num_rows
    assert validate_table(transforms.sample_machines(trace, count=40, seed=1)) == []
    # stable under growth: a machine kept from a subset is kept from the whole when the count scales
    sub = transforms.sample_machines(trace, count=10, seed=3)
    assert _machines(sub) <= _machines(transforms.sample_machines(trace, count=10_000, seed=3))
    with pytest.raises(ValueError):
        transforms.sample_machines(trace, fraction=0.5, count=3)


def test_sampling_by_fraction_decides_each_machine_on_its_own(trace):
    # on main a fraction was a rank cut: dropping machines from the input changed who else was kept
    kept = _machines(transforms.sample_machines(trace, fraction=0.3, seed=5))
    ids = sorted(_machines(trace))
    half = trace.filter(pc.is_in(trace.column("machine"), pa.array(ids[::2])))
    assert _machines(transforms.sample_machines(half, fraction=0.3, seed=5)) == kept & set(ids[::2])
    assert _machines(transforms.sample_machines(trace, fraction=0.3, seed=5)) <= _machines(
        transforms.sample_machines(trace, fraction=0.6, seed=5))


def test_window_collapses_the_prefix_and_stays_valid(trace):
    w = transforms.window(trace, 250_000_000, 450_000_000)
    assert validate_table(w) == []
    t = w.column("time_us").to_numpy()
    assert t.min() >= 250_000_000 and t.max() < 450_000_000
    before = trace.filter(pc.less(trace.column("time_us"), 450_000_000))
    assert w.num_rows == before.num_rows  # nothing before the end is lost, only moved
    z = transforms.shift_to_zero(w)
    assert z.column("time_us").to_numpy().min() == 0 and validate_table(z) == []


def test_scale_and_concat(trace):
    s = transforms.scale_time(trace, 0.5)
    assert validate_table(s) == []
    assert (s.column("time_us").to_numpy() == trace.column("time_us").to_numpy() // 2).all()
    c = transforms.concat([trace, trace], gap_us=10)
    assert validate_table(c) == [] and c.num_rows == 2 * trace.num_rows
    ops = Counter(c.column("op").to_pylist())
    assert ops["task_start"] == 2 * Counter(trace.column("op").to_pylist())["task_start"]
    second = c.slice(trace.num_rows)
    assert pc.min(second.column("time_us")).as_py() == pc.max(trace.column("time_us")).as_py() + 10
    assert all(p.startswith("/p1.") for p in second.column("cgroup").drop_null().to_pylist())
    with pytest.raises(ValueError):
        transforms.scale_time(trace, 0)


def test_cli_verbs(tmp_path, trace):
    src = tmp_path / "in.parquet"
    write_trace(trace, src)
    out = tmp_path / "out.parquet"
    assert cli_main(["transform", "sample", str(src), "--count", "5", "--seed", "2", "--out", str(out)]) == 0
    assert len(_machines(read_trace(out))) == 5
    assert cli_main(["transform", "window", str(src), "--start-us", "100", "--end-us", "400000000", "--shift",
                     "--out", str(out)]) == 0
    assert validate_table(read_trace(out)) == []
    assert cli_main(["transform", "scale", str(src), "--factor", "2", "--out", str(out)]) == 0
    assert cli_main(["transform", "concat", str(src), str(src), "--out", str(out)]) == 0
    assert read_trace(out).num_rows == 2 * trace.num_rows
    assert cli_main(["transform", "scale", str(src), "--factor", "-1", "--out", str(out)]) == 2
