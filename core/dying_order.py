"""The dying memcgs of a table: their offline order, and their ancestors' count of them.

In: a ``MemcgTable`` and the memcg going offline (``enlist``, at its offline time) or being freed
(``unlist``). Out: the table's ``dying_order`` (slots) and ``dying_off`` (their offline times,
ascending), where a freed memcg's entry becomes -1 (``dying_holes`` counts them; the entries are
rewritten without them once they are half), and ``nr_dying_desc`` of every ancestor, raised at
offline and lowered at release (``nr_dying_descendants``, kernel/cgroup/cgroup.c:
css_killed_work_fn / css_release_work_fn). A sample reads the zombies' offline times in order
(``core.sample_scan``): the median and oldest zombie age without sorting the dying set each time.
The machine's clock never goes back, so an offline time is appended; a table driven alone with an
earlier time gets it inserted in order. Compiled, these are C loops over the columns' buffers.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if not cython.compiled:  # the compiled build cimports their C versions (core/run_index.pxd)
    from core.run_index import append_int
if TYPE_CHECKING:
    from core.memcg import MemcgTable


def enlist(mem: MemcgTable, m: cython.Py_ssize_t, now: cython.longlong) -> None:
    """Memcg ``m`` went offline at ``now``: add it to the offline order; its ancestors count it."""
    order: array = mem.dying_order
    off: array = mem.dying_off
    at: cython.Py_ssize_t = len(off)
    if at and now < off[at - 1]:
        while at > 0 and off[at - 1] > now:  # after the memcgs that went offline at ``now`` or before
            at -= 1
        order.insert(at, m)
        off.insert(at, now)
    else:
        append_int(order, m)
        append_int(off, now)
    _count_dying(mem, mem.parent[m], 1)


def unlist(mem: MemcgTable, m: cython.Py_ssize_t) -> None:
    """Dying memcg ``m`` is being freed: its entry becomes -1 (the entries are rewritten without the
    freed ones once those are half of them: amortised O(1) a release); its ancestors stop counting it."""
    order: array = mem.dying_order
    off: array = mem.dying_off
    t: cython.longlong = mem.offline_us[m]
    n: cython.Py_ssize_t = len(off)
    lo: cython.Py_ssize_t = 0
    hi: cython.Py_ssize_t = n
    mid: cython.Py_ssize_t
    times: cython.p_longlong
    slots: cython.p_longlong
    if cython.compiled:
        times, slots = off.data.as_longlongs, order.data.as_longlongs
    else:
        times, slots = off, order
    while lo < hi:  # the first entry at time t
        mid = (lo + hi) // 2
        if times[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    while lo < n and slots[lo] != m:  # memcgs that went offline at the same time: in the order they did
        lo += 1
    if lo == n:
        raise RuntimeError(f"dying memcg {m} is not in the offline order")
    slots[lo] = -1
    mem.dying_holes += 1
    if 2 * mem.dying_holes > n:
        keep = [k for k in range(n) if slots[k] >= 0]
        mem.dying_order = array("q", [slots[k] for k in keep])
        mem.dying_off = array("q", [times[k] for k in keep])
        mem.dying_holes = 0
    _count_dying(mem, mem.parent[m], -1)


def _count_dying(mem: MemcgTable, a: cython.Py_ssize_t, d: cython.int) -> None:
    """Add ``d`` to ``nr_dying_desc`` of ``a`` and of every ancestor of it (``a`` = -1: none)."""
    n: cython.Py_ssize_t = len(mem.parent)
    parent: cython.p_int
    count: cython.p_int
    if cython.compiled:
        parent, count = mem.parent.data.as_ints, mem.nr_dying_desc.data.as_ints
    else:
        parent, count = mem.parent, mem.nr_dying_desc
    while a >= 0:
        if a >= n:
            raise IndexError("array index out of range")
        count[a] += d
        a = parent[a]
