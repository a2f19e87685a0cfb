"""The sampler's scans over a machine's memcg and run columns (``core.metrics.Sampler``).

In: a ``MachineState``. Out: the columns' totals, misattributed and parked pages
(``usage_scan``), computed by C loops over the columns' buffers in the compiled build, where
numpy's cost per call (tens of microseconds a sample on a small machine) would dominate; the pure
build's numpy code in ``core.metrics`` is the reference they equal. The zombie gauges are kept as
the memcgs change (``core.zombie_gauges``); ``zombie_scan`` counts them from scratch, the
reference those equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from core.memcg import State
from core.pages import PARKED, Kind, St
from core.zombie_gauges import HELD_COLUMNS

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

_ONLINE, _FREED = int(State.ONLINE), int(State.FREED)
_RESIDENT_STATE, _PARKED_FLAG = int(St.RESIDENT), int(PARKED)
_FEW_ZOMBIES = 64  # up to this many offline times are sorted; more are partitioned by numpy
#: the ``held_*`` gauges in sample-column order (``core.metrics``), as ``zombie_scan`` and
#: ``core.zombie_gauges`` return them (what holds a memcg for each: ``zombie_gauges.HELD_COLUMNS``)
HELD_GAUGES = ("held_file", "held_shmem", "held_anon", "held_swap", "held_pinned", "held_kmem", "held_child",
               "held_cgwb", "held_sock", "held_oom")
#: the dying memcgs' columns whose count of nonzero entries ``zombie_scan`` reports, with their gauges
HELD = tuple((c, g) for c, g in zip(HELD_COLUMNS, HELD_GAUGES) if c != "children")
if len(HELD_COLUMNS) != len(HELD_GAUGES) or HELD_GAUGES[HELD_COLUMNS.index("children")] != "held_child":
    raise ImportError("core.zombie_gauges.HELD_COLUMNS does not name what holds each of HELD_GAUGES")


def zombie_scan(machine: MachineState) -> tuple:
    """The zombie gauges counted from scratch by numpy over every slot: the reference that
    ``core.zombie_gauges`` (what a sample reads) equals, checked by ``core.invariants``. Out: (online
    slots, root and hidden included; the ``held_*`` counts in ``HELD_GAUGES`` order; the dying memcgs'
    charged pages, their swap pages, ``age_basis`` of their offline times)."""
    mem = machine.mem
    dying = np.fromiter(sorted(mem.dying), dtype=np.int64, count=len(mem.dying))
    state = mem.view("state")
    online = int((state == _ONLINE).sum())
    col = {k: mem.view(k)[dying] for k in ("anon", "file", "shmem", "kmem", "kmem_pin", "pinned", "swap",
                                          "offline_us", "wb_pin", "sock", "nsock", "noom")}
    live_parents = mem.view("parent")[(state != _FREED) & (mem.view("parent") >= 0)]
    has_child = np.bincount(live_parents, minlength=len(state))[dying] > 0  # a live child holds it
    count = {gauge: int((col[k] > 0).sum()) for k, gauge in HELD}
    count["held_child"] = int(has_child.sum())
    charged = int((col["anon"] + col["file"] + col["shmem"] + col["kmem"] + col["sock"]).sum())
    return (online, tuple(count[gauge] for gauge in HELD_GAUGES), charged, int(col["swap"].sum()),
            age_basis(col["offline_us"]))


def age_basis(offline_us: Sequence[int] | np.ndarray) -> tuple[int, int, int, int]:
    """What a dying set's zombie ages at any later time derive from (``core.metrics``).

    In: the dying memcgs' offline times (a list, an int64 ``array`` or numpy array). Out: (count, the
    offline time whose age is the median or the upper middle one, the other middle one, the oldest
    offline time). A few are sorted as Python ints; many are partitioned by numpy, which puts the
    same values at those places in linear time (a sample of a machine with thousands of zombies).
    """
    n = len(offline_us)
    if n == 0:
        return (0, 0, 0, 0)
    if n <= _FEW_ZOMBIES:
        s = sorted(offline_us)
        return (n, int(s[(n - 1) // 2]), int(s[n // 2]), int(s[0]))
    p = np.partition(np.asarray(offline_us, dtype=np.int64), [0, (n - 1) // 2, n // 2])
    return (n, int(p[(n - 1) // 2]), int(p[n // 2]), int(p[0]))


@cython.overflowcheck(False)  # sums of at most 2**31 int32 values in 64 bits: none can overflow
def usage_scan(machine: MachineState) -> tuple:
    """``Sampler._usage``'s scan, by C loops (compiled build only). Out: (the anon, file, shmem, kmem, sock and
    borrow columns' totals over every slot, as a tuple in that order; misattributed pages; parked pages), as the
    pure build's numpy code has them. The runs are scanned only when the table counts a resident run charged
    elsewhere than its origin or a parked one (``RunTable.foreign``/``parked``): under most policies, never."""
    if not cython.compiled:
        raise RuntimeError("usage_scan reads the columns' C buffers: compiled build only")
    mem, R = machine.mem, machine.runs
    n: cython.Py_ssize_t = mem.state.ob_size
    i: cython.Py_ssize_t
    for a in (mem.anon, mem.file, mem.shmem, mem.kmem, mem.sock, mem.borrow):
        if len(a) != n:
            raise RuntimeError(f"memcg columns of {len(a)} and {n} slots")
    anon: cython.p_int = mem.anon.data.as_ints
    file: cython.p_int = mem.file.data.as_ints
    shmem: cython.p_int = mem.shmem.data.as_ints
    kmem: cython.p_int = mem.kmem.data.as_ints
    sock: cython.p_int = mem.sock.data.as_ints
    borrow: cython.p_int = mem.borrow.data.as_ints
    t_anon: cython.longlong = 0
    t_file: cython.longlong = 0
    t_shmem: cython.longlong = 0
    t_kmem: cython.longlong = 0
    t_sock: cython.longlong = 0
    t_borrow: cython.longlong = 0
    for i in range(n):  # one pass over the slots for the six totals
        t_anon += anon[i]
        t_file += file[i]
        t_shmem += shmem[i]
        t_kmem += kmem[i]
        t_sock += sock[i]
        t_borrow += borrow[i]
    totals = (t_anon, t_file, t_shmem, t_kmem, t_sock, t_borrow)
    if R.foreign == 0 and R.parked == 0:  # (kept by the table's writers) no run to look for: no scan
        return totals, 0, 0
    nr: cython.Py_ssize_t = R.state.ob_size
    state: cython.p_schar = R.state.data.as_schars
    rflags: cython.p_schar = R.rflags.data.as_schars
    memcg: cython.p_int = R.memcg.data.as_ints
    origin: cython.p_int = R.origin.data.as_ints
    npages: cython.p_int = R.npages.data.as_ints
    parked: cython.longlong = 0
    cand: list = []
    for i in range(nr):
        if state[i] == _RESIDENT_STATE:
            if memcg[i] != origin[i]:
                cand.append(i)
            if rflags[i] & _PARKED_FLAG:
                parked += npages[i]
    return totals, (misattributed_pages(machine, cand) if cand else 0), parked


def misattributed_pages(machine: MachineState, cand: Iterable[int]) -> int:
    """Resident pages charged to a memcg that neither instantiated them (origin) nor uses them.

    In: the candidates, resident runs whose memcg differs from their origin (found by the
    caller, numpy or C). A candidate is forgiven when its memcg uses it: a live task of that
    memcg maps some page of the run, or (anon) owns the region.
    """
    R = machine.runs
    total = 0
    for r in cand:
        if not used_by(machine, r, R.memcg[r]):
            total += R.npages[r]
    return total


def used_by(machine: MachineState, r: int, m: int) -> bool:
    """Does a live task of memcg ``m`` map run ``r`` (or own it, for anon)?"""
    R = machine.runs
    o = R.obj[r]
    if R.kind[r] == Kind.ANON:
        t = machine.o_owner[o]
        return t >= 0 and machine.t_alive[t] and machine.t_cg[t] == m
    if R.mapc[r] <= 0:
        return False
    lo, hi = R.start[r], R.start[r] + R.npages[r]
    return any(a < hi and lo < b and machine.t_alive[t] and machine.t_cg[t] == m
               for t, a, b in machine.o_maps[o])
