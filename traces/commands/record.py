"""`python -m traces record --root /sys/fs/cgroup/SUBTREE --out OUT [--interval S] [--count N | --duration S]`.

In: a cgroup v2 hierarchy (read only; nothing is ever written below the root)
and, with ``--anonymize``, a key (``--key-file`` / ``--key-env``). Out: the
native trace ``OUT`` and the raw readings ``OUT.samples.parquet`` (swap and
nr_dying_descendants included), both anonymised on the fly when asked: no
original name reaches the disk. Ctrl-C stops recording and still writes.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys

import pyarrow.parquet as pq

from traces.commands.anonymize import add_key_arguments
from traces.importers.common import atomic_write_bytes
from traces.importers.emit import ProfileParams
from traces.importers.sharing import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `record` verb."""
    p = subparsers.add_parser("record", help="record a live cgroup v2 hierarchy into a native trace")
    p.add_argument("--root", default="/sys/fs/cgroup", help="cgroup v2 directory to poll (read only)")
    p.add_argument("--out", required=True)
    p.add_argument("--machine", default=None, help="machine id (default: host name)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--count", type=int, help="number of polls")
    g.add_argument("--duration", type=float, help="seconds to record")
    p.add_argument("--min-change", default="1MiB", help="smallest memory change turned into an event")
    p.add_argument("--anonymize", action="store_true", help="replace names with keyed tokens before writing")
    add_key_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from traces.anonymize import Anonymizer, load_key
    from traces.io import write_trace
    from traces.record import anonymized, record, root_problem
    problem = root_problem(args.root)
    if problem:  # before any poll: a wrong root would give an empty or meaningless trace
        print(f"error: {problem}", file=sys.stderr)
        return 2
    anon = None
    if args.anonymize:
        try:
            anon = Anonymizer(load_key(args.key_file, args.key_env))
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    progress = lambda i, n: print(f"poll {i}: {n} cgroups", file=sys.stderr, flush=True)  # noqa: E731
    rec = record(args.root, args.machine or socket.gethostname(), args.interval, args.count, args.duration,
                 on_poll=progress)
    table, report = rec.trace(ProfileParams(min_change_bytes=parse_size(args.min_change)))
    table, samples = anonymized(rec, table, anon)
    write_trace(table, args.out)
    _write_parquet(samples, f"{args.out}.samples.parquet")
    shutil.copymode(args.out, f"{args.out}.samples.parquet")  # the sidecar is as readable as the trace
    print(f"{args.out}: {rec.polls} polls, {report.cgroups} cgroups, {table.num_rows} events")
    return 0


def _write_parquet(table, path: str) -> None:
    import io
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())
