"""A fleet replayed in waves of machines, each wave's big tables kept on disk, not in memory.

In: the plans of ``replay.plan.make_plans`` (one per wave), the executor, the run store and a
folder for the finished waves. Out: one ``Collected`` as if the fleet had run at once.

A wave of 1,000 Google-2011-shaped machines x 29 days has ~4M per-machine sample rows and ~1.7M
job rows (~2.5 GB as columns): a cell of 12,583 machines held every finished wave in the driver
and the store and ran out of memory in its sixth wave. Now a finished wave's ``machines`` and
``jobs`` are written to compressed Arrow files in ``folder`` (``<layout>.<table>.arrow``,
atomically) and the driver and the store keep only what is small: its fleet part (``replay.fleet``), the rows
at its last sample, its summaries and figures. ``replay.outputs`` writes the tables from the
files, a wave at a time. A resumed run takes a finished wave from the store if its file is still
there with the same sha256; otherwise the wave runs again.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Optional

import pyarrow as pa
import pyarrow.feather as feather

from replay.coordinator import Cadence, Collected, StepHook, replay
from replay.executors import Executor
from replay.fleet import fleet_table, merge_parts
from replay.plan import Plan
from replay.progress import Progress
from replay.shard import Samples, concat_samples, give_back_memory, pack, unpickle
from replay.store import RunStore
from traces.io import atomic_write


def replay_waves(plans: list[Plan], executor: Executor, specs_for: Callable[[Plan], list],
                 store: Optional[RunStore], run: str, step_us: int, cadence: Cadence,
                 progress_for: Callable[[int], Progress], on_step: Optional[StepHook] = None,
                 folder: Optional[str] = None) -> Collected:
    """One policy over a fleet planned in waves, one wave after the other.

    A single wave is ``replay`` itself. With several, each finished wave is kept in the store
    (its tables in ``folder`` when given, else in the store's blob), so a resumed run skips the
    waves that finished and resumes the one that was interrupted from its checkpoints.
    """
    if len(plans) == 1:
        return replay(plans[0], executor, specs_for(plans[0]), store, run, step_us, cadence,
                      progress_for(0), on_step)
    done: list[Collected] = []
    for k, plan in enumerate(plans):
        got = _kept(store, run, plan, folder)
        if got is not None:
            progress_for(k).note("wave done in an earlier run; taken from the store")
            got.resumed_from_us = plan.t_end_us  # nothing replayed again
        else:
            got = replay(plan, executor, specs_for(plan), store, run, step_us, cadence,
                         progress_for(k), on_step)
            if folder is not None:
                got = spill(got, os.path.join(folder, plan.layout))
                give_back_memory()  # the wave's rows, freed
            if store is not None:
                store.put_wave(run, plan.layout, pack(got))
                store.persist()
        done.append(got)
    return merge_waves(done)


def _kept(store: Optional[RunStore], run: str, plan: Plan, folder: Optional[str]) -> Optional[Collected]:
    # a finished wave from the store, if its file (when it has one) is still the one written
    blob = store.get_wave(run, plan.layout) if store is not None else None
    if blob is None:
        return None
    got: Collected = unpickle(blob)
    if not hasattr(got, "digests"):  # stored by a version that kept the tables in the record
        return None
    paths = [f"{prefix}.{t}.arrow" for prefix in got.spilled for t in TABLES]
    for path, digest in zip(paths, got.digests, strict=True):
        if folder is None or not os.path.exists(path) or _digest(path) != digest:
            return None
    return got


def spill(c: Collected, prefix: str) -> Collected:
    """``c`` with its ``machines`` and ``jobs`` written to ``<prefix>.<table>.arrow`` (atomically,
    zstd-compressed Arrow IPC files of one record batch) and dropped from it; ``c.spilled`` names ``prefix``."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    digests = []
    for table in TABLES:
        cols = getattr(c, table)
        setattr(c, table, {})
        path = f"{prefix}.{table}.arrow"
        # one record batch: read back, each column is one array numpy can view (several would be copied
        # into a new array, ~1 s per 1,000-machine wave of the writer's time, most of it page faults)
        atomic_write(path, lambda tmp, t=_arrow(cols): feather.write_feather(t, tmp, compression="zstd",
                                                                              chunksize=max(1, t.num_rows)))
        del cols
        digests.append(_digest(path))
    c.spilled, c.digests = [prefix], digests
    return c


def read_spilled(prefix: str, table: str) -> Samples:
    """The ``machines`` or ``jobs`` columns of a wave ``spill`` wrote under ``prefix`` (numeric columns are
    read-only views of the file's one record batch; a file of several batches is read too, copied)."""
    t = read_spilled_table(prefix, table)
    return {k: t.column(k).to_numpy() for k in t.column_names}


def read_spilled_table(prefix: str, table: str) -> pa.Table:
    """``read_spilled`` as the Arrow table in the file (strings stay Arrow strings)."""
    return feather.read_table(f"{prefix}.{table}.arrow", memory_map=False)


TABLES = ("machines", "jobs")  #: the tables ``spill`` writes, one file each


def merge_waves(waves: list[Collected]) -> Collected:
    """The results of consecutive waves of machines as one fleet's (``Collected``).

    Waves hold consecutive ranges of machines, so their sorted rows, summaries and job rows
    concatenated are in machine order; the fleet timeline is their fleet parts merged (exact,
    ``replay.fleet``); the last rows are those at the latest sample time of any wave.
    """
    stats: dict[str, float] = {}
    for w in waves:  # waves run one after the other: every figure (per-round maxima included) adds up
        for k, v in w.stats.items():
            stats[k] = stats.get(k, 0.0) + v
    part = merge_parts([w.fleet_part for w in waves if w.fleet_part is not None])
    last = concat_samples([w.last for w in waves])
    if last:
        sel = last["time_us"] == last["time_us"].max()
        last = {k: v[sel] for k, v in last.items()}
    resumed = [w.resumed_from_us for w in waves if w.resumed_from_us >= 0]
    return Collected(concat_samples([w.machines for w in waves]), fleet_table(part),
                     [s for w in waves for s in w.summaries], concat_samples([w.jobs for w in waves]),
                     sum(w.events for w in waves), sum(w.wall_s for w in waves), max(resumed, default=-1),
                     stats, part, last, [p for w in waves for p in w.spilled], [d for w in waves for d in w.digests])


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _arrow(s: Samples) -> pa.Table:
    # numeric columns as they are (no copy); object columns (a job's cgroup path) as strings
    return pa.table({k: pa.array(v, pa.string() if v.dtype == object else None) for k, v in s.items()})
