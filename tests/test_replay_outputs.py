"""Fleet aggregation, the documented output columns, and ``python -m replay.compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from replay.app import run
from replay.columns import (TIME, ZOMBIES, fleet_columns, machine_columns, render_markdown,
                            summary_keys)
from replay.compare import main as compare_main
from replay.coordinator import fleet_rows, sort_samples

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
    part = Path(res.run_dir, "policy=none", "seed=0")
    assert pq.read_table(part / "machines.parquet").column_names == list(machine_columns())
    assert pq.read_table(part / "fleet.parquet").column_names == list(fleet_columns())
    summary = json.loads((part / "summary.json").read_text())
    assert set(summary) == set(summary_keys())


def test_compare_summarises_a_sweep_directory(compose_replay, tmp_path, capsys):
    for seed in (0, 1):  # two jobs of a sweep, as Hydra lays them out
        run(compose_replay("trace=tiny", "+trace.params.duration_s=300", "policy=none",
                           "executor=local", "plots=false", f"seed={seed}", output=f"sweep/{seed}"))
    assert compare_main([str(tmp_path / "sweep")]) == 0
    table = (tmp_path / "sweep/comparison.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| none |"))
    assert row.split("|")[2].strip() == "2"  # two seeds averaged
    finals = [json.loads((tmp_path / f"sweep/{s}/policy=none/seed={s}/summary.json").read_text())["zombies_final"]
              for s in (0, 1)]
    doc = json.loads((tmp_path / "sweep/comparison.json").read_text())
    assert doc["policies"][0]["zombies_final"] == sum(finals) / 2
    for png in ("zombies.png", "cost.png", "holders.png"):
        assert (tmp_path / "sweep" / png).stat().st_size > 0
    assert "| none | 2 |" in capsys.readouterr().out


def test_compare_on_an_empty_directory_fails_clearly(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 1
    assert "no policy=*/seed=*/summary.json" in capsys.readouterr().err
