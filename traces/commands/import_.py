"""`python -m traces import` (placeholder until the implementation lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `import` verb."""
    p = subparsers.add_parser("import", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 2)
