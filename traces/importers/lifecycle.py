"""Pair task start and exit events into incarnations, vectorised.

In: one row per trace event of a task-like thing: an integer identity ``key``
(a job/task pair, an instance, ...), its time, its kind (start, end, update or
ignored) and whether it names a machine. Out: ``Incarnations``: one row per run
(start row, end row, start/end time, incarnation number within the key) and the
incarnation each update row applies to, plus counts of rows that could not be
used, by reason.

Real-trace quirks handled here (Google 2011/2019 conventions):

* an exit or an update whose start is not in the window (the first row of a
  key is an end or an update that names a machine: the task was running when
  the window opened) gets an implicit start at the window start;
* an exit with no machine ends the run if the task is running (a KILL of a
  running task may name no machine); as the first row of a key, or after
  another exit, it belongs to a task that was not running (killed while
  pending): skipped and counted;
* an exit naming another machine than the start before it (``machine`` given):
  the events in between are missing (a part file left out of the input), so
  the task moved: the run on the first machine ends, and a run on the exit's
  machine starts, halfway between that start and the exit (counted as a note);
* a start following a start without an exit ends the earlier run at the later
  start (counted as a note);
* a time of ``NEVER`` (2^63-1, "after the window") means no exit event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from traces import take_build
from traces.importers.common import NEVER

START, END, UPDATE, IGNORE = 0, 1, 2, -1


@dataclass
class Incarnations:
    """Runs of one key. ``start_row``/``end_row`` index the input rows; -1 = implicit."""

    key: np.ndarray
    start_row: np.ndarray
    end_row: np.ndarray
    machine_row: np.ndarray  #: row whose machine the run is on (the start, or the exit for implicit starts)
    start_us: np.ndarray
    end_us: np.ndarray
    number: np.ndarray  #: 0 for the first run of a key in the input, 1 for the next, ...
    update_row: np.ndarray
    update_inc: np.ndarray  #: index into the runs of each applied update


def pair(key: np.ndarray, time: np.ndarray, kind: np.ndarray, has_machine: np.ndarray,
         skipped: Counter, notes: Counter, window_start: int = 0,
         machine: np.ndarray | None = None) -> Incarnations:
    """Incarnations of the rows; rows not used are counted in ``skipped`` by reason.

    ``machine`` (optional, any integer code per row) lets an exit on another machine than its
    start hand the task over between machines instead of ending the run it did not belong to."""
    # a start without a machine cannot be placed
    bad_start = (kind == START) & ~has_machine
    skipped["start without machine"] += int(bad_start.sum())
    never_start = (kind == START) & (time == NEVER)
    skipped["start after the window"] += int(never_start.sum())
    kind = np.where(bad_start | never_start, IGNORE, kind)
    life = _life_order(key, time, kind)
    synth = _implicit_starts(key, kind, has_machine, life)
    notes["exit without start in the window (implicit start)"] += int((kind[synth] == END).sum())
    moved, moved_at = _handovers(key, time, kind, has_machine, machine, life[kind[life] != UPDATE])
    for note, count in (("update without start in the window (implicit start)", (kind[synth] == UPDATE).sum()),
                        ("exit on another machine than its start (events missing between: moved halfway)",
                         moved.size)):
        if count:  # only a quirk the input has (reports of inputs without it stay as they were)
            notes[note] += int(count)
    # merged rows: real rows, then one synthetic start per orphan exit or update, sorted before it,
    # and one per moved exit, at its handover time (sorted by row among equal times)
    # (the rows of no start, exit or update take no part: only the others are merged)
    k = np.concatenate([key[life], key[synth], key[moved]])
    t = np.concatenate([time[life], np.full(synth.size, window_start, dtype=np.int64), moved_at])
    kd = np.concatenate([kind[life], np.full(synth.size + moved.size, START, dtype=kind.dtype)])
    src = np.concatenate([life, -1 - synth, -1 - moved])  # negative: synthetic start for row (-1 - src)
    # (prio, row) in one key: prio (0 for an implicit start) above the row's bits
    prio = np.concatenate([np.full(life.size, 1 << 62, np.int64), np.zeros(synth.size, np.int64),
                           np.full(moved.size, 1 << 62, np.int64)])
    prio |= np.abs(src + (src < 0))
    order = _merged_order(k, t, prio, life.size, moved.size)
    inc = _pair_sorted(k[order], t[order], kd[order], src[order], skipped, notes)
    if moved.size:
        notes["start while running (earlier run ended at the restart)"] -= int(moved.size)
    return inc


def _merged_order(k: np.ndarray, t: np.ndarray, prio: np.ndarray, nlife: int, nmoved: int) -> np.ndarray:
    """``np.lexsort((prio, t, k))`` of the merged rows: the first ``nlife`` real ones (by key, time, row),
    the implicit starts (one per key, in key order, prio 0), then ``nmoved`` handover starts.

    Without handovers, the real rows and the implicit starts are two sorted runs of one key packed
    from (rank of the key, time, prio bit) when it fits in 63 bits; a stable sort (a timsort) merges
    them, and ties (real rows of one key and time) keep their row order, as the row key would."""
    if nmoved or not nlife:
        return np.lexsort((prio, t, k))
    life_k = k[:nlife]
    rank = np.empty(k.size, dtype=np.int64)
    np.cumsum(life_k[1:] != life_k[:-1], out=rank[1:nlife])
    rank[0] = 0
    rank[nlife:] = rank[np.searchsorted(life_k, k[nlife:])]  # an implicit start's key is a real row's
    tt = t.copy()
    never = tt == NEVER
    if never.any():  # "never" is the latest time: one past the latest other keeps the order
        tt[never] = int(tt[~never].max()) + 1 if not never.all() else 0
    t0 = int(tt.min())
    tbits = (int(tt.max()) - t0).bit_length()
    if int(rank[nlife - 1]).bit_length() + tbits + 1 > 63:
        return np.lexsort((prio, t, k))
    tt -= t0
    tt <<= 1
    tt |= prio >> 62  # 1 for a real row, 0 for an implicit start
    rank <<= tbits + 1
    rank |= tt
    return np.argsort(rank, kind="stable")


def _life_order(key: np.ndarray, time: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The starts, exits and updates, ordered by (key, time, row); sorted once for both passes below."""
    life = np.flatnonzero((kind == START) | (kind == END) | (kind == UPDATE))
    return life[np.lexsort((time[life], key[life]))]  # stable: equal (key, time) keep their row order


def _implicit_starts(key: np.ndarray, kind: np.ndarray, has_machine: np.ndarray, order: np.ndarray) -> np.ndarray:
    # first row of each key among starts, exits and updates (``order``, by key and time), if it is an
    # exit or update naming a machine
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]] if order.size else order
    return first[(kind[first] != START) & has_machine[first]]


def _handovers(key: np.ndarray, time: np.ndarray, kind: np.ndarray, has_machine: np.ndarray,
               machine: np.ndarray | None, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit rows that follow a start on another machine, and the time each run is handed over.

    ``order``: the start and exit rows, by (key, time, row). Compiled when ``traces._take`` is built
    (``_handovers_pure`` is the reference: the same rows and times)."""
    if machine is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if order.size < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    mod = take_build.module()
    if mod is not None:  # one compiled pass instead of nine gathers of the rows' columns
        return mod.handovers(np.ascontiguousarray(order, dtype=np.int64), np.ascontiguousarray(key, dtype=np.int64),
                             np.ascontiguousarray(time, dtype=np.int64), np.ascontiguousarray(kind, dtype=np.int8),
                             np.ascontiguousarray(has_machine, dtype=bool).view(np.uint8),
                             np.ascontiguousarray(machine, dtype=np.int64))
    return _handovers_pure(key, time, kind, has_machine, machine, order)


def _handovers_pure(key: np.ndarray, time: np.ndarray, kind: np.ndarray, has_machine: np.ndarray,
                    machine: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_handovers`` by numpy (the reference of ``traces/_take.pyx``'s ``handovers``)."""
    prev, cur = order[:-1], order[1:]
    moved = ((key[prev] == key[cur]) & (kind[prev] == START) & (kind[cur] == END) & has_machine[prev]
             & has_machine[cur] & (machine[prev] != machine[cur]) & (time[cur] != NEVER))  # NEVER: no exit
    a, b = time[prev[moved]], time[cur[moved]]
    return cur[moved], a + (b - a) // 2


def _pair_sorted(k: np.ndarray, t: np.ndarray, kd: np.ndarray, src: np.ndarray,
                 skipped: Counter, notes: Counter) -> Incarnations:
    life = np.flatnonzero((kd == START) | (kd == END))
    lk, lkind = k[life], kd[life]
    same_prev = np.r_[False, lk[1:] == lk[:-1]]
    same_next = np.r_[lk[1:] == lk[:-1], False]
    prev_start = np.r_[False, lkind[:-1] == START] & same_prev
    next_kind = np.r_[lkind[1:], IGNORE]
    starts = np.flatnonzero(lkind == START)
    ends = np.flatnonzero(lkind == END)
    orphan = ends[~prev_start[ends]]
    skipped["exit of a task that was not running"] += int(orphan.size)
    has_next = same_next[starts]
    nxt = np.minimum(starts + 1, life.size - 1)
    end_is_exit = has_next & (next_kind[starts] == END)
    restart = has_next & (next_kind[starts] == START)
    notes["start while running (earlier run ended at the restart)"] += int(restart.sum())
    s_idx, n_idx = life[starts], life[nxt]
    end_us = np.where(has_next, t[n_idx], NEVER)
    end_row = np.where(end_is_exit, src[n_idx], -1)
    src_s = src[s_idx]
    start_row = np.where(src_s >= 0, src_s, -1)
    machine_row = np.where(src_s >= 0, src_s, -1 - src_s)
    number = _cumcount(lk[starts])
    up_row, up_inc = _assign_updates(k, t, kd, src, s_idx, end_us, skipped)
    return Incarnations(k[s_idx], start_row, end_row, machine_row, t[s_idx], end_us, number, up_row, up_inc)


def _cumcount(sorted_keys: np.ndarray) -> np.ndarray:
    # 0, 1, 2, ... within each run of equal keys
    n = sorted_keys.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    return np.arange(n) - group_start


def _assign_updates(k: np.ndarray, t: np.ndarray, kd: np.ndarray, src: np.ndarray, s_idx: np.ndarray,
                    end_us: np.ndarray, skipped: Counter) -> tuple[np.ndarray, np.ndarray]:
    # the run an update belongs to: the latest start of the same key before it, if still running
    n = k.size
    inc_at = np.full(n, -1, dtype=np.int64)
    inc_at[s_idx] = np.arange(s_idx.size)
    first = np.r_[True, k[1:] != k[:-1]] if n else np.zeros(0, bool)
    marker = np.where(first & (inc_at < 0), -2, inc_at)  # -2 resets at a new key
    filled = _ffill(marker)
    upd = np.flatnonzero(kd == UPDATE)
    inc = filled[upd]
    ok = inc >= 0
    ok[ok] &= t[upd[ok]] < end_us[inc[ok]]
    skipped["update of a task that was not running"] += int((~ok).sum())
    return src[upd[ok]], inc[ok]


def _ffill(a: np.ndarray) -> np.ndarray:
    # forward-fill: each -1 takes the last value that was not -1 (values < -1 stop the fill)
    idx = np.where(a != -1, np.arange(a.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = a[idx]
    return np.where(out == -2, -1, out)
