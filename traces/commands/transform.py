"""`python -m traces transform {sample,window,shift,scale,concat} IN... --out OUT`.

In: native trace file(s). Out: one native trace written atomically (format by
suffix). Exit status 0, 1 when an input is invalid, 2 on bad arguments. Each
sub-verb calls the function of the same name in ``traces.transforms``.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import TraceError
from traces import transforms


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `transform` verb and its sub-verbs."""
    p = subparsers.add_parser("transform", help="sample machines, cut a window, shift/scale time, concatenate")
    sub = p.add_subparsers(dest="transform", required=True)
    s = _verb(sub, "sample", "keep a deterministic sample of machines")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--fraction", type=float, help="keep each machine whose keyed hash of (seed, id) falls below this fraction (its own "
                        "decision: about this fraction is kept)")
    g.add_argument("--count", type=int, help="keep exactly this many machines: the lowest hashes (a rank cut, so whether a machine is "
                        "kept depends on the others)")
    s.add_argument("--seed", type=int, default=0)
    w = _verb(sub, "window", "events in [start, end); earlier events collapse onto start")
    w.add_argument("--start-us", type=int, default=0)
    w.add_argument("--end-us", type=int, default=None)
    w.add_argument("--shift", action="store_true", help="then shift the result to start at 0")
    _verb(sub, "shift", "shift times so the first event is at 0")
    sc = _verb(sub, "scale", "multiply times by a factor")
    sc.add_argument("--factor", type=float, required=True)
    c = _verb(sub, "concat", "append traces one after another in time", many=True)
    c.add_argument("--gap-us", type=int, default=0)
    c.add_argument("--no-tag", action="store_true", help="do not prefix names with p<i>. (collisions possible)")


def _verb(sub: argparse._SubParsersAction, name: str, text: str, many: bool = False) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text)
    p.add_argument("inputs", nargs="+" if many else 1, metavar="IN")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run)
    return p


def _apply(args: argparse.Namespace, tables: list) -> object:
    t = tables[0]
    if args.transform == "sample":
        return transforms.sample_machines(t, fraction=args.fraction, count=args.count, seed=args.seed)
    if args.transform == "window":
        t = transforms.window(t, args.start_us, args.end_us)
        return transforms.shift_to_zero(t) if args.shift else t
    if args.transform == "shift":
        return transforms.shift_to_zero(t)
    if args.transform == "scale":
        return transforms.scale_time(t, args.factor)
    return transforms.concat(tables, gap_us=args.gap_us, tag_names=not args.no_tag)


def _run(args: argparse.Namespace) -> int:
    from traces.io import read_trace, write_trace
    try:
        tables = [read_trace(p) for p in args.inputs]
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        out = _apply(args, tables)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_trace(out, args.out)
    print(f"{args.out}: {out.num_rows} events")
    return 0
