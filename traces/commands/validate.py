"""`python -m traces validate FILE...`: report every problem of each trace.

In: trace files (Parquet, CSV, CSV.gz). Out: one line per problem
(``FILE:ROW: CODE field: message``, capped per file by ``--max-problems``
with a count of the rest) and exit status 1 if any file has a problem;
otherwise a one-line OK summary per file and status 0.
"""

from __future__ import annotations

import argparse
import sys

import pyarrow.compute as pc

from traces.io import conform, open_raw
from traces.problems import format_problems
from traces.validate import validate_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `validate` verb."""
    p = subparsers.add_parser("validate", help="check trace files; exit 1 if any problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--max-problems", type=int, default=100, help="problems printed per file (default 100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate each file; 1 if any has a problem."""
    status = 0
    for path in args.files:
        ok = _check(path, args.max_problems)
        status = status or (0 if ok else 1)
    return status


def _check(path: str, max_problems: int) -> bool:
    raw, problems = open_raw(path)  # an unreadable file is one S106 problem, reported like any other
    if raw is not None:
        problems = validate_table(raw, path)
    if problems:
        print(format_problems(problems, max_problems))
        print(f"{path}: INVALID: {len(problems)} problem(s)", file=sys.stderr)
        return False
    table, _ = conform(raw, path)
    machines = len(pc.unique(table.column("machine")))
    print(f"{path}: OK: {table.num_rows} events, {machines} machine(s)")
    return True
