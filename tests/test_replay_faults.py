"""A run stopped part-way by a fault says so in one line, and the same command then resumes it."""

from __future__ import annotations

import io
from pathlib import Path

from replay import store as store_mod
from replay.app import EXIT_FAULT, EXIT_INTERRUPTED, run, run_command
from replay.outputs import partition_files

QUICK = ("trace=tiny", "+trace.params.duration_s=360", "policy=none", "executor=local", "executor.step_s=60",
         "executor.checkpoint_every_s=120", "executor.checkpoint_min_wall_s=0", "plots=false")


def _files(run_dir: str, seed: int) -> dict[str, bytes]:
    return {n: Path(run_dir, rel).read_bytes() for n, rel in partition_files("none", seed).items()}


def _one_error_line(err: io.StringIO) -> str:
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "run the same command again to resume" in lines[0]
    return lines[0]


def _stopped_then_resumed(compose_replay, seed: int, fault, status: int) -> str:
    ref = run(compose_replay(*QUICK, f"seed={seed}", "store.cache=false", output="ref"))
    err = io.StringIO()

    def at_step_4(k, _executor):
        if k == 4:  # t = 300 s; the last commit was at 240 s
            fault()

    assert run_command(compose_replay(*QUICK, f"seed={seed}", output="stopped"), err, at_step_4) == status
    line = _one_error_line(err)
    store_mod._EMBEDDED.stop()  # a new process: only the persisted store survives
    again = run(compose_replay(*QUICK, f"seed={seed}", output="again"))
    assert again.resumed == {"none": 240_000_000}
    assert _files(again.run_dir, seed) == _files(ref.run_dir, seed)
    return line


def test_ctrl_c_is_one_line_and_the_run_resumes(compose_replay):
    def ctrl_c():
        raise KeyboardInterrupt

    line = _stopped_then_resumed(compose_replay, 3, ctrl_c, EXIT_INTERRUPTED)
    assert line.startswith("error: interrupted;")


def test_store_going_away_is_one_line_and_the_run_resumes(compose_replay):
    line = _stopped_then_resumed(compose_replay, 4, lambda: store_mod._EMBEDDED.stop(), EXIT_FAULT)
    assert "the run store (the embedded run store) went away mid-run (ConnectionError" in line


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_server(port: int, data: Path):
    import shutil
    import subprocess
    import time

    import redis

    if not shutil.which("redis-server"):
        import pytest

        pytest.skip("redis-server is not installed")
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(400):  # until it answers (not a timed assertion: it either comes up or the test fails)
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_a_real_redis_going_away_is_one_line_and_the_run_resumes_once_it_is_back(compose_replay, tmp_path):
    port, data = _free_port(), tmp_path / "redis"
    data.mkdir()
    url = f"redis://127.0.0.1:{port}/0"
    ref = run(compose_replay(*QUICK, "seed=5", "store.cache=false", output="ref"))
    server = _redis_server(port, data)
    try:
        def stop_redis():
            server.terminate()  # our own server, by its pid
            server.wait(timeout=60)

        def at_step_4(k, _executor):
            if k == 4:
                stop_redis()

        err = io.StringIO()
        assert run_command(compose_replay(*QUICK, "seed=5", f"store.url={url}", output="stopped"),
                           err, at_step_4) == EXIT_FAULT
        line = _one_error_line(err)
        assert f"the run store ({url}) went away mid-run" in line and "once it is reachable" in line
        server = _redis_server(port, data)  # back, with what it had written to its append-only file
        again = run(compose_replay(*QUICK, "seed=5", f"store.url={url}", output="again"))
        assert again.resumed == {"none": 240_000_000}
        assert _files(again.run_dir, 5) == _files(ref.run_dir, 5)
    finally:
        server.kill()
        server.wait(timeout=60)
