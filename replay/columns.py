"""Every column of every output table, documented once; renders ``docs/output-columns.md``.

In: ``core.metrics.SAMPLE_COLUMNS`` and ``JOB_COLUMNS`` (the model's own documentation of what
it samples and of its per-job rows). Out: the column lists and documentation of the outputs written by
``replay.outputs`` — the ``machines`` (per-machine timeline), ``fleet`` (fleet timeline) and
``jobs`` (per-job table) datasets, ``summary.json`` — and ``render_markdown()``.
``python -m replay.columns`` writes the Markdown file; a test checks it is current.
"""

from __future__ import annotations

import sys

from core.metrics import JOB_COLUMNS as MODEL_JOB_COLUMNS
from core.metrics import SAMPLE_COLUMNS

TIME = "time_us"  #: sample time column shared by the model's samples and the timelines
ZOMBIES = "memcgs_dying"  #: the model's per-machine zombie count column
COST = "cost_dying_bytes"  #: memory the zombies' own structures cost (percpu + slab)
PERCPU = "percpu_dying_bytes"  #: the percpu part of COST
#: what holds zombies (a zombie counts under every reason that holds it)
HOLDERS: tuple[str, ...] = tuple(k for k in SAMPLE_COLUMNS if k.startswith("held_"))

#: what a policy breaks, shown beside its zombies: OOM kills (memcg, machine-wide, and those its
#: own charges caused), charges refused, and job memory that depends on the neighbours (bytes
#: charged to a memcg that did not instantiate them: first touch, refaults, recharges)
SIDE_EFFECTS: tuple[str, ...] = ("oom_kills", "global_oom_kills", "policy_oom_kills", "charge_failed",
                                 "misattributed_bytes")

#: fleet percentile columns of the per-machine zombie count (nearest rank over machines)
FLEET_PERCENTILES: dict[str, float] = {
    "zombies_p50": 50.0, "zombies_p90": 90.0, "zombies_p99": 99.0, "zombies_max": 100.0,
}

PARTITION_COLUMNS: dict[str, str] = {
    "policy": "Policy replayed (`core.policy.make_policy` name); a hive partition `policy=<name>/`.",
    "seed": "Run seed (`seed=`); a hive partition `seed=<n>/`.",
}

MACHINE_EXTRA: dict[str, str] = {
    "machine": "Machine id from the trace.",
}

FLEET_EXTRA: dict[str, str] = {
    TIME: "Simulated sample time, microseconds since the trace start.",
    "machines": "Number of machines sampled at this time.",
    **{k: f"The {v:g}th percentile (nearest rank) over machines of `{ZOMBIES}` at this time."
       for k, v in FLEET_PERCENTILES.items() if v < 100},
    "zombies_max": f"The largest `{ZOMBIES}` of any machine at this time.",
}

JOB_COLUMNS: dict[str, str] = {"machine": "Machine id from the trace.", **MODEL_JOB_COLUMNS}

SUMMARY_EXTRA: dict[str, str] = {
    "policy": "Policy replayed.",
    "seed": "Run seed.",
    "machines": "Machines replayed.",
    "events": "Trace events applied.",
    "zombies_final": f"Fleet total of `{ZOMBIES}` at the last sample.",
    "zombies_peak": f"Largest fleet total of `{ZOMBIES}` over the run.",
    "zombies_per_machine_p50": f"Median over machines of `{ZOMBIES}` at the last sample.",
    "zombies_per_machine_p99": f"99th percentile (nearest rank) over machines of `{ZOMBIES}` at the last sample.",
    "zombies_per_machine_max": f"Largest `{ZOMBIES}` of any machine at the last sample.",
}

#: model columns (samples and end-of-run summary) that are not fleet sums, and how they combine
#: over machines: "max", "first" (same on every machine) or "drop" (no fleet meaning)
NOT_SUMMED: dict[str, str] = {
    TIME: "max", "zombie_age_max_s": "max", "zombie_age_p50_s": "drop",
    "memcg_cost_bytes": "first", "memcg_percpu_bytes": "first",
}
MODEL_SUMMARY_EXTRA: dict[str, str] = {
    "memcg_cost_bytes": "bytes one memcg costs on these machines (cost model, KERNEL-MODEL §3)",
    "memcg_percpu_bytes": "percpu part of memcg_cost_bytes",
}


def machine_columns() -> dict[str, str]:
    """Columns of ``machines.parquet``: machine id then the model's sample columns."""
    return {**MACHINE_EXTRA, **dict(SAMPLE_COLUMNS)}


def fleet_columns() -> dict[str, str]:
    """Columns of ``fleet.parquet``: per-time sums of the sample columns plus percentiles."""
    out = {TIME: FLEET_EXTRA[TIME], "machines": FLEET_EXTRA["machines"]}
    for k, doc in SAMPLE_COLUMNS.items():
        how = NOT_SUMMED.get(k, "sum")
        if k == TIME or how == "drop":
            continue
        out[k] = f"Sum over machines of: {doc}" if how == "sum" else f"Largest over machines of: {doc}"
    out.update({k: FLEET_EXTRA[k] for k in FLEET_PERCENTILES})
    return out


def summary_keys() -> dict[str, str]:
    """Keys of each policy's ``summary.json``: run facts, then the model's end-of-run summary."""
    out = dict(SUMMARY_EXTRA)
    model = {**SAMPLE_COLUMNS, **MODEL_SUMMARY_EXTRA}
    for k, doc in model.items():
        how = NOT_SUMMED.get(k, "sum")
        if how == "sum":
            out[k] = f"Fleet total at the end of: {doc}"
        elif how == "max":
            out[k] = f"Largest over machines at the end of: {doc}"
        elif how == "first":
            out[k] = f"Same on every machine: {doc}"
    return out


def _table(title: str, file: str, cols: dict[str, str]) -> list[str]:
    lines = [f"## {title} (`{file}`)", "", "| column | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in cols.items()]
    return lines + [""]


def render_markdown() -> str:
    """``docs/output-columns.md``: every output column and summary key with its meaning."""
    lines = [
        "# Output columns", "",
        "Generated from `replay/columns.py` and `core/metrics.py` by `python -m replay.columns`; "
        "do not edit by hand.", "",
        "A run directory holds `summary.json`, `summary.md`, PNG plots, one Parquet dataset per "
        "table — `machines/`, `fleet/`, `jobs/`, each partitioned `policy=<p>/seed=<s>/part-0.parquet` "
        "(hive) and holding nothing else, so `pd.read_parquet(<run>/machines)` reads every policy and "
        "seed — and `summaries/policy=<p>/seed=<s>/summary.json`.", "",
    ]
    lines += _table("Partition columns", "<table>/policy=*/seed=*/", PARTITION_COLUMNS)
    lines += _table("Per-machine timeline", "machines/", machine_columns())
    lines += _table("Fleet timeline", "fleet/", fleet_columns())
    lines += _table("Per-job table", "jobs/", JOB_COLUMNS)
    lines += _table("Summary", "summaries/policy=*/seed=*/summary.json", summary_keys())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the Markdown to the path given (default ``docs/output-columns.md``)."""
    from traces.io import atomic_write_text

    path = (argv if argv is not None else sys.argv[1:]) or ["docs/output-columns.md"]
    atomic_write_text(path[0], render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
