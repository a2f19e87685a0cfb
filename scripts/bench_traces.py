"""Benchmark of the trace pipeline: generate, write, read, validate, batch.

In: a preset name (default ``machine_day``), optional duration override and a
seed. Out: one line per stage on stdout with seconds and rows per second.
Nothing is asserted: figures are printed for comparison across commits.

    /work/venv/bin/python scripts/bench_traces.py [--preset machine_day] [--duration-s S]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traces.batches import machine_batches
from traces.generate import PRESETS, generate
from traces.io import read_trace, write_trace
from traces.validate import validate_table


def _timed(label: str, rows: int, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:10s} {dt:8.2f} s {rows / dt / 1e6:8.2f} M rows/s", flush=True)
    return out


def run(preset: str = "machine_day", duration_s: float | None = None, seed: int = 0) -> dict[str, float]:
    """Run every stage once; returns the rows of the generated trace and the problem count."""
    params = PRESETS[preset]
    if duration_s:
        params = dataclasses.replace(params, duration_s=duration_s)
    t0 = time.perf_counter()
    table = generate(params, seed)
    dt = time.perf_counter() - t0
    n = table.num_rows
    print(f"{preset}: {n:,} events, {params.machines} machine(s), {params.duration_s:,.0f} s simulated")
    print(f"{'generate':10s} {dt:8.2f} s {n / dt / 1e6:8.2f} M rows/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.parquet"
        _timed("write", n, lambda: write_trace(table, path))
        print(f"{'':10s} parquet {path.stat().st_size / n:.1f} bytes/event")
        table = _timed("read", n, lambda: read_trace(path))
    problems = _timed("validate", n, lambda: validate_table(table, "bench"))
    _timed("batches", n, lambda: sum(len(b) for _, b in machine_batches(table, max_rows=1 << 20)))
    return {"rows": n, "problems": len(problems)}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="machine_day", choices=sorted(PRESETS))
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    result = run(args.preset, args.duration_s, args.seed)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
