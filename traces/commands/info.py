"""`python -m traces info FILE`: what a trace contains.

In: a trace file. Out: a short report on stdout -- machines, tasks, cgroups,
objects, events, time span and a histogram of ops.
"""

from __future__ import annotations

import argparse

import pyarrow as pa
import pyarrow.compute as pc

from traces.io import read_trace


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` verb."""
    p = subparsers.add_parser("info", help="summarise a trace")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=run)


def summarize(table: pa.Table) -> dict:
    """Counts of a trace: names are counted per machine (they are machine-scoped)."""
    times = table.column("time_us")
    ops = pc.value_counts(table.column("op")).to_pylist()
    return {
        "events": table.num_rows,
        "machines": len(pc.unique(table.column("machine"))),
        "tasks": _scoped_unique(table, "task"),
        "cgroups": _scoped_unique(table, "cgroup"),
        "objects": _scoped_unique(table, "object"),
        "time_first_us": pc.min(times).as_py(),
        "time_last_us": pc.max(times).as_py(),
        "ops": {d["values"]: d["counts"] for d in sorted(ops, key=lambda d: (-d["counts"], d["values"]))},
    }


def _scoped_unique(table: pa.Table, col: str) -> int:
    # (machine, name) pairs: the same path on two machines is two cgroups
    t = table.select(["machine", col]).filter(pc.is_valid(table.column(col)))
    return t.group_by(["machine", col]).aggregate([]).num_rows


def run(args: argparse.Namespace) -> int:
    """Print the summary of one trace."""
    s = summarize(read_trace(args.file))
    span = ((s["time_last_us"] or 0) - (s["time_first_us"] or 0)) / 1e6
    print(f"{args.file}")
    for key in ("events", "machines", "tasks", "cgroups", "objects"):
        print(f"  {key:9s} {s[key]:>12,}")
    print(f"  {'span':9s} {span:>12,.1f} s  ({s['time_first_us']} .. {s['time_last_us']} us)")
    print("  ops:")
    for op, count in s["ops"].items():
        print(f"    {op:12s} {count:>12,}")
    return 0
