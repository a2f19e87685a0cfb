"""From a trace config to a validated trace split into per-shard Parquet partitions.

In: ``TraceCfg``/``FleetCfg`` (synthetic preset, native file or public-trace importer) and a
shard count. Out: a ``Plan``: the sorted machine ids of the fleet, per shard its machines and
the Parquet file holding only their events, the end of the replay on the step grid, and a
``layout`` digest naming this partitioning in the run store.

An invalid trace is refused here, with the validator's full report, before anything runs.
Shards are contiguous runs of the sorted machine ids, balanced by event count, so a shard's
cost is about the same whatever the fleet's mix of busy and idle machines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from replay.config import ReplayConfig
from traces.batches import machine_ids
from traces.io import group_by_machine, read_trace, write_trace
from traces.problems import raise_problems
from traces.validate import validate_table


@dataclass
class ShardPlan:
    """One shard's machines (sorted), their global index offset and their event file."""

    machines: list[str]
    first_machine: int
    events: int
    trace_path: str = ""


@dataclass
class Plan:
    """The fleet and how it is split; ``t_end_us`` is the last grid point of the replay."""

    machines: list[str]
    shards: list[ShardPlan]
    events: int
    t_end_us: int
    layout: str
    source: str


def load_trace(cfg: ReplayConfig) -> tuple[pa.Table, str]:
    """The trace table a config asks for, and a name for it in messages."""
    t = cfg.trace
    if t.source == "synthetic":
        return _synthetic(cfg), f"synthetic:{t.preset}"
    if t.source == "file":
        if not t.path:
            raise ValueError("trace.path: a file trace needs a path")
        return read_trace(t.path), t.path
    if t.source == "import":
        return _imported(cfg), f"{t.importer}:{t.path}"
    raise ValueError(f"trace.source: {t.source!r} is not one of synthetic, file, import")


def _synthetic(cfg: ReplayConfig) -> pa.Table:
    from traces.generate import PRESETS, generate

    if cfg.trace.preset not in PRESETS:
        raise ValueError(f"trace.preset: {cfg.trace.preset!r} is not one of {sorted(PRESETS)}")
    params = PRESETS[cfg.trace.preset]
    names = {f.name for f in dataclasses.fields(params)}
    bad = sorted(set(cfg.trace.params) - names)
    if bad:
        raise ValueError(f"trace.params: unknown SynthParams fields {bad} (known: {sorted(names)})")
    over = dict(cfg.trace.params)
    if cfg.fleet.machines > 0 and "machines" in names:
        over.setdefault("machines", cfg.fleet.machines)
    return generate(dataclasses.replace(params, **over), cfg.seed)


def _imported(cfg: ReplayConfig) -> pa.Table:
    import importlib

    t = cfg.trace
    if not t.importer or not t.path:
        raise ValueError("trace.importer and trace.path: an imported trace needs both")
    module = importlib.import_module(f"traces.importers.{t.importer}")
    return module.import_trace(t.path)


def check_trace(table: pa.Table, source: str) -> None:
    """Refuse an invalid trace with the validator's full report (``TraceInvalid``)."""
    raise_problems(validate_table(table, source))


def keep_machines(table: pa.Table, n: int) -> pa.Table:
    """The rows of the first ``n`` machines in sorted id order (all when n <= 0)."""
    ids = machine_ids(table)
    if n <= 0 or n >= len(ids):
        return table
    return table.filter(pc.is_in(table.column("machine"), pa.array(ids[:n])))


def split(counts: np.ndarray, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) ranges of machines with about equal event totals, none empty."""
    n = len(counts)
    n_shards = max(1, min(n_shards, n))
    cum = np.cumsum(counts, dtype=np.int64)
    targets = cum[-1] * np.arange(1, n_shards) / n_shards
    cuts = np.searchsorted(cum, targets, side="left") + 1
    # keep every shard non-empty even when one machine holds most events: cuts strictly
    # increasing, at least i+1 and leaving room for the shards after them
    step = np.arange(1, n_shards)
    cuts = np.maximum.accumulate(np.maximum(cuts, step) - step) + step
    cuts = np.minimum(cuts, n - n_shards + step)
    bounds = [0, *cuts.tolist(), n]
    return [(bounds[i], bounds[i + 1]) for i in range(n_shards)]


def make_plan(table: pa.Table, source: str, n_shards: int, step_us: int, workdir: str) -> Plan:
    """Split a validated trace into ``n_shards`` partitions written under ``workdir``."""
    table = group_by_machine(table)
    ids = machine_ids(table)
    if not ids:
        raise ValueError(f"{source}: the trace has no events")
    counts = _events_per_machine(table, ids)
    shards, offsets = [], np.concatenate([[0], np.cumsum(counts)])
    for k, (lo, hi) in enumerate(split(counts, n_shards)):
        sp = ShardPlan(ids[lo:hi], lo, int(offsets[hi] - offsets[lo]))
        sp.trace_path = os.path.join(workdir, f"shard-{k:04d}.parquet")
        write_trace(table.slice(int(offsets[lo]), sp.events), sp.trace_path)
        shards.append(sp)
    t_max = int(pc.max(table.column("time_us")).as_py())
    t_end = (t_max // step_us + 1) * step_us
    layout = hashlib.sha256("\n".join("\t".join(s.machines) for s in shards).encode()).hexdigest()[:16]
    return Plan(ids, shards, int(counts.sum()), t_end, layout, source)


def _events_per_machine(table: pa.Table, ids: list[str]) -> np.ndarray:
    counts = pc.value_counts(table.column("machine"))
    by_id = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    return np.array([by_id[i] for i in ids], dtype=np.int64)
