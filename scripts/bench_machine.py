"""Benchmark of one machine's model: a synthetic machine-day replayed on one core.

In: a preset of ``traces.generate`` (default ``machine_day``: one machine, 24 h,
about 1.7M events with sharing, limits, swap, global and limit reclaim), a seed, a
policy. Out: printed figures — events/s of the replay alone, peak RSS, the
model's state size per machine (pickled, as a checkpoint would hold it), events per
CPU second (steadier than wall time on a shared box), run
and memcg counts, the reclaim the day caused (passes, evictions, swap-outs, refaults,
memory.max hits, OOM kills), and the top of a profile with ``--profile``. Nothing is asserted.

``--by-op`` prints instead where the replay's time goes: for every trace op its events, its share
of the time spent in handlers and its mean CPU microseconds per event (each handler call timed with
``process_time_ns``, CPU time as the other figures, which adds about 0.5 us per event to the
replay; the per-op means include it), and the cost of the event loop alone (the same
batches with every handler a no-op: decode, dispatch, clock and queue checks), which bounds the
events per second any handler speed-up can reach.

    python scripts/bench_machine.py [--preset machine_day] [--policy none] [--profile | --by-op] [--events N]

``--events N`` replays only the day's first N events. Counting instructions instead of time (steady
whatever the load on the box; compiled build, the replay alone):

    valgrind --tool=callgrind --toggle-collect='__pyx_pw_4core_7machine_7Machine_*apply' \
        python scripts/bench_machine.py --events 100000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pickle
import pstats
import resource
import time
from collections import defaultdict
from typing import Callable

import core.machine as machine_mod
from core.machine import Machine, MachineConfig
from core.ops import Op
from core.policy import make_policy
from traces.batches import machine_batches
from traces.generate import PRESETS, generate


def _day(preset: str, seed: int, events: int | None = None) -> tuple[list, MachineConfig, int, float]:
    """The preset's first machine as batches (its first ``events`` only, if given), its machine config,
    the day's end in microseconds and the seconds ``generate`` took."""
    params = PRESETS[preset]
    t0 = time.perf_counter()
    table = generate(params, seed)
    gen_s = time.perf_counter() - t0
    batches = [b for mid, b in machine_batches(table, source=preset) if mid == "m-0000"]
    if events is not None:
        kept, left = [], events
        for b in batches:
            if left > 0:
                kept.append(b if len(b) <= left else b.slice(0, left))
                left -= len(kept[-1])
        batches = kept
    cfg = MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes)
    return batches, cfg, int(params.duration_s * 1e6), gen_s


def run(preset: str, seed: int, policy: str, profile: bool, events: int | None = None) -> dict:
    """Generate the preset's first machine, replay it (its first ``events``), and return the figures."""
    batches, cfg, end_us, gen_s = _day(preset, seed, events)
    events = sum(len(b) for b in batches)
    machine = Machine(cfg, make_policy(policy), machine_id="m-0000", seed=seed)
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for b in batches:
        machine.apply(b)
    machine.advance_to(end_us)
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
        "state_kib": len(pickle.dumps(machine)) / 1024,
        "runs": len(machine.runs) - len(machine.runs.free), "run_slots": len(machine.runs),
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


def _replay_with(handlers: list[Callable], batches: list, cfg: MachineConfig, end_us: int, policy: str,
                 seed: int) -> float:
    """Replay ``batches`` on a new machine with ``handlers`` in place of the op table; CPU seconds."""
    saved = list(machine_mod._HANDLERS)
    machine_mod._HANDLERS[:] = handlers
    try:
        machine = Machine(cfg, make_policy(policy), machine_id="m-0000", seed=seed)
        c0 = time.process_time()
        for b in batches:
            machine.apply(b)
        machine.advance_to(end_us)
        return time.process_time() - c0
    finally:
        machine_mod._HANDLERS[:] = saved


def by_op(preset: str, seed: int, policy: str) -> dict:
    """Time per trace op and the event loop's own cost (see the module docstring).

    Out: ``events``, ``cpu_s`` (the timed replay), ``loop_cpu_s`` (every handler a no-op) and
    ``ops``: (op name, events, handler seconds) rows, most expensive first.
    """
    batches, cfg, end_us, _ = _day(preset, seed)
    spent: dict[int, int] = defaultdict(int)
    calls: dict[int, int] = defaultdict(int)
    clock = time.process_time_ns

    def timed(code: int, handler: Callable) -> Callable:
        def run_one(machine, ev) -> None:
            t0 = clock()
            handler(machine, ev)
            spent[code] += clock() - t0
            calls[code] += 1
        return run_one

    cpu_s = _replay_with([timed(i, h) for i, h in enumerate(machine_mod._HANDLERS)], batches, cfg, end_us,
                         policy, seed)

    def noop(machine, ev) -> None:
        return None

    loop_s = _replay_with([noop] * len(machine_mod._HANDLERS), batches, cfg, end_us, policy, seed)
    rows = sorted(((Op(c).name.lower(), calls[c], spent[c] / 1e9) for c in calls), key=lambda r: -r[2])
    return {"events": sum(len(b) for b in batches), "cpu_s": cpu_s, "loop_cpu_s": loop_s, "ops": rows}


def print_by_op(res: dict) -> None:
    """``by_op``'s figures as a table."""
    total = sum(s for _, _, s in res["ops"])
    n = res["events"]
    print(f"events {n:,}; replay {res['cpu_s']:.1f} CPU-s with every handler timed, of which in handlers "
          f"{total:.1f} CPU-s")
    print(f"event loop alone (no-op handlers): {res['loop_cpu_s']:.2f} CPU-s, "
          f"{res['loop_cpu_s'] / n * 1e6:.2f} us per event, {n / res['loop_cpu_s']:,.0f} events per CPU-second")
    print(f"{'op':14s} {'events':>10s} {'share':>7s} {'us/event':>9s}")
    for name, calls, secs in res["ops"]:
        print(f"{name:14s} {calls:>10,} {secs / total:>7.1%} {secs / calls * 1e6:>9.2f}")


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run once and print one figure per line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="machine_day", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="none")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--profile", action="store_true")
    how.add_argument("--by-op", action="store_true", help="time per op, and the event loop alone")
    ap.add_argument("--events", type=int, help="replay only the day's first N events (e.g. under callgrind)")
    args = ap.parse_args(argv)
    if args.by_op:
        print_by_op(by_op(args.preset, args.seed, args.policy))
        return
    res = run(args.preset, args.seed, args.policy, args.profile, args.events)
    prof = res.pop("profile", "")
    for k, v in res.items():
        print(f"{k:16s} {v:,.1f}" if isinstance(v, float) else f"{k:16s} {v:,}")
    if prof:
        print(prof)


if __name__ == "__main__":
    main()
