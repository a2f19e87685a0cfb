"""Golden check for optimisations of the model: results must stay bit-identical.

In: ``write`` or ``check`` and a directory (default ``.golden/``, git-ignored). Out: ``write``
replays nine fixed synthetic traces under several policies and kernels and stores every sample
column, the job table and the summary; ``check`` replays them again with the current code and
prints every difference (exit 1) or IDENTICAL (exit 0). Write on the reference code, change, check.

    python scripts/golden_check.py write [--dir .golden]
    python scripts/golden_check.py check [--dir .golden]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
from pathlib import Path

import numpy as np

from core.machine import Machine, MachineConfig
from core.policy import make_policy
from traces.batches import machine_batches
from traces.generate import PRESETS, generate_machine

CASES = [("default", 0, "none"), ("default", 1, "reparent"), ("default", 2, "recharge_async_walk+swap_walk"),
         ("default", 3, "smemcg"), ("default", 4, "zombie_reaper"), ("tiny", 5, "recharge_mapper"),
         ("tiny", 6, "manual_reclaim"), ("tiny", 7, "recharge_deferred"), ("tiny", 8, "recharge_evict")]


def replay(preset: str, seed: int, policy: str) -> dict:
    """One machine of ``preset`` (at most 2 simulated hours) replayed in 5,000-event batches."""
    params = dataclasses.replace(PRESETS[preset], duration_s=min(PRESETS[preset].duration_s, 7200.0))
    table = generate_machine(params, seed, 0)
    cfg = MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes,
                        kernel="6.1" if seed % 2 else "6.12")
    m = Machine(cfg, make_policy(policy), machine_id="m-0000", seed=seed)
    for _, batch in machine_batches(table, max_rows=5000):
        m.apply(batch)
    m.advance_to(int(params.duration_s * 1e6))
    return {"samples": m.take_samples(), "jobs": m.job_table(), "summary": m.summary()}


def differences(ref: dict, out: dict) -> list[str]:
    """Names of what differs between two replays' results."""
    bad = [f"sample column {k}" for k in ref["samples"] if not np.array_equal(ref["samples"][k], out["samples"][k])]
    bad += [what for what in ("jobs", "summary") if ref[what] != out[what]]
    return bad


def main(argv: list[str] | None = None) -> int:
    """Write or check every case; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("write", "check"))
    ap.add_argument("--dir", default=".golden")
    args = ap.parse_args(argv)
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    bad = 0
    for case in CASES:
        path = root / ("-".join(map(str, case)).replace("+", "_") + ".pkl")
        out = replay(*case)
        if args.mode == "write":
            path.write_bytes(pickle.dumps(out))
            continue
        for what in differences(pickle.loads(path.read_bytes()), out):
            print(f"{case}: {what} differs")
            bad += 1
    print("written" if args.mode == "write" else ("IDENTICAL" if not bad else f"{bad} DIFFERENCES"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
