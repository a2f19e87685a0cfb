"""Policy knobs are typed: one dataclass per policy holds their types and defaults, the Hydra
schema nests them, and a wrong knob name, type or value fails before any run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from core.errors import ConfigError
from core.policy import REGISTRY, make_policy
from replay.config import PolicyKnobsCfg, ReplayConfig, knobs_dict, policy_list

CONF = Path(__file__).resolve().parent.parent / "conf" / "policy"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_yaml_names_the_policy_and_leaves_the_defaults_to_its_knobs_class(name):
    doc = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert doc["names"] == [name]
    assert "knobs" not in doc  # defaults live in one place: the policy's Knobs dataclass


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_schema_knobs_are_the_policy_knobs_class(name):
    cls = REGISTRY[name]
    schema = {f.name: f for f in dataclasses.fields(PolicyKnobsCfg)}
    if not dataclasses.fields(cls.Knobs):
        assert name not in schema
        return
    node = OmegaConf.structured(ReplayConfig).policy.knobs[name]
    assert OmegaConf.to_container(node) == dataclasses.asdict(cls.Knobs())
    assert make_policy(name).describe()["knobs"] == dataclasses.asdict(cls.Knobs())


@pytest.mark.parametrize("override, needle", [
    ("policy.knobs.recharge_mapper.oom=true", "oom"),             # no such knob
    ("policy.knobs.swap_walk.interval_us=often", "interval_us"),   # wrong type
    ("policy.knobs.nonesuch.x=1", "nonesuch"),                      # no such policy
])
def test_bad_knob_fails_at_composition(compose_replay, override, needle):
    with pytest.raises(ConfigCompositionException) as err:
        compose_replay(override)
    assert needle in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("override, needle", [
    ("policy.knobs.recharge_mapper.on_limit=maybe", "on_limit"),
    ("policy.knobs.zombie_reaper.interval_us=0", "interval_us"),
    ("policy.knobs.manual_reclaim.fraction=1.5", "fraction"),
])
def test_knob_out_of_range_fails_in_the_config_check(compose_replay, override, needle):
    with pytest.raises(ConfigError, match=needle):
        cfg = compose_replay(override)
        policy_list(cfg)


def test_a_set_knob_reaches_the_policy(compose_replay):
    cfg = compose_replay("policy=recharge_mapper", "policy.knobs.recharge_mapper.on_limit=oom")
    assert policy_list(cfg) == ["recharge_mapper"]
    knobs = knobs_dict(cfg.policy.knobs)
    assert knobs["recharge_mapper"]["on_limit"] == "oom"
    assert make_policy("recharge_mapper", knobs).knobs.on_limit == "oom"


def test_make_policy_checks_plain_dict_knobs():
    with pytest.raises(ConfigError, match="unknown knob period"):
        make_policy("swap_walk", {"swap_walk": {"period": 3}})
    with pytest.raises(ConfigError, match="interval_us='x' is not of type int"):
        make_policy("swap_walk", {"swap_walk": {"interval_us": "x"}})
    assert make_policy("swap_walk", {"swap_walk": {"interval_us": 2e6}}).knobs.interval_us == 2_000_000


def test_machine_settings_fail_in_the_config_check(compose_replay):
    from replay.config import check_config

    with pytest.raises(ConfigError, match="watermark"):
        check_config(compose_replay("machine.watermark_low=0.5", "machine.watermark_high=0.1"))
    with pytest.raises(ConfigError, match="dirty_expire"):
        check_config(compose_replay("machine.dirty_expire_s=-1"))
    with pytest.raises(ConfigError, match="machine.dirty_expire_s: nan"):
        check_config(compose_replay("machine.dirty_expire_s=nan"))


def test_dirty_expire_reaches_the_machine(compose_replay):
    # vm.dirty_expire_centisecs as a machine setting: seconds in the config, microseconds in the model
    from replay.config import machine_config_kwargs

    assert machine_config_kwargs(compose_replay())["dirty_expire_us"] == 30_000_000
    assert machine_config_kwargs(compose_replay("machine.dirty_expire_s=1.5"))["dirty_expire_us"] == 1_500_000


def test_each_policy_knobs_class_is_registered_with_hydra():
    from hydra.core.config_store import ConfigStore

    from replay.config import register_configs

    register_configs()
    repo = ConfigStore.instance().repo["policy_knobs"]
    for name, cls in REGISTRY.items():
        if dataclasses.fields(cls.Knobs):
            node = repo[f"{name}.yaml"].node
            assert OmegaConf.to_container(node) == dataclasses.asdict(cls.Knobs())
