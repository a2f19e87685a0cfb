"""Benchmark: a synthetic fleet end to end, in-process vs Ray with 1 and 2 shard actors.

In: a fleet size and simulated length (default: the project's target, 10,000 machines for a
day; use ``--machines``/``--hours`` for a slice of it on a small box). Out: printed figures --
wall time, events, events/s, peak RSS of the driver and of each actor, state bytes per machine
(pickled, as checkpointed) -- and the targets: Ray overhead <= 10 % vs in-process, 2 actors
>= 1.8x one actor, <= 512 KiB of state per machine, the whole fleet-day in <= 60 s (projected
from the measured events/s when only a slice was run). Nothing is asserted.

    python scripts/bench_fleet.py --machines 200 --hours 1
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from replay.app import run
from replay.config import register_configs, to_config

CONF = str(Path(__file__).resolve().parent.parent / "conf")
TARGET_MACHINES, TARGET_HOURS = 10_000, 24.0


def _config(args: argparse.Namespace, out: str, executor: str, shards: int) -> Any:
    over = [f"trace={args.trace}", "policy=none", f"fleet.machines={args.machines}",
            f"+trace.params.duration_s={args.hours * 3600}", f"fleet.sample_interval_s={args.sample_s}",
            f"executor={executor}", f"executor.shards={shards}", f"executor.step_s={args.step_s}",
            f"executor.checkpoint_every_s={args.checkpoint_s}", "executor.timeout_s=3600",
            "store.cache=false", "plots=false", f"output_dir={out}", f"progress={not args.quiet}",
            f"store.embedded_path={out}/store.pkl", f"store.namespace=bench-{os.getpid()}"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return to_config(compose(config_name="config", overrides=over))


def _peak_rss_mib(pid: int) -> float:
    # VmHWM: the process's peak resident set (Linux)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _probe(measure: dict[str, Any], last_round: int):
    """An on_step hook that records actor peak RSS and per-machine state size after the last round."""
    def hook(k: int, executor: Any) -> None:
        if k != last_round:
            return
        if hasattr(executor, "pids"):
            measure["actor_rss_mib"] = [_peak_rss_mib(p) for p in executor.pids()]
        elif executor.shards:
            sizes = [len(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
                     for s in executor.shards for m in s.machines]
            measure["state_bytes_mean"] = sum(sizes) / len(sizes)
            measure["state_bytes_max"] = max(sizes)
    return hook


def bench(args: argparse.Namespace, label: str, executor: str, shards: int) -> dict[str, Any]:
    """One end-to-end run; returns its figures."""
    measure: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as out:
        cfg = _config(args, out, executor, shards)
        t0 = time.monotonic()
        rounds = -(-int(args.hours * 3600) // args.step_s)
        res = run(cfg, on_step=_probe(measure, rounds - 1) if args.measure else None)
        wall = time.monotonic() - t0
    events = res.summaries[0]["events"]
    fig = {"label": label, "wall_s": wall, "events": events, "events_per_s": events / wall,
           "driver_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **measure}
    print(f"{label:>14}: wall {wall:8.1f} s  events {events:>12,}  {events / wall:>10,.0f} ev/s  "
          f"driver peak RSS {fig['driver_peak_rss_mib']:,.0f} MiB  " +
          (f"actors peak RSS {', '.join(f'{r:,.0f}' for r in measure['actor_rss_mib'])} MiB"
           if "actor_rss_mib" in measure else ""), flush=True)
    return fig


def report(figs: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """The targets, from the measured figures."""
    local, one, two = figs.get("in-process"), figs.get("ray 1 actor"), figs.get("ray 2 actors")
    if local and one:
        print(f"Ray overhead (1 actor vs in-process): {one['wall_s'] / local['wall_s'] - 1:+.1%} (target <= +10%)")
    if one and two:
        print(f"2 actors vs 1 actor: {one['wall_s'] / two['wall_s']:.2f}x (target >= 1.8x)")
    if local and "state_bytes_mean" in local:
        print(f"state per machine at the end: mean {local['state_bytes_mean'] / 1024:,.0f} KiB, "
              f"max {local['state_bytes_max'] / 1024:,.0f} KiB (target <= 512 KiB)")
    best = max(figs.values(), key=lambda f: f["events_per_s"])
    scale = (TARGET_MACHINES / args.machines) * (TARGET_HOURS / args.hours)
    projected = best["wall_s"] * scale
    print(f"fleet-day projection ({TARGET_MACHINES:,} machines x {TARGET_HOURS:g} h, {best['label']}): "
          f"~{best['events'] * scale:,.0f} events, ~{projected:,.0f} s (goal <= 60 s)")


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the chosen executors, print figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=TARGET_MACHINES)
    ap.add_argument("--hours", type=float, default=TARGET_HOURS)
    ap.add_argument("--trace", default="default", help="synthetic preset (conf/trace option)")
    ap.add_argument("--sample-s", type=int, default=600)
    ap.add_argument("--step-s", type=int, default=1800)
    ap.add_argument("--checkpoint-s", type=int, default=0, help="0: no checkpoints (pure replay cost)")
    ap.add_argument("--only", choices=["in-process", "ray1", "ray2"], action="append")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-measure", dest="measure", action="store_false",
                    help="skip the RSS/state probes after the last round")
    args = ap.parse_args(argv)
    register_configs()
    runs = {"in-process": ("local", 1), "ray1": ("ray", 1), "ray2": ("ray", 2)}
    labels = {"in-process": "in-process", "ray1": "ray 1 actor", "ray2": "ray 2 actors"}
    print(f"fleet: {args.machines:,} machines x {args.hours:g} h (trace preset {args.trace}), "
          f"{os.cpu_count()} CPUs", flush=True)
    figs = {labels[k]: bench(args, labels[k], *runs[k]) for k in (args.only or list(runs))}
    report(figs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
