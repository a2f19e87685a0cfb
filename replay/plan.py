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

from core.errors import ConfigError, TraceError
from replay.config import GIB, ReplayConfig
from traces.batches import machine_ids
from traces.generate import PRESETS, SynthParams, generate_machine, machine_name
from traces.io import group_by_machine, read_trace, write_trace
from traces.problems import raise_problems
from traces.validate import validate_file, validate_table

#: most step-grid rounds or samples per machine a replay may span: an event at 2^62 µs would
#: otherwise ask for billions of rounds (a MemoryError long after the start)
MAX_POINTS = 10_000_000


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
        raise ConfigError(f"trace.preset: {cfg.trace.preset!r} is not one of {', '.join(sorted(PRESETS))}")
    params = PRESETS[cfg.trace.preset]
    names = {f.name for f in dataclasses.fields(params)}
    bad = sorted(set(cfg.trace.params) - names)
    if bad:
        raise ConfigError(f"trace.params.{bad[0]}: not a generator parameter (known: {', '.join(sorted(names))})")
    over: dict[str, Any] = {}
    if cfg.fleet.machines > 0:
        over["machines"] = cfg.fleet.machines
    if cfg.machine.mem_gib is not None:
        over["mem_bytes"] = int(cfg.machine.mem_gib * GIB)
    if cfg.machine.swap_gib is not None:
        over["swap_bytes"] = int(cfg.machine.swap_gib * GIB)
    over.update(cfg.trace.params)  # explicit generator parameters win
    problems = SynthParams.problems_of(dataclasses.asdict(params) | over)
    if problems:
        raise ConfigError("; ".join(f"trace.params.{p}" if k in cfg.trace.params else _synth_key(k, p)
                                    for k, p in problems))
    return SynthParams.from_values(dataclasses.asdict(params) | over)


def _synth_key(name: str, problem: str) -> str:
    # a generator parameter set through another group: name the key the user wrote
    keys = {"machines": "fleet.machines", "mem_bytes": "machine.mem_gib", "swap_bytes": "machine.swap_gib"}
    return problem.replace(name, keys.get(name, f"trace.params.{name}"), 1)


def check_span(t_max_us: int, cfg: ReplayConfig, where: str) -> None:
    """Refuse a replay whose step grid or sampling would need more than ``MAX_POINTS`` points."""
    grain = min(cfg.executor.step_s, cfg.fleet.sample_interval_s) * 1_000_000
    if t_max_us // grain > MAX_POINTS:
        days = t_max_us / 86_400e6
        raise ConfigError(f"{where}: {t_max_us} µs is {days:,.0f} days into the replay; at "
                          f"{grain // 1_000_000} s per step or sample that is more than {MAX_POINTS:,} "
                          "points (cut the trace with `python -m traces transform window`)")


def expected_events_per_machine(synth: dict[str, Any], seed: int) -> float:
    """Events one machine of a synthetic fleet is expected to have: machine 0 generated for at most a
    simulated hour (about 0.5 s), scaled to the whole duration. Sizes shard memory, nothing else."""
    params = SynthParams(**synth)
    sample_s = min(params.duration_s, 3600.0)
    rows = generate_machine(dataclasses.replace(params, duration_s=sample_s), seed, 0).num_rows
    return rows * params.duration_s / sample_s


def synthetic_plan(cfg: ReplayConfig, n_shards: int, step_us: int, workdir: str = "",
                   lo: int = 0, hi: int = -1, tag: str = "") -> Plan:
    """Equal shards of machines [lo, hi) of the synthetic fleet (all by default); each shard
    will generate its own machines.

    With a ``workdir`` each shard's generated events are kept there (file names prefixed by
    ``tag``) for the run's next policies.
    """
    p = synth_params(cfg)
    ids = [machine_name(i) for i in range(p.machines)]
    hi = len(ids) if hi < 0 else hi
    shards = [ShardPlan(ids[lo + a:lo + b], lo + a, -1,
                        os.path.join(workdir, f"synth-{tag}{k:04d}.parquet") if workdir else "")
              for k, (a, b) in enumerate(split(np.ones(hi - lo), n_shards))]
    duration_us = int(p.duration_s * 1_000_000)
    t_end = -(-duration_us // step_us) * step_us  # every event is before duration_us
    return Plan(ids, shards, -1, t_end, _layout(shards), f"synthetic:{cfg.trace.preset}",
                dataclasses.asdict(p), p.mem_bytes)


# -- file and imported traces -------------------------------------------------------------------
def load_trace(cfg: ReplayConfig) -> tuple[pa.Table, str]:
    """The table of a file or imported trace, and a name for it in messages.

    A file is validated as a whole first (``traces.validate.validate_file``): any problem,
    down to an unreadable, empty or truncated file, is a ``TraceInvalid`` carrying the
    validator's report.
    """
    t = cfg.trace
    if t.source == "file":
        if not t.path:
            raise ValueError("trace.path: a file trace needs a path")
        raise_problems(validate_file(t.path))
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


def table_plan(table: pa.Table, source: str, n_shards: int, step_us: int, workdir: str,
               wave_machines: int = 0) -> list[Plan]:
    """Split a validated trace into waves of at most ``wave_machines`` machines (0: one wave),
    each into ``n_shards`` partitions written under ``workdir``."""
    table = group_by_machine(table)
    ids = machine_ids(table)
    if not ids:
        raise ValueError(f"{source}: the trace has no events")
    counts = _events_per_machine(table, ids)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    t_max = int(pc.max(table.column("time_us")).as_py())
    t_end = (t_max // step_us + 1) * step_us  # the whole fleet's end, the same for every wave
    plans = []
    for w, (lo, hi) in enumerate(wave_bounds(len(ids), wave_machines)):
        shards = []
        for k, (a, b) in enumerate(split(counts[lo:hi], n_shards)):
            sp = ShardPlan(ids[lo + a:lo + b], lo + a, int(offsets[lo + b] - offsets[lo + a]))
            sp.trace_path = os.path.join(workdir, f"shard-{w:04d}-{k:04d}.parquet")
            write_trace(table.slice(int(offsets[lo + a]), sp.events), sp.trace_path)
            shards.append(sp)
        plans.append(Plan(ids, shards, int(counts[lo:hi].sum()), t_end, _layout(shards), source))
    return plans


def wave_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive [lo, hi) machine ranges of at most ``size`` machines (``size`` <= 0: one range)."""
    size = n if size <= 0 else size
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _events_per_machine(table: pa.Table, ids: list[str]) -> np.ndarray:
    counts = pc.value_counts(table.column("machine"))
    by_id = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    return np.array([by_id[i] for i in ids], dtype=np.int64)


def load_checked(cfg: ReplayConfig) -> Optional[tuple[pa.Table, str]]:
    """Everything about the trace that can be refused before any work, checked now.

    Synthetic: the preset, ``trace.params`` and the span (returns None; shards generate the
    events). File and imported traces: the validator's report, an empty fleet and the span;
    returns the table cut to ``fleet.machines`` and its name in messages. Raises
    ``TraceError`` (``TraceInvalid``) or ``ConfigError``.
    """
    if cfg.trace.source == "synthetic":
        check_span(int(synth_params(cfg).duration_s * 1_000_000), cfg, "trace.params.duration_s")
        return None
    table, source = load_trace(cfg)
    table = keep_machines(table, cfg.fleet.machines)
    if cfg.trace.source != "file":  # a file was validated whole by load_trace
        check_trace(table, source)
    if table.num_rows == 0:
        raise TraceError(source, 0, "time_us", "the trace has no events")
    times = table.column("time_us")
    row = int(pc.index(times, pc.max(times)).as_py())
    check_span(int(times[row].as_py()), cfg, f"{source}:{row + 1}: time_us")
    return table, source


def make_plans(cfg: ReplayConfig, n_shards_for, workdir: str, reuse: bool = True,
               loaded: Optional[tuple[pa.Table, str]] = None) -> list[Plan]:
    """The plans for ``cfg``, one per wave of ``executor.wave_machines`` machines (0: one plan for
    the whole fleet); ``n_shards_for(machines)`` picks a wave's shard count. ``reuse``: keep
    generated synthetic events in ``workdir`` for later policies (~12 bytes per event on disk;
    pointless for one policy)."""
    step_us = cfg.executor.step_s * 1_000_000
    size = cfg.executor.wave_machines
    if cfg.trace.source == "synthetic":
        n = synth_params(cfg).machines
        bounds = wave_bounds(n, size)
        return [synthetic_plan(cfg, n_shards_for(hi - lo), step_us, workdir if reuse else "", lo, hi,
                               f"{w:04d}-" if len(bounds) > 1 else "")
                for w, (lo, hi) in enumerate(bounds)]
    table, source = loaded or load_checked(cfg)  # type: ignore[misc]
    n = len(machine_ids(table))
    return table_plan(table, source, n_shards_for(min(n, size) if size > 0 else n), step_us, workdir, size)
