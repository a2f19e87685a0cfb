"""A shard: many simulated machines advanced together, checkpointed to the run store.

In: a ``ShardSpec`` (its machines, where their events come from -- the Parquet partition holding
only their events, or the synthetic parameters to generate them here --, the machine config,
policy, seed, the step grid and where to checkpoint). Out: per ``advance_to`` call a
``StepResult`` with the columnar metric samples of all its machines (never per event) and the
job-table rows of the cgroups freed meanwhile, and at the end ``finish()`` with per-machine
summaries and the job-table rows of the cgroups still alive. Freed cgroups' rows leave the
machines as they accrue, so a checkpoint holds only what is alive.

The same class runs in-process (``executor=local``) and inside a Ray actor (``replay.actors``).

Determinism: each machine seeds its RNG from (run seed, machine id); machines advance over the
same fixed grid of ``step_us`` boundaries whatever the shard's size, the coordinator's call
pattern or restarts, so results do not depend on how machines are grouped.

Idempotence (Ray retries are at-least-once): ``advance_to(t, ack)`` moves to ``t`` only if the
shard is behind, and returns every sample (and job row) newer than ``ack`` that it still holds.
They are kept until the coordinator acknowledges them, and they are part of the checkpoint, so a shard
restarted from an older checkpoint replays and returns exactly what a lost call would have.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.metrics import Sampler, points_columns
from core.policy import make_policy
from replay.store import RunStore
from traces.batches import machine_batches, read_parquet
from traces.generate import SynthParams, generate_machine, generated_batches
from traces.io import write_trace

Samples = dict[str, np.ndarray]


@dataclass
class ShardSpec:
    """Everything a shard needs; plain data so that Ray can ship it to an actor."""

    index: int
    machines: list[str]          # sorted machine ids of this shard
    first_machine: int           # global index (in the sorted fleet) of machines[0]
    trace_path: str              # Parquet file with exactly these machines' events (synthetic: where
                                 # the generated ones are left for the next policy; "" for none)
    machine_kwargs: dict[str, Any]
    policy: str
    seed: int
    step_us: int
    run: str = ""                # run key in the store
    layout: str = ""             # digest of the shard plan
    store: RunStore | None = None
    synth: dict[str, Any] | None = None  # SynthParams fields: generate the machines' events here
    knobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # make_policy knobs
    # keep each machine as a compressed pickle between rounds (``ExecutorCfg.pack_above``)
    pack: bool = False
    # Ray: an object ref to the bytes of this shard's Parquet partition (replaces ``trace_path``,
    # so that no node but the driver's needs to see the driver's files)
    trace_ref: Any = None
    # non-empty: ``trace_path`` is a file name in this node's scratch folder ``node_scratch(scratch)``
    # (generated synthetic events kept for the next policy on the node the shard runs on)
    scratch: str = ""
    events: int = -1             # events of its machines (synthetic: expected); sizes the actor's memory


@dataclass
class StepResult:
    """What one ``advance_to`` returns: where the shard is and the samples newer than ``ack``."""

    shard: int
    t_us: int
    events: int                  # events applied since the shard started (restored count included)
    samples: Samples = field(default_factory=dict)
    jobs: Samples = field(default_factory=dict)  # job rows of cgroups freed in these rounds
    busy_s: float = 0.0          # wall seconds this call spent replaying (diagnostics, never in outputs)
    cpu_s: float = 0.0           # CPU seconds of the calling thread in this call (load-independent)
    checkpoint_s: float = 0.0    # wall seconds of it spent writing checkpoints


#: the folder, under the node's temp dir, that holds per-run scratch folders (``node_scratch``)
SCRATCH_DIR = "memcg-replay-scratch"


def node_scratch(name: str) -> str:
    """This node's scratch folder for run ``name``: ``<temp dir of this process>/memcg-replay-scratch/<name>``.

    Every process Ray starts on a node has the same temp dir (``TMPDIR``, else /tmp), so the
    shards and the clean-up task of one node agree on it; no other node sees it.
    """
    return os.path.join(tempfile.gettempdir(), SCRATCH_DIR, name)


def concat_samples(parts: list[Samples]) -> Samples:
    """Column-wise concatenation of sample dicts (missing parts skipped)."""
    parts = [p for p in parts if p and len(next(iter(p.values()))) > 0]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


#: what a ``pack`` blob starts with: its format (zstd, level 1), then the pickle's length (8 bytes, little-endian)
_PACKED = b"MRz1"
_ZSTD = pa.Codec("zstd", compression_level=1)


def pack(obj: Any) -> bytes:
    """A compressed pickle of ``obj``: checkpoints, packed machines, commits, waves.

    zstd at level 1: on Google-2011-shaped machines (94 KiB pickles) 0.14 ms a machine and 22 KiB,
    where zlib at level 1 took 0.56 ms for 24 KiB; a packing shard compresses every machine that
    changed, every round. ``unpickle`` still reads the zlib blobs earlier versions stored.
    """
    raw = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return b"".join((_PACKED, len(raw).to_bytes(8, "little"), _ZSTD.compress(raw, asbytes=True)))


def unpickle(blob: bytes) -> Any:
    """``pack``'s object back (or an earlier version's zlib-compressed pickle), loaded with the cyclic GC paused.

    A machine is many small containers; collections triggered while they are rebuilt made a
    load about 5x slower (a simulated hour of the default preset: 60 ms with, 11 ms without,
    measured before the per-memcg run sets were dropped).
    """
    if blob[:4] == _PACKED:
        raw = _ZSTD.decompress(memoryview(blob)[12:], decompressed_size=int.from_bytes(blob[4:12], "little"),
                               asbytes=True)
    else:
        raw = zlib.decompress(blob)
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(raw)
    finally:
        if paused:
            gc.enable()


#: a machine as the shard keeps it packed or checkpoints it: (compressed pickle without its clock,
#: ``Machine.clock()``)
Frozen = tuple[bytes, tuple]


def thaw(frozen: Frozen | Machine | bytes) -> Machine:
    """The machine of a ``Frozen`` pair: its pickle loaded, its clock set (a machine, or a whole
    machine's pickle as checkpoints before frozen pairs held, is returned as it is)."""
    if isinstance(frozen, Machine):
        return frozen
    if isinstance(frozen, bytes):
        return unpickle(frozen)
    blob, clock = frozen
    m: Machine = unpickle(blob)
    return m.with_clock(clock)


def job_columns(rows: dict[str, list]) -> Samples:
    """A machine's job-table rows (lists, ``core.metrics.JOB_COLUMNS``) as numpy columns."""
    return {k: np.asarray(v) for k, v in rows.items()}


def give_back_memory() -> None:
    """Return to the system the memory that loading a shard's events freed but the allocators
    kept: Arrow's pool, and glibc's heap (``malloc_trim``; a no-op elsewhere). A
    Google-2011-shaped shard of 500 machines x 29 days: 3.3 GiB resident after loading, 1.6 GiB after."""
    pa.default_memory_pool().release_unused()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


try:
    _LIBC: Any = ctypes.CDLL(None)
except OSError:  # no C library to ask: nothing to trim
    _LIBC = None


class Shard:
    """Machines of one shard, their events, and the samples not yet acknowledged."""

    def __init__(self, spec: ShardSpec) -> None:
        t0, c0 = time.monotonic(), time.thread_time()
        self.spec = spec
        self.batches = self._load_events()
        give_back_memory()
        self.cursor = np.zeros(len(spec.machines), dtype=np.int64)  # next event row per machine
        self.restored_from = -1
        state = self._restore()
        if state is None:
            cfg = MachineConfig(**spec.machine_kwargs)
            # the machine mixes its id into the seed: (run seed, machine id) as the design asks
            self._frozen: list[tuple[int, bytes] | None] = [None] * len(spec.machines)
            self.machines: list[Machine | Frozen] = [
                self._packed(i, Machine(cfg, policy=make_policy(spec.policy, spec.knobs), machine_id=mid,
                                        seed=spec.seed))
                for i, mid in enumerate(spec.machines)]
            self.now_us = 0
            self.events = 0
            # per unacknowledged round: (time, samples, job rows of the cgroups freed in it)
            self.pending: list[tuple[int, Samples, Samples]] = []
        else:
            frozen, self.now_us, self.events, self.pending = state
            self._frozen = [None] * len(frozen)
            self.machines = [f if spec.pack else thaw(f) for f in frozen]
        self._seek()
        self.setup_s = time.monotonic() - t0  # events loaded or generated, checkpoint restored
        self.setup_cpu_s = time.thread_time() - c0
        self.checkpoint_s = 0.0  # of the current advance_to call

    # -- loading and checkpoints -------------------------------------------------------------
    def _load_events(self) -> list[EventBatch]:
        s = self.spec
        if s.synth is not None and not s.trace_path:
            by_id = dict(self._synthetic_batches())
        elif s.synth is not None:
            by_id = dict(machine_batches(self._synthetic_table(), f"synthetic seed {s.seed}"))
        elif s.trace_ref is not None:
            import ray  # the Ray executor shipped the partition through the object store

            piece = ray.get(s.trace_ref)
            by_id = dict(machine_batches(read_parquet(pa.BufferReader(piece)), f"shard {s.index}'s partition"))
        else:
            by_id = dict(machine_batches(read_parquet(s.trace_path), s.trace_path))
        missing = [m for m in s.machines if m not in by_id]
        if missing:
            raise ValueError(f"shard {s.index}: no events for machines {missing[:5]}")
        return [by_id[m] for m in s.machines]

    def _generated(self, lo: int, hi: int) -> pa.Table:
        """The generated events of this shard's machines ``lo`` to ``hi`` (exclusive), in order:
        generation is per machine deterministic, machine i of the fleet being generator index i."""
        s = self.spec
        params = SynthParams(**s.synth)  # type: ignore[arg-type]
        return pa.concat_tables([generate_machine(params, s.seed, s.first_machine + i) for i in range(lo, hi)])

    def _synthetic_batches(self, chunk: int = 64) -> Iterator[tuple[str, EventBatch]]:
        """This shard's generated events as batches, ``chunk`` machines at a time, when no file is
        to keep them: made straight from the generator's arrays (``generated_batches``), no table
        in between, and the memory handed back after each chunk. The same batches, in the same
        order (sorted within each chunk), as ``machine_batches`` of each chunk's table yields, row
        numbers counted as in the whole shard's table."""
        s = self.spec
        params = SynthParams(**s.synth)  # type: ignore[arg-type]
        rows = 0
        for lo in range(0, len(s.machines), chunk):
            hi = min(lo + chunk, len(s.machines))
            got = generated_batches(params, s.seed, range(s.first_machine + lo, s.first_machine + hi),
                                    f"synthetic seed {s.seed}", rows)
            rows += sum(len(batch) for _, batch in got)
            yield from got
            del got
            give_back_memory()

    def _synthetic_table(self) -> pa.Table:
        """This shard's generated events: read back from ``trace_path`` if an earlier policy's
        shard left them there, else generated (and left there when the spec names a path)."""
        s = self.spec
        path = os.path.join(node_scratch(s.scratch), s.trace_path) if s.scratch and s.trace_path else s.trace_path
        if path and os.path.exists(path):
            return read_parquet(path)
        table = self._generated(0, len(s.machines))
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_trace(table, path)  # atomic: a shard killed mid-write leaves no partial file
        return table

    def _seek(self) -> None:
        # events before now_us were applied before the checkpoint; start after them
        for i, b in enumerate(self.batches):
            self.cursor[i] = int(np.searchsorted(b.time_us, self.now_us, side="left"))

    def _restore(self) -> tuple | None:
        s = self.spec
        found = s.store.latest_checkpoint(s.run, s.layout, s.index) if s.store else None
        if found is None:
            return None
        self.restored_from = found[0]
        return unpickle(found[1])

    # -- packed machines -----------------------------------------------------------------------
    def _freeze(self, i: int, m: Machine) -> Frozen:
        """Machine ``m`` (the shard's ``i``-th) as (compressed pickle without its clock, clock).

        The pickle is made again only when the machine changed (``Machine.changes``) since the
        last one: an idle machine costs its small clock tuple per checkpoint, not a pickle.
        """
        cached = self._frozen[i]
        if cached is None or cached[0] != m.changes:
            clock = m.clock()
            m.with_clock((0, Sampler.blank_clock()))  # the pickle holds no clock
            try:
                cached = (m.changes, pack(m))
            finally:
                m.with_clock(clock)
            self._frozen[i] = cached
        return cached[1], m.clock()

    def _packed(self, i: int, m: Machine) -> Machine | Frozen:
        """What the shard keeps of machine ``i`` between rounds: ``m`` itself, or frozen (``_freeze``)."""
        return self._freeze(i, m) if self.spec.pack else m

    def machine(self, i: int) -> Machine:
        """The shard's ``i``-th machine (thawed if it is packed; the shard keeps what it holds)."""
        m = self.machines[i]
        return thaw(m) if isinstance(m, tuple) else m

    def _checkpoint(self) -> None:
        s = self.spec
        frozen = [m if isinstance(m, tuple) else self._freeze(i, m) for i, m in enumerate(self.machines)]
        state = (frozen, self.now_us, self.events, self.pending)
        blob = pack(state)
        s.store.put_checkpoint(s.run, s.layout, s.index, self.now_us, blob)  # type: ignore[union-attr]

    # -- the replay ----------------------------------------------------------------------------
    def advance_to(self, t_us: int, ack_us: int = -1, checkpoint: bool = False) -> StepResult:
        """Replay up to simulated time ``t_us`` (a grid point); return samples newer than ``ack_us``.
        ``checkpoint``: then save the shard's state in the store (the coordinator commits it)."""
        t0, c0 = time.monotonic(), time.thread_time()
        self.checkpoint_s = 0.0
        self.pending = [p for p in self.pending if p[0] > ack_us]
        # no cyclic GC during the rounds: every round allocates per machine (sample rows, job records), and
        # each collection those allocations set off rescanned every machine's state (a tenth of a 300-machine
        # Google-2011-shaped shard's time); cyclic garbage, if any, waits for the end of the call
        collecting = gc.isenabled()
        gc.disable()
        try:
            while self.now_us < t_us:
                self._step(min(self._next_grid(self.now_us), t_us))
            if checkpoint and self.spec.store is not None:  # (never asked at the replay's end: ``Cadence``)
                t1 = time.monotonic()
                self._checkpoint()
                self.checkpoint_s += time.monotonic() - t1
        finally:
            if collecting:
                gc.enable()
        due = [p for p in self.pending if ack_us < p[0] <= t_us]
        return StepResult(self.spec.index, self.now_us, self.events, concat_samples([p[1] for p in due]),
                          concat_samples([p[2] for p in due]),
                          time.monotonic() - t0, time.thread_time() - c0, self.checkpoint_s)

    def _next_grid(self, t: int) -> int:
        return (t // self.spec.step_us + 1) * self.spec.step_us

    def _step(self, t_us: int) -> None:
        points, tags = [], []
        job_rows: dict[str, list] = {}  # the round's released jobs, every machine's rows run together
        job_machine: list[int] = []
        first = self.spec.first_machine
        for i, b in enumerate(self.batches):
            m = self.machine(i)
            lo = int(self.cursor[i])
            if lo < len(b) and int(b.time_us[lo]) < t_us:  # this round has events for the machine
                hi = m.apply(b, lo, until_us=t_us)
                self.events += hi - lo
                self.cursor[i] = hi
            m.advance_to(t_us)
            # samples as change points, expanded for the whole shard at once: an idle machine costs O(1)
            points.append(m.take_sample_points())
            tags.append(first + i)
            if m.released_count():
                rows = m.take_jobs()
                job_machine += [first + i] * len(rows["cgroup"])
                for k, v in rows.items():
                    job_rows.setdefault(k, []).extend(v)
            self.machines[i] = self._packed(i, m)
        self.now_us = t_us
        # compact until the coordinator needs the columns (``core.metrics.expand_columns``): what the
        # shard keeps, checkpoints and hands over grows with the state's changes, not with samples
        samples = points_columns(points, tags)
        jobs = {"machine": np.asarray(job_machine, dtype=np.int32), **job_columns(job_rows)} if job_machine else {}
        self.pending.append((t_us, samples if len(samples["machine"]) else {}, jobs))

    @staticmethod
    def _tagged(samples: Samples, machine_index: int) -> Samples:
        if not samples or len(next(iter(samples.values()))) == 0:
            return {}
        n = len(next(iter(samples.values())))
        return {"machine": np.full(n, machine_index, dtype=np.int32), **samples}

    # -- the end -------------------------------------------------------------------------------
    def finish(self, t_us: int = -1) -> dict[str, Any]:
        """Per-machine summaries and the job rows of the cgroups alive at ``t_us``, in machine order.

        A shard restarted from a checkpoint older than ``t_us`` (its actor died after the last
        round) replays up to ``t_us`` first, so a retried ``finish`` returns what the lost one would.
        """
        if t_us > self.now_us:
            self.advance_to(t_us, ack_us=t_us)  # the coordinator has every sample up to t_us
        summaries, jobs = [], []
        for i in range(len(self.machines)):
            m = self.machine(i)
            summaries.append(dict(m.summary(), machine=self.spec.first_machine + i))
            jobs.append(self._tagged(job_columns(m.job_table()), self.spec.first_machine + i))
        return {"summaries": summaries, "jobs": concat_samples(jobs), "setup_s": self.setup_s,
                "setup_cpu_s": self.setup_cpu_s}

    def pid(self) -> int:
        """Process id (the actor-kill test targets it)."""
        return os.getpid()
