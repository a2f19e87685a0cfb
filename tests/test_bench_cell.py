"""The cell-month benchmark: its preset is what the calibration measures; the run as an opt-in test.

``pytest -m benchmark -s tests/test_bench_cell.py`` replays the smallest slice on local Ray.
"""

from __future__ import annotations

import pytest

from scripts.bench_cell import SHARED, calibrate, main
from traces.generate import GIB, MIB, PRESETS


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/traces (the Google 2011 excerpts)")
def test_the_preset_is_the_calibration(capsys):
    got = calibrate()
    p = PRESETS["google2011_cell"]
    assert p.machines == got["machines"] == 12_583
    assert round(got["days"]) * 86400 == p.duration_s
    assert p.pod_arrival_per_s == pytest.approx(got["arrivals_per_machine_s"], rel=0.01)
    assert p.pod_lifetime_median_s == pytest.approx(got["lifetime_median_s"], rel=0.01)
    assert p.pod_lifetime_sigma == pytest.approx(got["lifetime_sigma"], rel=0.01)
    assert p.anon_bytes_median == pytest.approx(got["anon_median_mib"] * MIB, rel=0.01)
    assert p.log_bytes_median == pytest.approx(got["cache_median_mib"] * MIB, rel=0.01)
    assert p.anon_bytes_sigma == p.log_bytes_sigma == pytest.approx(got["request_sigma"], rel=0.01)
    assert p.mem_bytes == round(got["mem_fraction_median"] * 64) * GIB
    assert "arrivals_per_machine_day" in capsys.readouterr().out


@pytest.mark.benchmark
@pytest.mark.ray
def test_bench_cell_smallest_slice(capsys):
    assert main(["--machines-scale", "0.0005", "--days-scale", "0.005", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "events/s" in out and "peak RSS" in out and "projection" in out
