"""Benchmark: Google 2011 task_events import rate (rows/s). Prints, never asserts.

In: the real task_events excerpt (``../shared/traces`` or ``tests/data``), replicated
``--copies`` times into one gzipped CSV in a temp dir (each copy shifted in time
and given distinct job ids, so the lifecycles stay realistic). Out: lines on
stdout: rows, seconds and rows/s for the CSV read alone, for the whole import
(read + pairing + event emission) and for writing the Parquet trace.

Run: ``python scripts/bench_import.py [--copies 50] [--repeat 3]`` (target: >= 1M rows/s).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from traces.importers.common import ImportReport, Rejects, read_csv  # noqa: E402
from traces.importers.google2011 import TASK_EVENTS, Params, import_google2011  # noqa: E402
from traces.io import write_trace  # noqa: E402

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


def _median_import(path: str, repeat: int) -> tuple[float, "pa.Table"]:
    """Median seconds of ``repeat`` default imports of ``path`` (the machine is shared, so one run is noisy)."""
    times = []
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        table, _, _ = import_google2011([path])
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], table


def bench(copies: int, repeat: int = 1) -> list[str]:
    """Run the measurements (the default import ``repeat`` times, median); returns the printed lines."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "task_events.csv.gz"
        n = make_input(path, copies)
        t0 = time.perf_counter()
        read_csv(path, TASK_EVENTS, Rejects(ImportReport("bench")))
        t_read = time.perf_counter() - t0
        plain = Path(d) / "task_events.csv"
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        t0 = time.perf_counter()
        read_csv(plain, TASK_EVENTS, Rejects(ImportReport("bench")))
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        import_google2011([str(plain)], params=Params(rules=()))
        t_bare = time.perf_counter() - t0
        t_imp, table = _median_import(str(path), repeat)
        t0 = time.perf_counter()
        write_trace(table, Path(d) / "out.parquet")
        t_write = time.perf_counter() - t0
    return [f"google2011 task_events rows: {n:,} (excerpt x{copies}); events out: {table.num_rows:,}",
            f"  csv read   {t_read:6.2f} s  {n / t_read:12,.0f} rows/s  (gzip)",
            f"  csv read   {t_plain:6.2f} s  {n / t_plain:12,.0f} rows/s  (uncompressed)",
            f"  import     {t_bare:6.2f} s  {n / t_bare:12,.0f} rows/s  (uncompressed, no sharing rules)",
            f"  import     {t_imp:6.2f} s  {n / t_imp:12,.0f} rows/s  (gzip, default rules: read + pairing + events;"
            f" median of {max(repeat, 1)})",
            f"  write      {t_write:6.2f} s  {table.num_rows / t_write:12,.0f} events/s (Parquet)"]


def main() -> None:
    """CLI entry: print the benchmark lines."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1, help="default imports to time (the median is printed)")
    args = ap.parse_args()
    for line in bench(args.copies, args.repeat):
        print(line)


if __name__ == "__main__":
    main()
