"""The coordinator: drives the shards round by round, aggregates, checkpoints and resumes.

In: a ``Plan`` (shards and their partitions), an ``Executor`` that holds the shards, the run
store and the run's key. Out: ``Collected`` — the per-machine timeline (sorted by machine, then
time), the fleet timeline (aggregated as rounds arrive), per-machine summaries and job rows.

Rounds: every shard is advanced to the next point of the ``step_us`` grid and returns the
samples taken since the previous round, and the job rows of the cgroups freed meanwhile. At
points of the ``Cadence`` grid (``checkpoint_every_s``), when enough wall time has passed since the
previous checkpoint, the coordinator asks the shards to save their state; once all of them have
answered, it commits that time together with the samples and job rows since the last commit.
A later process resumes from the last commit: shards restore the matching checkpoint and the
committed samples are reloaded, so the end result is the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from core.metrics import POINT_COLUMNS, SAMPLE_COLUMNS, expand_columns
from replay.columns import TIME
from replay.executors import Executor
from replay.fleet import FleetPart, fleet_part, fleet_table, merge_parts
from replay.plan import Plan
from replay.progress import Progress, fmt_sim
from replay.shard import Samples, concat_samples, pack, unpickle
from replay.store import RunStore

StepHook = Callable[[int, Executor], None]


@dataclass
class Collected:
    """Everything one policy's replay produced, independent of sharding and restarts."""

    #: per-machine timeline as compact change points sorted by (machine, time): ``expand_columns``
    #: (or ``replay.outputs`` when writing) turns it into the regular-interval table
    machines: Samples
    fleet: Samples
    summaries: list[dict[str, Any]]
    jobs: Samples
    events: int
    wall_s: float
    resumed_from_us: int = -1
    stats: dict[str, float] = field(default_factory=dict)
    #: what the fleet timeline is made of (``replay.fleet``): merged with other waves' exactly
    fleet_part: Optional[FleetPart] = None
    #: the per-machine rows at the latest sample time (regular-interval), for the summary
    last: Samples = field(default_factory=dict)
    #: when not empty, ``machines`` and ``jobs`` are in these files, one per wave in machine
    #: order (``replay.waves``), and the two fields are empty
    spilled: list[str] = field(default_factory=list)
    #: sha256 of each spilled file (``replay.waves.spill``), checked before a resumed run reuses it
    digests: list[str] = field(default_factory=list)


def sort_samples(s: Samples) -> Samples:
    """Rows ordered by (machine, time): the same whatever the shard layout."""
    return sort_parts([dict(s)]) if s else s


#: columns of the per-machine timeline that are int64 in the outputs (the model's samples, the
#: compact rows' bookkeeping); ``narrow`` keeps them smaller in the driver, ``wide`` restores them
WIDE: frozenset[str] = frozenset(SAMPLE_COLUMNS) | frozenset(POINT_COLUMNS)
_NARROW = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))


def narrow(s: Samples) -> Samples:
    """``s`` with each int64 column of ``WIDE`` in the smallest signed type that holds its values
    (exact; most counters of a round are small or zero): a wave of 1,000 Google-2011-shaped
    machines x 29 days keeps ~4M rows of 74 columns until it is written."""
    out = dict(s)
    for k, v in s.items():
        if k in WIDE and v.dtype == np.int64 and len(v):
            lo, hi = int(v.min()), int(v.max())
            for t in _NARROW:
                info = np.iinfo(t)
                if info.min <= lo and hi <= info.max:
                    out[k] = v.astype(t)
                    break
    return out


def wide(s: Samples) -> Samples:
    """``narrow`` undone: the ``WIDE`` integer columns as int64 again (what the outputs hold)."""
    return {k: v.astype(np.int64) if k in WIDE and v.dtype.kind == "i" and v.dtype != np.int64 else v
            for k, v in s.items()}


def sort_parts(parts: list[Samples]) -> Samples:
    """``sort_samples`` of the concatenation of ``parts``, a column at a time: each column is
    taken out of the parts as it is sorted, so the parts and the result are never both whole in
    memory (a wave of 1,000 Google-2011-shaped machines x 29 days holds ~2.5 GB of rows)."""
    parts = [p for p in parts if p and len(next(iter(p.values()))) > 0]
    if not parts:
        return {}
    order = np.lexsort((np.concatenate([p[TIME] for p in parts]), np.concatenate([p["machine"] for p in parts])))
    out: Samples = {}
    for k in list(parts[0]):
        out[k] = np.concatenate([p.pop(k) for p in parts])[order]
    return out


def last_samples(s: Samples) -> Samples:
    """The rows at the latest sample time of a (compact or regular) per-machine timeline."""
    if not s:
        return s
    if "_reps" in s:
        w = wide({k: s[k] for k in ("time_us", "_reps", "_interval")})  # no narrow product overflows
        t_last = w["time_us"] + (w["_reps"] - 1) * w["_interval"]
        sel = t_last == t_last.max()  # rows whose last sample is the latest one
        part = wide({k: v[sel] for k, v in s.items()})
        part["time_us"], part["_reps"] = t_last[sel], np.ones(int(sel.sum()), dtype=np.int64)
        return expand_columns(part)
    return {k: v[s[TIME] == s[TIME].max()] for k, v in s.items()}


def order_jobs(released: list[Samples], live: list[Samples]) -> Samples:
    """The job table in machine order: per machine its freed cgroups in release order, then live ones.

    ``released``: job rows of freed cgroups as the rounds returned them (round order);
    ``live``: the rows ``finish`` returned. A stable sort by machine keeps each machine's
    release order and puts its live rows last, whatever the shard layout.
    """
    jobs = concat_samples([*released, *live])
    if not jobs:
        return jobs
    order = np.argsort(jobs["machine"], kind="stable")
    return {k: v[order] for k, v in jobs.items()}


@dataclass(frozen=True)
class Cadence:
    """When the shards checkpoint: at the points of the ``every_us`` grid of simulated time (0: never)
    that come at least ``min_wall_s`` of wall time after the previous checkpoint (0: at every one).
    Results never depend on it; what a kill loses and what checkpoints cost do."""

    every_us: int
    min_wall_s: float = 0.0


class Coordinator:
    """Runs one policy's replay of a plan on an executor."""

    def __init__(self, plan: Plan, executor: Executor, store: Optional[RunStore], run: str,
                 step_us: int, cadence: Cadence, progress: Progress,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plan, self.ex, self.store, self.run = plan, executor, store, run
        self.step_us = step_us
        # checkpoints only ever fall on the step grid: at every round when the rounds are longer than the
        # grid's spacing (rounded down to a multiple of the step it was 0 there, and no checkpoint was taken)
        self.every_us = max(step_us, (cadence.every_us // step_us) * step_us) if cadence.every_us else 0
        self.min_wall_s = cadence.min_wall_s
        self.clock = clock
        self.last_checkpoint = clock()  # wall time of the last checkpoint asked for (the run's start at first)
        self.checkpoints: set[int] = set()  # times of the rounds submitted with a checkpoint, not yet committed
        self.progress = progress
        self.parts: list[Samples] = []
        self.fleet_parts: list[FleetPart] = []
        self.job_parts: list[Samples] = []  # job rows of freed cgroups, in round order
        self.uncommitted: list[tuple[Samples, Samples]] = []
        # where the wall time went (seconds; diagnostics for the benchmark, never in outputs)
        self.stats: dict[str, float] = {}

    def _count(self, key: str, value: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + value

    def resume_point(self) -> int:
        """Last committed time (-1: fresh); drops shard checkpoints that do not match it."""
        if self.store is None:
            return -1
        t, chunks = self.store.committed(self.run, self.plan.layout)
        for i in range(len(self.plan.shards)):
            # a checkpoint newer than the commit lacks samples the coordinator never saved
            self.store.drop_checkpoints(self.run, self.plan.layout, i, keep_until=max(t, -1))
        for c in chunks:
            self._take(*unpickle(c))  # (samples, job rows) since the previous commit
        return t

    def _take(self, s: Samples, jobs: Samples) -> Samples:
        # ``s``: the shards' samples as compact change points (``core.metrics.points_columns``), kept
        # so until the end in narrow integers; the fleet timeline needs every sample time, so the
        # round is expanded for it. Returns what is kept of ``s``.
        if s:
            self.fleet_parts.append(fleet_part(expand_columns(s)))
            s = narrow(s)
            self.parts.append(s)
        if jobs:
            self.job_parts.append(jobs)
        return s

    def round_times(self, start_us: int) -> list[int]:
        """Targets of the rounds after ``start_us``: the step grid, the plan's end last."""
        first = (max(start_us, 0) // self.step_us + 1) * self.step_us
        return [*range(first, self.plan.t_end_us, self.step_us), self.plan.t_end_us]

    def run_rounds(self, start_us: int, on_step: Optional[StepHook] = None) -> int:
        """Advance every shard from ``start_us`` to the plan's end; returns events applied.

        Rounds are pipelined: round k+1 is queued on every shard before round k is awaited, so
        a shard that finishes a round early goes on instead of idling at the barrier, and the
        driver's aggregation overlaps the shards' work. Call k+1 acknowledges round k's samples
        before the driver holds them: each shard runs its calls in order and a returned result
        survives the shard's death, so those samples cannot be lost. With ``on_step`` the
        rounds are not pipelined, so that the hook sees every shard stopped at the round's time
        -- unless the hook says it does not need that (``on_step.pipelined = True``).
        """
        times = self.round_times(start_us) if start_us < self.plan.t_end_us else []
        acks = [start_us, *times[:-1]]
        depth = 1 if on_step is not None and not getattr(on_step, "pipelined", False) else 2
        sent, events = 0, 0
        self.progress.begin(start_us)
        for k, t in enumerate(times):
            while sent < min(len(times), k + depth):
                self.ex.submit(times[sent], acks[sent], self._checkpoint_at(times[sent]))
                sent += 1
            events = self._round(t)
            if on_step is not None:
                on_step(k, self.ex)
        return events

    def _checkpoint_at(self, t: int) -> bool:
        """Do the shards checkpoint at the end of the round to ``t`` (``Cadence``)? Asked as the round
        is submitted; the round's collection commits it. Never at the plan's end (nothing resumes there)."""
        if self.store is None or not self.every_us or t % self.every_us or t >= self.plan.t_end_us:
            return False
        now = self.clock()
        if now - self.last_checkpoint < self.min_wall_s:
            return False
        self.last_checkpoint = now
        self.checkpoints.add(t)
        return True

    def _round(self, t: int) -> int:
        """Collect the round ending at ``t``, aggregate and maybe commit it; returns events so far."""
        t0 = time.monotonic()
        results = self.ex.collect()
        t1 = time.monotonic()
        self._account(results, t1 - t0)
        fresh = concat_samples([r.samples for r in results])
        jobs = concat_samples([r.jobs for r in results])
        kept = self._take(fresh, jobs)
        if self.store is not None and self.every_us:  # else nothing is ever committed
            self.uncommitted.append((kept, jobs))
        events = sum(r.events for r in results)
        self._maybe_commit(t)
        self._publish(self.progress.update(t, events))
        self._count("driver_s", time.monotonic() - t1)
        return events

    def _account(self, results: list, wait_s: float) -> None:
        # the slowest shard sets the round's pace; the others idle at the barrier
        busy = [r.busy_s for r in results]
        self._count("rounds", 1)
        self._count("wait_s", wait_s)
        self._count("busy_max_s", max(busy, default=0.0))
        self._count("busy_sum_s", sum(busy))
        self._count("cpu_sum_s", sum(r.cpu_s for r in results))
        self._count("cpu_max_s", max((r.cpu_s for r in results), default=0.0))
        self._count("checkpoint_max_s", max((r.checkpoint_s for r in results), default=0.0))

    def _maybe_commit(self, t: int) -> None:
        if self.store is None or t not in self.checkpoints:
            return
        self.checkpoints.discard(t)
        t0 = time.monotonic()
        chunk = (concat_samples([u[0] for u in self.uncommitted]), concat_samples([u[1] for u in self.uncommitted]))
        self.store.commit(self.run, self.plan.layout, t, pack(chunk))
        self.uncommitted = []
        for i in range(len(self.plan.shards)):
            self.store.drop_checkpoints(self.run, self.plan.layout, i, keep_from=t)
        self.store.persist()
        self._count("commit_s", time.monotonic() - t0)

    def _publish(self, numbers: dict[str, float]) -> None:
        if self.store is not None:
            self.store.set_progress(self.run, {k: str(v) for k, v in numbers.items()})

    def collect(self, start_us: int, events: int, wall_s: float) -> Collected:
        """Gather final results from the shards and merge everything in machine order."""
        t0 = time.monotonic()
        finals = self.ex.finish(self.plan.t_end_us)
        self.stats["setup_max_s"] = max((f.get("setup_s", 0.0) for f in finals), default=0.0)
        self.stats["setup_cpu_max_s"] = max((f.get("setup_cpu_s", 0.0) for f in finals), default=0.0)
        self.stats["setup_cpu_sum_s"] = sum(f.get("setup_cpu_s", 0.0) for f in finals)
        summaries = sorted((s for f in finals for s in f["summaries"]), key=lambda s: s["machine"])
        jobs = order_jobs(self.job_parts, [f["jobs"] for f in finals])
        part = merge_parts(self.fleet_parts)
        # sorted while compact (expanded when written): a stored row's samples are consecutive in time
        # and rows of one machine never overlap, so this equals sorting the expanded table, at a
        # fraction of its memory and time
        machines, self.parts, self.uncommitted = sort_parts(self.parts), [], []
        out = Collected(machines, fleet_table(part), summaries, jobs, events, wall_s, start_us, self.stats,
                        part, last_samples(machines))
        self._count("collect_s", time.monotonic() - t0)
        return out


def replay(plan: Plan, executor: Executor, specs: list, store: Optional[RunStore], run: str,
           step_us: int, cadence: Cadence, progress: Progress,
           on_step: Optional[StepHook] = None) -> Collected:
    """One policy over the whole plan: resume if possible, run every round, collect."""
    t0 = time.monotonic()
    co = Coordinator(plan, executor, store, run, step_us, cadence, progress)
    start = co.resume_point()
    if start >= 0:
        progress.note(f"resuming from the commit at sim {fmt_sim(start)}")
    executor.start(specs, progress.note)
    co.stats["start_s"] = time.monotonic() - t0
    try:
        events = co.run_rounds(start, on_step)
        return co.collect(start, events, time.monotonic() - t0)
    finally:
        executor.close()
