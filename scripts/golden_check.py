"""Golden check for optimisations of the model: results must stay bit-identical.

Two sets of cases:

- ``full`` (default): nine fixed synthetic traces (two simulated hours of ``default`` or the
  whole ``tiny`` preset) under several policies and kernels. ``write`` stores every sample
  column, the job table and the summary as pickles in a git-ignored directory (default
  ``.golden/``); ``check`` replays them with the current code and prints every difference.
  Write on the reference code, change, check.
- ``committed``: the same nine policy/kernel cases on 15 (``default``) or 10 (``tiny``)
  simulated minutes, stored as small JSON digests in ``tests/data/goldens/`` (the summary in
  full, a SHA-256 per sample column and of the job table). ``tests/test_goldens.py`` checks
  them in every default test run; ``write --set committed`` refreshes them after a change
  that is meant to change results (say why in the commit).

Out: every difference (exit 1) or IDENTICAL (exit 0).

    python scripts/golden_check.py write [--dir .golden]
    python scripts/golden_check.py check [--dir .golden]
    python scripts/golden_check.py check --set committed
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
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
FULL_S = 7200.0
#: simulated seconds of the committed goldens, per preset (small enough for every test run)
COMMITTED_S = {"default": 900.0, "tiny": 600.0}
COMMITTED_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "goldens"


def replay(preset: str, seed: int, policy: str, duration_s: float = FULL_S) -> dict:
    """One machine of ``preset`` (at most ``duration_s`` simulated seconds) replayed in 5,000-event batches."""
    params = dataclasses.replace(PRESETS[preset], duration_s=min(PRESETS[preset].duration_s, duration_s))
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


def digest(out: dict) -> dict:
    """A small JSON-able fingerprint of a replay: the summary, and SHA-256s of each sample column and the jobs."""
    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    return {
        "summary": out["summary"],
        "samples": {k: sha(np.ascontiguousarray(v).tobytes()) for k, v in sorted(out["samples"].items())},
        "sample_rows": int(len(out["samples"]["time_us"])),
        "jobs": sha(json.dumps(out["jobs"], sort_keys=True).encode()),
        "job_rows": len(out["jobs"]["cgroup"]),
    }


def digest_differences(ref: dict, new: dict) -> list[str]:
    """What differs between two digests, readable: summary keys with both values, sample columns, jobs."""
    bad = [f"summary {k}: {ref['summary'].get(k)} -> {new['summary'].get(k)}"
           for k in sorted(set(ref["summary"]) | set(new["summary"])) if ref["summary"].get(k) != new["summary"].get(k)]
    bad += [f"sample column {k}" for k in sorted(set(ref["samples"]) | set(new["samples"]))
            if ref["samples"].get(k) != new["samples"].get(k)]
    bad += [what for what in ("sample_rows", "jobs", "job_rows") if ref[what] != new[what]]
    return bad


def case_name(case: tuple) -> str:
    """File stem of a case: ``preset-seed-policy`` (``+`` as ``_``)."""
    return "-".join(map(str, case)).replace("+", "_")


def check_committed(case: tuple, root: Path = COMMITTED_DIR) -> list[str]:
    """Replay one committed case and compare it with its JSON digest."""
    ref = json.loads((root / f"{case_name(case)}.json").read_text())
    return digest_differences(ref, digest(replay(*case, duration_s=COMMITTED_S[case[0]])))


def main(argv: list[str] | None = None) -> int:
    """Write or check every case of a set; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("write", "check"))
    ap.add_argument("--set", dest="which", choices=("full", "committed"), default="full")
    ap.add_argument("--dir", help="default .golden (full) or tests/data/goldens (committed)")
    args = ap.parse_args(argv)
    committed = args.which == "committed"
    root = Path(args.dir) if args.dir else (COMMITTED_DIR if committed else Path(".golden"))
    root.mkdir(parents=True, exist_ok=True)
    bad = 0
    for case in CASES:
        if committed:
            path = root / f"{case_name(case)}.json"
            if args.mode == "write":
                text = json.dumps(digest(replay(*case, duration_s=COMMITTED_S[case[0]])), indent=1, sort_keys=True)
                path.write_text(text + "\n")
                continue
            found = check_committed(case, root)
        else:
            path = root / f"{case_name(case)}.pkl"
            out = replay(*case)
            if args.mode == "write":
                path.write_bytes(pickle.dumps(out))
                continue
            found = differences(pickle.loads(path.read_bytes()), out)
        for what in found:
            print(f"{case}: {what} differs")
            bad += 1
    print("written" if args.mode == "write" else ("IDENTICAL" if not bad else f"{bad} DIFFERENCES"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
