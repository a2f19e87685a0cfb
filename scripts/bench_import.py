"""Benchmark: Google 2011 task_events import rate (rows/s). Prints, never asserts.

In: the real task_events excerpt (``../shared/traces`` or ``tests/data``), replicated
``--copies`` times into one gzipped CSV (and its uncompressed copy) in a temp dir
(each copy shifted in time and given distinct job ids, so the lifecycles stay
realistic). Out: lines on stdout, one per measured stage, each with its wall
seconds, CPU seconds (user + system of this process, all threads), rows/s of
wall time and rows per CPU second:

* the CSV read alone (pyarrow's multithreaded reader), gzip and uncompressed;
* the whole default import (read + pairing + event emission), gzip and
  uncompressed, ``--repeat`` times each (medians), and the uncompressed import
  without sharing rules;
* the share of the import that is CSV parsing (wall and CPU), so the distance
  to the 1M rows/s target can be told apart from the reader's own speed;
* the Parquet write of the result;
* which build of the string gather ran (``traces.take_build``: compiled or pure, and why) and in
  how many chunks of machines the events were assembled (``traces.importers.emit.CHUNK_EVENTS``).

The machine is shared: wall times swing with the load, the CPU figures less.

Run: ``python scripts/bench_import.py [--copies 50] [--repeat 3]`` (target: >= 1M rows/s).
For whole-process timings: ``--write-input /tmp/te50.csv.gz`` once, then
``farm-bench -- python scripts/bench_import.py --import-once /tmp/te50.csv.gz``; for a process's
first import against its warm ones: ``--in-process /tmp/te50.csv.gz --repeat 6``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa

from traces import take_build
from traces.importers.common import ImportReport, Rejects, read_csv
from traces.importers.google2011 import TASK_EVENTS, Params, import_google2011
from traces.io import write_trace

SHARED = REPO.parent / "shared/traces/google-clusterdata-2011-2/task_events/excerpt-t600-1400s/part-00000-of-00500.csv.gz"
LOCAL = REPO / "tests/data/google2011/task_events-part-00000-head6000.csv.gz"


def make_input(dst: Path, copies: int) -> int:
    """Write ``copies`` shifted copies of the excerpt to ``dst``; returns the row count."""
    src = SHARED if SHARED.exists() else LOCAL
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()
    rows = [line.split(",") for line in lines]
    span = int(rows[-1][0]) - int(rows[0][0]) + 1
    out = []
    for c in range(copies):
        for r in rows:
            r2 = list(r)
            r2[0] = str(int(r[0]) + c * span)
            r2[2] = str(int(r[2]) + c * 10**11)  # a distinct job namespace per copy
            out.append(",".join(r2))
    dst.write_bytes(gzip.compress(("\n".join(out) + "\n").encode(), compresslevel=1))
    return len(out)


def _cpu() -> float:
    """User + system seconds of this process so far (every thread: the CSV reader is multithreaded)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float, object]:
    """Median wall and median CPU seconds of ``repeat`` calls of ``fn``, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(max(repeat, 1)):
        c0, t0 = _cpu(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    mid = len(walls) // 2
    return sorted(walls)[mid], sorted(cpus)[mid], out


def rate_line(label: str, n: int, wall: float, cpu: float, what: str = "rows") -> str:
    """One stage: seconds and rates by wall time and per CPU second."""
    return (f"  {label:<44s} wall {wall:6.2f} s {n / wall:11,.0f} {what}/s | "
            f"cpu {cpu:6.2f} s {n / max(cpu, 1e-9):11,.0f} {what}/cpu-s")


def _read(path: Path) -> pa.Table:
    return read_csv(path, TASK_EVENTS, Rejects(ImportReport("bench")))


def bench(copies: int, repeat: int = 1) -> list[str]:
    """Run the measurements (each import ``repeat`` times, medians); returns the printed lines."""
    with tempfile.TemporaryDirectory() as d:
        gz = Path(d) / "task_events.csv.gz"
        n = make_input(gz, copies)
        plain = Path(d) / "task_events.csv"
        plain.write_bytes(gzip.decompress(gz.read_bytes()))
        _read(plain)  # not timed: the first read also starts Arrow's thread pool and allocator
        read_gz = timed(lambda: _read(gz), repeat)
        read_plain = timed(lambda: _read(plain), repeat)
        imp_gz = timed(lambda: import_google2011([str(gz)])[0], repeat)
        imp_plain = timed(lambda: import_google2011([str(plain)])[0], repeat)
        bare = timed(lambda: import_google2011([str(plain)], params=Params(rules=()))[0], repeat)
        table = imp_gz[2]
        w_wall, w_cpu, _ = timed(lambda: write_trace(table, Path(d) / "out.parquet"))
    med = f"median of {max(repeat, 1)}"
    lines = [f"google2011 task_events rows: {n:,} (excerpt x{copies}); events out: {table.num_rows:,}; {med}",
             rate_line("csv read (gzip)", n, *read_gz[:2]),
             rate_line("csv read (uncompressed)", n, *read_plain[:2]),
             rate_line("import (gzip, default rules)", n, *imp_gz[:2]),
             rate_line("import (uncompressed, default rules)", n, *imp_plain[:2]),
             rate_line("import (uncompressed, no sharing rules)", n, *bare[:2])]
    for label, read, imp in (("gzip", read_gz, imp_gz), ("uncompressed", read_plain, imp_plain)):
        lines.append(f"  csv parsing share of the import ({label}): wall {read[0] / imp[0]:4.0%},"
                     f" cpu {read[1] / imp[1]:4.0%}; the rest (pairing + events) {n / max(imp[1] - read[1], 1e-9):,.0f}"
                     f" rows/cpu-s")
    lines.append(rate_line("write (Parquet)", table.num_rows, w_wall, w_cpu, "events"))
    lines.append(f"  string gather: {take_build.describe()}; {table.column(0).num_chunks} chunk(s) of events")
    lines.append(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return lines


def import_once(path: str) -> str:
    """One default import of ``path`` in this (fresh) process, as the CLI does it: one line of figures.

    A fresh process pays for every page it touches for the first time, which the
    in-process medians above hide; time it from outside (``farm-bench``) too.
    """
    wall, cpu, table = timed(lambda: import_google2011([path])[0])
    return (f"import {path}: {table.num_rows:,} events; wall {wall:.2f} s, cpu {cpu:.2f} s, "
            f"peak rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB")


def in_process(path: str, repeat: int) -> str:
    """``repeat`` default imports of ``path`` in this process, after one untimed CSV read (Arrow's
    thread pool and allocator started): one line with the first import (which also pays for its
    fresh pages) and the min and median of the later ones (warm memory), wall and CPU seconds."""
    _read(Path(path))
    runs = []
    for _ in range(max(repeat, 2)):
        flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        wall, cpu, table = timed(lambda: import_google2011([path])[0])
        runs.append((wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt))
        del table
    (w0, c0, f0), warm = runs[0], runs[1:]
    walls, cpus = sorted(r[0] for r in warm), sorted(r[1] for r in warm)
    return (f"import {path} in one process: first wall {w0:.2f} s, cpu {c0:.2f} s, {f0:,} page faults; "
            f"the next {len(warm)}: wall min {walls[0]:.2f} median {walls[len(warm) // 2]:.2f} s, "
            f"cpu min {cpus[0]:.2f} median {cpus[len(warm) // 2]:.2f} s; "
            f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    """CLI entry: print the benchmark lines (or write the input, or time one import)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each stage (medians are printed)")
    ap.add_argument("--write-input", metavar="PATH.csv.gz",
                    help="only write the replicated input (gzip, and PATH without .gz uncompressed), then exit")
    ap.add_argument("--import-once", metavar="PATH", help="only import PATH once and print its figures")
    ap.add_argument("--in-process", metavar="PATH",
                    help="only import PATH --repeat times (at least 2) in this process: the first and the warm ones")
    args = ap.parse_args()
    if args.write_input:
        gz = Path(args.write_input)
        n = make_input(gz, args.copies)
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        print(f"{n:,} rows -> {gz} and {gz.with_suffix('')}")
        return
    if args.import_once:
        print(import_once(args.import_once))
        return
    if args.in_process:
        print(in_process(args.in_process, args.repeat))
        return
    for line in bench(args.copies, args.repeat):
        print(line)


if __name__ == "__main__":
    main()
