"""The Hydra configuration: composition, validation before anything runs, cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from core.errors import ConfigError
from core.kernel import Kernel
from core.policy import POLICY_NAMES
from replay.config import ReplayConfig, check_config, config_key, machine_config_kwargs, policy_list, register_configs
from tests.conftest import CONF_DIR


def test_default_config_is_the_compare_experiment(compose_replay):
    cfg = compose_replay()
    assert isinstance(cfg, ReplayConfig)
    assert cfg.policy.names == ["all"] and cfg.trace.preset == "default"
    assert cfg.executor.kind == "ray" and cfg.store.url is None


@pytest.mark.parametrize("override, needle", [
    ("fleet.machinez=5", "machinez"),                  # misspelt key
    ("fleet.machines=lots", "machines"),               # wrong type
    ("executor=threads", "executor"),                  # no such group option
])
def test_bad_override_fails_at_composition(compose_replay, override, needle):
    with pytest.raises(ConfigCompositionException) as err:
        compose_replay(override)
    assert needle in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("overrides, needle", [
    (["trace=file"], "trace.path"),
    (["trace=file", "trace.path=/nonexistent.parquet"], "does not exist"),
    (["trace.source=magic"], "trace.source"),
    (["executor.kind=threads"], "executor.kind"),
])
def test_semantic_errors_are_refused_before_any_work(compose_replay, overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        check_config(compose_replay(*overrides))


@pytest.mark.parametrize("kernel", sorted(p.stem for p in Path(CONF_DIR, "kernel").glob("*.yaml")))
def test_every_kernel_option_is_a_version_the_model_knows(compose_replay, kernel):
    cfg = compose_replay(f"kernel={kernel}")
    assert str(Kernel.parse(cfg.kernel.version)) == kernel[1:]


def test_every_policy_of_the_model_has_a_group_option():
    options = set()
    for p in Path(CONF_DIR, "policy").glob("*.yaml"):
        options.update(n for n in p.read_text().split("names: [", 1)[1].split("]")[0].split(","))
    assert set(POLICY_NAMES) <= {o.strip() for o in options}


def test_policy_list_expands_all_and_rejects_unknown(compose_replay):
    assert policy_list(compose_replay("policy=all")) == list(POLICY_NAMES)
    with pytest.raises(ConfigError, match="no_such_policy"):
        policy_list(compose_replay("policy.names=[none,no_such_policy]"))


def test_cache_key_ignores_execution_but_not_results(compose_replay):
    a = compose_replay("trace=tiny", "executor=local")
    b = compose_replay("trace=tiny", "executor=ray", "executor.shards=4", "store=redis", output="other")
    assert config_key(a, "none") == config_key(b, "none")
    for change in ("seed=1", "kernel=v6.1", "machine=large", "fleet.sample_interval_s=30",
                   "+trace.params.duration_s=300", "executor.step_s=300"):
        assert config_key(compose_replay("trace=tiny", change), "none") != config_key(a, "none"), change
    assert config_key(a, "none") != config_key(a, "reparent")


def test_machine_config_from_groups(compose_replay):
    kw = machine_config_kwargs(compose_replay("machine=large", "kernel=v6.18"))
    assert kw["mem_bytes"] == 512 << 30 and kw["cpus"] == 256 and kw["numa_nodes"] == 2
    assert kw["kernel"] == "6.18" and kw["lru_gen"] is True
    preset = machine_config_kwargs(compose_replay("machine=preset"), trace_mem_bytes=8 << 30)
    assert preset["mem_bytes"] == 8 << 30 and preset["swap_bytes"] == 0


def test_experiment_presets_compose():
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for exp in sorted(p.stem for p in Path(CONF_DIR, "experiment").glob("*.yaml")):
            cfg = compose(config_name="config", overrides=[f"experiment={exp}"])
            assert cfg.name == exp


def test_the_model_fingerprint_covers_the_compiled_builds_declarations(tmp_path):
    """A ``.pxd`` (a field's C type decides where a value overflows) or ``.pyx`` edit is a new model, as a
    ``.py`` edit is; other files are not."""
    from replay.config import source_fingerprint

    pkg = tmp_path / "core"
    pkg.mkdir()
    for name in ("state.py", "state.pxd", "_synth.pyx", "notes.txt"):
        (pkg / name).write_text("a\n")
    seen = {source_fingerprint([pkg])}
    for name in ("state.py", "state.pxd", "_synth.pyx"):
        (pkg / name).write_text("b\n")
        seen.add(source_fingerprint([pkg]))
    assert len(seen) == 4
    (pkg / "notes.txt").write_text("b\n")
    assert source_fingerprint([pkg]) in seen


def test_cache_key_changes_with_the_model(monkeypatch, compose_replay):
    import replay.config as rc

    cfg = compose_replay("experiment=quick")
    before = rc.config_key(cfg, "none")
    monkeypatch.setattr(rc, "model_fingerprint", lambda: "another-model")
    assert rc.config_key(cfg, "none") != before  # results of an older model are never reused
