"""The fb2019_host preset (docs/kernel-validation.md, "A published fleet figure"): what the figure rests on."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from traces.generate import PRESETS, SynthParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import gushchin_curve


def test_preset_is_valid_and_has_a_conf_file():
    p = PRESETS["fb2019_host"]
    assert SynthParams.problems_of(dataclasses.asdict(p)) == []
    conf = Path(__file__).resolve().parents[1] / "conf" / "trace" / "fb2019_host.yaml"
    assert "preset: fb2019_host" in conf.read_text()


def test_fitted_knob_is_the_published_slope():
    # r = 241.4 dying cgroups a day; two cgroups per job
    r = gushchin_curve.fit_slope(gushchin_curve.PUBLISHED_UNPATCHED)
    assert r == pytest.approx(241.4, abs=0.1)
    assert PRESETS["fb2019_host"].pod_arrival_per_s == pytest.approx(r / 2 / 86400, rel=0.01)


def test_slab_pins_every_removed_cgroup_before_5_9_and_not_after():
    # one day: in the first hours every job is also the first reader of some shared file (page cache holds it)
    params = dataclasses.replace(PRESETS["fb2019_host"], duration_s=86400.0)
    old = gushchin_curve.replay(params, "5.4", 1, 0)
    new = gushchin_curve.replay(params, "5.10", 1, 0)
    assert old["memcgs_freed"][-1] == 0 and old["memcgs_dying"][-1] > 150
    assert old["held_kmem"][-1] * 2 == old["memcgs_dying"][-1]  # a task cgroup and its job cgroup per job
    assert new["held_kmem"][-1] == 0 and new["memcgs_freed"][-1] > 0
    assert new["memcgs_dying"][-1] < old["memcgs_dying"][-1]
    # removals are the same: only what holds them differs
    assert new["memcgs_dying"][-1] + new["memcgs_freed"][-1] == old["memcgs_dying"][-1]
