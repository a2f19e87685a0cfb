"""Benchmark of one machine's model: a synthetic machine-day replayed on one core.

In: a preset of ``traces.generate`` (default ``machine_day``: one machine, 24 h,
about 1.7M events with sharing, limits, swap, global and limit reclaim), a seed, a
policy. Out: printed figures — events/s of the replay alone, peak RSS, the
model's state size per machine (pickled, as a checkpoint would hold it), events per
CPU second (steadier than wall time on a shared box), run
and memcg counts, the reclaim the day caused (passes, evictions, swap-outs, refaults,
memory.max hits, OOM kills), and the top of a profile with ``--profile``. Nothing is asserted.

    python scripts/bench_machine.py [--preset machine_day] [--policy none] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pickle
import pstats
import resource
import time

from core.machine import Machine, MachineConfig
from core.policy import make_policy
from traces.batches import machine_batches
from traces.generate import PRESETS, generate


def run(preset: str, seed: int, policy: str, profile: bool) -> dict:
    """Generate the preset's first machine, replay it, and return the figures."""
    params = PRESETS[preset]
    t0 = time.perf_counter()
    table = generate(params, seed)
    gen_s = time.perf_counter() - t0
    batches = [b for mid, b in machine_batches(table, source=preset) if mid == "m-0000"]
    events = sum(len(b) for b in batches)
    cfg = MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes)
    machine = Machine(cfg, make_policy(policy), machine_id="m-0000", seed=seed)
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for b in batches:
        machine.apply(b)
    machine.advance_to(int(params.duration_s * 1e6))
    if prof:
        prof.disable()
    replay_s = time.perf_counter() - t0
    replay_cpu_s = time.process_time() - c0  # CPU time: less sensitive to other load on the box
    summary = machine.summary()
    # a shard hands samples and freed cgroups' job rows out every round: its checkpoint holds neither
    machine.take_samples()
    machine.take_jobs()
    out = {
        "events": events, "generate_s": gen_s, "replay_s": replay_s, "events_per_s": events / replay_s,
        "replay_cpu_s": replay_cpu_s, "events_per_cpu_s": events / replay_cpu_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_kib": len(pickle.dumps(machine)) / 1024, "runs": len(machine.runs) - len(machine.runs.free), "run_slots": len(machine.runs),
        "memcg_slots": len(machine.mem.path), "zombies": summary["memcgs_dying"],
        "reclaim_passes": summary["reclaim_passes"], "memcgs_visited": summary["memcgs_visited"],
        # the pressure the day put on the machine: a benchmark without reclaim would time the easy path
        "evictions": summary["evictions"], "swapouts": summary["swapouts"], "refaults": summary["refaults"],
        "max_events": summary["max_events"], "oom_kills": summary["oom_kills"],
    }
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        out["profile"] = buf.getvalue()
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run once and print one figure per line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="machine_day", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="none")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.preset, args.seed, args.policy, args.profile)
    prof = res.pop("profile", "")
    for k, v in res.items():
        print(f"{k:16s} {v:,.1f}" if isinstance(v, float) else f"{k:16s} {v:,}")
    if prof:
        print(prof)


if __name__ == "__main__":
    main()
