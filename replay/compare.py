"""``python -m replay.compare DIR``: one comparison table and plots from a sweep (or one run).

In: a directory holding run outputs at any depth (a Hydra multirun dir ``<date>/<time>/`` with
jobs ``0/ 1/ ...``, or a single run dir): every ``summaries/policy=<p>/seed=<s>/summary.json``
and the fleet timeline beside it (``fleet/policy=<p>/seed=<s>/``). Out: ``comparison.md`` (per
policy: the number of seeds and each headline number as its mean over seeds with the spread,
``mean (min–max)``), ``comparison.json`` (per policy ``{"mean", "min", "max"}`` per number --
min and max of integer counts stay integers -- plus the per-seed rows), and
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
from replay.outputs import SUMMARIES, headline_keys, markdown_table, partition_files
from replay.shard import Samples
from traces.io import atomic_write_text


def find_runs(root: str) -> dict[tuple[str, int], Path]:
    """(policy, seed) -> the run directory holding it, the first in path order when a pair repeats."""
    found: dict[tuple[str, int], Path] = {}
    for p in sorted(Path(root).rglob("summary.json")):
        pol, seed, top = p.parent.parent.name, p.parent.name, p.parent.parent.parent
        if pol.startswith("policy=") and seed.startswith("seed=") and top.name == SUMMARIES:
            found.setdefault((pol[7:], int(seed[5:])), top.parent)
    return found


def _fleet_file(run_dir: Path, policy: str, seed: int) -> Path:
    return Path(run_dir, partition_files(policy, seed)["fleet.parquet"])


def mean_timeline(paths: list[Path]) -> Samples:
    """Fleet timelines (files) of several seeds averaged per sample time (times present in all)."""
    tables = [pq.read_table(p).to_pydict() for p in paths]
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
    return {p: mean_timeline([_fleet_file(Path(run_dir), p, s) for s in seeds]) for p in policies}


def aggregate(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per policy (first-seen order): ``seeds`` and, per numeric headline value, its
    ``{"mean", "min", "max"}`` over seeds (the mean of integers that is whole is an integer)."""
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        by_policy.setdefault(s["policy"], []).append(s)
    rows = []
    for policy, group in by_policy.items():
        row: dict[str, Any] = {"policy": policy, "seeds": len(group)}
        for k in headline_keys(group):
            vals = [g[k] for g in group if isinstance(g.get(k), (int, float)) and not isinstance(g.get(k), bool)]
            if len(vals) == len(group) and k not in ("policy", "seed"):
                row[k] = spread(vals)
        rows.append(row)
    return rows


def spread(vals: list[int | float]) -> dict[str, int | float]:
    """Mean, min and max of ``vals``; integers stay integers (a mean only when it is whole)."""
    mean = sum(vals) / len(vals)
    if all(isinstance(v, int) for v in vals) and mean == int(mean):
        mean = int(mean)
    return {"mean": mean, "min": min(vals), "max": max(vals)}


def compare(root: str, out: str | None = None, plots: bool = True) -> list[dict[str, Any]]:
    """Write the comparison of every run under ``root``; returns the per-policy rows."""
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"{root}: no {SUMMARIES}/policy=*/seed=*/summary.json found")
    out_dir = Path(out or root)
    summaries = [json.loads(Path(d, partition_files(p, s)["summary.json"]).read_text()) for (p, s), d in runs.items()]
    rows = aggregate(summaries)
    keys = ["policy", "seeds"] + [k for k in headline_keys(summaries) if k not in ("policy", "seed")]
    atomic_write_text(out_dir / "comparison.md", "# memcg-replay comparison\n\n" + markdown_table(rows, keys))
    atomic_write_text(out_dir / "comparison.json",
                      json.dumps({"policies": rows, "runs": summaries}, indent=2, sort_keys=True))
    if plots:
        from replay.plots import plot_all

        seeds: dict[str, list[Path]] = {}
        for (policy, seed), d in runs.items():
            seeds.setdefault(policy, []).append(_fleet_file(d, policy, seed))
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
