"""Finding Ray as Ray's own conventions say: RAY_ADDRESS, a stale ray_current_cluster, a wrong address."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import replay.executors as ex
from core.errors import ConfigError
from replay.config import RayCfg

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_tmp(tmp_path, monkeypatch):
    """Ray's temp dir in the test's own folder (where ``ray start`` leaves ray_current_cluster)."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "ray").mkdir()
    return tmp_path / "ray"


@pytest.fixture
def fake_init(monkeypatch):
    """``ray.init`` recorded, not run (and Ray reported as not started yet)."""
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(ex, "check_ray_address", lambda *a: None)
    return calls


def test_ray_address_order(ray_tmp, monkeypatch):
    assert ex.ray_address(RayCfg()) == (None, "")
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        here = f"127.0.0.1:{live.getsockname()[1]}"
        (ray_tmp / "ray_current_cluster").write_text(here + "\n")
        assert ex.ray_address(RayCfg()) == (here, str(ray_tmp / "ray_current_cluster"))
        monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
        assert ex.ray_address(RayCfg()) == ("10.0.0.9:6379", "RAY_ADDRESS")
        assert ex.ray_address(RayCfg(address="auto")) == ("auto", "ray.address")


def test_a_stale_current_cluster_file_starts_a_local_cluster(ray_tmp, fake_init):
    (ray_tmp / "ray_current_cluster").write_text(f"127.0.0.1:{_closed_port()}\n")
    ex.ensure_ray(RayCfg(num_cpus=2, object_store_mib=64))
    [kw] = fake_init
    assert kw["address"] == "local" and kw["num_cpus"] == 2 and kw["object_store_memory"] == 64 << 20


def test_ray_address_env_joins_without_local_cluster_settings(ray_tmp, fake_init, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    ex.ensure_ray(RayCfg())
    [kw] = fake_init
    assert kw["address"] == "127.0.0.1:6379"
    assert "object_store_memory" not in kw and "num_cpus" not in kw


def test_nobody_at_the_address_is_a_clear_error(ray_tmp):
    with pytest.raises(ConfigError, match=r"ray.address: no Ray cluster at 127\.0\.0\.1:\d+ \(ConnectionRefused"):
        ex.check_ray_address(f"127.0.0.1:{_closed_port()}", "ray.address", 5.0)


def test_a_silent_server_at_the_address_times_out_with_a_clear_error(ray_tmp):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    try:
        with pytest.raises(ConfigError, match="RAY_ADDRESS: no Ray cluster answered at .* within 3 s"):
            ex.check_ray_address(f"127.0.0.1:{srv.getsockname()[1]}", "RAY_ADDRESS", 3.0)
    finally:
        srv.close()


def test_ci_removes_only_the_ray_folder_it_made():
    text = (ROOT / ".ci" / "run").read_text()
    assert "rm -rf /tmp/ray" not in text and "RAY_TMPDIR" in text


@pytest.fixture
def short_tmp():
    """A Ray temp dir with a short path (Ray's sockets live under it: 107 bytes at most)."""
    d = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.ray
def test_default_run_with_a_stale_current_cluster_file(tmp_path, short_tmp):
    """The README's main command (a tiny trace) beside a stale ``ray_current_cluster`` and an empty RAY_ADDRESS."""
    (short_tmp / "ray").mkdir()
    (short_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{_closed_port()}\n")
    env = dict(os.environ, RAY_TMPDIR=str(short_tmp), RAY_ADDRESS="", RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "replay", "trace=tiny", "policy=none", "plots=false", "progress=false",
         "executor.shards=1", "ray.num_cpus=1", "ray.object_store_mib=80", f"hydra.run.dir={tmp_path / 'out'}",
         f"store.embedded_path={tmp_path / 'store.pkl'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "summary.json").exists()
