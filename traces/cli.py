"""`python -m traces VERB ...`: the trace command line.

In: argv. Out: an exit status (0 ok, 1 the input has problems, 2 usage error).
Each verb lives in its own module under ``traces.commands`` exposing
``register(subparsers) -> None`` (which sets ``func`` on its parser); this file
only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import TraceError

COMMAND_MODULES: tuple[str, ...] = (
    "traces.commands.schema",
    "traces.commands.validate",
    "traces.commands.generate",
    "traces.commands.info",
    "traces.commands.import_",
    "traces.commands.transform",
    "traces.commands.anonymize",
    "traces.commands.record",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every verb registered."""
    parser = argparse.ArgumentParser(prog="python -m traces", description="memcg-replay trace tools")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse argv and run the chosen verb; returns its exit status.

    A bad input trace (``core.errors.TraceError``: file, row, field) is one ``error:`` line on
    stderr and status 1, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
