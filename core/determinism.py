"""Memory determinism: how much the same job's peak memory varies with its neighbours.

In: several per-job tables (``Machine.job_table()``, ``core.metrics.JOB_COLUMNS``)
from runs of the same job placed with different co-located neighbours, and the
job's cgroup path. Out: a ``Spread`` — the job's peak charged bytes in each
run, max − min, and that difference relative to the smallest peak.

The talk's "same job, different memory use": under first-touch charging, and
more so when charges move at a neighbour's death (reparenting, recharging),
what a job is billed depends on who else ran beside it. A spread of 0 means
the job's memory use is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Peaks of one job across runs and their spread."""

    cgroup: str
    peaks: tuple[int, ...]  #: peak bytes per run, in the order the runs were given

    @property
    def spread_bytes(self) -> int:
        """max − min of the peaks."""
        return max(self.peaks) - min(self.peaks)

    @property
    def relative(self) -> float:
        """spread_bytes / the smallest peak (0 when every peak is 0)."""
        low = min(self.peaks)
        if low == 0:
            return 0.0 if self.spread_bytes == 0 else float("inf")
        return self.spread_bytes / low


def job_peak(table: dict[str, list], cgroup: str) -> int:
    """The peak bytes of ``cgroup`` in one job table (the largest if the path was reused)."""
    peaks = [p for c, p in zip(table["cgroup"], table["peak_bytes"]) if c == cgroup]
    if not peaks:
        raise KeyError(f"job {cgroup} is not in the job table")
    return max(peaks)


def peak_spread(tables: list[dict[str, list]], cgroup: str) -> Spread:
    """The spread of ``cgroup``'s peak across ``tables`` (one per run; at least one)."""
    if not tables:
        raise ValueError("peak_spread needs at least one run")
    return Spread(cgroup, tuple(job_peak(t, cgroup) for t in tables))
