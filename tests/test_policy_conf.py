"""Every policy's YAML in replay/conf/policy/ lists exactly its constructor's knobs, with the same defaults."""

import inspect
from pathlib import Path

import pytest
import yaml

from core.policy import REGISTRY

CONF = Path(__file__).resolve().parent.parent / "replay" / "conf" / "policy"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_yaml_knobs_match_the_constructor(name):
    params = list(inspect.signature(REGISTRY[name].__init__).parameters.values())[1:]
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    doc = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert doc["names"] == [name]
    assert doc.get("knobs", {}).get(name, {}) == defaults
