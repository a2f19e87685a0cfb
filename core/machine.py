"""One simulated machine: replays its events through the memcg model.

In: ``EventBatch``es of this machine (``apply``) and target times
(``advance_to``). Out: metric samples at a fixed simulated interval
(``take_samples``), a per-cgroup view like cgroupfs (``stat``), a per-job
table of released cgroups and end-of-run totals (``summary``).

``Machine`` is the state of ``core.state.MachineState`` plus the event loop: it
decodes a batch's columns once, dispatches each event through ``OP_TABLE`` to its
handler in ``core.syscalls``, runs the work queued on its own clock
(``core.workqueue``) and the memcg releases the handlers queued (``core.cgroup``),
and takes samples. The rules themselves live in the modules named after the kernel
files they model (docs/model.md maps them).

The machine owns its clock, its event queue (policy ticks, the OOM reaper) with a
per-instance sequence counter, and its RNG, so two machines in one process
never share ordering state and a pickled machine resumes identically.
"""

from __future__ import annotations

import gc
import heapq
from typing import TYPE_CHECKING, Callable

import numpy as np

from core import stat as _stat
from core import syscalls
from core.cgroup import css_release_work
from core.errors import TraceError
from core.events import NULL, EventBatch, TraceEvent
from core.memcg import normalize_path
from core.metrics import Sampler
from core.ops import Op
from core.state import MachineConfig, MachineState

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.policy import Policy

__all__ = ["Machine", "MachineConfig", "OP_TABLE"]

#: the handler of each trace op (``core.syscalls``), indexed by ``Op`` code
OP_TABLE: dict[int, Callable[[MachineState, TraceEvent], None]] = {
    Op.MKDIR: syscalls.op_mkdir,
    Op.RMDIR: syscalls.op_rmdir,
    Op.SET_LIMIT: syscalls.op_set_limit,
    Op.TASK_START: syscalls.op_task_start,
    Op.TASK_EXIT: syscalls.op_task_exit,
    Op.TASK_MOVE: syscalls.op_task_move,
    Op.ANON_ALLOC: syscalls.op_anon_alloc,
    Op.ANON_FREE: syscalls.op_anon_free,
    Op.FILE_CREATE: syscalls.op_file_create,
    Op.FILE_READ: syscalls.op_file_read,
    Op.FILE_WRITE: syscalls.op_file_write,
    Op.FILE_MAP: syscalls.op_file_map,
    Op.FILE_UNMAP: syscalls.op_file_unmap,
    Op.FILE_DELETE: syscalls.op_file_delete,
    Op.PIN: syscalls.op_pin,
    Op.UNPIN: syscalls.op_unpin,
    Op.KMEM_ALLOC: syscalls.op_kmem_alloc,
    Op.KMEM_FREE: syscalls.op_kmem_free,
    Op.RECLAIM: syscalls.op_reclaim,
    Op.SWAP_ON: syscalls.op_swap_on,
    Op.SWAP_OFF: syscalls.op_swap_off,
    Op.DROP_CACHES: syscalls.op_drop_caches,
    Op.SYNC: syscalls.op_sync,
    Op.MEMORY: syscalls.op_memory,
    Op.SOCK_OPEN: syscalls.op_sock_open,
    Op.SOCK_CLOSE: syscalls.op_sock_close,
}
assert sorted(OP_TABLE) == sorted(Op), "every op has a handler"
#: the same table as a list indexed by op code: one index per event instead of a hash
_HANDLERS = [OP_TABLE[op] for op in sorted(Op)]
#: the latest time a machine clock holds: ``MachineState.now_us`` is an int64 (a C field compiled)
_MAX_TIME_US = (1 << 63) - 1


#: each column ``Machine.apply`` reads: its field name (for errors) and the dtype the loop reads it as
_COLUMNS = (("time_us", np.int64), ("row", np.int64), ("offset", np.int64), ("bytes", np.int64),
            ("op", np.uint8), ("cgroup", np.int32), ("task", np.int32), ("object", np.int32), ("flags", np.int32))


def _columns(batch: EventBatch, lo: int, hi: int) -> tuple[list, list | None, int]:
    """The batch's columns (time_us, row, offset, bytes, op, cgroup, task, object, flags) for rows [lo, hi):
    (contiguous arrays of the dtypes of ``_COLUMNS``, their addresses in the compiled build, the index of
    row ``lo`` in them). When the batch's own arrays already are (``EventBatch``'s widths) they serve
    every call, kept in ``batch.columns`` with their addresses (lists of their values in the pure build,
    whose loop reads lists); else rows [lo, hi) are converted, and a value the conversion would change
    raises TraceError naming the source, its row and the field, before any event is applied (both builds)."""
    if batch.columns:
        return batch.columns[0], batch.columns[1], lo
    rows = batch.row if batch.row is not None else np.arange(1, len(batch) + 1, dtype=np.int64)
    cols = (batch.time_us, rows, batch.offset, batch.nbytes, batch.op, batch.cgroup, batch.task, batch.obj,
            batch.flags)
    out = [np.ascontiguousarray(c, dtype=dtype) for (_, dtype), c in zip(_COLUMNS, cols)]
    if all(a is c for a, c in zip(out, cols)):  # the batch's own arrays: kept for its next calls
        batch.columns += [out, [_address(a) for a in out]] if cython.compiled else [[a.tolist() for a in out], None]
        return batch.columns[0], batch.columns[1], lo
    out = []
    for (field, dtype), c in zip(_COLUMNS, cols):
        c = c[lo:hi]
        a = np.ascontiguousarray(c, dtype=dtype)
        if a.dtype != c.dtype:
            bad = np.flatnonzero(a != c)
            if bad.size:
                raise TraceError(batch.source, int(rows[lo + bad[0]]), field,
                                 f"{c[bad[0]]} does not fit the column's {np.dtype(dtype).name}")
        out.append(a)
    return (out, [_address(a) for a in out], 0) if cython.compiled else ([a.tolist() for a in out], None, 0)


def _address(a: np.ndarray) -> int:
    """The address of a contiguous array's first element (the compiled loop reads it as a C array)."""
    return a.__array_interface__["data"][0]


class Machine(MachineState):
    """The memcg hierarchy, tasks, objects and page runs of one host, driven by its events."""

    def __init__(self, cfg: MachineConfig, policy: "Policy | None" = None, machine_id: str = "m",
                 seed: int = 0) -> None:
        from core.policy import make_policy

        super().__init__(cfg, policy if policy is not None else make_policy("none"), machine_id, seed)
        self.sampler = Sampler(self)
        self.policy.attach(self)

    # ================================================================== time and queue
    def advance_to(self, t_us: int) -> None:
        """Run queued work and take samples due at or before ``t_us``; idempotent for t <= now.
        OverflowError for a time past the clock's int64 microseconds (as a trace's time column)."""
        t_us = int(t_us)
        if t_us > _MAX_TIME_US:
            raise OverflowError(f"time {t_us} us is past the machine clock's range (int64 microseconds)")
        self._flush_events()  # the samples and queued work below read the counters
        ms: MachineState = self  # (compiled: the fields below at fixed offsets, the sampler's methods C calls)
        sampler: Sampler = self.sampler
        queue = self.queue
        # no cyclic GC while events and samples run: a collection would scan the machine's many
        # long-lived containers again each time (cyclic garbage, if any, waits for the end)
        collecting: cython.bint = gc.isenabled()
        gc.disable()
        try:
            while True:
                qt = queue[0][0] if queue else None
                st = sampler.next_us
                if st <= t_us and (qt is None or st <= qt):
                    if sampler.can_idle():
                        # nothing changed since the last sample: every sample up to the next
                        # queued work (or t_us) repeats it, at O(1) whatever the stretch's length
                        sampler.idle_until(t_us if qt is None else min(t_us, qt))
                        ms.now_us = max(ms.now_us, sampler.next_us - sampler.interval)
                    else:
                        ms.now_us = max(ms.now_us, st)
                        sampler.sample(st)
                elif qt is not None and qt <= t_us:
                    when, _, fn, args = heapq.heappop(queue)
                    ms.now_us = max(ms.now_us, when)
                    fn(self, *args)
                    css_release_work(ms)
                    ms.changes += 1
                else:
                    break
        finally:
            if collecting:
                gc.enable()
        self.now_us = max(self.now_us, t_us)

    def clock(self) -> tuple:
        """What changes on an idle machine as time passes: the clock and the sampler's progress.

        Everything else changes only with ``changes``. A checkpoint may pickle the machine with
        its clock detached (``with_clock``) once per value of ``changes`` and store the small
        clock beside it each time.
        """
        return (self.now_us, self.sampler.clock())

    def with_clock(self, clock: tuple) -> "Machine":
        """Set the clock (``clock()``'s tuple) and return the machine."""
        self.now_us, progress = clock
        self.sampler.set_clock(progress)
        return self

    def take_samples(self) -> dict:
        """Metric samples taken since the last call, as columns (``core.metrics.SAMPLE_COLUMNS``)."""
        return self.sampler.take()

    def take_sample_points(self) -> np.ndarray:
        """The samples since the last call as stored rows (change points); ``core.metrics.expand_points``
        turns many machines' rows into columns at once."""
        return self.sampler.take_points()

    # ================================================================== events
    def apply(self, batch: EventBatch, start: int = 0, stop: int = -1, until_us: int = _MAX_TIME_US) -> int:
        """Replay rows [start, stop) of one batch of this machine's events in order (the whole batch by
        default; ``stop`` < 0: to its end), up to the first event at or after ``until_us``; returns the
        row after the last one applied. A shard replays a machine's batch a round at a time this way."""
        lo: cython.Py_ssize_t = start
        hi: cython.Py_ssize_t = len(batch)
        until: cython.longlong = until_us
        applied: cython.Py_ssize_t = 0
        if 0 <= stop < hi:
            hi = stop
        if lo < 0:
            raise ValueError(f"apply: start {start} < 0")
        if hi <= lo:
            return lo
        # The columns, read once per event each: C pointers into the batch's arrays in the compiled
        # build (int64 times, rows, offsets and bytes; uint8 ops; int32 name indices and flags: no int
        # object per field and event), plain lists of the same values in the pure one.
        times: cython.p_longlong
        rows: cython.p_longlong
        offs: cython.p_longlong
        nbs: cython.p_longlong
        ops: cython.p_uchar
        cg: cython.p_int
        tk: cython.p_int
        ob: cython.p_int
        fl: cython.p_int
        first: cython.Py_ssize_t
        held, at, first = _columns(batch, lo, hi)  # (held: the arrays the pointers point into)
        if cython.compiled:
            times = cython.cast(cython.p_longlong, cython.cast(cython.size_t, at[0]))
            rows = cython.cast(cython.p_longlong, cython.cast(cython.size_t, at[1]))
            offs = cython.cast(cython.p_longlong, cython.cast(cython.size_t, at[2]))
            nbs = cython.cast(cython.p_longlong, cython.cast(cython.size_t, at[3]))
            ops = cython.cast(cython.p_uchar, cython.cast(cython.size_t, at[4]))
            cg = cython.cast(cython.p_int, cython.cast(cython.size_t, at[5]))
            tk = cython.cast(cython.p_int, cython.cast(cython.size_t, at[6]))
            ob = cython.cast(cython.p_int, cython.cast(cython.size_t, at[7]))
            fl = cython.cast(cython.p_int, cython.cast(cython.size_t, at[8]))
        else:
            times, rows, offs, nbs, ops, cg, tk, ob, fl = held
        # a trailing None makes index NULL (-1) decode to None without a test per column and event;
        # cgroup paths are made canonical here, once per batch and its slices, not in the handlers per event
        names: list = batch.names
        if not names:
            names += [[None if p is None else normalize_path(p) for p in batch.cgroups] + [None],
                      [*batch.tasks, None], [*batch.objects, None]]
        names_c: list = names[0]
        names_t: list = names[1]
        names_o: list = names[2]
        st: MachineState = self  # typed: the loop reads and writes its fields at fixed offsets
        handlers: list = _HANDLERS
        queue, release_q = st.queue, st.release_q
        # one event object refilled per row: no handler keeps it, and filling slots costs less
        # than constructing an object per event
        ev: TraceEvent = TraceEvent(batch.source, 0, None, None, None, NULL, NULL, 0)
        next_due: cython.longlong = self._next_due()  # (a C int: the loop compares each event's time with it)
        i: cython.Py_ssize_t
        t: cython.longlong
        if times[first] >= until:
            return lo  # nothing to apply: the state, and so the samples, stay as they are
        collecting: cython.bint = gc.isenabled()
        gc.disable()  # (see advance_to)
        try:
            for i in range(first, first + hi - lo):
                t = times[i]
                if t >= until:
                    break
                if t < st.now_us:
                    raise TraceError(batch.source, rows[i], "time_us",
                                     f"time {t} before machine {st.machine_id}'s clock {st.now_us}")
                if t >= next_due:
                    st.changes += 1  # events since the last sample may have changed the state
                    self.advance_to(t)
                    next_due = self._next_due()
                st.now_us = t
                ev.row, ev.cgroup, ev.task, ev.obj = rows[i], names_c[cg[i]], names_t[tk[i]], names_o[ob[i]]
                ev.offset, ev.nbytes, ev.flags = offs[i], nbs[i], fl[i]
                handlers[ops[i]](self, ev)
                st.pending_events += 1  # counters["events"] takes them at the next sample (_flush_events)
                if release_q:
                    css_release_work(self)
                if queue and queue[0][0] <= t:
                    next_due = t
                applied += 1
        finally:
            st.changes += 1  # whatever ran (or raised) after the last sample
            self._flush_events()
            if collecting:
                gc.enable()
        return lo + applied

    def _flush_events(self) -> None:
        """Add the events applied since the last flush to ``counters["events"]`` (``apply`` counts them
        in a C field: a dict update per event cost more than the loop's own work on it)."""
        if self.pending_events:
            self.counters["events"] += self.pending_events
            self.pending_events = 0

    def _next_due(self) -> int:
        """The time of the next queued work or sample, whichever comes first."""
        qt = self.queue[0][0] if self.queue else self.sampler.next_us
        return min(qt, self.sampler.next_us)

    # ================================================================== views
    def cgroup_paths(self) -> list[str]:
        """Paths of every online and dying cgroup (dying ones may repeat an online path)."""
        return _stat.cgroup_paths(self)

    def stat(self, path: str) -> dict:
        """What cgroupfs would show for the online cgroup at ``path`` (or the newest dying one)."""
        return _stat.memory_stat(self, path)

    def summary(self) -> dict:
        """End-of-run totals: counters, zombies, cost bytes, IDs in use."""
        return self.sampler.summary()

    def job_table(self) -> dict[str, list]:
        """Released cgroups not yet taken, then live ones: path, born/offline/freed times, peak bytes, OOM kills."""
        return self.sampler.jobs()

    def released_count(self) -> int:
        """How many freed cgroups ``take_jobs`` would return now."""
        return len(self.mem.released_paths)

    def take_jobs(self) -> dict[str, list]:
        """Job-table rows of the cgroups released since the last call (then forgotten by the machine).

        A replay that takes them as it goes keeps only live cgroups in the machine's state;
        these rows followed by ``job_table()`` at the end equal ``job_table()`` alone.
        """
        return self.sampler.take_jobs()
