"""The memcg hierarchy of one machine: lifecycle, hierarchical counters, the ID pool.

In: mkdir/rmdir requests and page-count deltas from ``core.machine``. Out: the
state a kernel would show in cgroup.stat / memory.current / memory.stat, and
the answer to "is this zombie still held, and by what".

Kernel behaviour modelled (KERNEL-MODEL.md §0–§2):
- rmdir fails with EBUSY while the cgroup has tasks or *online* children;
  dying children do not block it (kernel/cgroup/cgroup.c: cgroup_destroy_locked).
- an offline memcg stays (dying) while any folio charge, swap-entry ID ref,
  non-reparented kmem or live child holds it; its css holds its parent
  (css_free_rwork_fn), so dying parents cascade.
- ``nr_dying_descendants`` is raised on every ancestor at rmdir and lowered when
  the cgroup is released.
- the 16-bit memcg ID (MEM_CGROUP_ID_MAX = 65535) is held while online and by
  swap entries after offline (mem_cgroup_id_get_many / mem_cgroup_id_put_many).
- charges are hierarchical: every ancestor's usage includes them
  (try_charge_memcg -> page_counter_try_charge).

Counters are in 4 KiB pages. Slots of freed memcgs are reused, so memory
grows with live (online + dying) memcgs, not with all memcgs ever created.
"""

from __future__ import annotations

import enum
from array import array
from operator import attrgetter

import numpy as np

# a module, not its functions: compiled, core.dying_order loads this module before its own body runs
import core.dying_order as _dying
from core.zombie_gauges import ZombieGauges

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython
if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import append_int, i32_at, i64_at, store_int

ROOT = 0
UNLIMITED = 1 << 62

#: the names of ``MemcgTable``'s numeric columns, in the order ``_new_slot`` fills them
_COLUMNS = ("parent", "state", "born_us", "offline_us", "ntasks", "holds_id", "anon", "file", "shmem",
            "kmem", "kmem_pin", "mapped", "pinned", "swap", "usage", "swap_usage", "peak", "max", "high",
            "pgscan", "pgsteal", "refault", "oom_kill", "nr_dying_desc", "borrow", "wb_pin", "sock", "nsock",
            "noom", "refault_tree", "refault_snap")


class State(enum.IntEnum):
    """Lifecycle of one memcg slot."""

    ONLINE = 0
    DYING = 1
    FREED = 2


#: a new online memcg's columns (``_COLUMNS`` order; read through its buffer when compiled); parent and
#: birth time are filled in per slot
_DEFAULTS = array("q", [{"state": int(State.ONLINE), "offline_us": -1, "holds_id": 1, "max": UNLIMITED,
                         "high": UNLIMITED}.get(name, 0) for name in _COLUMNS])
_PARENT_AT, _BORN_AT = _COLUMNS.index("parent"), _COLUMNS.index("born_us")
#: the numeric columns of a table, as a tuple in ``_COLUMNS`` order
_COLUMNS_OF = attrgetter(*_COLUMNS)
# the lifecycle states as plain ints for the per-slot paths (C constants in the compiled build):
# an IntEnum member lookup costs far more than the test
_ONLINE, _DYING, _FREED = int(State.ONLINE), int(State.DYING), int(State.FREED)
#: the range of an int64 column's elements
_I64_MAX = (1 << 63) - 1
_I64_MIN = -_I64_MAX - 1


class Errno(enum.IntEnum):
    """Outcomes of mkdir/rmdir that a real kernel would report."""

    OK = 0
    EEXIST = 17
    ENOENT = 2
    EBUSY = 16
    ENOSPC = 28


_EOK, _EEXIST, _ENOENT, _EBUSY, _ENOSPC = Errno.OK, Errno.EEXIST, Errno.ENOENT, Errno.EBUSY, Errno.ENOSPC

#: columns of ``MemcgTable.released``: one entry per freed memcg, for the per-job output table
RELEASED_COLUMNS = ("born_us", "offline_us", "freed_us", "peak_pages", "oom_kills")


class MemcgTable:
    """All memcgs of a machine as parallel columns (``array``) indexed by slot.

    Own page counters (charged directly to this memcg): ``anon``, ``file``,
    ``shmem``, ``kmem``; ``mapped`` / ``pinned`` are the resident file+shmem
    pages mapped by some task / pinned or mlocked pages among them; ``swap`` is
    the number of swap slots whose record names this memcg. ``usage`` and
    ``swap_usage`` are hierarchical (this memcg and everything below).
    ``borrow`` is the shared memory this memcg borrows from smemcgs (the
    ``smemcg`` policy): part of its usage, but not charged pages, so it holds nothing.
    ``sock`` counts socket-buffer pages charged here and ``nsock`` the open sockets whose
    ``sk_memcg`` this is (each holds the memcg, buffers or not). ``noom`` counts OOM victims
    of this memcg that the OOM reaper still holds (their task, and so its css_set).
    ``refault_tree`` counts page-cache refaults charged in this memcg's subtree,
    including memcgs since freed (the hierarchical ``workingset_refault_file``);
    ``refault_snap`` is its value when reclaim aimed at this memcg last ended
    (``snapshot_refaults``): what ``core.vmscan`` compares to tell thrashing cache.
    ``hidden`` holds memcgs a policy keeps for itself (an smemcg per shared
    object): children of the root, not addressable by path, not user cgroups.
    ``dying_order`` / ``dying_off`` / ``dying_holes``: the dying memcgs in offline order (``core.dying_order``).
    """

    # the numeric columns, one entry per slot, declared so that every field has a static type
    # (``_COLUMNS`` order). Created in ``__init__``: array('q') (int64) for times, limits and
    # cumulative event counts, array('i') (int32) for page and object counts (< 8 TiB).
    parent: array[int]
    state: array[int]
    born_us: array[int]
    offline_us: array[int]
    ntasks: array[int]
    holds_id: array[int]
    anon: array[int]
    file: array[int]
    shmem: array[int]
    kmem: array[int]
    kmem_pin: array[int]
    mapped: array[int]
    pinned: array[int]
    swap: array[int]
    usage: array[int]
    swap_usage: array[int]
    peak: array[int]
    max: array[int]
    high: array[int]
    pgscan: array[int]
    pgsteal: array[int]
    refault: array[int]
    oom_kill: array[int]
    nr_dying_desc: array[int]
    borrow: array[int]
    wb_pin: array[int]
    sock: array[int]
    nsock: array[int]
    noom: array[int]
    refault_tree: array[int]
    refault_snap: array[int]

    def __init__(self, id_pool_size: int = 65535) -> None:
        self.id_pool_size = id_pool_size
        self.ids_in_use = 0
        self.path: list[str] = []
        self.children: list[set[int]] = []
        # numeric columns are arrays: cheap to touch per event, zero-copy numpy views for sampling
        self.parent = array("i")
        self.state = array("i")
        self.born_us = array("q")
        self.offline_us = array("q")
        self.ntasks = array("i")
        self.holds_id = array("i")
        self.anon = array("i")
        self.file = array("i")
        self.shmem = array("i")
        self.kmem = array("i")
        self.kmem_pin = array("i")
        self.mapped = array("i")
        self.pinned = array("i")
        self.swap = array("i")
        self.usage = array("q")
        self.swap_usage = array("i")
        self.peak = array("q")
        self.max = array("q")
        self.high = array("q")
        self.pgscan = array("q")
        self.pgsteal = array("q")
        self.refault = array("q")
        self.oom_kill = array("i")
        self.nr_dying_desc = array("i")
        self.borrow = array("i")
        self.wb_pin = array("i")
        self.sock = array("i")
        self.nsock = array("i")
        self.noom = array("i")
        self.refault_tree = array("q")
        self.refault_snap = array("q")
        self.column_arrays = _COLUMNS_OF(self)  # the same arrays, in _COLUMNS order (the columns grow in place)
        self.by_path: dict[str, int] = {}
        self.dying: set[int] = set()
        self.dying_order, self.dying_off, self.dying_holes = array("q"), array("q"), 0
        self.free_slots: list[int] = []
        self.released_paths: list[str] = []
        self.released: dict[str, array[int]] = {k: array("q") for k in RELEASED_COLUMNS}
        self.hidden: set[int] = set()
        self.zg = ZombieGauges()  # the dying memcgs' sample gauges, kept as they change
        self._new_slot("/", -1, 0)

    # -- slots -------------------------------------------------------------------------

    def _new_slot(self, path: str, parent: cython.Py_ssize_t, now: cython.longlong) -> cython.Py_ssize_t:
        """Take a free slot (or append one) for a new online memcg; holds one ID."""
        cols: tuple = self.column_arrays
        k: cython.Py_ssize_t
        v: cython.longlong
        fresh: cython.bint = not self.free_slots
        m: cython.Py_ssize_t = len(self.path) if fresh else self.free_slots.pop()
        for k in range(len(cols)):  # each column's default (_DEFAULTS), the parent and birth time
            if cython.compiled:
                v = _DEFAULTS.data.as_longlongs[k]
            else:
                v = _DEFAULTS[k]
            v = parent if k == _PARENT_AT else now if k == _BORN_AT else v
            if fresh:
                append_int(cols[k], v)
            else:
                store_int(cols[k], m, v)
        if fresh:
            self.path.append(path)
            self.children.append(set())
        else:
            self.path[m], self.children[m] = path, set()
        self.ids_in_use += 1
        self.by_path[path] = m
        if parent >= 0:
            self.children[parent].add(m)
        return m

    def columns(self) -> dict[str, array[int]]:
        """The numeric columns by name (``_COLUMNS`` order): the arrays themselves, not copies."""
        return dict(zip(_COLUMNS, self.column_arrays))

    def add_hidden(self, path: str, now: int) -> int:
        """A new online memcg under the root that the trace cannot name (see ``hidden``); holds an ID."""
        user, m = self.by_path.get(path), self._new_slot(path, ROOT, now)
        if user is None:
            del self.by_path[path]
        else:
            self.by_path[path] = user
        self.hidden.add(m)
        return m

    def drop_hidden(self, m: int) -> None:
        """Free hidden memcg ``m`` at once (its owner has uncharged everything)."""
        self.hidden.discard(m)
        self.state[m] = _FREED
        self.put_id(m)
        self.children[ROOT].discard(m)
        self.free_slots.append(m)

    def view(self, name: str) -> np.ndarray:
        """Zero-copy numpy view of one column (int32 or int64); drop it before the table grows."""
        col = getattr(self, name)
        return np.frombuffer(col, dtype=np.dtype(col.typecode))

    # -- lifecycle ---------------------------------------------------------------------
    def mkdir(self, path: str, now: cython.longlong) -> tuple:
        """Create an online memcg at ``path``; (errno, slot). ENOSPC when the ID pool is full."""
        if path in self.by_path:
            return _EEXIST, -1
        parent = self.by_path.get(parent_path(path), -1)
        if parent < 0:
            return _ENOENT, -1
        if self.ids_in_use >= self.id_pool_size:
            return _ENOSPC, -1
        return _EOK, self._new_slot(path, parent, now)

    def rmdir_check(self, m: cython.Py_ssize_t) -> Errno:
        """EBUSY while tasks or online children remain (cgroup_destroy_locked)."""
        if i32_at(self.ntasks, m) > 0:
            return _EBUSY
        for c in self.children[m]:  # (a loop: a generator cannot be compiled into a C method)
            if i32_at(self.state, c) == _ONLINE:
                return _EBUSY
        return _EOK

    def offline(self, m: cython.Py_ssize_t, now: cython.longlong) -> None:
        """rmdir succeeded: the memcg goes offline (dying) and gives back its online ID ref.

        mem_cgroup_css_offline -> mem_cgroup_id_put: the ID stays only while swap
        records hold it. Ancestors count one more dying descendant.
        """
        store_int(self.state, m, _DYING)
        store_int(self.offline_us, m, now)
        del self.by_path[self.path[m]]
        self.dying.add(m)
        _dying.enlist(self, m, now)  # (and its ancestors count one more dying descendant)
        self.zg.lifecycle(m)
        if i32_at(self.swap, m) == 0:
            self.put_id(m)

    def put_id(self, m: cython.Py_ssize_t) -> None:
        """Give back the memcg's ID (mem_cgroup_id_remove) if it still holds one."""
        if i32_at(self.holds_id, m):
            store_int(self.holds_id, m, 0)
            self.ids_in_use -= 1

    def held(self, m: cython.Py_ssize_t) -> cython.bint:
        """Does anything still reference this memcg (folio charges, swap IDs, kmem, cgwb pins, sockets,
        OOM victims not yet reaped, children)?"""
        if cython.compiled and 0 <= m < self.parent.ob_size:
            return bool(self.anon.data.as_ints[m] or self.file.data.as_ints[m] or self.shmem.data.as_ints[m]
                        or self.swap.data.as_ints[m] or self.kmem_pin.data.as_ints[m]
                        or self.wb_pin.data.as_ints[m] or self.nsock.data.as_ints[m]
                        or self.noom.data.as_ints[m] or self.children[m])
        return bool(self.anon[m] or self.file[m] or self.shmem[m] or self.swap[m]
                    or self.kmem_pin[m] or self.wb_pin[m] or self.nsock[m] or self.noom[m] or self.children[m])

    def try_release(self, m: cython.Py_ssize_t, now: cython.longlong) -> int:
        """Free dying memcg ``m`` if nothing holds it, then its dying ancestors in turn.

        Returns how many memcgs were freed (css_release_work_fn / css_free_rwork_fn).
        """
        freed: cython.Py_ssize_t = 0
        while m > ROOT and i32_at(self.state, m) == _DYING and not self.held(m):
            self._release(m, now)
            freed += 1
            m = i32_at(self.parent, m)
        return freed

    def _release(self, m: cython.Py_ssize_t, now: cython.longlong) -> None:
        store_int(self.state, m, _FREED)
        self.dying.discard(m)
        _dying.unlist(self, m)  # (and its ancestors count one dying descendant less)
        self.zg.lifecycle(m)
        p: cython.Py_ssize_t = i32_at(self.parent, m)
        self.zg.mark(p)  # (a live child less: the parent's held_child)
        self.put_id(m)
        self.children[p].discard(m)
        self.released_paths.append(self.path[m])
        rel = self.released
        append_int(rel["born_us"], i64_at(self.born_us, m))
        append_int(rel["offline_us"], i64_at(self.offline_us, m))
        append_int(rel["freed_us"], now)
        append_int(rel["peak_pages"], i64_at(self.peak, m))
        append_int(rel["oom_kills"], i32_at(self.oom_kill, m))
        self.free_slots.append(m)

    def take_released(self) -> tuple[list[str], dict[str, array[int]]]:
        """Records of memcgs freed since the last call: (paths, ``RELEASED_COLUMNS``); then forgets them.

        The records are output (the per-job table), not state: handing them out as they
        accrue keeps a machine's checkpoint bounded by what is alive.
        """
        paths, cols = self.released_paths, self.released
        self.released_paths = []
        self.released = {k: array("q") for k in RELEASED_COLUMNS}
        return paths, cols

    # -- counters ----------------------------------------------------------------------
    # Compiled, these read and write the columns through their buffers; a slot past the table
    # raises the IndexError its arrays raise in the pure build (``check_slot``), and the parents'
    # chain stays inside it. C sums are overflow-checked (setup.py), and stored in an int32 column
    # only when they fit (``add_i32``): an overflow is an OverflowError in both builds.

    def charge(self, m: cython.Py_ssize_t, pages: cython.longlong) -> None:
        """Add ``pages`` (an int) to the hierarchical usage of ``m`` and its ancestors (may be negative)."""
        if m < 0:
            return
        n: cython.longlong = pages
        u: cython.longlong
        usage: cython.p_longlong
        peak: cython.p_longlong
        parent: cython.p_int
        if cython.compiled:
            check_slot(self, m)
            usage, peak, parent = self.usage.data.as_longlongs, self.peak.data.as_longlongs, self.parent.data.as_ints
        else:
            usage, peak, parent = self.usage, self.peak, self.parent
        while m >= 0:
            u = usage[m] + n
            usage[m] = u
            if u > peak[m]:
                peak[m] = u
            m = parent[m]

    def charge_swap(self, m: cython.Py_ssize_t, pages: cython.longlong) -> None:
        """Add ``pages`` to hierarchical memory.swap.current of ``m`` and its ancestors."""
        su, parent = self.swap_usage, self.parent
        while m >= 0:
            add_i32(su, m, pages)
            m = i32_at(parent, m)

    def count_refault(self, m: cython.Py_ssize_t, pages: cython.longlong) -> None:
        """Count ``pages`` of page cache refaulted into ``m``: its own ``refault`` and the
        hierarchical ``refault_tree`` of ``m`` and its ancestors."""
        n: cython.longlong = pages
        tree: cython.p_longlong
        parent: cython.p_int
        store_int(self.refault, m, i64_at(self.refault, m) + n)  # a slot past the table raises before the walk
        if cython.compiled:
            tree, parent = self.refault_tree.data.as_longlongs, self.parent.data.as_ints
        else:
            tree, parent = self.refault_tree, self.parent
        while m >= 0:
            tree[m] += n
            m = parent[m]

    def over_limit(self, m: cython.Py_ssize_t, pages) -> cython.Py_ssize_t:  # pages: int, as in charge
        """The highest-priority memcg whose memory.max a charge of ``pages`` would break, or -1.

        page_counter_try_charge walks from ``m`` to the root and fails at the first
        counter over its max; that counter's memcg is ``mem_over_limit``.
        """
        x: cython.Py_ssize_t
        if cython.compiled and _I64_MIN <= pages <= _I64_MAX:  # the C walk (core/memcg.pxd); -2: this one decides
            x = over_limit_c(self, m, pages)  # type: ignore[name-defined]  # noqa: F821  (memcg.pxd)
            if x != -2:
                return x
        usage, mx, parent = self.usage, self.max, self.parent
        while m >= 0:
            if usage[m] + pages > mx[m]:
                return m
            m = parent[m]
        return -1

    def over_high(self, m: cython.Py_ssize_t) -> list:
        """Ancestors (incl. ``m``) whose usage exceeds memory.high, nearest first."""
        out = []
        usage, high, parent = self.usage, self.high, self.parent  # after every charging fault
        while m >= 0:
            if usage[m] > high[m]:
                out.append(m)
            m = parent[m]
        return out

    def nearest_online(self, m: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """``m`` if online, else its closest online ancestor (mem_cgroup_id_get_online)."""
        while i32_at(self.state, m) != _ONLINE:
            m = i32_at(self.parent, m)
        return m

    def subtree(self, m: int) -> list[int]:
        """``m`` and every live (online or dying) descendant, pre-order (css_next_descendant_pre)."""
        out, stack, children = [], [m], self.children
        while stack:
            x = stack.pop()
            out.append(x)
            if ch := children[x]:  # a leaf (most memcgs) has nothing to push, an only child nothing to sort
                stack.extend(ch if len(ch) == 1 else sorted(ch, reverse=True))
        return out

    def is_ancestor(self, a: int, m: int) -> bool:
        """True when ``a`` is ``m`` or one of its ancestors."""
        parent = self.parent
        while m >= 0:
            if m == a:
                return True
            m = parent[m]
        return False

    def own_pages(self, m: cython.Py_ssize_t) -> cython.longlong:
        """Pages charged directly to ``m`` (not its children): LRU folios, kmem, socket buffers, smemcg borrow."""
        s: cython.longlong = 0  # (a 64-bit sum of the int32 columns)
        c: array
        for c in (self.anon, self.file, self.shmem, self.kmem, self.sock, self.borrow):
            s += i32_at(c, m)
        return s

    def live(self) -> list[int]:
        """Slots of every online or dying memcg, root included, in slot order."""
        return [m for m, s in enumerate(self.state) if s != _FREED]


def check_slot(table: MemcgTable, m: cython.Py_ssize_t) -> int:
    """The compiled build reads the columns unchecked: a slot past the table raises here the
    IndexError that indexing its arrays raises in the pure build. Returns 0."""
    if m >= len(table.parent):
        raise IndexError("array index out of range")
    return 0


def add_i32(col: array, m: cython.Py_ssize_t, n: cython.longlong) -> int:
    """``col[m] += n`` on an int32 column, through its buffer when compiled, ``m`` is a slot of it and
    the sum fits the element; else by the array's own ``+=``, which raises what the pure build raises
    (IndexError past the column, OverflowError for a sum out of int32). Returns 0."""
    v: cython.longlong
    if cython.compiled and 0 <= m < col.ob_size and col.ob_descr.itemsize == 4:  # (a wider column: the += below)
        v = col.data.as_ints[m] + n
        if -0x80000000 <= v <= 0x7FFFFFFF:
            col.data.as_ints[m] = v
            return 0
    col[m] += n
    return 0


def parent_path(path: str) -> str:
    """'/a/b' -> '/a'; '/a' -> '/'."""
    return path.rsplit("/", 1)[0] or "/"


def normalize_path(path: str) -> str:
    """Canonical cgroup path: leading '/', no trailing or doubled '/'."""
    return "/" + "/".join([p for p in path.split("/") if p])
