"""The fleet timeline, built from parts that merge exactly: rounds, shards or waves of machines.

In: regular-interval per-machine sample columns (``core.metrics.expand_columns``). Out: per
sample time the machine count, every metric combined over machines (``replay.columns.NOT_SUMMED``
says how: summed, largest, or dropped) and nearest-rank percentiles of the zombie count.

A ``FleetPart`` holds per time the combined metrics and the histogram of the machines' zombie
counts, so parts computed over disjoint sets of machines (the waves of a fleet too big to hold
at once) merge into the part of their union: the summed columns are integers (the only float
columns are the zombie ages, combined by max or dropped) and a histogram adds up, so the merged
table is the one the whole fleet gives, bit for bit, whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replay.columns import FLEET_PERCENTILES, NOT_SUMMED, TIME, ZOMBIES

Samples = dict[str, np.ndarray]


@dataclass
class FleetPart:
    """``rows``: per sample time (sorted), ``machines`` and each combined metric; ``hist``: per
    (time, zombie count) pair sorted by both, how many machines had it (``time_us``, ``z``, ``n``)."""

    rows: Samples
    hist: Samples


def fleet_part(s: Samples) -> FleetPart:
    """The fleet part of regular-interval per-machine samples ``s`` (any machines, any times)."""
    if not s:
        return FleetPart({}, {})
    times, inv = np.unique(s[TIME], return_inverse=True)
    rows: Samples = {TIME: times, "machines": np.bincount(inv, minlength=len(times)).astype(np.int64)}
    for k, v in s.items():
        how = NOT_SUMMED.get(k, "sum")
        if k in (TIME, "machine") or how == "drop":
            continue
        rows[k] = _group_sum(inv, v, len(times)) if how == "sum" else _group_max(inv, v, len(times))
    return FleetPart(rows, _histogram(times, inv, s[ZOMBIES].astype(np.int64), np.ones(len(inv), np.int64)))


def merge_parts(parts: list[FleetPart]) -> FleetPart:
    """One part for the union of the machines (and times) of ``parts``."""
    parts = [p for p in parts if p.rows]
    if len(parts) <= 1:
        return parts[0] if parts else FleetPart({}, {})
    cat = {k: np.concatenate([p.rows[k] for p in parts]) for k in parts[0].rows}
    times, inv = np.unique(cat[TIME], return_inverse=True)
    rows: Samples = {TIME: times}
    for k, v in cat.items():
        if k == TIME:
            continue
        how = "sum" if k == "machines" else NOT_SUMMED.get(k, "sum")
        rows[k] = _group_sum(inv, v, len(times)) if how == "sum" else _group_max(inv, v, len(times))
    h = {k: np.concatenate([p.hist[k] for p in parts]) for k in ("time_us", "z", "n")}
    return FleetPart(rows, _histogram(times, np.searchsorted(times, h["time_us"]), h["z"], h["n"]))


def fleet_table(part: FleetPart) -> Samples:
    """The fleet timeline of a part: its rows plus the zombie percentiles over machines
    (nearest rank: the smallest count that at least ``q`` % of the machines do not exceed)."""
    if not part.rows:
        return {}
    out = dict(part.rows)
    times, h = out[TIME], part.hist
    n = h["n"]
    cum = np.cumsum(n)  # machines so far, over (time, count) pairs in order
    first = np.searchsorted(h["time_us"], times)  # each time's first pair
    before = np.where(first > 0, cum[np.maximum(first, 1) - 1], 0)
    counts = out["machines"]
    for name, q in FLEET_PERCENTILES.items():
        rank = np.clip(np.ceil(q / 100 * counts).astype(np.int64) - 1, 0, counts - 1)
        out[name] = h["z"][np.searchsorted(cum, before + rank, side="right")].astype(np.int64)
    return out


def fleet_rows(s: Samples) -> Samples:
    """Per sample time: machine count, every metric combined over machines, zombie percentiles."""
    return fleet_table(fleet_part(s))


def _histogram(times: np.ndarray, t_index: np.ndarray, z: np.ndarray, n: np.ndarray) -> Samples:
    # (time, count) pairs summed: one key per pair, sorted by time then count
    zmin = int(z.min()) if len(z) else 0
    span = (int(z.max()) - zmin + 1) if len(z) else 1
    keys, inv = np.unique(t_index.astype(np.int64) * span + (z - zmin), return_inverse=True)
    return {"time_us": times[keys // span], "z": keys % span + zmin, "n": _group_sum(inv, n, len(keys))}


def _group_sum(inv: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    if v.dtype.kind in "iub":
        out = np.zeros(n, dtype=np.int64)
        np.add.at(out, inv, v.astype(np.int64))
        return out
    return np.bincount(inv, weights=v.astype(np.float64), minlength=n)


def _group_max(inv: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    # integers of any width give int64 (the driver keeps narrowed columns: ``coordinator.narrow``)
    out = (np.full(n, -np.inf, dtype=v.dtype) if v.dtype.kind == "f"
           else np.full(n, np.iinfo(np.int64).min, dtype=np.int64))
    np.maximum.at(out, inv, v)
    return out
