"""PNG plots of fleet timelines: zombies per policy, their cost, and what holds them.

In: per policy (label) a fleet timeline (columns of ``fleet.parquet``, possibly averaged over
seeds). Out: ``zombies.png`` (fleet zombie count over simulated time, one line per policy),
``cost.png`` (memory the zombies cost at the end, one bar per policy) and ``holders.png``
(what holds the zombies, one panel per policy), written atomically. Each ``*_figure`` function
builds the figure (tests read its series and labels); ``plot_*`` saves it.
matplotlib runs headless (Agg); nothing here touches the replay.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from replay.columns import COST, HOLDERS, TIME, ZOMBIES  # noqa: E402
from replay.shard import Samples  # noqa: E402
from traces.io import atomic_write  # noqa: E402

HOURS = 3600e6


def _save(fig: plt.Figure, path: str) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                               metadata={"Software": None}))
    plt.close(fig)


def zombies_figure(timelines: dict[str, Samples]) -> plt.Figure:
    """Fleet zombie count over simulated hours, one line per policy."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, s in timelines.items():
        ax.plot(s[TIME] / HOURS, s[ZOMBIES], label=label)
    ax.set(xlabel="simulated time (h)", ylabel="zombie memcgs (fleet)", title="Zombie memcgs per policy")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def cost_figure(timelines: dict[str, Samples]) -> plt.Figure:
    """Memory held by zombie memcgs at the end of the replay, one bar per policy (MiB)."""
    labels = list(timelines)
    values = [float(s[COST][-1]) / 2**20 if COST in s and len(s[COST]) else 0.0 for s in timelines.values()]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) + 2), 4.5))
    ax.bar(range(len(labels)), values)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
    ax.set(ylabel="MiB (fleet)", title="Memory cost of zombie memcgs at the end")
    fig.tight_layout()
    return fig


def holders_figure(timelines: dict[str, Samples]) -> plt.Figure:
    """What holds the zombies over time: one panel per policy, one line per cause.

    A zombie is often held for several reasons at once (swap entries and a dying child, say),
    so the causes overlap: each is drawn as its own line, never stacked, beside the zombie
    count itself (dashed). Every panel has the same y-scale, so the policies compare by eye.
    """
    n = max(1, len(timelines))
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), sharex=True, sharey=True, squeeze=False)
    for ax, (label, s) in zip(axes[:, 0], timelines.items()):
        hours = s[TIME] / HOURS
        ax.plot(hours, np.asarray(s[ZOMBIES], dtype=float), color="black", linestyle="--", label="zombies")
        for i, h in enumerate(HOLDERS):  # a cause has the same colour in every panel
            if h in s and np.any(np.asarray(s[h]) > 0):
                ax.plot(hours, np.asarray(s[h], dtype=float), color=f"C{i % 10}", label=h[5:])
        ax.set(title=label, ylabel="zombies")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", ncol=2)
    axes[-1, 0].set_xlabel("simulated time (h); a zombie counts under every cause that holds it")
    fig.tight_layout()
    return fig


def plot_zombies(timelines: dict[str, Samples], path: str) -> None:
    """``zombies_figure`` as a PNG."""
    _save(zombies_figure(timelines), path)


def plot_cost(timelines: dict[str, Samples], path: str) -> None:
    """``cost_figure`` as a PNG."""
    _save(cost_figure(timelines), path)


def plot_holders(timelines: dict[str, Samples], path: str) -> None:
    """``holders_figure`` as a PNG."""
    _save(holders_figure(timelines), path)


def plot_all(timelines: dict[str, Samples], out_dir: str) -> list[str]:
    """All three plots into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [str(Path(out_dir, n)) for n in ("zombies.png", "cost.png", "holders.png")]
    plot_zombies(timelines, paths[0])
    plot_cost(timelines, paths[1])
    plot_holders(timelines, paths[2])
    return paths
