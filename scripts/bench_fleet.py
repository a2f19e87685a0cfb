"""Benchmark: a synthetic fleet end to end, in-process vs Ray with 1 and 2 shard actors.

In: a fleet size and simulated length (default: the project's target, 10,000 machines for a
day; use ``--machines``/``--hours`` for a slice of it on a small box). Out: printed figures --
wall time, events, events/s, peak RSS of the driver and of each actor, state bytes per machine
(pickled, and compressed as a packing shard holds it) -- and the targets: Ray overhead <= 10 % vs in-process, 2 actors
>= 1.8x one actor, <= 512 KiB of state per machine, the whole fleet-day in <= 60 s (projected
from the measured events/s when only a slice was run). Nothing is asserted.

    python scripts/bench_fleet.py --machines 200 --hours 1

Several nodes (strong scaling: the same fleet on 1, 2, 3 nodes):

- ``--address HOST:PORT --store-url redis://...``: one run (``--only cluster``) on an existing Ray
  cluster, one shard per CPU of the cluster;
- ``--netns-nodes 1,2,3``: for each count, a fresh test cluster of that many Ray nodes, each in a
  network namespace of its own (``tests/test_cluster.py``'s ``NetnsCluster``; root, iproute2 and
  redis-server needed), ``--node-cpus`` CPUs each, and the run driven from the head's namespace;
  then the speed-up and efficiency per node count and a projection of the fleet-day.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from replay.app import run
from replay.config import register_configs, to_config
from replay.executors import ensure_ray
from replay.shard import pack

CONF = str(Path(__file__).resolve().parent.parent / "conf")
TARGET_MACHINES, TARGET_HOURS = 10_000, 24.0


def _config(args: argparse.Namespace, out: str, executor: str, shards: int) -> Any:
    joined = [f"ray.address={args.address}", "store=redis", f"store.url={args.store_url}"] if args.address else []
    over = [*joined, f"trace={args.trace}", "policy=none", f"fleet.machines={args.machines}",
            f"+trace.params.duration_s={args.hours * 3600}", f"fleet.sample_interval_s={args.sample_s}",
            f"executor={executor}", f"executor.shards={shards}", f"executor.step_s={args.step_s}",
            f"executor.checkpoint_every_s={args.checkpoint_s}", "executor.checkpoint_min_wall_s=0",
            "executor.timeout_s=3600",
            f"executor.pack_above={args.pack_above}", f"executor.wave_machines={args.wave_machines}",
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
        t0 = time.monotonic()
        _measure(measure, executor)
        measure["probe_s"] = time.monotonic() - t0  # taken out of the run's wall time
    hook.pipelined = True  # type: ignore[attr-defined]  # after the last round nothing is in flight
    return hook


def _measure(measure: dict[str, Any], executor: Any) -> None:
    """Actor peak RSS (Ray) or pickled state bytes per machine (in-process) into ``measure``."""
    if hasattr(executor, "pids"):
        measure["actor_rss_mib"] = [_peak_rss_mib(p) for p in executor.pids()]
    elif executor.shards:
        blobs = [pickle.dumps(s.machine(i), protocol=pickle.HIGHEST_PROTOCOL)
                 for s in executor.shards for i in range(len(s.machines))]
        sizes = [len(b) for b in blobs]
        packed = [len(pack(s.machine(i))) for s in executor.shards for i in range(len(s.machines))]  # (pack_above)
        measure["state_bytes_mean"] = sum(sizes) / len(sizes)
        measure["state_bytes_max"] = max(sizes)
        measure["packed_bytes_mean"] = sum(packed) / len(packed)
        measure["packed_bytes_max"] = max(packed)


def bench(args: argparse.Namespace, label: str, executor: str, shards: int) -> dict[str, Any]:
    """One end-to-end run; returns its figures (wall time and where it went)."""
    measure: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as out:
        cfg = _config(args, out, executor, shards)
        t0 = time.monotonic()
        rounds = -(-int(args.hours * 3600) // args.step_s)
        res = run(cfg, on_step=_probe(measure, rounds - 1) if args.measure else None)
        wall = time.monotonic() - t0 - measure.get("probe_s", 0.0)
    events = res.summaries[0]["events"]
    fig = {"label": label, "wall_s": wall, "events": events, "events_per_s": events / wall,
           "driver_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "stats": res.stats.get("none", {}), **measure}
    print(f"{label:>14}: wall {wall:8.1f} s  events {events:>12,}  {events / wall:>10,.0f} ev/s  "
          f"driver peak RSS {fig['driver_peak_rss_mib']:,.0f} MiB  " +
          (f"actors peak RSS {', '.join(f'{r:,.0f}' for r in measure['actor_rss_mib'])} MiB"
           if "actor_rss_mib" in measure else ""), flush=True)
    if args.breakdown:
        print(" " * 16 + breakdown(fig["stats"], wall, shards, executor == "ray"), flush=True)
    return fig


def breakdown(st: dict[str, float], wall: float, shards: int, remote: bool) -> str:
    """Where one run's wall time went, from the coordinator's stats (``RunResult.stats``).

    ``setup``: the slowest shard generating/loading its events; ``replay``: the sum over rounds
    of the slowest shard's call; ``barrier idle``: what the other shards waited for it;
    ``Ray``: the coordinator's waits minus the shards' setup and work (actor processes starting
    and importing, calls, transport of samples; exact for one shard, an estimate for several as
    pipelined rounds overlap, and so is ``barrier idle``); ``driver``: aggregation, commits, progress; ``rest``:
    plan, finish, outputs. ``cpu/busy``: the shards' CPU over their busy wall time (< 1: the
    shards were descheduled, e.g. by other load on the box). ``shard CPU``: setup and replay CPU
    seconds of all shards, and of the slowest shard per round (plus the slowest setup): their
    ratio bounds the speed-up of more shards when each has a free core.
    """
    if not st:
        return "(no stats: cached)"
    g = st.get
    # in-process the shards run one after the other: no barrier, no transport
    ray_calls = max(0.0, g("wait_s", 0) - g("busy_max_s", 0) - g("setup_max_s", 0)) if remote else 0.0
    idle = shards * g("busy_max_s", 0) - g("busy_sum_s", 0) if remote else 0.0
    rest = wall - g("start_s", 0) - g("wait_s", 0) - g("driver_s", 0) - g("collect_s", 0)
    cpu_ratio = g("cpu_sum_s", 0) / max(g("busy_sum_s", 0), 1e-9)
    # the run's critical path in CPU seconds: what the wall time would be if every shard had a
    # core to itself (load-independent, unlike the wall times)
    critical = g("setup_cpu_max_s", 0) + g("cpu_max_s", 0)
    work = g("setup_cpu_sum_s", 0) + g("cpu_sum_s", 0)
    return (f"setup {g('setup_max_s', 0):.1f} s, replay {g('busy_max_s', 0):.1f} s over {g('rounds', 0):.0f} "
            f"rounds (checkpoints {g('checkpoint_max_s', 0):.1f} s, barrier idle {idle:.1f} shard-s), Ray {ray_calls:.1f} s, driver {g('driver_s', 0):.2f} s "
            f"(commits {g('commit_s', 0):.2f} s), start {g('start_s', 0):.1f} s, collect {g('collect_s', 0):.1f} s, "
            f"rest {rest:.1f} s; shards cpu/busy {cpu_ratio:.2f}; shard CPU: total {work:.1f} s, "
            f"critical path {critical:.1f} s")


def median_wall(figs: list[dict[str, Any]]) -> float:
    """Median wall time of repeated runs of one configuration."""
    return statistics.median(f["wall_s"] for f in figs)


def report(figs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, cluster_s: float) -> None:
    """The targets, from the median figures of each configuration."""
    wall = {k: median_wall(v) for k, v in figs.items()}
    local, one, two = wall.get("in-process"), wall.get("ray 1 actor"), wall.get("ray 2 actors")
    if args.repeat > 1:
        print("medians over", args.repeat, "interleaved runs: " +
              ", ".join(f"{k} {v:.1f} s" for k, v in wall.items()))
    if local and one:
        print(f"Ray overhead (1 actor vs in-process): {one / local - 1:+.1%} (target <= +10%); "
              f"counting the cluster start too: {(one + cluster_s) / local - 1:+.1%}")
    if one and two:
        print(f"2 actors vs 1 actor: {one / two:.2f}x (target >= 1.8x)")
    first = figs.get("in-process", [{}])[0]
    if "state_bytes_mean" in first:
        print(f"state per machine at the end: mean {first['state_bytes_mean'] / 1024:,.0f} KiB, "
              f"max {first['state_bytes_max'] / 1024:,.0f} KiB pickled; packed (executor.pack_above) "
              f"mean {first['packed_bytes_mean'] / 1024:,.0f} KiB, max {first['packed_bytes_max'] / 1024:,.0f} KiB "
              f"(target <= 512 KiB)")
    best = min(wall, key=wall.__getitem__)
    scale = (TARGET_MACHINES / args.machines) * (TARGET_HOURS / args.hours)
    print(f"fleet-day projection ({TARGET_MACHINES:,} machines x {TARGET_HOURS:g} h, {best}): "
          f"~{figs[best][0]['events'] * scale:,.0f} events, ~{wall[best] * scale:,.0f} s (goal <= 60 s)")


def start_ray(args: argparse.Namespace) -> float:
    """Start the Ray cluster the runs will use, before any is timed; returns seconds it took.

    A process starts its cluster once and keeps it for every later run of a sweep, so the start
    is reported on its own line instead of being charged to whichever Ray row happens to be first.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as out:
        cfg = _config(args, out, "ray", 1)
    t0 = time.monotonic()
    ensure_ray(cfg.ray)
    if args.wait_nodes:  # a cluster just started: its worker nodes may still be joining
        import ray

        while len([n for n in ray.nodes() if n.get("Alive")]) < args.wait_nodes:
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"fewer than {args.wait_nodes} Ray nodes came up")
            time.sleep(0.5)
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the chosen executors (interleaved when repeated), print figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=TARGET_MACHINES)
    ap.add_argument("--hours", type=float, default=TARGET_HOURS)
    ap.add_argument("--trace", default="default", help="synthetic preset (conf/trace option)")
    ap.add_argument("--sample-s", type=int, default=600)
    ap.add_argument("--step-s", type=int, default=1800)
    ap.add_argument("--checkpoint-s", type=int, default=0,
                    help="0: no checkpoints (pure replay cost); else at every one of these simulated seconds")
    ap.add_argument("--pack-above", type=int, default=1000,
                    help="executor.pack_above: pack machines as compressed pickles in shards larger than this")
    ap.add_argument("--wave-machines", type=int, default=0,
                    help="executor.wave_machines: replay the fleet in waves of this many machines (0: at once)")
    ap.add_argument("--only", choices=["in-process", "ray1", "ray2", "cluster"], action="append",
                    help="cluster: one shard per CPU of the cluster at --address")
    ap.add_argument("--address", help="join this Ray cluster (with --store-url, a Redis every node reaches)")
    ap.add_argument("--store-url", help="the run store for --address")
    ap.add_argument("--netns-nodes", help="strong scaling on test clusters of these node counts, e.g. 1,2,3")
    ap.add_argument("--node-cpus", type=int, default=1, help="Ray CPUs per node with --netns-nodes")
    ap.add_argument("--json", help="write the figures of the runs to this file")
    ap.add_argument("--repeat", type=int, default=1, help="run the configurations in turn this many times")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                    help="do not print where each run's wall time went")
    ap.add_argument("--no-measure", dest="measure", action="store_false",
                    help="skip the RSS/state probes after the last round")
    ap.add_argument("--wait-nodes", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    register_configs()
    if args.netns_nodes:
        return netns_scaling(args, argv or sys.argv[1:])
    if args.address:
        args.measure = False  # the RSS probe reads /proc of the actors, which may be on other hosts
    runs = {"in-process": ("local", 1), "ray1": ("ray", 1), "ray2": ("ray", 2), "cluster": ("ray", 0)}
    labels = {"in-process": "in-process", "ray1": "ray 1 actor", "ray2": "ray 2 actors", "cluster": "cluster"}
    chosen = args.only or [k for k in runs if k != "cluster"]
    print(f"fleet: {args.machines:,} machines x {args.hours:g} h (trace preset {args.trace}), "
          f"{os.cpu_count()} CPUs", flush=True)
    cluster_s = start_ray(args) if any(runs[k][0] == "ray" for k in chosen) else 0.0
    if cluster_s:
        print(f"Ray cluster start: {cluster_s:.1f} s (once per process; not in the rows below)", flush=True)
    figs: dict[str, list[dict[str, Any]]] = {labels[k]: [] for k in chosen}
    for _ in range(args.repeat):
        for k in chosen:
            figs[labels[k]].append(bench(args, labels[k], *runs[k]))
    report(figs, args, cluster_s)
    if args.json:
        import ray

        nodes = len([n for n in ray.nodes() if n.get("Alive")]) if ray.is_initialized() else 0
        Path(args.json).write_text(json.dumps({"nodes": nodes, "runs": {k: [{x: f[x] for x in ("wall_s", "events")}
                                                                             for f in v] for k, v in figs.items()}}))
    return 0


def netns_scaling(args: argparse.Namespace, argv: list[str]) -> int:
    """The same fleet on test clusters of each ``--netns-nodes`` count; speed-up, efficiency, projection."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_cluster import NetnsCluster, netns_usable

    why = netns_usable()
    if why:
        print(f"cannot build the test cluster: {why}", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.netns_nodes.split(",")]
    keep = [a for a in _drop_option(argv, "--netns-nodes") if not a.startswith("--only")]
    rows = []
    for n in counts:
        root = Path(tempfile.mkdtemp(prefix="mrb-", dir="/tmp"))
        c = NetnsCluster(root, root / "driver", workers=n - 1, cpus=args.node_cpus)
        (root / "driver").mkdir()
        try:
            c.up()
            out = root / "driver" / "figs.json"
            t0 = time.monotonic()
            proc = subprocess.run(["ip", "netns", "exec", c.ns("head"), sys.executable, __file__, *keep,
                                   "--only", "cluster", "--address", c.address, "--store-url", c.redis_url,
                                   "--json", str(out), "--wait-nodes", str(n)],
                                  env=dict(c.env("head"), RAY_ADDRESS=c.address), check=False)
            if proc.returncode or not out.exists():
                print(f"{n} nodes: the run failed ({proc.returncode})", file=sys.stderr)
                return 1
            got = json.loads(out.read_text())
            wall = median_wall(got["runs"]["cluster"])
            rows.append((n, got["nodes"], wall, got["runs"]["cluster"][0]["events"], time.monotonic() - t0))
        finally:
            try:
                c.down()
            finally:
                shutil.rmtree(root, ignore_errors=True)
    base_n, _, base_wall, events, _ = rows[0]
    print(f"strong scaling, {args.machines:,} machines x {args.hours:g} h, {args.node_cpus} CPU(s) per node, "
          f"{os.cpu_count()} cores on this host:")
    for n, seen, wall, _, total in rows:
        speed = base_wall / wall
        print(f"  {n} node(s) ({seen} alive): wall {wall:7.1f} s  speed-up {speed:4.2f}x  "
              f"efficiency {speed * base_n / n:4.0%}  (with cluster start {total:.0f} s)")
    # the best rate per Ray CPU over the node counts: on a host with fewer cores than Ray CPUs the
    # larger clusters share cores, and their rate per CPU says more about the host than the replay
    rate, n = max((events / (wall * n * args.node_cpus), n) for n, _, wall, _, _ in rows)
    scale = (TARGET_MACHINES / args.machines) * (TARGET_HOURS / args.hours)
    print(f"best rate per Ray CPU: {rate:,.0f} events/s ({n} node(s)); the fleet-day ({TARGET_MACHINES:,} machines "
          f"x {TARGET_HOURS:g} h, ~{events * scale:,.0f} events) needs ~{events * scale / rate / 3600:,.0f} "
          "CPU-hours at that rate")
    return 0


def _drop_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
