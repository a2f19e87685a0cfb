"""`python -m traces generate --preset NAME [--FIELD VALUE ...] --seed K --out FILE`.

In: a preset of ``traces.generate.PRESETS`` and overrides, one option per
``SynthParams`` field (``--duration-s 600``, ``--swap-bytes 0``, ...). Out:
the trace written atomically to FILE (Parquet or CSV by suffix).
"""

from __future__ import annotations

import argparse
import dataclasses

from traces.generate import PRESETS, SynthParams, generate
from traces.io import write_trace


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `generate` verb with one option per SynthParams field."""
    p = subparsers.add_parser("generate", help="synthesise container churn")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output trace (.parquet, .csv or .csv.gz)")
    for f in dataclasses.fields(SynthParams):
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_field_type(f), default=None,
                       metavar=f.name.upper(), help=_field_help(f.name))
    p.set_defaults(func=run)


def _field_type(f: dataclasses.Field) -> type:
    typ = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool}[str(f.type)]
    return _int if typ is int else typ


def _int(text: str) -> int:
    # sizes are easier to type as 8e9 or 1.5e9; anything that is not a whole number is refused
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    return int(value)


def _field_help(name: str) -> str:
    return f"override the preset's {name} (see traces.generate.SynthParams)"


def params_from_args(args: argparse.Namespace) -> SynthParams:
    """The preset with every option the user gave applied."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(SynthParams)
                 if getattr(args, f.name, None) is not None}
    return dataclasses.replace(PRESETS[args.preset], **overrides)


def run(args: argparse.Namespace) -> int:
    """Generate and write the trace."""
    params = params_from_args(args)
    table = generate(params, args.seed)
    write_trace(table, args.out)
    print(f"{args.out}: {table.num_rows} events, {params.machines} machine(s), seed {args.seed}")
    return 0
