"""Installed like any package: ``pip install .`` ships the configs; a console command with Hydra's
completion and a ``--help`` that says what the app is and which keys matter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from replay.config import ReplayConfig

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", HYDRA_FULL_ERROR="0")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel (not editable) and unpacked into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    # the pure build: this test is about what the wheel ships, not the compiled core (tests/test_build.py)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp), str(ROOT)],
                   check=True, capture_output=True, timeout=600, env=dict(os.environ, MEMCG_REPLAY_PURE="1"))
    [whl] = tmp.glob("memcg_replay-*.whl")
    target = tmp / "site"
    with zipfile.ZipFile(whl) as z:
        z.extractall(target)
    return target


def test_the_wheel_ships_every_config(installed):
    shipped = {p.relative_to(installed / "replay" / "conf").as_posix()
               for p in (installed / "replay" / "conf").rglob("*.yaml")}
    in_repo = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert shipped == in_repo and "config.yaml" in shipped
    [entry] = installed.glob("memcg_replay-*.dist-info/entry_points.txt")
    assert "memcg-replay = replay.__main__:main" in entry.read_text()


def test_the_installed_app_composes_its_config_away_from_the_checkout(installed, tmp_path):
    env = dict(ENV, PYTHONPATH=str(installed))
    proc = subprocess.run([sys.executable, "-c", "import replay, sys; sys.argv[0] = 'memcg-replay'; "
                           "from replay.__main__ import main; print(replay.__file__, file=sys.stderr); main()",
                           "--cfg", "job", "trace=tiny", "kernel=v6.1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert str(installed) in proc.stderr  # the unpacked wheel, not the checkout
    assert "preset: tiny" in proc.stdout and "version: '6.1'" in proc.stdout


def _help() -> str:
    proc = subprocess.run([sys.executable, "-m", "replay", "--help"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_describes_the_app_and_its_main_keys():
    text = _help()
    assert text.startswith("memcg-replay: replays container churn")
    assert "zombie (dying) memory cgroups" in text and "Usage: memcg-replay" in text
    assert "policy: all, " in text and "trace: default, " in text  # the groups and their options
    keys = re.findall(r"^([a-z_]+(?:\.[a-z_]+)?) {2,}\S", text.split("== Main keys", 1)[1], re.M)
    assert {"policy.names", "trace.path", "fleet.machines", "executor.kind", "ray.address", "store.url"} <= set(keys)
    for key in keys:  # every key the help names exists in the schema
        node = ReplayConfig()
        for part in key.split("."):
            assert hasattr(node, part), key
            node = getattr(node, part)
    assert "memcg-replay -sc install=bash" in text


def test_console_command_is_declared_and_completes_config_keys():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'memcg-replay = "replay.__main__:main"' in text
    env = dict(ENV, COMP_LINE="memcg-replay kernel=v6")
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'memcg-replay'; "
                           "from replay.__main__ import main; main()", "-sc", "query=bash"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["kernel=v6.1", "kernel=v6.12", "kernel=v6.12.118", "kernel=v6.18"]
