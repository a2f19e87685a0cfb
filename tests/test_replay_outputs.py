"""Fleet aggregation, the documented output columns, and ``python -m replay.compare``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replay.app import run
from replay.columns import (SIDE_EFFECTS, TIME, ZOMBIES, fleet_columns, machine_columns, render_markdown,
                            summary_keys)
from replay.compare import main as compare_main
from replay.compare import spread
from replay.outputs import TABLES, _cell, partition_files, short_lines, size
from replay.coordinator import sort_samples
from replay.fleet import fleet_rows

ROOT = Path(__file__).resolve().parent.parent


def test_fleet_rows_sum_max_and_percentiles_per_time():
    s = {
        "machine": np.array([0, 1, 2, 0, 1, 2], dtype=np.int32),
        TIME: np.array([0, 0, 0, 60, 60, 60], dtype=np.int64),
        ZOMBIES: np.array([1, 5, 3, 2, 9, 4], dtype=np.int64),
        "zombie_age_max_s": np.array([1.0, 7.0, 2.0, 3.0, 1.0, 8.0]),
        "zombie_age_p50_s": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    }
    f = fleet_rows(s)
    assert f[TIME].tolist() == [0, 60] and f["machines"].tolist() == [3, 3]
    assert f[ZOMBIES].tolist() == [9, 15]
    assert f["zombie_age_max_s"].tolist() == [7.0, 8.0]
    assert "zombie_age_p50_s" not in f  # a sum of medians means nothing
    assert f["zombies_p50"].tolist() == [3, 4] and f["zombies_max"].tolist() == [5, 9]


def test_sort_samples_orders_by_machine_then_time():
    s = {"machine": np.array([1, 0, 1, 0]), TIME: np.array([60, 60, 0, 0]), "v": np.arange(4)}
    assert sort_samples(s)["v"].tolist() == [3, 1, 2, 0]


def test_output_columns_doc_is_generated_from_code():
    assert (ROOT / "docs/output-columns.md").read_text() == render_markdown()


def test_every_written_column_and_summary_key_is_documented(compose_replay):
    res = run(compose_replay("trace=tiny", "policy=none", "executor=local", "plots=false"))
    where = {n: Path(res.run_dir, rel) for n, rel in partition_files("none", 0).items()}
    assert pq.read_table(where["machines.parquet"]).column_names == list(machine_columns())
    assert pq.read_table(where["fleet.parquet"]).column_names == list(fleet_columns())
    summary = json.loads(where["summary.json"].read_text())
    assert set(summary) == set(summary_keys())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two policies x two seeds as two Hydra jobs lay them out (``sweep/<seed>/``), plus one job
    holding both seeds of one policy in one run directory."""
    import uuid

    from hydra import compose, initialize_config_dir

    from replay.config import register_configs, to_config
    from tests.conftest import CONF_DIR

    register_configs()
    root = tmp_path_factory.mktemp("sweep")
    ns = f"test-{uuid.uuid4().hex[:8]}"
    for seed in (0, 1):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[
                f"output_dir={root / 'sweep' / str(seed)}", f"store.namespace={ns}", "progress=false",
                f"store.embedded_path={root / 'store.pkl'}", "trace=tiny", "+trace.params.duration_s=300",
                "policy.names=[none,reparent]", "executor=local", "plots=false", f"seed={seed}"])
        run(to_config(cfg))
    return root / "sweep"


def test_each_table_is_one_dataset_for_pandas_and_pyarrow(sweep):
    import pandas as pd
    import pyarrow.dataset as ds

    run_dir = sweep / "0"
    for table in TABLES:
        d = run_dir / table
        assert {p.name for p in d.iterdir()} == {"policy=none", "policy=reparent"}
        assert {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()} == {
            f"policy={p}/seed=0/part-0.parquet" for p in ("none", "reparent")}
        frame = pd.read_parquet(d)
        assert set(frame["policy"].astype(str)) == {"none", "reparent"}
        assert set(frame["seed"].astype(int)) == {0}
        dataset = ds.dataset(d, partitioning="hive")
        assert dataset.to_table().num_rows == len(frame) > 0
    machines = pd.read_parquet(run_dir / "machines")
    one = pq.read_table(run_dir / partition_files("reparent", 0)["machines.parquet"]).to_pandas()
    mine = machines[machines["policy"].astype(str) == "reparent"]
    assert mine["memcgs_dying"].tolist() == one["memcgs_dying"].tolist()


def test_summary_shows_side_effects_beside_zombies_in_mib_or_gib(sweep, capsys):
    run_dir = sweep / "1"
    md = (run_dir / "summary.md").read_text().splitlines()
    header = [c.strip() for c in md[2].split("|")]
    for k in ("zombies_final", *SIDE_EFFECTS):
        assert k in header, k
    assert header.index("oom_kills") < header.index("held_file")  # beside the zombies, before the holders
    summary = json.loads((run_dir / "summary.json").read_text())["policies"][0]
    row = [c.strip() for c in md[4].split("|")]
    assert row[header.index("misattributed_bytes")] == size(summary["misattributed_bytes"])
    assert row[header.index("cost_dying_bytes")].endswith((" MiB", " GiB"))
    line = short_lines(summary)
    assert f"OOM kills {summary['oom_kills'] + summary['global_oom_kills']:,}" in line
    assert f"misattributed {size(summary['misattributed_bytes'])}" in line and " MiB" in line


def test_sizes_are_mib_below_a_gib():
    assert size(3 * 2**20) == "3.0 MiB" and size(5 * 2**30) == "5.00 GiB"


def test_compare_shows_spread_across_seeds_and_keeps_integers(sweep, capsys):
    assert compare_main([str(sweep)]) == 0
    finals = [json.loads((sweep / str(s) / partition_files("none", s)["summary.json"]).read_text())["zombies_final"]
              for s in (0, 1)]
    doc = json.loads((sweep / "comparison.json").read_text())
    row = next(r for r in doc["policies"] if r["policy"] == "none")
    assert row["seeds"] == 2
    z = row["zombies_final"]
    assert z["min"] == min(finals) and z["max"] == max(finals)
    assert isinstance(z["min"], int) and isinstance(z["max"], int)
    assert z["mean"] == sum(finals) / 2 and isinstance(z["mean"], int) == (sum(finals) % 2 == 0)
    table = (sweep / "comparison.md").read_text()
    cells = [c.strip() for c in next(ln for ln in table.splitlines() if ln.startswith("| none |")).split("|")]
    header = [c.strip() for c in table.splitlines()[2].split("|")]
    assert cells[2] == "2"
    if min(finals) != max(finals):
        assert f"({min(finals):,}–{max(finals):,})" in cells[header.index("zombies_final")]
    assert ".0 (" not in cells[header.index("machines")]  # an integer count stays an integer
    for png in ("zombies.png", "cost.png", "holders.png"):
        assert (sweep / png).exists()
    assert "| none | 2 |" in capsys.readouterr().out


def test_spread_keeps_integers_integers():
    assert spread([3, 5]) == {"mean": 4, "min": 3, "max": 5} and isinstance(spread([3, 5])["mean"], int)
    assert spread([3, 4])["mean"] == 3.5
    assert _cell({"mean": 4, "min": 3, "max": 5}, "zombies_final") == "4 (3–5)"
    assert _cell({"mean": 7, "min": 7, "max": 7}, "machines") == "7"


def test_holders_plot_draws_overlapping_causes_as_lines_on_one_scale():
    from matplotlib.collections import PolyCollection

    from replay.plots import holders_figure

    t = np.array([0, 60_000_000, 120_000_000])
    timelines = {
        "none": {TIME: t, ZOMBIES: np.array([0, 10, 12]), "held_swap": np.array([0, 8, 9]),
                 "held_child": np.array([0, 7, 10]), "held_file": np.array([0, 0, 0])},
        "reparent": {TIME: t, ZOMBIES: np.array([0, 2, 3]), "held_swap": np.array([0, 2, 3]),
                     "held_child": np.array([0, 0, 1]), "held_file": np.array([0, 0, 0])},
    }
    fig = holders_figure(timelines)
    a, b = fig.axes
    assert [ax.get_title() for ax in (a, b)] == ["none", "reparent"]
    for ax, s in ((a, timelines["none"]), (b, timelines["reparent"])):
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # nothing stacked
        lines = {ln.get_label(): ln.get_ydata().tolist() for ln in ax.get_lines()}
        assert lines == {"zombies": s[ZOMBIES].tolist(), "swap": s["held_swap"].tolist(),
                         "child": s["held_child"].tolist()}  # each cause its own series, an empty one left out
    assert a.get_ylim() == b.get_ylim() and a.get_ylim()[1] >= 12  # one scale for every policy
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_compare_on_an_empty_directory_fails_clearly(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 1
    assert "no summaries/policy=*/seed=*/summary.json" in capsys.readouterr().err


def test_ahead_keeps_order_raises_where_the_producer_failed_and_stops_when_the_caller_does() -> None:
    """``ahead`` (the writer's read-ahead thread): the items in order; a producer's error raised after
    the items before it; a caller that stops early leaves no producer running."""
    import threading
    import time

    from replay.outputs import ahead

    assert list(ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield from (1, 2)
        raise ValueError("bad wave file")

    got = ahead(failing())
    assert [next(got), next(got)] == [1, 2]
    with pytest.raises(ValueError, match="bad wave file"):
        next(got)

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = ahead(endless())
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    inner = ahead(iter("ab"))  # made while the worker is busy: a thread of its own
    assert list(inner) == ["a", "b"]
    it.close()
    n = len(produced)
    time.sleep(0.3)
    assert len(produced) == n <= 5 + 2  # stopped: at most the queue's item and the one being put
    assert not any(t.name == "outputs-ahead" for t in threading.enumerate())
    assert list(ahead(iter(range(3)))) == [0, 1, 2]  # the worker serves the next call


def test_columns_of_mostly_distinct_values_are_written_plain_and_repeated_values_keep_a_dictionary() -> None:
    """``outputs.PARQUET``: a column chunk is dictionary-encoded only while its dictionary is small. Most sample
    and job columns take a new value at nearly every row; kept dictionary-encoded (Arrow's default 1 MiB limit)
    they took more space, and time, than written plain."""
    from replay.outputs import parquet_bytes

    rng = np.random.default_rng(1)
    n = 20_000
    s = {"distinct": rng.integers(0, 1 << 62, n), "few": rng.integers(0, 5, n),
         "machine": np.array([f"m-{i % 7}" for i in range(n)], dtype=object)}
    f = pq.ParquetFile(io.BytesIO(parquet_bytes(s)))
    assert f.read().equals(pa.table(s))
    plain = pq.ParquetFile(io.BytesIO(_plain(s)))
    size = {c.path_in_schema: c.total_compressed_size for c in (f.metadata.row_group(0).column(i) for i in range(3))}
    alone = {c.path_in_schema: c.total_compressed_size for c in (plain.metadata.row_group(0).column(i) for i in range(3))}
    assert size["distinct"] <= 1.02 * alone["distinct"]  # Arrow's default: a dictionary as big as the values, and indices
    for k in ("few", "machine"):  # a handful of values: still in a dictionary, smaller than plain
        assert f.metadata.row_group(0).column(list(s).index(k)).has_dictionary_page and size[k] < alone[k]


def _plain(s: dict) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(s), buf, compression="zstd", use_dictionary=False)
    return buf.getvalue()
