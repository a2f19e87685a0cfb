"""When the shards checkpoint (``replay.coordinator.Cadence``): on the simulated grid, and only once
``checkpoint_min_wall_s`` of wall time has passed since the previous checkpoint."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from replay.app import run
from replay.coordinator import Cadence, Coordinator
from replay.outputs import partition_files
from replay.progress import Progress
from replay.shard import StepResult

S = 1_000_000


class _Executor:
    """Records each submitted round; every round returns nothing new."""

    def __init__(self) -> None:
        self.submitted: list[tuple[int, int, bool]] = []
        self.queue: list[int] = []

    def submit(self, t_us: int, ack_us: int, checkpoint: bool = False) -> None:
        self.submitted.append((t_us, ack_us, checkpoint))
        self.queue.append(t_us)

    def collect(self) -> list[StepResult]:
        return [StepResult(0, self.queue.pop(0), 0)]


class _Store:
    """Records the commits."""

    def __init__(self) -> None:
        self.commits: list[int] = []

    def commit(self, run: str, layout: str, t_us: int, chunk: bytes) -> None:
        self.commits.append(t_us)

    def drop_checkpoints(self, *args, **kwargs) -> None:
        pass

    def persist(self) -> None:
        pass

    def set_progress(self, run: str, fields: dict) -> None:
        pass


def _rounds(min_wall_s: float, tick_s: float, every_s: int = 60) -> tuple[list[int], list[int]]:
    """Rounds of 60 s to 600 s, a checkpoint grid of 60 s, a wall clock that moves ``tick_s`` each time it
    is read: (the rounds submitted with a checkpoint, the commits), in seconds."""
    now = [0.0]

    def clock() -> float:
        now[0] += tick_s
        return now[0]

    plan = SimpleNamespace(t_end_us=600 * S, layout="l", shards=[None])
    ex, store = _Executor(), _Store()
    co = Coordinator(plan, ex, store, "run", 60 * S, Cadence(every_s * S, min_wall_s),
                     Progress("t", 600 * S, enabled=False), clock=clock)
    co.run_rounds(0)
    assert [t for t, _, _ in ex.submitted] == [k * 60 * S for k in range(1, 11)]
    return [t // S for t, _, c in ex.submitted if c], [t // S for t in store.commits]


def test_without_a_wall_time_minimum_every_grid_point_but_the_end_is_a_checkpoint():
    assert _rounds(0.0, 10.0) == ([60, 120, 180, 240, 300, 360, 420, 480, 540],) * 2


def test_rounds_longer_than_the_checkpoint_spacing_checkpoint_at_every_round():
    # 60 s rounds, a checkpoint asked every 30 s: at every round (the grid rounded down to the step was 0 and
    # no checkpoint was ever taken: a killed replay with executor.step_s=21600 started again from scratch)
    assert _rounds(0.0, 10.0, every_s=30) == ([60, 120, 180, 240, 300, 360, 420, 480, 540],) * 2


def test_checkpoints_wait_for_the_wall_time_since_the_previous_one():
    # the clock reads 10 s more at each decision (the first after the start at 10 s): 30 s after the start
    # at the third grid point, then every third
    assert _rounds(25.0, 10.0) == ([180, 360, 540],) * 2


def test_a_replay_shorter_than_the_wall_time_minimum_commits_nothing_and_gives_the_same_files(compose_replay):
    quick = ("trace=tiny", "+trace.params.duration_s=360", "policy=none", "executor=local", "executor.step_s=60",
             "executor.checkpoint_every_s=120", "plots=false", "store.cache=false")
    every = run(compose_replay(*quick, "executor.checkpoint_min_wall_s=0", output="every"))
    rare = run(compose_replay(*quick, "executor.checkpoint_min_wall_s=3600", output="rare"))
    files = partition_files("none", 0)
    assert {n: Path(rare.run_dir, p).read_bytes() for n, p in files.items()} == \
        {n: Path(every.run_dir, p).read_bytes() for n, p in files.items()}
    assert rare.stats["none"].get("commit_s") is None
    assert every.stats["none"]["commit_s"] > 0


@pytest.mark.parametrize("bad", ["-1", "-0.5"])
def test_a_negative_wall_time_minimum_is_refused(compose_replay, bad):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="checkpoint_min_wall_s"):
        run(compose_replay("trace=tiny", "executor=local", f"executor.checkpoint_min_wall_s={bad}"))
