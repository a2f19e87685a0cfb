"""A run stopped part-way by a fault says so in one line, and the same command then resumes it."""

from __future__ import annotations

import io
from pathlib import Path

from replay import store as store_mod
from replay.app import EXIT_FAULT, EXIT_INTERRUPTED, run, run_command
from replay.outputs import partition_files

QUICK = ("trace=tiny", "+trace.params.duration_s=360", "policy=none", "executor=local", "executor.step_s=60",
         "executor.checkpoint_every_s=120", "plots=false")


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
