"""Roman Gushchin's 2019 dying-cgroup curve beside the model's, before and after slab reparenting.

In: the ``fb2019_host`` preset of ``traces.generate`` (one 2019 Facebook-like host; why each
value is what it is: docs/kernel-validation.md, "A published fleet figure"), a number of
machines, days and a seed. Each machine is generated and replayed on the model (policy
``none``) once per kernel: 5.4, where slab objects pin a dying memcg, and 5.10, where they
follow the objcg to the parent (v5.9). Out: printed per-day averages of dying memcgs per
machine (the published unit: the average per host by day) beside the published ones, what
holds the zombies at the end, the knob's least-squares value, and a PNG plot.

    python scripts/gushchin_curve.py [--machines 8] [--days 7] [--seed 1] [--mem-gib G] [--out docs/gushchin_curve.png]

Published (KERNEL-MODEL §3; "mm: reparent slab memory on cgroup removal", v3, 2019-05-08,
<20190508202458.550808-1-guro@fb.com>): 39, 338, 580, 827, 1098, 1349, 1574 by day 0-6
without slab reparenting, 23-55 with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from core.machine import Machine, MachineConfig
from traces.batches import machine_batches
from traces.generate import PRESETS, SEC, generate_machine, machine_name

PUBLISHED_UNPATCHED = (39, 338, 580, 827, 1098, 1349, 1574)
PUBLISHED_PATCHED = (23, 55)  #: the published range with slab reparenting, not a per-day series
KERNELS = {"5.4": "slab pins (before v5.9)", "5.10": "slab reparented (v5.9+)"}
DAY_S = 86400
SAMPLE_S = 600
HOLDERS = ("held_file", "held_shmem", "held_anon", "held_kmem", "held_child", "held_cgwb", "held_sock")


def replay(params, kernel: str, seed: int, index: int) -> dict[str, np.ndarray]:
    """One machine's samples (every ``SAMPLE_S``) over the preset's span on ``kernel``."""
    cfg = MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes, kernel=kernel,
                        sample_interval_us=SAMPLE_S * SEC)
    m = Machine(cfg, machine_id=machine_name(index), seed=seed)
    for _, batch in machine_batches(generate_machine(params, seed, index), source="fb2019_host"):
        m.apply(batch)
    m.advance_to(int(params.duration_s * SEC) - 1)
    return m.take_samples()


def daily_means(samples: dict[str, np.ndarray], days: int) -> list[float]:
    """Average ``memcgs_dying`` of the samples within each day (the published unit)."""
    day = samples["time_us"] // (DAY_S * SEC)
    return [float(samples["memcgs_dying"][day == d].mean()) for d in range(days)]


def fit_slope(published: tuple[int, ...]) -> float:
    """Least-squares slope through 0 of the published day averages against day + 0.5.

    If every removed cgroup stays dying (5.4 here), the dying count grows by the removal rate r
    per day and a day's average is r·(d + 0.5): this r is the one knob fitted to the curve.
    """
    x = np.arange(len(published)) + 0.5
    return float((x * np.asarray(published)).sum() / (x * x).sum())


def run(machines: int, days: int, seed: int, arrival: float | None, mem_gib: float | None = None) -> dict:
    """Per kernel: per-day means (averaged over machines), the samples of machine 0, the holders at the end."""
    params = dataclasses.replace(PRESETS["fb2019_host"], duration_s=days * DAY_S * 1.0)
    if arrival is not None:
        params = dataclasses.replace(params, pod_arrival_per_s=arrival)
    if mem_gib is not None:
        params = dataclasses.replace(params, mem_bytes=int(mem_gib * (1 << 30)))
    out = {}
    for kernel in KERNELS:
        t0 = time.perf_counter()
        per = [replay(params, kernel, seed, i) for i in range(machines)]
        out[kernel] = {
            "daily": np.mean([daily_means(s, days) for s in per], axis=0).tolist(),
            "series": per[0],
            "holders": {h: float(np.mean([s[h][-1] for s in per])) for h in HOLDERS},
            "freed": float(np.mean([s["memcgs_freed"][-1] for s in per])),
            "evictions": float(np.mean([s["evictions"][-1] for s in per])),
            "seconds": time.perf_counter() - t0,
        }
    out["params"] = params
    return out


def table(res: dict, days: int) -> str:
    """Markdown: one row per day, the published figures beside the model's."""
    lines = ["| day | published, no slab reparenting | model 5.4 (slab pins) | published, with it | model 5.10 |",
             "|---|---|---|---|---|"]
    for d in range(days):
        pub = PUBLISHED_UNPATCHED[d] if d < len(PUBLISHED_UNPATCHED) else "–"
        lines.append(f"| {d} | {pub} | {res['5.4']['daily'][d]:.0f} | 23–55 | {res['5.10']['daily'][d]:.0f} |")
    return "\n".join(lines)


def plot(res: dict, days: int, path: str) -> None:
    """Both model curves (samples and day averages) beside the published ones."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(days) + 0.5
    n = min(days, len(PUBLISHED_UNPATCHED))
    ax.plot(x[:n], PUBLISHED_UNPATCHED[:n], "ko-", label="published, no slab reparenting (Gushchin 2019)")
    ax.axhspan(*PUBLISHED_PATCHED, color="0.8", label="published, with slab reparenting: 23–55")
    for kernel, colour in (("5.4", "tab:red"), ("5.10", "tab:blue")):
        s = res[kernel]["series"]
        ax.plot(s["time_us"] / (DAY_S * SEC), s["memcgs_dying"], color=colour, lw=0.6, alpha=0.5)
        ax.plot(x, res[kernel]["daily"], "s--", color=colour, label=f"model {kernel}: {KERNELS[kernel]}, day mean")
    ax.set_xlabel("day")
    ax.set_ylabel("dying cgroups per host")
    ax.set_xlim(0, days)
    ax.set_ylim(bottom=0)
    ax.set_title("fb2019_host preset vs Gushchin's production measurement")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=8, help="machines averaged (the published figure is per host)")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--arrival", type=float, default=None, help="override pod_arrival_per_s (the fitted knob)")
    ap.add_argument("--mem-gib", type=float, default=None, help="override the machine size (a sensitivity run)")
    ap.add_argument("--out", default="docs/gushchin_curve.png")
    args = ap.parse_args()
    slope = fit_slope(PUBLISHED_UNPATCHED)
    print(f"published slope through 0 (day mean = r·(d + 0.5)): r = {slope:.1f} dying cgroups/day")
    res = run(args.machines, args.days, args.seed, args.arrival, args.mem_gib)
    p = res["params"]
    print(f"pod_arrival_per_s = {p.pod_arrival_per_s} ({p.pod_arrival_per_s * DAY_S:.0f} pods/day, "
          f"2 cgroups each), {p.mem_bytes / (1 << 30):g} GiB, {args.machines} machine(s), {args.days} days, "
          f"seed {args.seed}")
    print(table(res, args.days))
    for kernel in KERNELS:
        r = res[kernel]
        held = ", ".join(f"{h[5:]} {v:.0f}" for h, v in r["holders"].items() if v)
        print(f"{kernel}: at the end, held by: {held or 'nothing'}; freed so far {r['freed']:.0f}; "
              f"page-cache evictions {r['evictions']:.0f}; replay {r['seconds']:.0f} s")
    plot(res, args.days, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
