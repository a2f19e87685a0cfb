"""From a trace config to the fleet split into shards, each with its own events.

In: ``TraceCfg``/``FleetCfg``/``MachineCfg`` and a shard count. Out: a ``Plan``: the sorted
machine ids of the fleet, per shard its machines and where its events come from, the end of the
replay on the step grid, and a ``layout`` digest naming this partitioning in the run store.

- Synthetic traces are never materialised by the driver: generation is deterministic per
  machine (``traces.generate.generate_machine``), so each shard generates its own machines.
  Shards get equal machine counts.
- File and imported traces are read, cut to the fleet size and validated here -- an invalid
  trace is refused with the validator's full report before anything runs -- then written as one
  Parquet partition per shard. Shards are contiguous runs of the sorted machine ids, balanced
  by event count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from replay.config import GIB, ReplayConfig
from traces.batches import machine_ids
from traces.generate import PRESETS, SynthParams, machine_name
from traces.io import group_by_machine, read_trace, write_trace
from traces.problems import raise_problems
from traces.validate import validate_table


@dataclass
class ShardPlan:
    """One shard's machines (sorted), their global index offset, event count and event file.

    For synthetic traces ``events`` is -1 and ``trace_path`` is where the shard that first
    generates the events leaves them, so that the shards of the next policies read them back
    instead of generating them again.
    """

    machines: list[str]
    first_machine: int
    events: int
    trace_path: str = ""


@dataclass
class Plan:
    """The fleet and how it is split; ``t_end_us`` is the last grid point of the replay."""

    machines: list[str]
    shards: list[ShardPlan]
    events: int  # -1 when not known before the replay (synthetic)
    t_end_us: int
    layout: str
    source: str
    synth: Optional[dict[str, Any]] = None  # SynthParams fields when shards generate their events
    mem_bytes: Optional[int] = None  # machine size a synthetic trace was drawn for


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


def _layout(shards: list[ShardPlan]) -> str:
    return hashlib.sha256("\n".join("\t".join(s.machines) for s in shards).encode()).hexdigest()[:16]


# -- synthetic ---------------------------------------------------------------------------------
def synth_params(cfg: ReplayConfig) -> SynthParams:
    """The preset's parameters with the fleet size, the machine size and ``trace.params`` applied."""
    if cfg.trace.preset not in PRESETS:
        raise ValueError(f"trace.preset: {cfg.trace.preset!r} is not one of {sorted(PRESETS)}")
    params = PRESETS[cfg.trace.preset]
    names = {f.name for f in dataclasses.fields(params)}
    bad = sorted(set(cfg.trace.params) - names)
    if bad:
        raise ValueError(f"trace.params: unknown SynthParams fields {bad} (known: {sorted(names)})")
    over: dict[str, Any] = {}
    if cfg.fleet.machines > 0:
        over["machines"] = cfg.fleet.machines
    if cfg.machine.mem_gib is not None:
        over["mem_bytes"] = int(cfg.machine.mem_gib * GIB)
    if cfg.machine.swap_gib is not None:
        over["swap_bytes"] = int(cfg.machine.swap_gib * GIB)
    over.update(cfg.trace.params)  # explicit generator parameters win
    return dataclasses.replace(params, **over)


def synthetic_plan(cfg: ReplayConfig, n_shards: int, step_us: int, workdir: str = "") -> Plan:
    """Equal shards of the synthetic fleet; each shard will generate its own machines.

    With a ``workdir`` each shard's generated events are kept there for the run's next policies.
    """
    p = synth_params(cfg)
    ids = [machine_name(i) for i in range(p.machines)]
    shards = [ShardPlan(ids[lo:hi], lo, -1, os.path.join(workdir, f"synth-{k:04d}.parquet") if workdir else "")
              for k, (lo, hi) in enumerate(split(np.ones(len(ids)), n_shards))]
    duration_us = int(p.duration_s * 1_000_000)
    t_end = -(-duration_us // step_us) * step_us  # every event is before duration_us
    return Plan(ids, shards, -1, t_end, _layout(shards), f"synthetic:{cfg.trace.preset}",
                dataclasses.asdict(p), p.mem_bytes)


# -- file and imported traces -------------------------------------------------------------------
def load_trace(cfg: ReplayConfig) -> tuple[pa.Table, str]:
    """The table of a file or imported trace, and a name for it in messages."""
    t = cfg.trace
    if t.source == "file":
        if not t.path:
            raise ValueError("trace.path: a file trace needs a path")
        return read_trace(t.path), t.path
    if t.source == "import":
        if not t.importer or not t.path:
            raise ValueError("trace.importer and trace.path: an imported trace needs both")
        module = importlib.import_module(f"traces.importers.{t.importer}")
        return module.import_trace(t.path), f"{t.importer}:{t.path}"
    raise ValueError(f"trace.source: {t.source!r} is not one of synthetic, file, import")


def check_trace(table: pa.Table, source: str) -> None:
    """Refuse an invalid trace with the validator's full report (``TraceInvalid``)."""
    raise_problems(validate_table(table, source))


def keep_machines(table: pa.Table, n: int) -> pa.Table:
    """The rows of the first ``n`` machines in sorted id order (all when n <= 0)."""
    ids = machine_ids(table)
    if n <= 0 or n >= len(ids):
        return table
    return table.filter(pc.is_in(table.column("machine"), pa.array(ids[:n])))


def table_plan(table: pa.Table, source: str, n_shards: int, step_us: int, workdir: str) -> Plan:
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
    return Plan(ids, shards, int(counts.sum()), t_end, _layout(shards), source)


def _events_per_machine(table: pa.Table, ids: list[str]) -> np.ndarray:
    counts = pc.value_counts(table.column("machine"))
    by_id = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    return np.array([by_id[i] for i in ids], dtype=np.int64)


def make_plan(cfg: ReplayConfig, n_shards_for, workdir: str) -> Plan:
    """The plan for ``cfg``; ``n_shards_for(machines)`` picks the shard count."""
    step_us = cfg.executor.step_s * 1_000_000
    if cfg.trace.source == "synthetic":
        return synthetic_plan(cfg, n_shards_for(synth_params(cfg).machines), step_us, workdir)
    table, source = load_trace(cfg)
    table = keep_machines(table, cfg.fleet.machines)
    check_trace(table, source)
    return table_plan(table, source, n_shards_for(len(machine_ids(table))), step_us, workdir)
