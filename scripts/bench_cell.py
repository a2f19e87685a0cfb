"""Benchmark: a Google-2011-shaped cell-month replayed under policy ``none`` on local Ray.

In: the ``google2011_cell`` generator preset (12,583 machines x 29 days; arrivals, lifetimes and
memory measured on the Google 2011 excerpts, see ``--calibrate`` and docs/benchmarks.md) and
``--scale F``: the fraction of the machines and of the days to replay (``--machines-scale`` and
``--days-scale`` set them apart). Out: printed figures -- wall time, events, events per second,
peak RSS (the sum over this process and every process it started, Ray's included, sampled every
0.5 s) and, when only a slice ran, the whole cell-month projected from it: events and wall time
scale with machine-days (the churn is stationary and machines are independent). Nothing is
asserted. The issue-13 goal for the whole cell is <= 15 min wall and <= 8 GiB peak RSS on the
2-core box.

    python scripts/bench_cell.py --scale 0.01                 # 126 machines x 0.29 days
    python scripts/bench_cell.py --machines-scale 0.02 --days-scale 0.05 --wave-machines 100
    python scripts/bench_cell.py --calibrate                  # re-measure the preset's numbers

``--calibrate`` reads ``../shared/traces/google-clusterdata-2011-2`` (machine_events: the whole
official file; task_events: every row of the cell with 600 s <= time < 1400 s) and prints what the
preset is built from.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np

CONF = str(REPO / "conf")
PRESET = "google2011_cell"
SHARED = REPO.parent / "shared/traces/google-clusterdata-2011-2"
WINDOW_S = (600.0, 1400.0)  # the task_events excerpt: every row of the cell in this window
GiB = 1 << 30


# ---------------------------------------------------------------- calibration

def calibrate(shared: Path = SHARED, machine_bytes: int = 64 * GiB) -> dict[str, float]:
    """The cell's size and rates measured on the excerpts; printed and returned.

    * machines: distinct machine ids of machine_events; memory: their capacity at ADD time
      (normalised to the largest machine = ``machine_bytes``, the importer's default);
    * arrivals: SCHEDULE rows in the window / window length / machines;
    * lifetimes: Kaplan-Meier over the tasks scheduled in the window (an end event -- EVICT, FAIL,
      FINISH, KILL, LOST -- in the window ends one, the window's end censors the rest); the
      lognormal's median is where survival crosses 1/2, its sigma from the quartiles;
    * memory per task: the memory request of the SCHEDULE rows; the importer's split of a request
      (anon 0.5, private page cache 0.25, ``ImportParams``) gives the anon and log medians, the
      10th-90th percentile spread gives their sigma.
    """
    from traces.importers.common import ImportReport, Rejects, read_csv
    from traces.importers.google2011 import MACHINE_EVENTS, TASK_EVENTS
    rejects = Rejects(ImportReport("calibrate"), lenient=True)
    me = read_csv(shared / "machine_events/part-00000-of-00001.csv.gz", MACHINE_EVENTS, rejects)
    te = read_csv(shared / "task_events/excerpt-t600-1400s/part-00000-of-00500.csv.gz", TASK_EVENTS, rejects)
    def col(t: Any, c: str) -> np.ndarray:
        return t.column(c).to_numpy(zero_copy_only=False)

    mid, etype, cap = col(me, "machine_id"), col(me, "event_type"), col(me, "memory")
    machines = len(np.unique(mid))
    span_days = float(col(me, "time")[col(me, "time") < 1 << 62].max()) / 1e6 / 86400
    mem = cap[(etype == 0) & ~np.isnan(cap)]
    t, ev = col(te, "time") / 1e6, col(te, "event_type")
    sched = ev == 1
    window = WINDOW_S[1] - WINDOW_S[0]
    arrivals = sched.sum() / window / machines
    median, sigma, ended = _lifetimes(t, ev, col(te, "job_id"), col(te, "task_index"))
    req = col(te, "memory_request")[sched]
    req = req[~np.isnan(req)]
    p10, p50, p90 = np.percentile(req, [10, 50, 90])
    out = {"machines": machines, "days": span_days, "mem_fraction_median": float(np.median(mem)),
           "mem_fraction_mean": float(mem.mean()), "schedules": int(sched.sum()), "window_s": window,
           "arrivals_per_machine_s": float(arrivals), "arrivals_per_machine_day": float(arrivals * 86400),
           "lifetime_median_s": median, "lifetime_sigma": sigma, "ended_in_window": ended,
           "request_p10": float(p10), "request_median": float(p50), "request_p90": float(p90),
           "request_sigma": float(math.log(p90 / p10) / (2 * 1.2816)),
           "anon_median_mib": float(p50 * machine_bytes * 0.5 / (1 << 20)),
           "cache_median_mib": float(p50 * machine_bytes * 0.25 / (1 << 20))}
    for k, v in out.items():
        print(f"  {k:28s} {v:,.6g}")
    return out


def _lifetimes(t: np.ndarray, ev: np.ndarray, job: np.ndarray, index: np.ndarray) -> tuple[float, float, int]:
    """(median s, sigma of ln, tasks that ended) of the tasks scheduled in the window (Kaplan-Meier)."""
    started: dict[tuple[int, int], float] = {}
    dur, censored = [], []
    for i in np.argsort(t, kind="stable").tolist():
        key = (int(job[i]), int(index[i]))
        if ev[i] == 1:
            started[key] = t[i]
        elif 2 <= ev[i] <= 6 and key in started:
            dur.append(t[i] - started.pop(key))
            censored.append(False)
    dur += [WINDOW_S[1] - s for s in started.values()]
    censored += [True] * len(started)
    order = np.argsort(dur, kind="stable")
    d, c = np.asarray(dur)[order], np.asarray(censored)[order]
    at_risk = d.size - np.arange(d.size)
    surv = np.cumprod(np.where(c, 1.0, 1.0 - 1.0 / at_risk))
    def q(s: float) -> float:  # the first time survival is at or below s
        return float(d[np.argmax(surv <= s)])

    return q(0.5), math.log(q(0.25) / q(0.75)) / (2 * 0.6745), int((~c).sum())


# ---------------------------------------------------------------- the run

class PeakRss:
    """Samples the summed RSS of this process and all its descendants (Ray's too) in a thread."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every_s,), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            self._stop.wait(every_s)


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every descendant (Linux /proc)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    tree, todo = set(), [root]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    total = 0
    for p in tree:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            pass
    return total


def _config(args: argparse.Namespace, out: str, machines: int, duration_s: float) -> Any:
    from hydra import compose, initialize_config_dir

    from replay.config import to_config
    over = [f"trace={PRESET}", "policy=none", f"fleet.machines={machines}",
            f"+trace.params.duration_s={duration_s}",
            f"fleet.sample_interval_s={args.sample_s}", "executor=ray", f"executor.shards={args.shards}",
            f"executor.step_s={args.step_s}", f"executor.checkpoint_every_s={args.checkpoint_s}",
            "executor.checkpoint_min_wall_s=0",
            "executor.timeout_s=86400", f"executor.pack_above={args.pack_above}",
            f"executor.wave_machines={args.wave_machines}", "store.cache=false", "plots=false",
            f"output_dir={out}", f"progress={not args.quiet}", f"store.embedded_path={out}/store.pkl",
            f"store.namespace=bench-cell-{os.getpid()}"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return to_config(compose(config_name="config", overrides=over))


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Replay the slice; print and return its figures and the whole cell's projection."""
    from bench_fleet import breakdown  # scripts/ is this script's directory

    from replay.app import run
    from replay.config import register_configs
    from replay.executors import ensure_ray
    from traces.generate import PRESETS
    register_configs()
    full = PRESETS[PRESET]
    ms = args.machines_scale if args.machines_scale is not None else args.scale
    ds = args.days_scale if args.days_scale is not None else args.scale
    machines = max(1, round(full.machines * ms))
    duration_s = max(args.step_s, round(full.duration_s * ds / args.step_s) * args.step_s)
    frac = machines / full.machines * duration_s / full.duration_s
    print(f"cell slice: {machines:,} of {full.machines:,} machines x {duration_s / 86400:.3g} of "
          f"{full.duration_s / 86400:g} days ({frac:.3g} of the machine-days); policy none, Ray, "
          f"{args.shards} shard(s), wave_machines {args.wave_machines}, pack_above {args.pack_above}; "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as out, PeakRss() as rss:
        cfg = _config(args, out, machines, duration_s)
        t0 = time.monotonic()
        ensure_ray(cfg.ray)
        start_s = time.monotonic() - t0
        res = run(cfg)
        wall = time.monotonic() - t0
    events = int(res.summaries[0]["events"])
    fig = {"machines": machines, "duration_s": duration_s, "fraction": frac, "wall_s": wall, "ray_start_s": start_s,
           "events": events, "events_per_s": events / wall, "peak_rss_gib": rss.peak / GiB,
           "projected_events": events / frac, "projected_wall_s": start_s + (wall - start_s) / frac}
    print(f"wall {wall:,.1f} s (Ray start {start_s:.1f} s), events {events:,}, {events / wall:,.0f} events/s, "
          f"peak RSS {rss.peak / GiB:.2f} GiB (this process and its children)")
    st = res.stats.get("none", {})
    if st:  # where the shards' time went (scripts/bench_fleet.py explains the terms)
        gen, rep = st.get("setup_cpu_sum_s", 0.0), st.get("cpu_sum_s", 0.0)
        print(f"shards' CPU: {gen:,.1f} s generating events (setup), {rep:,.1f} s replaying them "
              f"({events / max(rep, 1e-9):,.0f} events per replay CPU-second); "
              f"{breakdown(st, wall - start_s, args.shards, True)}")
    if frac < 1:
        print(f"projection to the whole cell-month (x{1 / frac:,.0f}): ~{fig['projected_events']:,.0f} events, "
              f"~{fig['projected_wall_s']:,.0f} s = {fig['projected_wall_s'] / 3600:,.1f} h wall at this rate "
              f"(goal <= 900 s, <= 8 GiB); peak RSS does not scale with the slice when waves bound it")
    return fig


def main(argv: list[str] | None = None) -> int:
    """Parse options; calibrate or replay."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true", help="measure the preset's numbers on the excerpts")
    ap.add_argument("--scale", type=float, default=0.01, help="fraction of the machines and of the days")
    ap.add_argument("--machines-scale", type=float, default=None, help="fraction of the machines (default --scale)")
    ap.add_argument("--days-scale", type=float, default=None, help="fraction of the days (default --scale)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--sample-s", type=int, default=600, help="fleet.sample_interval_s")
    ap.add_argument("--step-s", type=int, default=21600,
                    help="executor.step_s: 6 h rounds. Each round visits every machine of a shard, and a visit "
                         "costs ~80 us beyond its events (the calls, the sample and job hand-over, its state back "
                         "into the caches): the 29-day slice replayed in 27.1 CPU-s with 1 h rounds, 20.6 with 6 h "
                         "or 12 h; same results")
    ap.add_argument("--checkpoint-s", type=int, default=0,
                    help="executor.checkpoint_every_s (0: none; else at every grid point)")
    ap.add_argument("--pack-above", type=int, default=1000, help="executor.pack_above")
    ap.add_argument("--wave-machines", type=int, default=2000, help="executor.wave_machines (0: all at once)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.calibrate:
        print(f"Google 2011 cell, measured on {SHARED}:")
        calibrate()
        return 0
    bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
