"""Benchmark of the trace pipeline: generate, write, read, validate, batch.

In: a preset name (default ``machine_day``), optional duration and machine-count
overrides and a seed. Out: one line per stage on stdout with wall seconds, CPU
seconds of this process (user + system, every thread) and rows per CPU second,
then the load average. The issue-13 targets are the ``generate`` (>= 3M rows/s)
and ``batches`` (``machine_batches``, >= 10M rows/s) lines; on a shared machine
read the CPU figure. Nothing is asserted: figures are printed for comparison
across commits.

    python scripts/bench_traces.py [--preset machine_day] [--duration-s S] [--machines N] [--repeat K]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
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


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _line(label: str, rows: int, wall: float, cpu: float) -> str:
    return (f"{label:10s} wall {wall:7.2f} s {rows / wall / 1e6:7.2f} M rows/s | "
            f"cpu {cpu:7.2f} s {rows / max(cpu, 1e-9) / 1e6:7.2f} M rows/cpu-s")


def _timed(label: str, rows: int, fn: Callable[[], Any], repeat: int = 1) -> Any:
    """Run ``fn`` ``repeat`` times; print the median wall and CPU figures; return the last result."""
    walls, cpus = [], []
    for _ in range(max(repeat, 1)):
        c0, t0 = _cpu(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    print(_line(label, rows if rows >= 0 else out.num_rows, sorted(walls)[len(walls) // 2],
                sorted(cpus)[len(cpus) // 2]), flush=True)
    return out


def run(preset: str = "machine_day", duration_s: float | None = None, seed: int = 0,
        machines: int | None = None, repeat: int = 1) -> dict[str, float]:
    """Run every stage (``repeat`` times, medians); returns the rows of the generated trace and the problem count."""
    params = PRESETS[preset]
    if duration_s:
        params = dataclasses.replace(params, duration_s=duration_s)
    if machines:
        params = dataclasses.replace(params, machines=machines)
    table = _timed("generate", -1, lambda: generate(params, seed), repeat)
    n = table.num_rows
    print(f"{'':10s} {preset}: {n:,} events, {params.machines} machine(s), {params.duration_s:,.0f} s simulated")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.parquet"
        _timed("write", n, lambda: write_trace(table, path))
        print(f"{'':10s} parquet {path.stat().st_size / n:.1f} bytes/event")
        table = _timed("read", n, lambda: read_trace(path))
    problems = _timed("validate", n, lambda: validate_table(table, "bench"))
    _timed("batches", n, lambda: sum(len(b) for _, b in machine_batches(table, max_rows=1 << 20)), repeat)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return {"rows": n, "problems": len(problems)}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="machine_day", choices=sorted(PRESETS))
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--machines", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of generate and batches (medians are printed)")
    args = ap.parse_args(argv)
    result = run(args.preset, args.duration_s, args.seed, args.machines, args.repeat)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
