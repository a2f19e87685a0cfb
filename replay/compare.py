"""``python -m replay.compare DIR``: one comparison table and plots from a sweep (or one run).

In: a directory holding run outputs at any depth (a Hydra multirun dir ``<date>/<time>/`` with
jobs ``0/ 1/ ...``, or a single run dir): every ``policy=<p>/seed=<s>/summary.json`` and its
``fleet.parquet``. Out: ``comparison.md`` (per policy: the mean over seeds of each headline
number, and the number of seeds), ``comparison.json`` (the same plus per-seed rows), and
``zombies.png``/``cost.png``/``holders.png`` with each policy's fleet timeline averaged over
seeds — all written atomically into DIR (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from replay.columns import TIME
from replay.outputs import headline_keys, markdown_table, partition_dir
from replay.shard import Samples
from traces.io import atomic_write_text


def find_runs(root: str) -> dict[tuple[str, int], Path]:
    """(policy, seed) -> partition directory, first one in path order when a pair repeats."""
    found: dict[tuple[str, int], Path] = {}
    for p in sorted(Path(root).rglob("summary.json")):
        pol, seed = p.parent.parent.name, p.parent.name
        if pol.startswith("policy=") and seed.startswith("seed="):
            found.setdefault((pol[7:], int(seed[5:])), p.parent)
    return found


def mean_timeline(paths: list[Path]) -> Samples:
    """Fleet timelines of several seeds averaged per sample time (times present in all)."""
    tables = [pq.read_table(p / "fleet.parquet").to_pydict() for p in paths]
    common = set(tables[0][TIME])
    for t in tables[1:]:
        common &= set(t[TIME])
    times = np.array(sorted(common), dtype=np.int64)
    out: Samples = {TIME: times}
    for k in tables[0]:
        if k == TIME:
            continue
        rows = [np.asarray(t[k], dtype=float)[np.isin(np.asarray(t[TIME]), times)] for t in tables]
        out[k] = np.mean(rows, axis=0)
    return out


def fleet_timelines(run_dir: str, policies: list[str], seeds: list[int]) -> dict[str, Samples]:
    """Per policy, its fleet timeline averaged over ``seeds`` (from one run directory)."""
    return {p: mean_timeline([Path(run_dir, partition_dir(p, s)) for s in seeds]) for p in policies}


def aggregate(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per policy (first-seen order): numeric headline values averaged over seeds."""
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        by_policy.setdefault(s["policy"], []).append(s)
    rows = []
    for policy, group in by_policy.items():
        row: dict[str, Any] = {"policy": policy, "seeds": len(group)}
        for k in headline_keys(group):
            vals = [g[k] for g in group if isinstance(g.get(k), (int, float)) and k != "seed"]
            if len(vals) == len(group) and k not in ("policy", "seed"):
                row[k] = float(np.mean(vals)) if len(group) > 1 else vals[0]
        rows.append(row)
    return rows


def compare(root: str, out: str | None = None, plots: bool = True) -> list[dict[str, Any]]:
    """Write the comparison of every run under ``root``; returns the per-policy rows."""
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"{root}: no policy=*/seed=*/summary.json found")
    out_dir = Path(out or root)
    summaries = [json.loads((d / "summary.json").read_text()) for d in runs.values()]
    rows = aggregate(summaries)
    keys = ["policy", "seeds"] + [k for k in headline_keys(summaries) if k not in ("policy", "seed")]
    atomic_write_text(out_dir / "comparison.md", "# memcg-replay comparison\n\n" + markdown_table(rows, keys))
    atomic_write_text(out_dir / "comparison.json",
                      json.dumps({"policies": rows, "runs": summaries}, indent=2, sort_keys=True))
    if plots:
        from replay.plots import plot_all

        seeds: dict[str, list[Path]] = {}
        for (policy, _), d in runs.items():
            seeds.setdefault(policy, []).append(d)
        plot_all({p: mean_timeline(ds) for p, ds in seeds.items()}, str(out_dir))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m replay.compare DIR [--out OUT] [--no-plots]``."""
    ap = argparse.ArgumentParser(prog="python -m replay.compare", description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="multirun directory (or a single run directory)")
    ap.add_argument("--out", help="where to write comparison.* and plots (default: DIR)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    try:
        rows = compare(args.dir, args.out, plots=not args.no_plots)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    keys = ["policy", "seeds"] + [k for k in rows[0] if k not in ("policy", "seeds")]
    sys.stdout.write(markdown_table(rows, keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
