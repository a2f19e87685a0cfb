"""`python -m traces schema --markdown [--out FILE]`: the trace reference.

In: nothing (the schema, op and rule tables in code). Out: Markdown on stdout
or written atomically to FILE; ``docs/trace-schema.md`` is this output.
"""

from __future__ import annotations

import argparse
import sys

from traces.io import atomic_write_text
from traces.schema import render_markdown
from traces.validate import render_rules_markdown


def render() -> str:
    """The full reference: columns, ops and flags, then the validation rules."""
    return render_markdown() + "\n" + render_rules_markdown()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `schema` verb."""
    p = subparsers.add_parser("schema", help="print the trace schema reference")
    p.add_argument("--markdown", action="store_true", help="Markdown output (the only format so far)")
    p.add_argument("--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print or write the reference."""
    text = render()
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
