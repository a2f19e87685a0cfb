"""Benchmark of the trace pipeline: generate, write, read, validate, batch.

In: a preset name (default ``machine_day``), optional duration and machine-count
overrides and a seed. Out: one line per stage on stdout with wall seconds, CPU
seconds of this process (user + system, every thread) and rows per CPU second,
then the load average. The issue-13 targets are the ``generate`` (>= 3M rows/s)
and ``batches`` (``machine_batches``, >= 10M rows/s) lines; on a shared machine
read the CPU figure. Nothing is asserted: figures are printed for comparison
across commits. The first line says which trace generator ran (compiled ``traces._synth`` or pure).

``--ab OLD`` compares ``generate`` with an old checkout instead (``git worktree add --detach OLD
<commit>``, built in place if it has a compiled generator): each run is a fresh interpreter with
that checkout first on ``PYTHONPATH``, old and new in turn ``--rounds`` times, CPU seconds by
``time.process_time`` around ``generate`` alone (imports and a warm-up outside). Alternating exposes
both to the same load on a shared box. It uses only ``PRESETS`` and ``generate``, which every
checkout has, so it measures the whole old generator, whatever its modules.

    python scripts/bench_traces.py [--preset machine_day] [--duration-s S] [--machines N] [--repeat K]
    python scripts/bench_traces.py --ab /tmp/old --preset google2011_cell --machines 50 --duration-s 172800
    python scripts/bench_traces.py --ab /tmp/old --shard --preset google2011_cell --machines 300 --duration-s 126144
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traces import synth_build
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
    print(f"generator: {synth_build.describe()}", flush=True)
    params = _params(preset, duration_s, machines)
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


def _params(preset: str, duration_s: float | None, machines: int | None) -> Any:
    params = PRESETS[preset]
    if duration_s:
        params = dataclasses.replace(params, duration_s=duration_s)
    if machines:
        params = dataclasses.replace(params, machines=machines)
    return params


# run in a fresh interpreter with one checkout first on the path: its generate (or, --shard, its
# machines concatenated as replay.shard does), timed alone
_ONE_RUN = """
import dataclasses, json, sys, time
import pyarrow as pa
from traces.generate import PRESETS, generate, generate_machine
over = json.loads(sys.argv[1])
shard = over.pop("shard")
params = dataclasses.replace(PRESETS[over.pop("preset")], **over)
generate(dataclasses.replace(params, machines=1, duration_s=min(params.duration_s, 600.0)), 0)  # warm-up
c = time.process_time()
if shard:
    rows = pa.concat_tables([generate_machine(params, 0, i) for i in range(params.machines)]).num_rows
else:
    rows = generate(params, 0).num_rows
print(json.dumps({"rows": rows, "cpu": time.process_time() - c}))
"""


def ab(old: Path, preset: str, duration_s: float | None, machines: int | None, rounds: int,
       shard: bool = False) -> dict[str, list]:
    """``generate`` of ``old`` and of this checkout, alternately in fresh interpreters: (rows, CPU s) per run.

    ``shard``: each machine by ``generate_machine``, concatenated, as a replay shard makes its
    table (no ``memory`` rows)."""
    over = {"preset": preset, "shard": shard, **({"duration_s": duration_s} if duration_s else {}),
            **({"machines": machines} if machines else {})}
    trees = {"old": old.resolve(), "new": Path(__file__).resolve().parents[1]}
    runs: dict[str, list] = {k: [] for k in trees}
    for _ in range(rounds):
        for k, tree in trees.items():
            env = dict(os.environ, PYTHONPATH=str(tree))
            out = subprocess.run([sys.executable, "-c", _ONE_RUN, json.dumps(over)], cwd=tree, env=env,
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.splitlines()[-1])
            runs[k].append((r["rows"], r["cpu"]))
    for k, v in runs.items():
        rates = [n / c / 1e6 for n, c in v]
        label = "shard generate" if shard else "generate"
        print(f"{label} {k:3s} {v[0][0]:,} rows | cpu s {', '.join(f'{c:.3f}' for _, c in v)} | "
              f"M rows/cpu-s {', '.join(f'{x:.2f}' for x in rates)} (best {max(rates):.2f})", flush=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="machine_day", choices=sorted(PRESETS))
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--machines", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of generate and batches (medians are printed)")
    ap.add_argument("--ab", type=Path, metavar="OLD", help="compare generate with this old checkout (see above)")
    ap.add_argument("--rounds", type=int, default=3, help="with --ab: runs of each version, alternating")
    ap.add_argument("--shard", action="store_true", help="with --ab: generate_machine per machine, as replay shards")
    args = ap.parse_args(argv)
    if args.ab:
        ab(args.ab, args.preset, args.duration_s, args.machines, args.rounds, args.shard)
        return 0
    result = run(args.preset, args.duration_s, args.seed, args.machines, args.repeat)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
