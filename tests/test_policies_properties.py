"""Property tests for policy compositions and non-default knobs, plus the registry and determinism helpers.

``tests/test_core_properties.py`` already runs every registered policy with its
default knobs; this adds the compositions and knob settings that take other
code paths (OOM-ing recharges, forced charges, deferred mapped pages, budgets,
swapping reaper, shmem-only smemcg), under the same random valid traces.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.determinism import peak_spread
from core.events import EventBatch
from core.errors import ConfigError
from core.machine import Machine, MachineConfig
from core.policy import POLICY_NAMES, make_policy
from core.invariants import check
from core.ops import Op
from tests.test_core_properties import CONFIGS, _build, step

VARIANTS = [
    ("recharge_async_walk+swap_walk", {}),
    ("manual_reclaim+swap_walk", {}),
    ("reparent+swap_walk", {"swap_walk": {"interval_us": 3_000_000, "records_per_tick": 16}}),
    ("recharge_mapper", {"recharge_mapper": {"on_limit": "oom", "mapper": "random"}}),
    ("recharge_mapper", {"recharge_mapper": {"on_limit": "force"}}),
    ("recharge_async_walk", {"recharge_async_walk": {"mapped": "deferred", "pages_per_tick": 8,
                                                     "tick_us": 500_000}}),
    ("recharge_async_walk", {"recharge_async_walk": {"on_limit": "oom", "pages_per_tick": 64}}),
    ("recharge_evict", {"recharge_evict": {"swap_backed": "swap", "evict_mapped": True}}),
    ("zombie_reaper", {"zombie_reaper": {"may_swap": True, "pages_per_scan": 16, "interval_us": 2_000_000}}),
    ("smemcg", {"smemcg": {"shared": "shmem", "limit_bytes": 1 << 20}}),
    ("smemcg+zombie_reaper", {}),
]


def _variant_machine(spec: str, knobs: dict, cfg: dict) -> Machine:
    return Machine(MachineConfig(sample_interval_us=5_000_000, **cfg), make_policy(spec, knobs), "prop", seed=3)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=10, max_size=80), cfg=CONFIGS, variant=st.sampled_from(VARIANTS))
def test_invariants_hold_for_compositions_and_knobs(steps, cfg, variant):
    spec, knobs = variant
    rows = _build(steps)
    m = _variant_machine(spec, knobs, cfg)
    for row in rows:
        m.apply(EventBatch.from_rows([row], "prop"))
        errs = check(m)
        assert not errs, f"{spec} after {Op(row[1]).name} at {row[0]}: {errs[:5]}"
    m.advance_to((rows[-1][0] if rows else 0) + 30_000_000)
    assert not check(m)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=10, max_size=60), cfg=CONFIGS, variant=st.sampled_from(VARIANTS),
       cut=st.integers(0, 60))
def test_checkpoint_in_the_middle_changes_nothing(steps, cfg, variant, cut):
    spec, knobs = variant
    rows = _build(steps)
    whole, split = _variant_machine(spec, knobs, cfg), _variant_machine(spec, knobs, cfg)
    whole.apply(EventBatch.from_rows(rows, "p"))
    k = min(cut, len(rows))
    split.apply(EventBatch.from_rows(rows[:k], "p"))
    split = pickle.loads(pickle.dumps(split))
    split.apply(EventBatch.from_rows(rows[k:], "p"))
    end = (rows[-1][0] if rows else 0) + 20_000_000
    for m in (whole, split):
        m.advance_to(end)
    a, b = whole.take_samples(), split.take_samples()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_every_design_policy_is_registered():
    want = {"none", "manual_reclaim", "reparent", "recharge_evict", "recharge_mapper", "recharge_deferred",
            "recharge_async_walk", "swap_walk", "smemcg", "zombie_reaper"}
    assert want <= set(POLICY_NAMES)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_cites_a_source_and_describes_its_knobs(name):
    d = make_policy(name).describe()
    assert d["name"] == name and d["source"]
    assert all(not k.startswith("_") for k in d["knobs"])


def test_unknown_knob_is_a_config_error():
    with pytest.raises(ConfigError, match="swap_walk"):
        make_policy("swap_walk", {"swap_walk": {"period": 3}})


def test_peak_spread():
    runs = [{"cgroup": ["/job", "/n1"], "peak_bytes": [8, 3]}, {"cgroup": ["/job"], "peak_bytes": [12]},
            {"cgroup": ["/job", "/job"], "peak_bytes": [4, 10]}]
    s = peak_spread(runs, "/job")
    assert s.peaks == (8, 12, 10) and s.spread_bytes == 4 and s.relative == 0.5
    assert peak_spread(runs[:1], "/job").spread_bytes == 0
    with pytest.raises(KeyError, match="/nope"):
        peak_spread(runs, "/nope")
