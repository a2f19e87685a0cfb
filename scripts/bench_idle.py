"""Benchmark of idle machines: cost must follow events, not simulated time.

In: a number of machines and simulated days. The trace has two events per machine (a
``mkdir`` at t=0, its ``rmdir`` at the end), so the machines have nothing to do but be
sampled every minute. Out: printed figures — the model alone (machines built and
advanced in this process, per idle machine-day), and the whole replay
(``python -m replay trace=file executor=local policy=none`` as a child process: wall time
including start-up, its CPU seconds and its peak RSS). Nothing is asserted.

    python scripts/bench_idle.py [--machines 1000] [--days 1] [--no-replay]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.machine import Machine, MachineConfig
from core.policy import make_policy

DAY_US = 86_400 * 1_000_000


def idle_trace(machines: int, days: float) -> pa.Table:
    """A native trace (schema v1) of ``machines`` machines, each a mkdir at 0 and its rmdir at the end."""
    end = int(days * DAY_US)
    names = [f"m-{i:05d}" for i in range(machines)]
    n = 2 * machines
    return pa.table({
        "time_us": pa.array([0] * machines + [end] * machines, pa.int64()),
        "machine": pa.array(names + names, pa.string()),
        "op": pa.array(["mkdir"] * machines + ["rmdir"] * machines, pa.string()),
        "cgroup": pa.array(["/job"] * n, pa.string()),
        "task": pa.array([None] * n, pa.string()),
        "object": pa.array([None] * n, pa.string()),
        "offset": pa.array([0] * n, pa.int64()),
        "bytes": pa.array([0] * n, pa.int64()),
        "flags": pa.array([""] * n, pa.string()),
    })


def model_only(machines: int, days: float) -> dict[str, float]:
    """Build ``machines`` empty machines and advance each ``days`` days: CPU time per machine-day."""
    c0 = time.process_time()
    ms = [Machine(MachineConfig(), make_policy("none"), machine_id=f"m{i}") for i in range(machines)]
    c1 = time.process_time()
    for m in ms:
        m.advance_to(int(days * DAY_US))
    c2 = time.process_time()
    rows = sum(len(m.take_samples()["time_us"]) for m in ms)
    return {"build_ms_per_machine": (c1 - c0) * 1e3 / machines,
            "advance_ms_per_machine_day": (c2 - c1) * 1e3 / (machines * days), "sample_rows": rows}


def whole_replay(machines: int, days: float) -> dict[str, float]:
    """The replay as a user runs it, in a child process: wall seconds and peak RSS (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idle.parquet"
        pq.write_table(idle_trace(machines, days), path)
        cmd = [sys.executable, "-m", "replay", "trace=file", f"trace.path={path}", "executor=local",
               "policy=none", "plots=false"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp)  # its outputs and store in tmp
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"replay failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the child: steadier than wall time on a shared box
    return {"replay_wall_s": wall, "replay_cpu_s": ru.ru_utime + ru.ru_stime, "replay_peak_rss_mib": ru.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run and print one figure per line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=1000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--no-replay", dest="replay", action="store_false", help="only the model, in this process")
    args = ap.parse_args(argv)
    figs: dict[str, float] = {"machines": args.machines, "days": args.days}
    figs.update(model_only(args.machines, args.days))
    if args.replay:
        figs.update(whole_replay(args.machines, args.days))
    for k, v in figs.items():
        print(f"{k:>30}: {v:,.3f}" if isinstance(v, float) else f"{k:>30}: {v:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
