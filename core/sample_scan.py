"""The sampler's scans over a machine's memcg and run columns (``core.metrics.Sampler``).

In: a ``MachineState``. Out: what one sample reads off the columns -- online slots, the dying
memcgs' ``held_*`` counts, charged and swap pages and offline times (``dying_scan``), the
columns' totals, misattributed and parked pages (``usage_scan``) -- computed by C loops over the
columns' buffers in the compiled build, where numpy's cost per call (tens of microseconds a
sample on a small machine) would dominate; the pure build's numpy code in ``core.metrics`` is
the reference they equal.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from core.memcg import State
from core.pages import PARKED, Kind, St

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

_ONLINE, _FREED = int(State.ONLINE), int(State.FREED)
_RESIDENT_STATE, _PARKED_FLAG = int(St.RESIDENT), int(PARKED)
_HALF32, _MASK32 = 1 << 31, (1 << 32) - 1  # to wrap a 64-bit sum at 32 bits (C constants when compiled)
_FEW_ZOMBIES = 64  # up to this many offline times are sorted; more are partitioned by numpy
_ZERO_B, _ZERO_Q = array("b", [0]), array("q", [0])  # repeated into zeroed scratch arrays
#: the dying memcgs' columns whose count of nonzero entries ``dying_scan`` reports, with their gauges
HELD = (("file", "held_file"), ("shmem", "held_shmem"), ("anon", "held_anon"), ("swap", "held_swap"),
        ("pinned", "held_pinned"), ("kmem_pin", "held_kmem"), ("wb_pin", "held_cgwb"), ("nsock", "held_sock"),
        ("noom", "held_oom"))


def dying_scan(machine: MachineState) -> tuple:
    """``Sampler._zombies``'s online slots (root and hidden included), ``held_*`` counts, dying memcgs' charged and
    swap pages and the zombie-age basis of their offline times (``age_basis``), as the pure build's numpy code has
    them, by C loops (compiled build only)."""
    if not cython.compiled:
        raise RuntimeError("dying_scan reads the columns' C buffers: compiled build only")
    mem = machine.mem
    n: cython.Py_ssize_t = mem.state.ob_size
    state: cython.p_int = mem.state.data.as_ints
    parent: cython.p_int = mem.parent.data.as_ints
    i: cython.Py_ssize_t
    k: cython.Py_ssize_t
    online: cython.Py_ssize_t = 0
    flags: array = _ZERO_B * n  # has a live (online or dying) child
    child: cython.p_schar = flags.data.as_schars
    for i in range(n):
        if state[i] == _ONLINE:
            online += 1
        k = parent[i]
        if state[i] != _FREED and 0 <= k < n:
            child[k] = 1
    nd: cython.Py_ssize_t = len(mem.dying)
    scratch: array = _ZERO_Q * (3 * nd)  # per dying memcg: its slot, its offline time, its charged pages
    at: cython.p_longlong = scratch.data.as_longlongs
    off: cython.p_longlong = at + nd
    w: cython.p_longlong = at + 2 * nd
    c: cython.longlong = 0
    swapped: cython.longlong = 0
    for k, i in enumerate(mem.dying):
        if not 0 <= i < n:
            raise IndexError(f"dying memcg {i} is not a slot of the table")
        at[k], off[k] = i, mem.offline_us.data.as_longlongs[i]
        c += child[i]
        swapped += mem.swap.data.as_ints[i]
    held = {"held_child": c}
    a: array
    col: cython.p_int
    for name, gauge in HELD:  # one column at a time, through its buffer
        a, c = getattr(mem, name), 0
        col = a.data.as_ints
        for k in range(nd):
            if col[at[k]] > 0:
                c += 1
        held[gauge] = c
    for name in ("anon", "file", "shmem", "kmem", "sock"):  # each one's charged pages, summed in 64 bits
        a = getattr(mem, name)
        col = a.data.as_ints
        for k in range(nd):
            w[k] += col[at[k]]
    charged: cython.longlong = 0
    for k in range(nd):  # wrapped at 32 bits, as numpy's int32 sum of the columns is
        charged += ((w[k] + _HALF32) & _MASK32) - _HALF32
    return online, held, charged, swapped, _basis_of(scratch, nd)


def _basis_of(scratch: array, nd: cython.Py_ssize_t) -> tuple:
    """``age_basis`` of the offline times at ``scratch[nd:2 * nd]``: a few sorted in place by C
    insertion, many handed to ``age_basis`` (compiled build only)."""
    if not cython.compiled:
        raise RuntimeError("_basis_of reads a C buffer: compiled build only")
    off: cython.p_longlong = scratch.data.as_longlongs + nd
    k: cython.Py_ssize_t
    j: cython.Py_ssize_t
    v: cython.longlong
    if nd > _FEW_ZOMBIES:
        return age_basis(np.frombuffer(scratch, dtype=np.int64)[nd:2 * nd])
    if nd == 0:
        return (0, 0, 0, 0)
    for k in range(1, nd):
        v, j = off[k], k - 1
        while j >= 0 and off[j] > v:
            off[j + 1] = off[j]
            j -= 1
        off[j + 1] = v
    return (nd, off[(nd - 1) // 2], off[nd // 2], off[0])


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


def usage_scan(machine: MachineState) -> tuple:
    """``Sampler._usage``'s column totals (anon, file, shmem, kmem, sock, borrow over every slot), misattributed
    and parked pages, as the pure build's numpy code has them, by C loops (compiled build only)."""
    if not cython.compiled:
        raise RuntimeError("usage_scan reads the columns' C buffers: compiled build only")
    mem, R = machine.mem, machine.runs
    n: cython.Py_ssize_t = mem.state.ob_size
    i: cython.Py_ssize_t
    col: cython.p_int
    total: cython.longlong
    a: array
    totals = {}
    for name in ("anon", "file", "shmem", "kmem", "sock", "borrow"):
        a, total = getattr(mem, name), 0
        col = a.data.as_ints
        for i in range(n):
            total += col[i]
        totals[name] = total
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
