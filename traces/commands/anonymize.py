"""`python -m traces anonymize` (placeholder until the implementation lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `anonymize` verb."""
    p = subparsers.add_parser("anonymize", help="(not implemented yet)")
    p.set_defaults(func=lambda args: 2)
