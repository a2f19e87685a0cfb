"""Metric samples of one machine, taken at a fixed simulated interval.

In: the live state of a ``MachineState``. Out: rows of ``SAMPLE_COLUMNS`` (each
documented here; ``replay`` renders these texts into docs/output-columns.md),
the per-job table of released cgroups, and an end-of-run summary.

A sample at time T reflects every event with time < T. Zombie = a memcg that
was removed (rmdir) but is not yet freed. A zombie is counted under every
reason that holds it (KERNEL-MODEL.md §1), so the ``held_*`` columns may sum
to more than ``memcgs_dying``.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

from core.counters import COUNTERS as _COUNTERS
from core.memcg import ROOT
from core.page_counter import nr_free_pages
from core.pages import PAGE, PARKED, St
from core.sample_scan import HELD_GAUGES, misattributed_pages, usage_scan
from core.zombie_gauges import NR_HELD, online_slots

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.memcg import MemcgTable
    from core.state import MachineState
    from core.zombie_gauges import ZombieGauges


#: Cumulative event counters of a machine (``core.counters``, where ``core.state`` reads them too).
COUNTERS: dict[str, str] = _COUNTERS

_GAUGES: dict[str, str] = {
    "time_us": "simulated time of the sample (µs); reflects every event before it",
    "memcgs_online": "online memcgs (root excluded)",
    "memcgs_dying": "zombie memcgs: removed but not freed",
    "zombie_age_p50_s": "median time since rmdir of the zombies (s; 0 if none)",
    "zombie_age_max_s": "oldest zombie's time since rmdir (s; 0 if none)",
    "cost_online_bytes": "memory of online memcgs' own structures (cost model, KERNEL-MODEL §3)",
    "cost_dying_bytes": "memory of zombie memcgs' structures: percpu, slab and percpu-chunk vmalloc (cost model)",
    "percpu_dying_bytes": "percpu part of cost_dying_bytes",
    "held_file": "zombies still charged page-cache pages",
    "held_shmem": "zombies still charged shmem/tmpfs pages",
    "held_anon": "zombies still charged anon pages",
    "held_swap": "zombies named by swap entries (their ID is held)",
    "held_pinned": "zombies with pinned or mlocked pages",
    "held_kmem": "zombies held by kmem that this kernel does not reparent",
    "held_child": "zombies held by a dying child",
    "held_cgwb": "zombies held by a writeback context (inode dirty at rmdir, not yet released)",
    "held_sock": "zombies referenced by an open socket (sk_memcg; its opener may be long gone)",
    "held_oom": "zombies whose OOM-killed task the OOM reaper still holds (2 s after the kill, v5.18+)",
    "zombie_charged_bytes": "bytes still charged to zombies (LRU pages + kmem)",
    "zombie_swap_bytes": "bytes of swap entries recorded to zombies",
    "anon_bytes": "resident anon bytes on the machine",
    "file_bytes": "resident page-cache bytes (disk files)",
    "shmem_bytes": "resident shmem/tmpfs bytes",
    "kmem_bytes": "kernel memory charged to memcgs",
    "sock_bytes": "socket buffer memory charged to memcgs",
    "swap_bytes": "swap in use",
    "free_bytes": "free memory",
    "misattributed_bytes": ("resident bytes charged to a memcg that neither instantiated them (first touch, "
                            "refault, or a deferred recharge on access) nor uses them (a live task of it maps "
                            "the page or owns the anon region): parents and the root after reparenting, "
                            "parked pages, mapper-recharge targets that stopped mapping, swap-in charges"),
    "root_charged_bytes": "resident bytes charged to the root memcg itself (unowned)",
    "ids_in_use": "memcg IDs in use (online memcgs + zombies held by swap entries)",
    "parked_bytes": "resident bytes parked on an ancestor awaiting their next accessor (deferred recharge)",
    "smemcg_bytes": "resident bytes charged to shared-memory controllers (smemcg policy)",
    "borrowed_bytes": "bytes memcgs borrow from smemcgs, counted in their usage (smemcg policy)",
}

#: Every sample column and what it means.
SAMPLE_COLUMNS: dict[str, str] = {**_GAUGES, **COUNTERS}

#: Columns of the per-job table (one row per cgroup, released or still alive at the end).
JOB_COLUMNS: dict[str, str] = {
    "cgroup": "cgroup path",
    "born_us": "mkdir time (µs)",
    "offline_us": "rmdir time (µs; -1 if never removed)",
    "freed_us": "time the memcg was freed (µs; -1 if still online or dying)",
    "peak_bytes": "peak hierarchical memory.current",
    "oom_kills": "OOM kills of tasks in this cgroup",
}


_COLUMN_NAMES = tuple(SAMPLE_COLUMNS)
if HELD_GAUGES != tuple(k for k in _GAUGES if k.startswith("held_")):
    raise ImportError("core.sample_scan.HELD_GAUGES is not the held_* columns in their order")
_FLOAT_COLUMNS = ("zombie_age_p50_s", "zombie_age_max_s")  # derived from a row's age basis, not stored
if tuple(k for k in SAMPLE_COLUMNS if k.endswith("_s")) != _FLOAT_COLUMNS or _COLUMN_NAMES[3:5] != _FLOAT_COLUMNS:
    raise ImportError("the zombie ages are not SAMPLE_COLUMNS' only float columns, after the dying count")
#: the sample columns a stored row holds, in order (``time_us`` and the ages come from its header)
_STORED = tuple(k for k in _COLUMN_NAMES if k != "time_us" and k not in _FLOAT_COLUMNS)
#: a stored row: int64 fields, this header then ``_STORED``'s values. ``t``: the time of its first sample;
#: ``reps``: how many consecutive samples it stands for; ``interval``: their spacing; ``nd``/``lo``/``hi``/
#: ``oldest``: the zombie-age basis (``sample_scan.age_basis``) the ages of each of its samples are derived from
ROW_HEADER = ("t", "reps", "interval", "nd", "lo", "hi", "oldest")
ROW = len(ROW_HEADER) + len(_STORED)
_REPS = 1


class Sampler:
    """Takes samples of one machine on its own clock and keeps them as change points.

    A sample whose state did not change since the previous one (``machine.changes`` has not
    moved since the last full sample: ``can_idle``) is not computed again: the previous stored row
    stands for one more sample, O(1) (``idle_until`` adds many at once, so an idle stretch
    costs the same whatever its length, and a row is carried over a ``take``). Rows are int64
    fields (``ROW_HEADER`` then the stored columns) appended to one typed buffer: no object per
    row or value. The regular-interval columns are derived when they are taken (``expand_points``):
    ``time_us`` and the two zombie-age columns of every sample are computed from its row's time
    and age basis with the same float operations as a full sample's, so the columns are
    bit-identical to sampling every interval. ``full=True`` computes every sample in full (the
    reference for tests).
    """

    def __init__(self, machine: MachineState, full: bool = False) -> None:
        self.machine = machine
        self.interval = machine.cfg.sample_interval_us
        self.next_us = 0
        self.full = full
        self._seen = -1  # ``machine.changes`` at the last full sample (-1: none yet)
        self._rows = array("q")  # the stored rows not yet taken, ROW fields each
        self._last: array | None = None  # the last row taken (None: none yet), to carry over

    def sample(self, t_us: cython.longlong) -> None:
        """Record the state at ``t_us`` (a full row, or one more repeat of an unchanged one)."""
        rows = self._rows
        n: cython.Py_ssize_t = len(rows)
        if not self.can_idle():
            self._append(t_us)
            self._seen = self.machine.changes
        elif n:
            rows[n - ROW + _REPS] += 1
        else:  # the first sample after a take, nothing changed: the last row carried over
            self._carry(t_us, 1)
        self.next_us = t_us + self.interval

    def idle_until(self, t_us: cython.longlong) -> None:
        """Take, as repeats of the last row, every sample due at or before ``t_us``.

        Only valid when ``can_idle()``: the caller (``Machine.advance_to``) checks that no
        queued work comes first.
        """
        if t_us < self.next_us:
            return
        k = (t_us - self.next_us) // self.interval + 1
        n: cython.Py_ssize_t = len(self._rows)
        if n:
            self._rows[n - ROW + _REPS] += k
        else:
            self._carry(self.next_us, k)
        self.next_us += k * self.interval

    def can_idle(self) -> cython.bint:
        """True when the next samples may be taken as repeats of the last row: the machine did not change
        (``MachineState.changes``) since the last full sample, samples are not all full, and a row is there
        to repeat."""
        return not (self.machine.changes != self._seen or self.full or (len(self._rows) == 0 and self._last is None))

    def clock(self) -> tuple:
        """The sampler's progress (what ``Machine.clock`` holds of it): next sample, the last full
        sample's change count, the rows not yet taken and the last row taken."""
        return (self.next_us, self._seen, self._rows, self._last)

    def set_clock(self, clock: tuple) -> None:
        """Restore ``clock()``'s tuple."""
        self.next_us, self._seen, self._rows, self._last = clock

    @staticmethod
    def blank_clock() -> tuple:
        """A ``clock()`` of no progress: what a machine pickled without its clock holds (``set_clock``)."""
        return (0, -1, array("q"), None)

    def take_points(self) -> np.ndarray:
        """The stored rows since the last call, an int64 array of shape (rows, ``ROW``) (``points_columns``
        turns many machines' rows into columns); the buffer is emptied."""
        rows = self._rows
        n: cython.Py_ssize_t = len(rows)
        if n:
            self._last = rows[n - ROW:]
        self._rows = array("q")
        # a copy, not a view: no caller can keep the buffer exported (the compiled build's resize does not
        # check for views, so a row appended to a viewed buffer could move it under the view)
        return np.frombuffer(rows, dtype=np.int64).reshape(-1, ROW).copy()

    def take(self) -> dict[str, np.ndarray]:
        """Samples taken since the last call, as regular-interval int64/float64 columns; the buffer is emptied."""
        return expand_points([self.take_points()])

    def snapshot(self, t_us: int) -> dict[str, int | float]:
        """One sample's values (gauges computed now, counters as they stand), keyed in ``SAMPLE_COLUMNS`` order."""
        return dict(zip(_COLUMN_NAMES, self._values(t_us)))

    def _values(self, t_us: int) -> tuple:
        """``snapshot``'s values alone, in ``SAMPLE_COLUMNS`` order."""
        z, basis = self._zombies()
        p50, oldest = _zombie_ages_at(t_us, basis)
        nd = z[1]
        return (t_us, z[0], nd, p50 if nd else 0.0, oldest if nd else 0.0, *z[2:], *self._usage(),
                *self._counters())

    def _append(self, t_us: cython.longlong) -> None:
        """Compute the state at ``t_us`` and append it as a new row (``ROW_HEADER``, then ``_STORED``)."""
        if cython.compiled:  # the same fields, stored by C from the typed state (``_fill_row``)
            _fill_row(self._rows, self.machine, t_us, self.interval)
            return
        z, basis = self._zombies()
        # (the row made first: an int that does not fit 64 bits is an OverflowError before ``_rows`` changes)
        self._rows.extend(array("q", (t_us, 1, self.interval, *basis, *z, *self._usage(), *self._counters())))

    def _carry(self, t_us: int, k: int) -> None:
        """Append the last row taken again, standing for ``k`` samples from ``t_us``."""
        rows, last = self._rows, self._last
        assert last is not None
        base = len(rows)
        rows.extend(last)
        rows[base], rows[base + _REPS] = t_us, k

    def _counters(self) -> list:
        """The machine's counters' values, in ``COUNTERS`` order."""
        counters = self.machine.counters
        if len(counters) != len(COUNTERS):  # its values follow COUNTERS' order: only += ever touches it
            raise RuntimeError(f"machine counters {sorted(set(counters) ^ set(COUNTERS))} are not COUNTERS")
        return list(counters.values())

    def _zombies(self) -> tuple:
        """The zombie gauges (``_GAUGES`` from memcgs_online to zombie_swap_bytes, the two ages left out),
        in order, and the dying memcgs' age basis."""
        m, mem = self.machine, self.machine.mem
        held, charged, swapped, basis = mem.zg.gauges(mem)  # kept as the memcgs changed: no scan
        nd = len(mem.dying)
        online = online_slots(mem) - 1 - len(mem.hidden)  # less the root and the policies' hidden ones (no cgroup)
        return (online, nd, online * m.memcg_cost, nd * m.memcg_cost, nd * m.percpu_bytes, *held, charged * PAGE,
                swapped * PAGE), basis

    def _usage(self) -> tuple:
        """The memory gauges (``_GAUGES`` from anon_bytes to borrowed_bytes), in order."""
        m, mem = self.machine, self.machine.mem
        if cython.compiled:  # C loops over the memcg and run columns
            totals, misattributed, parked = usage_scan(m)
        else:
            totals = tuple(int(mem.view(k).sum()) for k in ("anon", "file", "shmem", "kmem", "sock", "borrow"))
            R = m.runs
            misattributed = parked = 0
            if len(R):
                res = R.view("state") == St.RESIDENT
                npages = R.view("npages")
                cand = np.flatnonzero(res & (R.view("memcg") != R.view("origin"))).tolist()
                misattributed = misattributed_pages(m, cand)
                parked = int(npages[res & ((R.view("rflags") & PARKED) != 0)].sum())
        hidden = 0
        for x in mem.hidden:  # (a loop: a generator would be an object per sample)
            hidden += mem.own_pages(x)
        anon, file, shmem, kmem, sock, borrow = totals
        return (anon * PAGE, file * PAGE, shmem * PAGE, kmem * PAGE, sock * PAGE, m.swap_used * PAGE,
                max(nr_free_pages(m), 0) * PAGE, misattributed * PAGE, mem.own_pages(ROOT) * PAGE, mem.ids_in_use,
                parked * PAGE, hidden * PAGE, borrow * PAGE)

    def summary(self) -> dict[str, int | float]:
        """The state now plus the counters, as plain Python numbers."""
        snap = self.snapshot(self.machine.now_us)
        snap["memcg_cost_bytes"] = self.machine.memcg_cost
        snap["memcg_percpu_bytes"] = self.machine.percpu_bytes
        return snap

    def jobs(self) -> dict[str, list]:
        """Per-cgroup rows: memcgs released and not yet taken (``take_jobs``), then every live one.

        Root and policies' hidden memcgs are excluded.
        """
        mem = self.machine.mem
        out = _released_rows(mem.released_paths, mem.released)
        for x in mem.live():
            if x == ROOT or x in mem.hidden:
                continue
            for k, v in zip(JOB_COLUMNS, (mem.path[x], mem.born_us[x], mem.offline_us[x], -1,
                                          mem.peak[x] * PAGE, mem.oom_kill[x])):
                out[k].append(v)
        return out

    def take_jobs(self) -> dict[str, list]:
        """Rows of the memcgs released since the last call, in release order; the machine forgets them."""
        return _released_rows(*self.machine.mem.take_released())


#: columns that ``points_columns`` adds to the stored rows, for ``expand_columns``
POINT_COLUMNS = ("_reps", "_interval", "_nd", "_lo", "_hi", "_oldest")


def points_columns(parts: list[np.ndarray], tags: list[int] | None = None) -> dict[str, np.ndarray]:
    """Many machines' stored sample rows as compact columns, one entry per stored row.

    In: per machine, its ``Sampler.take_points()``; optionally a tag per machine (its fleet
    index), which becomes a leading ``machine`` int32 column. Out: ``SAMPLE_COLUMNS`` (``time_us``
    holds each row's first sample time, the ages are those at that time) plus ``POINT_COLUMNS``;
    concatenating such dicts column by column and then ``expand_columns`` equals expanding each and
    concatenating.
    """
    out: dict[str, np.ndarray] = {}
    if tags is not None:
        out["machine"] = np.repeat(np.asarray(tags, dtype=np.int32), [len(part) for part in parts])
    rows = np.concatenate(parts) if parts else np.zeros((0, ROW), dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != ROW:
        raise ValueError(f"sample rows of shape {rows.shape}, not (n, {ROW})")
    cols = np.ascontiguousarray(rows.T)  # one transpose: each field a contiguous row of it
    t, reps, interval, nd, lo, hi, oldest = cols[:len(ROW_HEADER)]
    stored = dict(zip(_STORED, cols[len(ROW_HEADER):]))
    stored["time_us"] = t
    stored["zombie_age_p50_s"], stored["zombie_age_max_s"] = _age_columns(t, nd, lo, hi, oldest)
    out.update((k, stored[k]) for k in _COLUMN_NAMES)
    out.update(_reps=reps, _interval=interval, _nd=nd, _lo=lo, _hi=hi, _oldest=oldest)
    return out


def expand_columns(pc: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Regular-interval sample columns from compact ones (``points_columns``); others pass unchanged.

    Each stored row is repeated for the samples it stands for; ``time_us`` and the zombie ages of
    every sample are derived from its row's time, interval and age basis, as ``Sampler`` describes
    (so a caller may move a row's first time, as a chunk cut or the last sample does).
    """
    if "_reps" not in pc:
        return pc
    rep = pc["_reps"]
    out = {k: np.repeat(v, rep) for k, v in pc.items() if k not in POINT_COLUMNS}
    if rep.size and int(rep.max()) > 1:
        first = np.repeat(np.cumsum(rep) - rep, rep)  # index of each sample's stored row
        nth = np.arange(int(rep.sum()), dtype=np.int64) - first  # 0 for the stored row's first sample
        out["time_us"] = out["time_us"] + nth * np.repeat(pc["_interval"], rep)
    nd, lo, hi, oldest = (np.repeat(pc[k], rep) for k in ("_nd", "_lo", "_hi", "_oldest"))
    out["zombie_age_p50_s"], out["zombie_age_max_s"] = _age_columns(out["time_us"], nd, lo, hi, oldest)
    return out


def expand_points(parts: list[np.ndarray], tags: list[int] | None = None) -> dict[str, np.ndarray]:
    """Regular-interval sample columns of many machines' stored rows (``expand_columns`` of ``points_columns``)."""
    return expand_columns(points_columns(parts, tags))


def _zombie_ages_at(t: int, basis: tuple[int, int, int, int]) -> tuple[float, float]:
    """``_zombie_ages`` of one sample time: the same float operations on Python numbers (an int
    difference made a double, divided), so the same bits, without numpy's cost per call."""
    nd, lo, hi, oldest = basis
    p50 = (t - lo) / 1e6 if nd % 2 == 1 else ((t - lo) / 1e6 + (t - hi) / 1e6) / 2
    return p50, (t - oldest) / 1e6


def _age_columns(t: np.ndarray, nd: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 oldest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two zombie-age columns at times ``t``: ``_zombie_ages``, and 0.0 where no memcg is dying."""
    p50, age_max = _zombie_ages(t, nd, lo, hi, oldest)
    dying = nd > 0
    return np.where(dying, p50, 0.0), np.where(dying, age_max, 0.0)


def _zombie_ages(t: np.ndarray, nd: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 oldest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and oldest zombie age (s) at times ``t`` of dying sets given by their age basis
    (``sample_scan.age_basis``).

    The median is that of ``(t - offline_us) / 1e6`` as ``np.median`` computes it: the middle
    value, or the mean of the two middle ones (same float operations, so the same bits). Where
    ``nd`` is 0 the values mean nothing; callers use 0.0 there.
    """
    odd = (nd % 2) == 1
    p50 = np.where(odd, (t - lo) / 1e6, ((t - lo) / 1e6 + (t - hi) / 1e6) / 2)
    return p50, (t - oldest) / 1e6


def _fill_row(rows: array, m: MachineState, t_us: cython.longlong, interval: cython.longlong) -> cython.int:
    """``Sampler._append`` of the compiled build: the fields the pure build computes (``_zombies``, ``_usage``,
    ``_counters``), in the same order, stored through the buffer of ``rows`` (grown by one row) instead of
    made Python ints in tuples first. A product over 64 bits is an OverflowError (overflowcheck) and
    ``rows`` keeps its length, as in the pure build. Returns 0."""
    if not cython.compiled:
        raise RuntimeError("_fill_row stores through the row buffer: compiled build only")
    mem: MemcgTable = m.mem
    zg: ZombieGauges = mem.zg
    zg.refresh(mem)
    counters: dict = m.counters
    page: cython.longlong = PAGE
    if len(counters) != len(COUNTERS):
        raise RuntimeError(f"machine counters {sorted(set(counters) ^ set(COUNTERS))} are not COUNTERS")
    basis: tuple = zg.basis
    totals, misattributed, parked = usage_scan(m)
    nd: cython.longlong = len(mem.dying)
    online: cython.longlong = online_slots(mem) - 1 - len(mem.hidden)
    cost: cython.longlong = m.memcg_cost
    hidden: cython.longlong = 0
    for x in mem.hidden:
        hidden += mem.own_pages(x)
    n: cython.Py_ssize_t = len(rows)
    resize_smart(rows, n + ROW)  # type: ignore[name-defined]  # noqa: F821  (cimported: metrics.pxd)
    p: cython.p_longlong = rows.data.as_longlongs + n
    held: cython.p_longlong = zg.held.data.as_longlongs
    k: cython.Py_ssize_t
    try:
        p[0], p[1], p[2] = t_us, 1, interval
        p[3], p[4], p[5], p[6] = basis[0], basis[1], basis[2], basis[3]
        p[7], p[8], p[9], p[10] = online, nd, online * cost, nd * cost
        p[11] = nd * cython.cast(cython.longlong, m.percpu_bytes)
        for k in range(NR_HELD):
            p[12 + k] = held[k]
        p[22], p[23] = zg.charged_sum * page, zg.swapped_sum * page
        for k in range(5):  # anon, file, shmem, kmem, sock
            p[24 + k] = cython.cast(cython.longlong, totals[k]) * page
        p[29] = m.swap_used * page
        p[30] = max(nr_free_pages(m), 0) * page
        p[31] = cython.cast(cython.longlong, misattributed) * page
        p[32] = cython.cast(cython.longlong, mem.own_pages(ROOT)) * page
        p[33] = mem.ids_in_use
        p[34] = cython.cast(cython.longlong, parked) * page
        p[35] = hidden * page
        p[36] = cython.cast(cython.longlong, totals[5]) * page
        k = 37
        for v in counters.values():
            p[k] = v
            k += 1
    except BaseException:
        resize_smart(rows, n)  # type: ignore[name-defined]  # noqa: F821
        raise
    return 0


if _STORED[:30] != ("memcgs_online", "memcgs_dying", "cost_online_bytes", "cost_dying_bytes", "percpu_dying_bytes",
                    *HELD_GAUGES, "zombie_charged_bytes", "zombie_swap_bytes", "anon_bytes", "file_bytes",
                    "shmem_bytes", "kmem_bytes", "sock_bytes", "swap_bytes", "free_bytes", "misattributed_bytes",
                    "root_charged_bytes", "ids_in_use", "parked_bytes", "smemcg_bytes", "borrowed_bytes") \
        or _STORED[30:] != tuple(COUNTERS) or len(HELD_GAUGES) != NR_HELD or len(ROW_HEADER) != 7:
    raise ImportError("_fill_row's field positions are not the stored columns'")


def _released_rows(paths: list[str], rel: dict) -> dict[str, list]:
    """Job-table columns (``JOB_COLUMNS``) of released memcg records, in release order."""
    out: dict[str, list] = {k: [] for k in JOB_COLUMNS}
    out["cgroup"].extend(paths)
    for k in ("born_us", "offline_us", "freed_us", "oom_kills"):
        out[k].extend(rel[k].tolist())
    out["peak_bytes"].extend(p * PAGE for p in rel["peak_pages"].tolist())
    return out
