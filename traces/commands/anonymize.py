"""`python -m traces anonymize IN --out OUT [--key-file F | --key-env VAR]`.

In: a native trace and a secret key (file or environment variable; never
written out or printed). Out: the trace with machine ids, cgroup path
components, task ids and object names replaced by keyed HMAC-SHA256 tokens,
optionally with times floored to ``--time-quantum-us`` and sizes rounded up to
``--bytes-quantum``. Exit status 0, 1 for an invalid input, 2 for a missing key.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import TraceError
from traces.anonymize import DEFAULT_KEY_ENV, Anonymizer, anonymize_table, load_key
from traces.importers.sharing import parse_size


def add_key_arguments(p: argparse.ArgumentParser) -> None:
    """--key-file / --key-env, shared with `record`."""
    p.add_argument("--key-file", help="file holding the secret key (at least 16 bytes)")
    p.add_argument("--key-env", default=DEFAULT_KEY_ENV, help=f"environment variable with the key (default {DEFAULT_KEY_ENV})")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `anonymize` verb."""
    p = subparsers.add_parser("anonymize", help="replace names with keyed HMAC tokens")
    p.add_argument("input", metavar="IN")
    p.add_argument("--out", required=True)
    add_key_arguments(p)
    p.add_argument("--time-quantum-us", type=int, default=None, help="floor times to a multiple of this")
    p.add_argument("--bytes-quantum", default=None, help="round sizes up (offsets down) to a multiple, e.g. 1MiB")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from traces.io import read_trace, write_trace
    try:
        key = load_key(args.key_file, args.key_env)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        table = read_trace(args.input)
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    quantum = parse_size(args.bytes_quantum) if args.bytes_quantum else None
    out = anonymize_table(table, Anonymizer(key), args.time_quantum_us, quantum)
    write_trace(out, args.out)
    print(f"{args.out}: {out.num_rows} events anonymised")
    return 0
