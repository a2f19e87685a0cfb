"""Ray executor: same bytes as in-process with 1 or N actors, and after an actor is killed.

One Ray session for the module (``ray_session``); every wait on Ray has a timeout
(``executor.timeout_s`` bounds each ``ray.get`` of the executor).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from replay.app import run
from replay.outputs import partition_files

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

BASE = ("trace=tiny", "+trace.params.duration_s=360", "policy=none", "executor.step_s=60",
        "executor.checkpoint_every_s=120", "executor.checkpoint_min_wall_s=0", "executor.timeout_s=60", "store.cache=false", "plots=false")


def _files(run_dir: str) -> dict[str, bytes]:
    return {n: Path(run_dir, rel).read_bytes() for n, rel in partition_files("none", 0).items()}


@pytest.fixture
def local_reference(compose_replay):
    return _files(run(compose_replay(*BASE, "executor=local", output="local")).run_dir)


def test_ray_with_one_or_three_actors_matches_in_process(ray_session, compose_replay, local_reference):
    for shards in (1, 3):
        res = run(compose_replay(*BASE, "executor=ray", f"executor.shards={shards}", output=f"ray{shards}"))
        assert _files(res.run_dir) == local_reference, shards


def test_ray_in_waves_with_packed_machines_matches_in_process(ray_session, compose_replay, local_reference):
    res = run(compose_replay(*BASE, "executor=ray", "executor.shards=2", "executor.wave_machines=2",
                             "executor.pack_above=0", output="ray-waves"))
    assert _files(res.run_dir) == local_reference


def test_killed_actor_restarts_from_its_checkpoint_with_identical_results(
        ray_session, compose_replay, local_reference):
    seen: dict[str, int] = {}

    def kill_then_check(k, executor):
        if k == 2:  # t = 180 s: shard 1 checkpointed at 120 s
            seen["pid"] = executor.pids()[1]
            os.kill(seen["pid"], signal.SIGKILL)
        if k == 4:
            seen["after"] = executor.pids()[1]
            seen["restored"] = ray_session.get(executor.actors[1].restored_from.remote(), timeout=60)

    res = run(compose_replay(*BASE, "executor=ray", "executor.shards=2", output="killed"),
              on_step=kill_then_check)
    assert seen["after"] != seen["pid"]  # the actor really was a new process
    assert seen["restored"] == 120_000_000  # ... started from its last checkpoint, not from zero
    assert _files(res.run_dir) == local_reference


def test_actor_killed_while_rounds_are_pipelined_gives_identical_results(
        ray_session, compose_replay, local_reference):
    killed: list[int] = []

    def kill(k, executor):
        if k == 3:  # the next round is already queued on every actor
            killed.append(executor.pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    kill.pipelined = True  # the coordinator keeps two rounds in flight even with this hook
    res = run(compose_replay(*BASE, "executor=ray", "executor.shards=2", output="killed-pipelined"),
              on_step=kill)
    assert killed and _files(res.run_dir) == local_reference


def test_actors_dying_past_max_restarts_is_one_line_and_the_run_resumes(
        ray_session, compose_replay, local_reference):
    import io

    from replay.app import EXIT_FAULT, run_command

    def kill(k, executor):
        if k == 2:  # t = 180 s; the last commit was at 120 s
            os.kill(executor.pids()[1], signal.SIGKILL)

    base = [b for b in BASE if b != "store.cache=false"]
    err = io.StringIO()
    status = run_command(compose_replay(*base, "executor=ray", "executor.shards=2", "executor.max_restarts=0",
                                        output="died"), err, kill)
    assert status == EXIT_FAULT
    [line] = err.getvalue().splitlines()
    assert line.startswith("error: a shard actor died more often than executor.max_restarts=0 allows;")
    assert "run the same command again to resume" in line
    res = run(compose_replay(*base, "executor=ray", "executor.shards=2", output="resumed"))
    assert res.resumed == {"none": 120_000_000}
    assert _files(res.run_dir) == local_reference
