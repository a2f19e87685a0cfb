"""`python -m traces transform` (placeholder until the implementation lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `transform` verb."""
    p = subparsers.add_parser("transform", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 2)
