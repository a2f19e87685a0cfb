"""Shared pytest fixtures.

- ``compose_replay(*overrides)``: the replay app's config composed from ``conf/`` exactly as
  ``python -m replay`` would, writing into the test's tmp dir with a private store namespace.
- ``ray_session``: one local Ray cluster for the whole session (tests marked ``ray``).
- ``redis_url``: the real Redis of ``.ci/run`` (``REDIS_URL``); tests using it skip without it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@pytest.fixture
def compose_replay(tmp_path):
    """Compose a ReplayConfig; quiet, isolated (own output dir, namespace and store snapshot)."""
    from hydra import compose, initialize_config_dir

    from replay.config import register_configs, to_config

    register_configs()
    ns = f"test-{uuid.uuid4().hex[:8]}"

    def _compose(*overrides: str, output: str = "run"):
        base = [f"output_dir={tmp_path / output}", f"store.namespace={ns}", "progress=false",
                f"store.embedded_path={tmp_path / 'store.pkl'}"]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return to_config(compose(config_name="config", overrides=base + list(overrides)))

    return _compose


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray cluster shared by every ``ray`` test, shut down at the end."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    # "local": a cluster of our own even where RAY_ADDRESS or `ray start` point at another
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             logging_level=logging.WARNING, namespace="tests", object_store_memory=256 << 20)
    yield ray
    ray.shutdown()


@pytest.fixture
def redis_url():
    """URL of a real redis-server, or skip."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL not set (.ci/run starts a redis-server)")
    return url
