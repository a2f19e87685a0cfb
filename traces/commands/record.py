"""`python -m traces record` (placeholder until the implementation lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `record` verb."""
    p = subparsers.add_parser("record", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 2)
