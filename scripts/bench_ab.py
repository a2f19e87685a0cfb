"""Benchmark: old vs new ``generate_machine`` and ``machine_batches``, interleaved in one process.

In: the path of an old checkout (``git worktree add --detach /tmp/old <commit>``). Both versions
of ``traces/generate.py`` and ``traces/batches.py`` are loaded side by side (everything else is
this checkout's) and run in turn ``--repeat`` times on the same input. An old checkout whose
generator lives in ``traces/synth.py`` (from 2026-12-07) would make its events with this checkout's
generator: its ``generate_machine`` is not compared (``scripts/bench_traces.py --ab`` runs each
checkout in its own interpreter). Out: per version the CPU
seconds of every run and the best rows per CPU-second. On a shared box the load moves every
figure; alternating the versions exposes both to the same load, and the best of several runs is
the least disturbed. Nothing is asserted.

``machine_batches`` is measured on the trace as ``read_trace`` returns it (plain strings) and as
a replay shard reads it: the old checkout's shard with ``pq.read_table``, this one's with
``traces.batches.read_parquet`` (string columns as Parquet's dictionaries), batches alone and
read + batches. ``--google N`` adds the Google 2011 excerpt tiled N times (as
``scripts/bench_import.py``), imported and written by ``write_trace``, read as a shard reads it.

    python scripts/bench_ab.py /tmp/old [--hours 24] [--repeat 3] [--google 50] [--skip-generate]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _ab(label: str, rows: int, runs: dict[str, Callable[[], object]], repeat: int) -> None:
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            c = time.process_time()
            fn()
            cpu[k].append(time.process_time() - c)
    for k, v in cpu.items():
        print(f"{label:34s} {k:3s} cpu s {', '.join(f'{x:.2f}' for x in v):24s} "
              f"best {rows / min(v) / 1e6:6.3f}M rows/cpu-s", flush=True)


def _shard_ab(label: str, path: Path, bat: dict[str, ModuleType], read: dict[str, Callable], repeat: int) -> None:
    # as replay.shard loads a partition: each version's read, then its machine_batches (whole machines)
    tables = {k: read[k](path) for k in bat}
    rows = tables["new"].num_rows
    _ab(f"machine_batches (shard, {label})", rows,
        {k: (lambda k=k: sum(len(b) for _, b in bat[k].machine_batches(tables[k]))) for k in bat}, repeat)
    _ab(f"read + batches (shard, {label})", rows,
        {k: (lambda k=k: sum(len(b) for _, b in bat[k].machine_batches(read[k](path)))) for k in bat}, repeat)


def main(argv: list[str] | None = None) -> int:
    """Parse options and print both versions' figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path, help="an old checkout of this repository")
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours of machine_day to generate")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--google", type=int, default=0, metavar="N", help="also the Google 2011 excerpt x N")
    ap.add_argument("--skip-generate", action="store_true", help="measure machine_batches only")
    args = ap.parse_args(argv)
    import pyarrow.parquet as pq

    from traces.io import read_trace, write_trace
    gen = {"old": _load(args.old / "traces/generate.py", "old_generate"),
           "new": _load(REPO / "traces/generate.py", "new_generate")}
    bat = {"old": _load(args.old / "traces/batches.py", "old_batches"),
           "new": _load(REPO / "traces/batches.py", "new_batches")}
    params = {k: dataclasses.replace(m.PRESETS["machine_day"], duration_s=args.hours * 3600) for k, m in gen.items()}
    table = gen["new"].generate_machine(params["new"], 0, 0)
    n = table.num_rows
    if not args.skip_generate and (args.old / "traces/synth.py").exists():
        # that generate.py makes its events with this checkout's traces.synth / traces._synth: the
        # comparison would time this generator twice (``bench_traces.py --ab`` runs each checkout whole)
        print("generate_machine: not compared (the old checkout's generator imports this one's traces.synth); "
              "use scripts/bench_traces.py --ab OLD")
    elif not args.skip_generate:
        _ab(f"generate_machine ({args.hours:g} h)", n,
            {k: (lambda k=k: gen[k].generate_machine(params[k], 0, 0)) for k in gen}, args.repeat)
    shard_read = {"old": pq.read_table, "new": bat["new"].read_parquet}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.parquet"
        write_trace(gen["new"].generate(params["new"], 0), path)
        back = read_trace(path)
        _ab("machine_batches (read back)", back.num_rows,
            {k: (lambda k=k: sum(len(b) for _, b in bat[k].machine_batches(back, max_rows=1 << 20))) for k in bat},
            args.repeat)
        _shard_ab("machine_day", path, bat, shard_read, args.repeat)
        if args.google:
            from scripts.pipeline_check import _excerpt, _tiled
            from traces.importers.google2011 import import_google2011
            tiled = _tiled(Path(d) / "te.csv.gz", _excerpt("task"), args.google)
            write_trace(import_google2011([tiled])[0], Path(d) / "g.parquet")
            _shard_ab(f"google2011 x{args.google}", Path(d) / "g.parquet", bat, shard_read, args.repeat)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
