"""Turn cgroup lifecycles and memory samples into native trace events.

In: a ``Cgroups`` table (one row per cgroup incarnation: machine, path, optional
task, parent, start/end, limit, default memory, sharing keys), optional
``Samples`` (per-task memory over time), limit updates, machine markers and the
sharing rules. Out: an Arrow table in ``traces.schema.TRACE_SCHEMA`` whose
events follow ``core.ops.OP_SPECS``: parents are created before children,
``mkdir`` before ``set_limit`` and ``task_start``, files are created before
they are used, tasks exit before ``rmdir``, children are removed before their
parent.

Every importer (and the host recorder) builds these inputs and calls ``emit``;
the event semantics live here once. The mapping, documented in
``docs/importers.md``:

* anon: a stack of regions ``<task>:anon<k>``; growth faults a new region,
  shrinkage frees whole regions from the top and the tail of the last one;
* private page cache: file ``<task>:cache`` (size = the task's peak), growth
  reads the next range; shrinkage is left to the model's reclaim (the trace
  cannot say whether the kernel or the task dropped it);
* mapped page cache: ``file_map`` of the private file's first bytes; shrinkage
  unmaps and maps the smaller range;
* shmem (recorder only): tmpfs object ``<task>:shm`` written as it grows,
  deleted and rewritten when it shrinks;
* changes smaller than ``min_change_bytes`` are not emitted (hysteresis).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces.importers.codes import event_codes
from traces.importers.common import INT64_MAX, NEVER, PAGE, ImportReport, first_seen, valid_mask
from traces.importers.machine_memory import with_machine_memory
from traces.importers.sharing import AGENT_CGROUP, AGENT_TASK, Rule
from traces import take, take_build
from traces.schema import TRACE_SCHEMA, schema_of

# Phases order events that share (machine, time): (major, minor). mkdir minor
# is the depth (parents first); rmdir minor is minus the depth (children first).
P_MARK, P_MKDIR, P_LIMIT, P_START, P_CREATE, P_MEM, P_EXIT, P_DELETE, P_RMDIR = range(9)


@dataclass
class Cgroups:
    """Cgroup incarnations, columnar. ``task`` null = a parent without a task of its own.

    ``anon``/``cache`` are the memory a task gets when it has no samples
    (bytes); ``keys`` maps a sharing key name (``job``, ``user``, ``pod``) to a
    nullable string per row.
    """

    machine: pa.Array
    path: pa.Array
    task: pa.Array
    parent: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    limit: np.ndarray
    anon: np.ndarray
    cache: np.ndarray
    keys: dict[str, pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.path)


@dataclass
class Samples:
    """Memory of task cgroups over time, bytes (``cg`` indexes ``Cgroups``)."""

    cg: np.ndarray
    time_us: np.ndarray
    anon: np.ndarray
    cache: np.ndarray
    mapped: np.ndarray
    shmem: np.ndarray

    @classmethod
    def empty(cls) -> "Samples":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, z, z)


@dataclass
class Updates:
    """memory.max changes of running cgroups (``limit`` bytes, -1 = no limit)."""

    cg: np.ndarray
    time_us: np.ndarray
    limit: np.ndarray

    @classmethod
    def empty(cls) -> "Updates":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z)


@dataclass(frozen=True)
class ProfileParams:
    """How memory figures become events (see module docstring)."""

    min_change_bytes: int = 1 << 20
    mapped_fraction: float = 0.3  #: share of private page cache mapped when the trace has no split
    delete_private_at_exit: bool = False  #: unlink ``<task>:cache`` at exit (its cache then cannot linger)


@dataclass
class _Part:
    """A block of events with one op; None columns are null."""

    op: str
    time: np.ndarray
    major: int
    minor: np.ndarray | int
    machine: pa.Array
    cgroup: pa.Array | None = None
    task: pa.Array | None = None
    obj: pa.Array | None = None
    offset: np.ndarray | None = None
    nbytes: np.ndarray | None = None
    flags: str | None = None


def emit(cg: Cgroups, samples: Samples, updates: Updates, rules: tuple[Rule, ...],
         params: ProfileParams, report: ImportReport,
         markers: tuple[pa.Array, np.ndarray] | None = None) -> pa.Table:
    """All events of ``cg`` (plus optional machine ``markers``) as a sorted native trace table.

    Machines whose memory the trace gives (``report.machines``, filled from machine events
    before this call) start with a ``memory`` row, so a replay sizes each as the trace says.
    """
    _fix_parent_spans(cg)
    cg, samples, updates, mcode, mnames = _by_machine(cg, samples, updates)
    samples = _samples_in_lifetime(cg, samples, report)
    depth = _depth(cg)  # a string scan of every path: once, for mkdir and rmdir
    parts = _structure_parts(cg, depth) + _update_parts(cg, updates) + _agent_parts(cg, rules, mcode)
    for rule in rules:
        if rule.enabled and rule.key in cg.keys:
            parts += _rule_parts(cg, rule, mcode)
    parts += _default_memory_parts(cg, samples, params)
    parts += _sample_parts(cg, samples, params)
    parts += _teardown_parts(cg, samples, params, depth)
    if markers is not None and len(markers[0]):
        parts.append(_Part("sync", markers[1], P_MARK, 0, markers[0]))
    table, machines = _assemble(parts, (cg.machine, mcode, mnames))
    n = table.num_rows
    table = with_machine_memory(table, report.machines)  # each machine's RAM, from the trace's capacity
    _count(table, cg, report, parts, machines)
    if table.num_rows > n:
        report.ops = dict(report.ops, memory=table.num_rows - n)
    return table


# ---------------------------------------------------------------- lifecycle

def _fix_parent_spans(cg: Cgroups) -> None:
    # a parent must exist while any child does: stretch its span over theirs
    child = np.flatnonzero(cg.parent >= 0)
    if child.size:
        np.minimum.at(cg.start_us, cg.parent[child], cg.start_us[child])
        np.maximum.at(cg.end_us, cg.parent[child], cg.end_us[child])


def _by_machine(cg: Cgroups, samples: Samples,
                updates: Updates) -> tuple[Cgroups, Samples, Updates, np.ndarray, pa.Array]:
    """``cg`` with its rows stably grouped by machine in the order of the sorted machine ids
    (``samples`` and ``updates`` renumbered to match), per row a code of its machine
    (ascending: the groups' order), and the sorted machine ids (what the codes number).

    The output is sorted by machine first, so with the cgroups grouped the same way every
    later gather of per-event values walks memory nearly in order instead of
    jumping across the whole table (on millions of events, cache misses were most of their
    cost). The events are the same and in the same order: events tie only on one machine,
    and there the rows keep their relative order, which is all that breaks ties.
    """
    enc = cg.machine.dictionary_encode()
    # the rank of each machine id among the sorted ids: the output's machine order, so a part
    # built from ascending cgroup rows has its machines in output order (``_assemble`` then cuts
    # it into chunks by slicing)
    rank = np.empty(len(enc.dictionary), dtype=np.int64)
    by_id = pc.sort_indices(enc.dictionary)
    rank[by_id.to_numpy()] = np.arange(len(enc.dictionary))
    names = enc.dictionary.take(by_id)
    codes = rank[enc.indices.to_numpy()]
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return cg, samples, updates, codes, names
    # the same permutation either way; numpy's stable sort of 16-bit keys is a radix sort
    perm = np.argsort(codes.astype(np.int16) if len(rank) <= 1 << 15 else codes, kind="stable")
    new = np.empty_like(perm)
    new[perm] = np.arange(perm.size)
    parent = cg.parent[perm]
    parent = np.where(parent >= 0, new[np.maximum(parent, 0)], -1)
    rows = pa.array(perm)
    grouped = Cgroups(cg.machine.take(rows), cg.path.take(rows), cg.task.take(rows), parent,
                      *(getattr(cg, a)[perm] for a in ("start_us", "end_us", "limit", "anon", "cache")),
                      {k: v.take(rows) for k, v in cg.keys.items()})
    s = Samples(new[samples.cg], samples.time_us, samples.anon, samples.cache, samples.mapped, samples.shmem)
    return grouped, s, Updates(new[updates.cg], updates.time_us, updates.limit), codes[perm], names


def _depth(cg: Cgroups) -> np.ndarray:
    return count_char(cg.path, "/")


def _plain(arr: pa.Array, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """A string array's own offsets and its data, for the compiled loops; None when they cannot take it
    (no compiled build, another type, a null (among ``rows`` if given), no data)."""
    if (take_build.module() is None or not pa.types.is_string(arr.type) or not len(arr)
            or arr.buffers()[2] is None):
        return None
    if arr.null_count and (rows is None or not valid_mask(arr)[rows].all()):
        return None
    off = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    return off, np.frombuffer(arr.buffers()[2], dtype=np.uint8)


def count_char(arr: pa.Array, char: str) -> np.ndarray:
    """Per string how many times the one-byte ``char`` occurs in it, int64 (compiled when built)."""
    plain = _plain(arr)
    if plain is None:
        return count_char_pure(arr, char)
    return take_build.module().count_byte(*plain, ord(char))


def count_char_pure(arr: pa.Array, char: str) -> np.ndarray:
    """``count_char`` by Arrow: the reference."""
    return pc.count_substring(arr, char).to_numpy().astype(np.int64)


class _Ref:
    """Rows ``idx`` of a base array, not yet gathered: ``_assemble`` gathers once for all parts."""

    def __init__(self, base: pa.Array, idx: np.ndarray) -> None:
        self.base, self.idx = base, np.asarray(idx, dtype=np.int64)

    def __len__(self) -> int:
        return self.idx.size

    def take(self, rows: pa.Array | np.ndarray) -> "_Ref":
        rows = rows.to_numpy() if isinstance(rows, pa.Array) else rows
        return _Ref(self.base, self.idx[rows])

    def gather(self) -> pa.Array:
        return self.base.take(pa.array(self.idx, type=pa.int64()))


def _sel(arr: pa.Array, idx: np.ndarray) -> _Ref:
    return _Ref(arr, idx)


def _m(x: "pa.Array | _Ref") -> pa.Array:
    return x.gather() if isinstance(x, _Ref) else x


def _has_task(cg: Cgroups) -> np.ndarray:
    return valid_mask(cg.task)


def _structure_parts(cg: Cgroups, depth: np.ndarray) -> list[_Part]:
    n = len(cg)
    allidx = np.arange(n)
    parts = [_Part("mkdir", cg.start_us, P_MKDIR, depth, _sel(cg.machine, allidx), cgroup=_sel(cg.path, allidx))]
    lim = np.flatnonzero(cg.limit >= 0)
    if lim.size:
        parts.append(_Part("set_limit", cg.start_us[lim], P_LIMIT, 0, _sel(cg.machine, lim),
                           cgroup=_sel(cg.path, lim), nbytes=cg.limit[lim], flags="max"))
    t = allidx[_has_task(cg)]
    parts.append(_Part("task_start", cg.start_us[t], P_START, 0, _sel(cg.machine, t),
                       cgroup=_sel(cg.path, t), task=_sel(cg.task, t)))
    return parts


def _teardown_parts(cg: Cgroups, samples: Samples, params: ProfileParams, depth: np.ndarray) -> list[_Part]:
    ended = cg.end_us != NEVER
    t = np.flatnonzero(ended & _has_task(cg))
    parts = [_Part("task_exit", cg.end_us[t], P_EXIT, 0, _sel(cg.machine, t), task=_sel(cg.task, t))]
    if params.delete_private_at_exit:
        d = t[_private_cache_size(cg, samples, params)[t] > 0]
        parts.append(_Part("file_delete", cg.end_us[d], P_DELETE, 0, _sel(cg.machine, d),
                           obj=_suffix(_sel(cg.task, d), ":cache")))
    r = np.flatnonzero(ended)
    parts.append(_Part("rmdir", cg.end_us[r], P_RMDIR, -depth[r], _sel(cg.machine, r),
                       cgroup=_sel(cg.path, r)))
    return parts


def _update_parts(cg: Cgroups, up: Updates) -> list[_Part]:
    if not len(up.cg):
        return []
    lim = np.where(up.limit >= 0, up.limit, 0)
    nbytes = pa.array(lim, mask=up.limit < 0, type=pa.int64())
    return [_Part("set_limit", up.time_us, P_MEM, 0, _sel(cg.machine, up.cg), cgroup=_sel(cg.path, up.cg),
                  nbytes=nbytes, flags="max")]


def _suffix(arr: "pa.Array | _Ref", text: str) -> pa.Array:
    """Each string of ``arr`` followed by ``text``; a ``_Ref`` is gathered and suffixed in one compiled pass
    when built (``suffixed_pure``: the same strings)."""
    plain = _plain(arr.base, arr.idx) if isinstance(arr, _Ref) else None
    if plain is not None:
        got = take_build.module().take_suffixed(*plain, np.ascontiguousarray(arr.idx),
                                                np.frombuffer(text.encode(), dtype=np.uint8))
        if got is not None:
            return pa.Array.from_buffers(pa.string(), len(arr), [None, pa.py_buffer(got[0]), pa.py_buffer(got[1])])
    return suffixed_pure(arr, text)


def suffixed_pure(arr: "pa.Array | _Ref", text: str) -> pa.Array:
    """``_suffix`` by Arrow's take and join: the reference."""
    return pc.binary_join_element_wise(_m(arr), pa.scalar(text), "")


def _prefix(text: str, arr: "pa.Array | _Ref") -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(text), _m(arr), "")


# ---------------------------------------------------------------- sharing rules

def _rule_parts(cg: Cgroups, rule: Rule, mcode: np.ndarray) -> list[_Part]:
    key = cg.keys[rule.key]
    members = np.flatnonzero(valid_mask(key) & _has_task(cg))
    if not members.size:
        return []
    obj, gid = _shared_objects(rule, key, members, mcode[members])
    ngroups = int(gid.max()) + 1
    start = cg.start_us[members]
    # first member of each group (earliest start, then lowest row): creates the file / writes the tmpfs
    first = _first_of_groups(gid, start, ngroups)
    size = _page_round(rule.nbytes)
    fm = members[first]
    parts = [_Part("file_create", start[first], P_CREATE, 0, _sel(cg.machine, fm), obj=obj.take(first),
                   nbytes=_fill(ngroups, size), flags="shmem" if rule.tmpfs else None)]
    if rule.owner == "agent":
        # the agent fills the page cache first (minor -1: before the tasks' reads at the same time)
        parts.append(_Part("file_read", start[first], P_MEM, -1, _sel(cg.machine, fm),
                           task=_const(AGENT_TASK, ngroups), obj=obj.take(first),
                           offset=_fill(ngroups, 0), nbytes=_fill(ngroups, size)))
    if rule.tmpfs:
        parts += _tmpfs_parts(cg, rule, members, obj, gid, first, size)
    else:
        parts += _file_use_parts(cg, rule, members, obj, size)
    return parts


def _agent_members(cg: Cgroups, rules: tuple[Rule, ...]) -> np.ndarray:
    """Rows of the tasks that use a file the machine agent fills (a rule with ``owner="agent"``)."""
    use = np.zeros(len(cg), dtype=bool)
    for rule in rules:
        if rule.enabled and rule.owner == "agent" and rule.key in cg.keys:
            use |= valid_mask(cg.keys[rule.key])
    return np.flatnonzero(use & _has_task(cg))


def _agent_parts(cg: Cgroups, rules: tuple[Rule, ...], mcode: np.ndarray) -> list[_Part]:
    """The machine agent's cgroup and task, from the first start of a task that uses its files; never removed.

    ``mcode``: per cgroup a code of its machine (any numbering: only equality matters)."""
    members = _agent_members(cg, rules)
    if not members.size:
        return []
    midx = mcode[members]
    first = members[_first_of_groups(midx, cg.start_us[members], int(midx.max()) + 1)]
    n, mach = first.size, _sel(cg.machine, first)
    return [_Part("mkdir", cg.start_us[first], P_MKDIR, 1, mach, cgroup=_const(AGENT_CGROUP, n)),
            _Part("task_start", cg.start_us[first], P_START, 0, mach, cgroup=_const(AGENT_CGROUP, n),
                  task=_const(AGENT_TASK, n))]


def _first_of_groups(gid: np.ndarray, start: np.ndarray, ngroups: int) -> np.ndarray:
    """Per group that has members, in group order: the position of its member with the earliest
    ``start``, the lowest position among equal starts (the firsts of ``np.lexsort((pos, start, gid))``).

    Without a sort: the least (start, position) packed in an int64 per group, when they fit."""
    n = gid.size
    pbits = max(n - 1, 1).bit_length()
    s0 = int(start.min())
    if (int(start.max()) - s0).bit_length() + pbits > 62:
        order = np.lexsort((np.arange(n), start, gid))
        return order[np.r_[True, gid[order][1:] != gid[order][:-1]]]
    key = start - s0
    key <<= pbits
    key |= np.arange(n)
    best = np.full(ngroups, INT64_MAX, dtype=np.int64)
    np.minimum.at(best, gid, key)
    best = best[best != INT64_MAX]
    best &= (1 << pbits) - 1
    return best


def _fill(n: int, value: int) -> np.ndarray:
    """``n`` times ``value`` as an int64 column of a part, without materialising it (a read-only view)."""
    return np.broadcast_to(np.int64(value), (n,))


def _const(text: str, n: int) -> _Ref:
    return _Ref(pa.array([text], pa.string()), np.zeros(n, np.int64))


def _shared_objects(rule: Rule, key: pa.Array, members: np.ndarray, midx: np.ndarray) -> tuple[_Ref, np.ndarray]:
    """Per member its shared object name, and its (machine, object) group numbered in order of first appearance.

    The names are refs into one ``prefix + key`` per distinct key: a few thousand
    strings instead of one per member, so the output's object column gathers
    them from a base that stays in cache. Groups are found on integer codes of
    (machine, key), packed in an int64 and numbered by ``common.first_seen`` (one
    hash pass, compiled when built), rather than by hashing joined strings; the
    numbering is the same: both number in order of first appearance.
    ``midx`` is per member a code of its machine (any one-to-one numbering will do).
    """
    keys = key.take(pa.array(members)).dictionary_encode()
    kidx = keys.indices.to_numpy().astype(np.int64)
    obj = _Ref(_prefix(rule.prefix, keys.dictionary.cast(pa.string())), kidx)
    return obj, first_seen(midx * len(keys.dictionary) + kidx)


def _file_use_parts(cg: Cgroups, rule: Rule, members: np.ndarray, obj: pa.Array | _Ref, size: int) -> list[_Part]:
    n = members.size
    mach, task, start = _sel(cg.machine, members), _sel(cg.task, members), cg.start_us[members]
    parts = [_Part("file_read", start, P_MEM, 0, mach, task=task, obj=obj,
                   offset=_fill(n, 0), nbytes=_fill(n, size))]
    mapped = _page_round(int(size * rule.mapped_fraction))
    if mapped > 0:
        parts.append(_Part("file_map", start, P_MEM, 0, mach, task=task, obj=obj,
                           offset=_fill(n, 0), nbytes=_fill(n, mapped)))
    return parts


def _tmpfs_parts(cg: Cgroups, rule: Rule, members: np.ndarray, obj: pa.Array | _Ref, gid: np.ndarray,
                 first: np.ndarray, size: int) -> list[_Part]:
    is_first = np.zeros(members.size, dtype=bool)
    is_first[first] = True
    rest = np.flatnonzero(~is_first)
    w = members[first]
    parts = [_Part("file_write", cg.start_us[w], P_MEM, 0, _sel(cg.machine, w), task=_sel(cg.task, w),
                   obj=obj.take(first), offset=_fill(first.size, 0), nbytes=_fill(first.size, size))]
    r = members[rest]
    parts.append(_Part("file_map", cg.start_us[r], P_MEM, 0, _sel(cg.machine, r), task=_sel(cg.task, r),
                       obj=obj.take(rest), offset=_fill(rest.size, 0),
                       nbytes=_fill(rest.size, _page_round(int(size * rule.mapped_fraction)))))
    # the volume goes away with the pod: when its last member has exited
    gend = np.zeros(len(first), dtype=np.int64)
    np.maximum.at(gend, gid, cg.end_us[members])
    gidx = np.flatnonzero(gend != NEVER)
    parts.append(_Part("file_delete", gend[gidx], P_DELETE, 0, _sel(cg.machine, w[gidx]),
                       obj=obj.take(first[gidx])))
    return parts


def shared_bytes(cg: Cgroups, rules: tuple[Rule, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per cgroup: bytes of shared files it may be charged for, and of those it maps, under ``rules``.

    Files the machine agent fills (``owner="agent"``) count for no task: their pages are the agent's.
    """
    total = np.zeros(len(cg), dtype=np.int64)
    mapped = np.zeros(len(cg), dtype=np.int64)
    for rule in rules:
        if rule.enabled and rule.owner != "agent" and rule.key in cg.keys:
            has = valid_mask(cg.keys[rule.key])
            total += np.where(has, _page_round(rule.nbytes), 0)
            mapped += np.where(has, _page_round(int(rule.nbytes * rule.mapped_fraction)), 0)
    return total, mapped


def _page_round(nbytes: int) -> int:
    return -(-int(nbytes) // PAGE) * PAGE


# ---------------------------------------------------------------- private memory

def _samples_in_lifetime(cg: Cgroups, s: Samples, report: ImportReport) -> Samples:
    if not len(s.cg):
        return s
    ok = (s.time_us >= cg.start_us[s.cg]) & (s.time_us <= cg.end_us[s.cg]) & _has_task(cg)[s.cg]
    if (~ok).any():
        report.skipped["usage sample outside its task's lifetime"] += int((~ok).sum())
    order = np.lexsort((s.time_us, s.cg))
    order = order[ok[order]]
    return Samples(*(a[order] for a in (s.cg, s.time_us, s.anon, s.cache, s.mapped, s.shmem)))


def _private_cache_size(cg: Cgroups, s: Samples, params: ProfileParams) -> np.ndarray:
    size = np.where(_has_task(cg), cg.cache, 0).astype(np.int64)
    if len(s.cg):
        has = np.zeros(len(cg), dtype=bool)
        has[s.cg] = True
        size[has] = 0
        np.maximum.at(size, s.cg, s.cache)
    return -(-size // PAGE) * PAGE


def _default_memory_parts(cg: Cgroups, s: Samples, params: ProfileParams) -> list[_Part]:
    # tasks without samples: their default anon and private cache at start
    todo = _has_task(cg)
    todo[s.cg] = False
    parts = []
    a = np.flatnonzero(todo & (cg.anon > 0))
    parts.append(_Part("anon_alloc", cg.start_us[a], P_MEM, 0, _sel(cg.machine, a), task=_sel(cg.task, a),
                       obj=_suffix(_sel(cg.task, a), ":anon0"), nbytes=-(-cg.anon[a] // PAGE) * PAGE))
    c = np.flatnonzero(todo & (cg.cache > 0))
    size = -(-cg.cache[c] // PAGE) * PAGE
    mach, task = _sel(cg.machine, c), _sel(cg.task, c)
    obj = _sel(_suffix(task, ":cache"), np.arange(c.size))  # a ref: its mapped rows are taken as row numbers
    parts.append(_Part("file_create", cg.start_us[c], P_CREATE, 0, mach, obj=obj, nbytes=size))
    parts.append(_Part("file_read", cg.start_us[c], P_MEM, 0, mach, task=task, obj=obj, offset=_fill(c.size, 0),
                       nbytes=size))
    mapped = (size * params.mapped_fraction).astype(np.int64) // PAGE * PAGE
    m = np.flatnonzero(mapped > 0)
    parts.append(_Part("file_map", cg.start_us[c][m], P_MEM, 0, mach.take(pa.array(m)), task=task.take(pa.array(m)),
                       obj=obj.take(pa.array(m)), offset=_fill(m.size, 0), nbytes=mapped[m]))
    return parts


class _Rows:
    """Python-side event rows for the sample loop (one list per column)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {k: [] for k in ("time", "major", "cg", "op", "obj", "off", "nb")}

    def add(self, t: int, major: int, cg: int, op: str, obj: str, off: int | None, nb: int | None) -> None:
        for k, v in zip(self.cols, (t, major, cg, op, obj, off, nb)):
            self.cols[k].append(v)


def _sample_parts(cg: Cgroups, s: Samples, params: ProfileParams) -> list[_Part]:
    if not len(s.cg):
        return []
    rows = _Rows()
    size = _private_cache_size(cg, s, params)
    bounds = np.flatnonzero(np.r_[True, s.cg[1:] != s.cg[:-1], True])
    tasks = cg.task.to_pylist() if len(bounds) > 1 else []
    thr = max(params.min_change_bytes // PAGE, 1)
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        i = int(s.cg[b0])
        _task_profile(rows, i, tasks[i], int(cg.start_us[i]), int(size[i]) // PAGE,
                      [s.time_us[b0:b1]] + [a[b0:b1] // PAGE for a in (s.anon, s.cache, s.mapped, s.shmem)], thr)
    c = rows.cols
    idx = np.asarray(c["cg"], dtype=np.int64)
    ops = np.asarray(c["op"], dtype=object)
    out = []
    for op in dict.fromkeys(c["op"]):  # one part per op keeps the row order within each op
        m = np.flatnonzero(ops == op)
        out.append(_Part(op, np.asarray(c["time"], np.int64)[m], 0, 0, _sel(cg.machine, idx[m]),
                         task=None if op == "file_create" else _sel(cg.task, idx[m]),
                         obj=pa.array([c["obj"][j] for j in m], pa.string()),
                         offset=pa.array([c["off"][j] for j in m], pa.int64()),
                         nbytes=pa.array([c["nb"][j] for j in m], pa.int64()),
                         flags="shmem" if op == "file_create" and c["obj"][m[0]].endswith(":shm") else None))
        out[-1].major = np.asarray(c["major"], np.int64)[m]
    return _split_create_flags(out)


def _split_create_flags(parts: list[_Part]) -> list[_Part]:
    # file_create rows of private cache files and of shmem objects need different flags
    out = []
    for p in parts:
        if p.op != "file_create":
            out.append(p)
            continue
        shm = pc.ends_with(p.obj, ":shm").to_numpy(zero_copy_only=False)
        for mask, flag in ((~shm, None), (shm, "shmem")):
            k = pa.array(np.flatnonzero(mask))
            out.append(_Part("file_create", p.time[mask], p.major[mask], 0, p.machine.take(k),
                             obj=p.obj.take(k), nbytes=p.nbytes.take(k), flags=flag))
    return out


def _task_profile(rows: _Rows, i: int, task: str, start: int, cache_pages: int,
                  cols: list[np.ndarray], thr: int) -> None:
    """Events of one task's samples; ``cols`` = times (us), then anon, cache, mapped, shmem in pages."""
    times, anon, cache, mapped, shmem = (c.tolist() for c in cols)
    st = {"anon": [], "anon_cur": 0, "k": 0, "cache": 0, "map": 0, "shm": 0}
    if cache_pages > 0:
        rows.add(start, P_CREATE, i, "file_create", f"{task}:cache", None, cache_pages * PAGE)
    for t, a, c, m, sh in zip(times, anon, cache, mapped, shmem):
        _anon_step(rows, st, i, task, t, a, thr)
        _cache_step(rows, st, i, task, t, min(c, cache_pages), min(m, c, cache_pages), thr)
        _shmem_step(rows, st, i, task, t, sh, thr)


def _anon_step(rows: _Rows, st: dict, i: int, task: str, t: int, target: int, thr: int) -> None:
    cur = st["anon_cur"]
    if target - cur >= thr:
        name = f"{task}:anon{st['k']}"
        st["k"] += 1
        st["anon"].append([name, target - cur])
        rows.add(t, P_MEM, i, "anon_alloc", name, None, (target - cur) * PAGE)
        st["anon_cur"] = target
    elif cur - target >= thr:
        drop = cur - target
        while drop > 0:
            name, size = st["anon"][-1]
            if size <= drop:
                rows.add(t, P_MEM, i, "anon_free", name, None, None)
                st["anon"].pop()
                drop -= size
            else:
                rows.add(t, P_MEM, i, "anon_free", name, (size - drop) * PAGE, drop * PAGE)
                st["anon"][-1][1] = size - drop
                drop = 0
        st["anon_cur"] = target


def _cache_step(rows: _Rows, st: dict, i: int, task: str, t: int, c: int, m: int, thr: int) -> None:
    obj = f"{task}:cache"
    if c - st["cache"] >= thr:
        rows.add(t, P_MEM, i, "file_read", obj, st["cache"] * PAGE, (c - st["cache"]) * PAGE)
        st["cache"] = c
    elif st["cache"] - c >= thr:
        st["cache"] = c  # the kernel (or the task) dropped it; reclaim in the model decides
    if m - st["map"] >= thr:
        rows.add(t, P_MEM, i, "file_map", obj, st["map"] * PAGE, (m - st["map"]) * PAGE)
        st["map"] = m
    elif st["map"] - m >= thr:
        rows.add(t, P_MEM, i, "file_unmap", obj, None, None)
        if m > 0:
            rows.add(t, P_MEM, i, "file_map", obj, 0, m * PAGE)
        st["map"] = m


def _shmem_step(rows: _Rows, st: dict, i: int, task: str, t: int, sh: int, thr: int) -> None:
    obj = f"{task}:shm"
    cur = st["shm"]
    if sh - cur >= thr:
        if cur == 0:
            rows.add(t, P_CREATE, i, "file_create", obj, None, None)
        rows.add(t, P_MEM, i, "file_write", obj, cur * PAGE, (sh - cur) * PAGE)
        st["shm"] = sh
    elif cur - sh >= thr:
        rows.add(t, P_MEM, i, "file_delete", obj, None, None)
        if sh > 0:
            rows.add(t, P_MEM, i, "file_create", obj, None, None)
            rows.add(t, P_MEM, i, "file_write", obj, 0, sh * PAGE)
        st["shm"] = sh


# ---------------------------------------------------------------- assembly

OPS: tuple[str, ...] = ("mkdir", "rmdir", "set_limit", "task_start", "task_exit", "file_create", "file_read",
                        "file_write", "file_map", "file_unmap", "file_delete", "anon_alloc", "anon_free", "sync")
FLAGS: tuple[str | None, ...] = (None, "max", "shmem")


def _int_values(part: _Part, name: str) -> tuple[np.ndarray | int, np.ndarray | bool | None]:
    """An int column of a part as (values, validity): validity None when all are valid, False when
    none is (the values are then one 0)."""
    v = getattr(part, name)
    n = len(part.time)
    if v is None:
        return 0, False
    if isinstance(v, np.ndarray):
        return np.broadcast_to(v.astype(np.int64, copy=False), (n,)), None
    v = _m(v)
    if not v.null_count:
        return v.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), None
    return pc.fill_null(v, 0).to_numpy().astype(np.int64, copy=False), valid_mask(v)


def _string_refs(parts: list[_Part], attr: str) -> tuple[pa.Array, list[tuple[np.ndarray, int] | int]]:
    """One base array for a string column of all parts, and per part its events' rows in it:
    ``(rows, shift)`` (row ``rows[i] + shift`` of the base), or -1 for a part without the column.

    ``_Ref`` values point into their base; materialised arrays are their own base.
    Several bases are concatenated once, so the column is gathered in one pass. The rows
    are shifted as they are laid out (``_strings``), not copied per part first.
    """
    bases: dict[int, list] = {}  # id -> [array, offset]
    idx: list[tuple[np.ndarray, int] | int] = []
    for p in parts:
        v = getattr(p, attr)
        if v is None:
            idx.append(-1)
            continue
        base, rows = (v.base, v.idx) if isinstance(v, _Ref) else (v, np.arange(len(v), dtype=np.int64))
        if id(base) not in bases:
            bases[id(base)] = [base, sum(len(b[0]) for b in bases.values())]
        idx.append((rows, bases[id(base)][1]))
    arrays = [b[0] if pa.types.is_string(b[0].type) else b[0].cast(pa.string()) for b in bases.values()]
    if not arrays:
        arrays = [pa.array([], pa.string())]
    base = arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)
    return base, idx


def _machine_codes(parts: list[_Part],
                   known: tuple[pa.Array, np.ndarray, pa.Array] | None = None) -> tuple[list[np.ndarray], pa.Array]:
    """Per part, per event the rank of its machine id; the sorted distinct ids.

    ``known``: a machine column, its rows' ranks and the sorted ids they rank (``_by_machine``'s):
    when every part's machines are rows of that column, their codes are those ranks."""
    if known is not None and _strings_type(known[0].type) and all(
            isinstance(p.machine, _Ref) and p.machine.base is known[0] for p in parts):
        # int32 codes (the output's dictionary indices): half the memory of int64 per event
        ranks = known[1].astype(np.int32) if len(known[2]) < 1 << 31 else known[1]
        return [ranks[p.machine.idx] for p in parts], known[2]
    arrays = {}
    for p in parts:
        base = p.machine.base if isinstance(p.machine, _Ref) else p.machine
        arrays[id(base)] = base
    names = pa.concat_arrays([pc.unique(a.cast(pa.string())) for a in arrays.values()])
    names = pc.unique(names)
    names = names.take(pc.sort_indices(names))
    codes = {k: pc.index_in(a.cast(pa.string()), value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)
             for k, a in arrays.items()}
    out = [codes[id(p.machine.base)][p.machine.idx] if isinstance(p.machine, _Ref) else codes[id(p.machine)]
           for p in parts]
    return out, names


def _strings_type(t: pa.DataType) -> bool:
    """A string type, or a dictionary of strings (a machine column may come either way)."""
    return pa.types.is_string(t) or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))


def _phases(parts: list[_Part]) -> list[np.ndarray]:
    # read-only broadcast views: most parts have one phase, which then costs no per-event array
    return [np.broadcast_to(np.asarray(np.asarray(p.major) * 64 + np.asarray(p.minor) + 32, dtype=np.int64),
                            (len(p.time),)) for p in parts]


def _sort_events(cols: list["_Cols"], layout: tuple[int, int, int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Stable order of all events by (machine code, time, phase); also time and machine code (int32,
    the output's dictionary indices) in that order, and the int64 scratch arrays of the events'
    size that are dead by then (``spare``: the column gathers reuse them instead of fresh memory).

    Equal keys keep the parts' order (part, then row within the part).
    """
    times, phases, mcodes = [c.time for c in cols], [c.phase for c in cols], [c.mcode for c in cols]
    packed = _packed_keys(mcodes, times, phases, layout)
    if packed is None:
        mcode, time, phase = (np.concatenate(x) for x in (mcodes, times, phases))
        order = np.lexsort((phase, time, mcode))
        return order, time[order], mcode[order].astype(np.int32), []
    key, t0, tbits, pbits = packed
    del packed, phases
    # one stable sort of the keys laid out part after part: ties keep their part, then row, order.
    # The parts are grouped by machine and most of their events come in time order, so the keys are
    # long ascending runs, which numpy's stable sort (a timsort) merges rather than sorts
    order = np.argsort(key, kind="stable")
    sorted_key = np.take(key, order)
    # in place or into dead arrays where possible: every fresh 58 MB array costs page faults,
    # which dominate on a VM
    time = np.right_shift(sorted_key, pbits, out=key)
    time &= (1 << tbits) - 1
    time += t0
    mcode = np.right_shift(sorted_key, tbits + pbits, out=np.empty(order.size, np.int32), casting="unsafe")
    return order, time, mcode, [sorted_key]


def _key_layout(mcodes: list[np.ndarray], times: list[np.ndarray],
                phases: list[np.ndarray]) -> tuple[int, int, int, int] | None:
    """(t0, p0, tbits, pbits) of the packed sort keys (machine, time - t0, phase - p0) of these events;
    None if they need > 63 bits. A layout that fits all events fits any chunk of them."""
    t0 = min(int(t.min()) for t in times)
    p0 = min(int(p.min()) for p in phases)
    tbits = (max(int(t.max()) for t in times) - t0).bit_length()
    pbits = (max(int(p.max()) for p in phases) - p0).bit_length()
    mbits = max(int(m.max()) for m in mcodes).bit_length()
    return None if tbits + pbits + mbits > 63 else (t0, p0, tbits, pbits)


def _packed_keys(mcodes: list[np.ndarray], times: list[np.ndarray], phases: list[np.ndarray],
                 layout: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, int, int, int] | None:
    """The int64 keys (machine, time - t0, phase - p0) packed in bits, part after part in one array;
    None if they need > 63 bits. ``layout``: ``_key_layout`` of all events (else of these)."""
    layout = layout or _key_layout(mcodes, times, phases)
    if layout is None:
        return None
    t0, p0, tbits, pbits = layout
    bounds = np.cumsum([0] + [t.size for t in times])
    key = np.empty(bounds[-1], dtype=np.int64)
    scratch = np.empty(max(t.size for t in times), dtype=np.int64)  # one buffer for every part's shifted times
    for m, t, ph, lo, hi in zip(mcodes, times, phases, bounds[:-1], bounds[1:]):
        _pack(m, t, ph, t0, p0, tbits, pbits, scratch[:t.size], key[lo:hi])
    return key, t0, tbits, pbits


def _pack(m: np.ndarray, t: np.ndarray, ph: np.ndarray, t0: int, p0: int, tbits: int, pbits: int,
          rel: np.ndarray, key: np.ndarray) -> None:
    """The packed keys of one part, into ``key``; ``rel``: scratch of its size."""
    np.left_shift(m, tbits + pbits, out=key, dtype=np.int64)  # (int32 codes: shifted as int64)
    np.subtract(t, t0, out=rel)
    rel <<= pbits
    key |= rel
    # a phase that is one value for the part is ORed in as that value (a broadcast minus p0 is a full array)
    key |= int(ph[0]) - p0 if ph.ndim == 1 and ph.size and ph.strides[0] == 0 else ph - p0


#: events per chunk of machines the assembly sorts and gathers at a time: its temporaries
#: (sort keys, orders, scratch) then stay a few MB, reused from chunk to chunk, instead of
#: fresh arrays of the whole table's size
CHUNK_EVENTS = 1 << 18


@dataclass
class _Cols:
    """One part's per-event inputs to the assembly: what the sort and the column gathers read.

    ``refs``: per string column ``(rows, shift)`` into that column's base (``_string_refs``) or -1;
    ``offset``/``nbytes``/``meta``: an array per event or one value for all.
    """

    time: np.ndarray
    phase: np.ndarray
    mcode: np.ndarray
    meta: np.ndarray | int
    offset: np.ndarray | int
    nbytes: np.ndarray | int
    refs: dict[str, tuple[np.ndarray, int] | int]

    def __len__(self) -> int:
        return self.time.size

    def rows(self, sel: slice | np.ndarray) -> "_Cols":
        """The part's events ``sel`` (a slice, or ascending row numbers)."""
        n = len(range(*sel.indices(len(self)))) if isinstance(sel, slice) else sel.size

        def cut(v):
            if isinstance(v, np.ndarray) and v.ndim == 1 and v.size and v.strides[0] == 0:
                return np.broadcast_to(v[0], (n,))  # one value for all: stays a view
            return v[sel] if isinstance(v, np.ndarray) else v

        return _Cols(cut(self.time), cut(self.phase), cut(self.mcode), cut(self.meta),
                     cut(self.offset), cut(self.nbytes),
                     {k: r if isinstance(r, int) else (cut(r[0]), r[1]) for k, r in self.refs.items()})


def _assemble(parts: list[_Part],
              machines: tuple[pa.Array, np.ndarray, pa.Array] | None = None) -> tuple[pa.Table, list[str]]:
    """The events of ``parts`` as one sorted trace table; and the machine ids that occur in it.

    The events are sorted and gathered a chunk of machines at a time (``CHUNK_EVENTS``): the
    output is sorted by machine first, so each chunk's rows are a contiguous run of it and the
    table is the chunks' tables one after the other (one Arrow chunk each). ``machines``: the
    cgroups' machine column, its rows' codes and the ids they number (``_by_machine``), which spare
    ``_machine_codes`` its hashing when every part's machines are rows of that column.
    """
    parts = [p for p in parts if len(p.time)]
    if not parts:
        return TRACE_SCHEMA.empty_table(), []
    mcodes, mnames = _machine_codes(parts, machines)
    ints = {a: [_int_values(p, a) for p in parts] for a in ("offset", "nbytes")}
    refs = {a: _string_refs(parts, a) for a in ("cgroup", "task", "obj")}
    cols = [_Cols(np.asarray(p.time, dtype=np.int64), ph, m, meta,
                  ints["offset"][i][0], ints["nbytes"][i][0], {a: refs[a][1][i] for a in refs})
            for i, (p, ph, m, meta) in enumerate(zip(parts, _phases(parts), mcodes, _meta(parts, ints)))]
    del mcodes, ints
    bases = {a: refs[a][0] for a in refs}
    layout = _key_layout([c.mcode for c in cols], [c.time for c in cols], [c.phase for c in cols])
    tables, used = [], np.zeros(len(mnames), dtype=bool)
    for chunk in _chunks(cols, len(mnames)):
        table, seen = _assemble_chunk(chunk, bases, mnames, layout)
        tables.append(table)
        used |= seen
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table, mnames.take(pa.array(np.flatnonzero(used))).to_pylist()


def _chunks(cols: list[_Cols], nmachines: int, size: int | None = None) -> Iterator[list[_Cols]]:
    """``cols`` cut into chunks of whole machines of about ``size`` events (``CHUNK_EVENTS``), in
    machine order; each part keeps its events' order within a chunk.

    A part whose machine codes ascend (built from ascending cgroup rows) is cut by slicing;
    any other is split by a stable partition of its rows.
    """
    size = CHUNK_EVENTS if size is None else size
    total = sum(len(c) for c in cols)
    if total <= size or nmachines < 2:
        yield cols
        return
    ascending = [c.mcode.size < 2 or bool(np.all(c.mcode[1:] >= c.mcode[:-1])) for c in cols]
    per_machine = np.zeros(nmachines, dtype=np.int64)
    for c, up in zip(cols, ascending):
        m = c.mcode
        if up and m.size:  # an ascending part's count per machine: the lengths of its runs of one machine
            starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
            per_machine[m[starts]] += np.diff(np.r_[starts, m.size])
        else:
            per_machine += np.bincount(m, minlength=nmachines)
    # chunk k holds machines [edges[k], edges[k + 1]): cut where the running count passes k * size
    ends = np.cumsum(per_machine)
    edges = np.unique(np.r_[0, np.searchsorted(ends, np.arange(size, total, size), side="right"), nmachines])
    edges = edges[edges <= nmachines]
    cuts = []
    for c, up in zip(cols, ascending):
        m = c.mcode
        if up:
            bounds = np.searchsorted(m, edges, side="left")
            cuts.append([slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])])
        else:
            chunk_of = np.searchsorted(edges, m, side="right") - 1
            # a stable sort of 16-bit keys is numpy's radix sort (the same order)
            order = np.argsort(chunk_of.astype(np.int16) if edges.size <= 1 << 15 else chunk_of, kind="stable")
            bounds = np.searchsorted(chunk_of[order], np.arange(edges.size))
            cuts.append([order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])])
    for k in range(edges.size - 1):
        chunk = [c for c in (c.rows(cut[k]) for c, cut in zip(cols, cuts)) if len(c)]
        if chunk:  # machines a base names but no event uses make no chunk
            yield chunk


def _assemble_chunk(cols: list[_Cols], bases: dict[str, pa.Array], mnames: pa.Array,
                    layout: tuple[int, int, int, int] | None = None) -> tuple[pa.Table, np.ndarray]:
    """The sorted table of the events of ``cols``; and which machine codes occur in it (``layout``:
    the sort keys' bits, ``_key_layout`` of all events)."""
    order, time, mcode, spare = _sort_events(cols, layout)
    used = _codes_used(mcode, len(mnames))
    arrays = _columns(cols, bases, order, time, mcode, mnames, spare)
    del order, mcode, spare
    op, flag, arrays["offset"], arrays["bytes"] = arrays.pop("codes")
    # (codes in range by construction: safe=False skips Arrow's bounds check of every index)
    arrays["op"] = pa.DictionaryArray.from_arrays(op, pa.array(OPS, pa.string()), safe=False)
    arrays["flags"] = pa.DictionaryArray.from_arrays(flag, pa.array(FLAGS[1:], pa.string()), safe=False)
    columns = [arrays[f.name] for f in TRACE_SCHEMA]
    return pa.Table.from_arrays(columns, schema=schema_of(columns)), used


def _codes_used(mcode: np.ndarray, n: int) -> np.ndarray:
    """Which of the codes ``0 .. n - 1`` occur in ``mcode`` (ascending): found by a binary search of each
    code of its range, not by a pass over every event."""
    used = np.zeros(n, dtype=bool)
    if mcode.size:
        codes = np.arange(int(mcode[0]), int(mcode[-1]) + 1)
        used[codes] = mcode[np.searchsorted(mcode, codes)] == codes
    return used


def _columns(cols: list[_Cols], bases: dict[str, pa.Array], order: np.ndarray, time: np.ndarray,
             mcode: np.ndarray, mnames: pa.Array, spare: list[np.ndarray] = ()) -> dict:
    """The output columns in output order: op, flags, offset and bytes as ``codes`` (their arrays, from
    the events' ``meta``: ``traces.importers.codes``). Temporaries die on return.
    ``spare``: dead int64 arrays of the events' size, used before fresh ones (and taken over)."""
    put = _Gather(order, [len(c) for c in cols], spare)
    jobs = {
        "time_us": lambda: pa.array(time),
        "machine": lambda: pa.DictionaryArray.from_arrays(pa.array(mcode.astype(np.int32, copy=False)), mnames,
                                                          safe=False),
        "codes": lambda: _codes(put, cols),
        "cgroup": lambda: _strings(put, bases["cgroup"], [c.refs["cgroup"] for c in cols]),
        "task": lambda: _strings(put, bases["task"], [c.refs["task"] for c in cols]),
        "object": lambda: _strings(put, bases["obj"], [c.refs["obj"] for c in cols]),
    }
    return dict(zip(jobs, _parallel(list(jobs.values()))))


def _codes(put: _Gather, cols: list[_Cols]) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """op, flags, offset and bytes in output order (``codes.event_codes``), from the parts' values laid
    out in event order (scratch arrays, given back after)."""
    cats = [put.lay([c.meta for c in cols], np.uint8), put.lay([c.offset for c in cols], np.int64),
            put.lay([c.nbytes for c in cols], np.int64)]
    try:
        return event_codes(put.order, *cats)
    finally:
        for cat in cats:
            put.free(cat)


def _parallel(jobs: list[Callable[[], object]]) -> list:
    """Results of ``jobs``, run on two threads when a second core is idle.

    numpy's gathers and sorts and Arrow's take release the GIL, so on an idle
    2-core machine this stage takes about half the time; on a saturated one the
    threads only add contention, hence the load check. The results never depend
    on the scheduling.
    """
    if len(jobs) < 2 or _idle_cores() < 1.0:
        return [j() for j in jobs]
    with ThreadPoolExecutor(max_workers=2) as ex:
        return list(ex.map(lambda j: j(), jobs))


def _idle_cores() -> float:
    """Cores this process may use minus the 1-minute load average (0 where either is unknown)."""
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cores - os.getloadavg()[0]
    except OSError:
        return 0.0


def _strings(put: "_Gather", base: pa.Array, rows: list[tuple[np.ndarray, int] | int]) -> pa.Array:
    """A string column in output order, from per part its events' rows in ``base`` as ``_string_refs``
    gives them (``(rows, shift)``, or -1 = null).

    The rows are laid out part after part as int32 (shifted on the way in), then
    ``traces.take.strings`` gathers the strings by them and the event order at once (compiled
    when built), in buffers of their exact size; no per-event row column of the output's size
    is made in between.
    """
    cat = put.scratch(np.int32)
    for lo, hi, v in zip(put.bounds[:-1], put.bounds[1:], rows):
        if isinstance(v, int):
            cat[lo:hi] = v
        else:
            np.add(v[0], v[1], out=cat[lo:hi], casting="unsafe")  # < 2^31: a string array's row
    try:
        return take.strings(base, cat, put.order)
    finally:
        put.free(cat)


class _Gather:
    """Lays per-part values out for their gather into the sorted output.

    Each column is laid out part after part in a scratch array (a constant part is
    a fill, not an array), then gathered by ``order`` (output row -> event: ``_codes``,
    ``_strings``). The
    parts' rows are grouped by machine like the output, so the gather reads every
    part nearly in order; a scatter by the inverse order rewrote all of the output
    once per part instead (each part's rows are spread over all of it) and measured
    two to three times slower. Scratch arrays are reused between columns of one
    dtype (a pool: the columns may be built on two threads).
    """

    def __init__(self, order: np.ndarray, sizes: list[int], spare: list[np.ndarray] = ()) -> None:
        self.order = order
        self.bounds = np.cumsum([0] + sizes)
        self.pool: dict[np.dtype, list[np.ndarray]] = {}
        # dead arrays of the right size and dtype: scratch before any fresh allocation
        self.spare = [a for a in spare if a.dtype == np.int64 and a.shape == order.shape and a.flags.c_contiguous]

    def _spare(self, dtype: type) -> np.ndarray | None:
        try:
            return self.spare.pop() if np.dtype(dtype) == np.int64 else None
        except IndexError:
            return None

    def scratch(self, dtype: type) -> np.ndarray:
        """A scratch array of the events' size (pooled, spare or fresh); ``free`` gives it back."""
        try:
            return self.pool.setdefault(np.dtype(dtype), []).pop()
        except IndexError:
            cat = self._spare(dtype)
            return np.empty(self.order.size, dtype=dtype) if cat is None else cat

    def lay(self, values: list[np.ndarray | int], dtype: type) -> np.ndarray:
        """``values`` laid out part after part (event order) in a scratch array; ``free`` gives it back."""
        cat = self.scratch(dtype)
        for i, v in enumerate(values):
            cat[self.bounds[i]:self.bounds[i + 1]] = _one_value(v)
        return cat

    def free(self, cat: np.ndarray) -> None:
        """Return a scratch array of ``lay`` to the pool, for the next column of its dtype."""
        self.pool.setdefault(cat.dtype, []).append(cat)


def _one_value(v: np.ndarray | int) -> np.ndarray | int:
    """A part's values as one value when they are a ``_fill`` (a fill reads no array)."""
    if isinstance(v, np.ndarray) and v.ndim == 1 and v.size and v.strides[0] == 0:
        return v[0]
    return v


def _meta(parts: list[_Part], ints: dict[str, list]) -> list[np.ndarray | int]:
    """Per part: op code | flags code << 4 | offset valid << 6 | bytes valid << 7 (one value when constant)."""
    out: list[np.ndarray | int] = []
    for i, p in enumerate(parts):
        m = OPS.index(p.op) | FLAGS.index(p.flags) << 4
        for attr, bit in (("offset", 64), ("nbytes", 128)):
            ok = ints[attr][i][1]
            if ok is None:
                m = m | bit
            elif ok is not False:
                m = m | ok.astype(np.uint8) << np.uint8(bit.bit_length() - 1)
        out.append(m)
    return out


def _count(table: pa.Table, cg: Cgroups, report: ImportReport, parts: list[_Part], machines: list[str]) -> None:
    # counted from the parts, not from the 7-million-row string columns of the table
    report.cgroups = len(cg)
    report.tasks = int(_has_task(cg).sum())
    report.events = table.num_rows
    ops: dict[str, int] = {}
    for p in parts:
        if len(p.time):
            ops[p.op] = ops.get(p.op, 0) + len(p.time)
    if ops:
        report.ops = ops
    for m in machines:
        report.machines.setdefault(m, 0)
