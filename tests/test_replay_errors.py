"""Bad input to the replay ends in one ``error:`` line and exit status 2, with no result written."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from replay.app import EXIT_BAD_INPUT, run_command
from traces.generate import PRESETS, generate
from traces.io import write_trace

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ("executor=local", "policy=none", "plots=false")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> pa.Table:
    return generate(dataclasses.replace(PRESETS["tiny"], machines=2, duration_s=120.0), seed=1)


def _bad_files(d: Path, good: pa.Table) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the error line must hold)."""
    write_trace(good, d / "good.csv")
    text = (d / "good.csv").read_text()
    header = text.splitlines()[0] + "\n"
    files = {
        "truncated": ("t.csv", text[:len(header) + 40]),
        "empty": ("e.csv", ""),
        "header_only": ("h.csv", header),
        "garbage": ("g.csv", "\x00\x01garbage,\"unclosed\n;;;\n"),
        "wrong_extension": ("trace.txt", text),
    }
    out = {}
    for name, (fname, body) in files.items():
        (d / fname).write_text(body)
        out[name] = (d / fname, fname)
    write_trace(good, d / "good.parquet")
    (d / "cut.parquet").write_bytes((d / "good.parquet").read_bytes()[:1000])
    out["truncated_parquet"] = (d / "cut.parquet", "cut.parquet")
    # the last event of the first machine at 2^62 µs: valid as a trace, impossible as a replay
    times = good.column("time_us").to_numpy().copy()
    last = good.column("machine").to_pylist().count("m-0000") - 1
    times[last] = 1 << 62
    write_trace(good.set_column(0, "time_us", pa.array(times)), d / "far.parquet")
    out["event_at_2_62"] = (d / "far.parquet", f"far.parquet:{last + 1}: E211 time_us")
    return out


def _no_results(run_dir: Path) -> None:
    found = [p.name for p in run_dir.rglob("*")] if run_dir.exists() else []
    assert not [n for n in found if n.startswith(("policy=", "summary", "machines", "fleet", "jobs"))
                or n.endswith((".png", ".parquet"))], found


def _refused(cfg) -> str:
    err = io.StringIO()
    assert run_command(cfg, err) == EXIT_BAD_INPUT
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_bad_trace_files_are_one_error_line(compose_replay, tmp_path, good):
    for name, (path, needle) in _bad_files(tmp_path, good).items():
        line = _refused(compose_replay("trace=file", f"trace.path={path}", *LOCAL, output=name))
        assert needle in line, (name, line)
        _no_results(tmp_path / name)


@pytest.mark.parametrize("override, needle", [
    ("trace.preset=nope", "trace.preset: 'nope'"),
    ("+trace.params.machines=-2", "trace.params.machines: -2"),
    ("machine.swap_gib=nan", "machine.swap_gib: nan is not a finite size"),
    ("machine.mem_gib=inf", "machine.mem_gib: inf is not a finite size"),
    ("+trace.params.duration_s=abc", "trace.params.duration_s: 'abc'"),
    ("+trace.params.tmpfs_fraction=1.5", "trace.params.tmpfs_fraction: 1.5"),
    ("+trace.params.anon_steps=1.5", "trace.params.anon_steps: 1.5 is not an integer"),
    ("+trace.params.no_such_knob=1", "trace.params.no_such_knob"),
    ("+trace.params.duration_s=1e15", "trace.params.duration_s"),
    ("fleet.machines=-1", "fleet.machines: -1"),
])
def test_bad_parameters_are_one_error_line(compose_replay, tmp_path, override, needle):
    assert needle in _refused(compose_replay("trace=tiny", override, *LOCAL))
    _no_results(tmp_path / "run")


def test_integral_float_parameters_are_accepted(compose_replay):
    from replay.plan import synth_params

    p = synth_params(compose_replay("trace=tiny", "+trace.params.machines=2.0"))
    assert p.machines == 2 and isinstance(p.machines, int)


def test_the_command_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "replay", "experiment=quick", "trace=file", f"trace.path={tmp_path / 'empty.csv'}",
         f"hydra.run.dir={tmp_path / 'out'}", f"store.embedded_path={tmp_path / 'store.pkl'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: ")
    assert "empty.csv" in proc.stderr
    _no_results(tmp_path / "out")
