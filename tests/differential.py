"""Digests of replays, for comparing the two builds of the model (``python -m tests.differential``).

In: lifecycle trace numbers (``tests.lifecycle``) and every policy. Out, on stdout: one JSON object
mapping ``policy/seed`` to the digest (``scripts.golden_check.digest``: summary, SHA-256 of every
sample column and of the job table) of that trace replayed in batches of 7 rows, then advanced two
minutes. ``tests/test_build.py`` runs it under the compiled build and under ``MEMCG_REPLAY_PURE=1``
and requires the two outputs to be equal, byte for byte.

    python -m tests.differential [--seeds 12]
"""

from __future__ import annotations

import argparse
import json
import sys

from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.policy import POLICY_NAMES, make_policy
from scripts.golden_check import digest
from tests.lifecycle import lifecycle_trace, never_made


def replay_digest(policy: str, seed: int) -> dict:
    """Lifecycle trace ``seed`` under ``policy``: its digest (rows a killed task can no longer make skipped)."""
    cfg, rows = lifecycle_trace(seed)
    m = Machine(MachineConfig(**cfg), make_policy(policy), "diff", seed=seed)
    batch: list[tuple] = []
    for row in rows:
        if never_made(m, row):
            continue
        batch.append(row)
        if len(batch) == 7:
            m.apply(EventBatch.from_rows(batch, "diff"))
            batch = []
    if batch:
        m.apply(EventBatch.from_rows(batch, "diff"))
    m.advance_to(rows[-1][0] + 120_000_000)
    return digest({"samples": m.take_samples(), "jobs": m.job_table(), "summary": m.summary()})


def main(argv: list[str] | None = None) -> int:
    """Print the digests of ``--seeds`` traces under every policy as one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12)
    args = ap.parse_args(argv)
    out = {f"{p}/{s}": replay_digest(p, s) for p in POLICY_NAMES for s in range(args.seeds)}
    json.dump(out, sys.stdout, sort_keys=True, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
