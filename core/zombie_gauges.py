"""The zombie gauges of a sample, kept up to date as the memcgs change instead of scanned.

In: ``mark``/``touch`` from the writers of a memcg's held or charged columns (and from its offline
and release, ``lifecycle``), then ``gauges`` at a full sample. Out: what ``core.metrics`` samples
of the dying memcgs -- how many are held by each kind of reference (``HELD_GAUGES``), their
charged and swap pages, and the basis of their ages (``age_basis``) -- at a cost that follows the
memcgs that changed since the previous sample, not the size of the dying set.

Each memcg's share of the totals (``bits``, a bit per held gauge; ``charged``; ``swapped``) is
recounted from its columns when it was marked, and the difference goes on the totals: a memcg
that is not dying (online, freed, or a slot taken by a new memcg) counts nothing, so an online
memcg's columns need no mark until it goes offline (``MemcgTable.offline`` marks it). Who marks a
dying memcg: whatever drops a reference to it (every lowered count is followed by ``css_put``,
which marks it), its release and its parent's (a live child less), and the writers that add to a
dying memcg: a pin on its pages (``rmap.add_count``), and pages moved onto it
(``mem_cgroup_charge_statistics``: no path moves pages onto a dying memcg today -- a swap-out
names the memcg it uncharged or an online one -- so that mark is a guard). Charges of new pages,
kmem, sockets, cgwb pins and swap records reparented at an offline go to online memcgs. The offline order's basis is recomputed
only when the dying set changed. ``sample_scan.zombie_scan`` (numpy, from scratch) is the
reference these equal: ``core.invariants`` checks them after every event of the property tests.
"""

from __future__ import annotations

from array import array
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.memcg import MemcgTable

_DYING_STATE = 1  # core.memcg.State.DYING (core.memcg imports this module, so it cannot import it back)
_HALF32, _MASK32 = 1 << 31, (1 << 32) - 1  # to wrap a memcg's 64-bit sum at 32 bits, as numpy's int32 sum does
#: what holds a dying memcg, per ``held_*`` gauge in ``sample_scan.HELD_GAUGES`` order: a nonzero column
#: of the table, or ("children") a live child; bit k of a memcg's share is gauge k
HELD_COLUMNS = ("file", "shmem", "anon", "swap", "pinned", "kmem_pin", "children", "wb_pin", "nsock", "noom")
NR_HELD = len(HELD_COLUMNS)
_CHILD_BIT = HELD_COLUMNS.index("children")
#: a table's columns of HELD_COLUMNS less "children" (its bit comes from the children sets), in order
_HELD_COLS_OF = attrgetter(*(c for c in HELD_COLUMNS if c != "children"))
_ZERO_B = array("b", [0])


class ZombieGauges:
    """The dying memcgs' totals, with each memcg's share of them as last counted (see the module).

    ``dirty``: slots marked since the last ``gauges`` (``flag`` set for each). ``bits`` /
    ``charged`` / ``swapped``: each slot's share as last counted. ``held``: per gauge
    (``HELD_GAUGES`` order), the dying memcgs that hold it; ``charged_sum``, ``swapped_sum``
    their pages. ``reordered``: the dying set changed since ``basis`` was computed.
    """

    def __init__(self) -> None:
        self.dirty: list[int] = []
        self.flag, self.bits = array("b"), array("i")
        self.charged, self.swapped = array("i"), array("i")  # (a memcg's charged pages wrap at 32 bits, as summed)
        self.held = array("q", [0] * NR_HELD)
        self.charged_sum = 0
        self.swapped_sum = 0
        self.reordered = True
        self.basis: tuple = (0, 0, 0, 0)

    def mark(self, m: cython.Py_ssize_t) -> None:
        """Slot ``m``'s columns changed: recount its share at the next ``gauges``."""
        n: cython.Py_ssize_t = len(self.flag)
        if cython.compiled and 0 <= m < n:  # (the common case, through the flag's buffer)
            if not self.flag.data.as_schars[m]:
                self.flag.data.as_schars[m] = 1
                self.dirty.append(m)
            return
        if m < 0:
            raise IndexError(f"memcg slot {m}")
        if m >= n:  # slots not seen yet (and a quarter more, as the table grows): their share so far is nothing
            grow = max(m + 1, n + n // 4 + 16) - n
            zeros = array("i", bytes(4 * grow))
            self.flag.extend(_ZERO_B * grow)
            self.bits.extend(zeros)
            self.charged.extend(zeros)
            self.swapped.extend(zeros)
        if not self.flag[m]:
            self.flag[m] = 1
            self.dirty.append(m)

    def lifecycle(self, m: cython.Py_ssize_t) -> None:
        """Slot ``m`` went offline or was freed: recount it, and the offline order's basis."""
        self.mark(m)
        self.reordered = True

    def refresh(self, mem: MemcgTable) -> None:
        """Bring the totals up to date (``mem``: the ``MemcgTable``): each marked slot recounted, and the
        offline order's basis if the dying set changed."""
        if self.dirty:
            self._recount(mem)
        if self.reordered:
            self.basis = order_basis(mem.dying_order, mem.dying_off, len(mem.dying))
            self.reordered = False

    def gauges(self, mem: MemcgTable) -> tuple:
        """The totals now (``refresh`` first). Out: (the held counts in ``HELD_GAUGES`` order, the dying
        memcgs' charged pages, their swap pages, ``age_basis``)."""
        self.refresh(mem)
        h = self.held
        return (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]), self.charged_sum, self.swapped_sum, self.basis

    @cython.overflowcheck(False)  # sums of int32 columns in 64 bits, bit tests: none can overflow
    def _recount(self, mem: MemcgTable) -> None:
        """Each marked slot's share: the old one off the totals, the one its columns give now on them."""
        state: array = mem.state
        held_cols: tuple = _HELD_COLS_OF(mem)  # (the child bit: ``children`` below)
        charged_cols = (mem.anon, mem.file, mem.shmem, mem.kmem, mem.sock)
        swap: array = mem.swap
        children: list = mem.children
        n: cython.Py_ssize_t = len(state)
        for c in held_cols + charged_cols:
            if len(c) != n:
                raise RuntimeError(f"memcg columns of {len(c)} and {n} slots")
        m: cython.Py_ssize_t
        b: cython.int
        k: cython.int
        w: cython.longlong
        s: cython.longlong
        col: array
        flag: cython.p_schar  # the shares as last counted, per slot (``mark`` sized them)
        bits: cython.p_int
        charged: cython.p_int
        swapped: cython.p_int
        held: cython.p_longlong
        nf: cython.Py_ssize_t = len(self.flag)
        if cython.compiled:
            flag, bits, held = self.flag.data.as_schars, self.bits.data.as_ints, self.held.data.as_longlongs
            charged, swapped = self.charged.data.as_ints, self.swapped.data.as_ints
        else:
            flag, bits, held, charged, swapped = self.flag, self.bits, self.held, self.charged, self.swapped
        for m in self.dirty:
            if not 0 <= m < nf:
                raise IndexError(f"memcg slot {m} marked, {nf} slots counted")
            flag[m] = 0
            b, w, s = 0, 0, 0
            if m < n and _at(state, m) == _DYING_STATE:
                b = _held_bits(held_cols, m, 1 if children[m] else 0)
                for k in range(5):
                    col = charged_cols[k]
                    w += _at(col, m)
                w = ((w + _HALF32) & _MASK32) - _HALF32
                s = _at(swap, m)
            if b != bits[m]:
                for k in range(NR_HELD):
                    held[k] += ((b >> k) & 1) - ((bits[m] >> k) & 1)
                bits[m] = b
            self.charged_sum += w - charged[m]
            self.swapped_sum += s - swapped[m]
            charged[m], swapped[m] = w, s
        self.dirty = []


def _held_bits(cols: tuple, m: cython.Py_ssize_t, child: cython.int) -> cython.int:
    """Dying memcg ``m``'s held gauges as bits (bit k: ``HELD_COLUMNS[k]``). In: the columns of
    ``HELD_COLUMNS`` in that order less "children", and ``child``: a live child holds ``m``."""
    b: cython.int = child << _CHILD_BIT
    k: cython.int
    col: array
    for k in range(NR_HELD - 1):
        col = cols[k]
        if _at(col, m) > 0:
            b |= 1 << (k + (k >= _CHILD_BIT))
    return b


def online_slots(mem: MemcgTable) -> int:
    """The table's online memcgs, root and policies' hidden ones included: the slots neither free nor dying."""
    return len(mem.state) - len(mem.free_slots) - len(mem.dying)


if not cython.compiled:  # compiled: the C version in zombie_gauges.pxd (a read through the buffer)
    def _at(col: array, m: int) -> int:
        """``col[m]`` of an int32 column; the caller has checked that ``m`` is one of its slots."""
        return col[m]


def touch(zg: ZombieGauges, state: array, m: cython.Py_ssize_t) -> int:
    """A held or charged column of memcg ``m`` changed (``state``: the table's states): if ``m`` is
    dying, ``zg`` recounts it at the next sample (``m`` < 0, no memcg: nothing). Returns 0."""
    if m < 0:
        return 0
    if cython.compiled and m < state.ob_size:
        if state.data.as_ints[m] == _DYING_STATE:
            zg.mark(m)
    elif state[m] == _DYING_STATE:
        zg.mark(m)
    return 0


def order_basis(order: array, off: array, nd: cython.Py_ssize_t) -> tuple:
    """``sample_scan.age_basis`` of the ``nd`` dying memcgs, read off their offline order (``core.dying_order``:
    slots, -1 for a freed one, and offline times, ascending): (count, the time of the median or upper
    middle one, of the other middle one, of the oldest). Compiled: a C walk of the order. An order that
    does not list ``nd`` memcgs is a RuntimeError in both builds."""
    if nd == 0:
        return (0, 0, 0, 0)
    at_lo: cython.Py_ssize_t = (nd - 1) // 2
    at_hi: cython.Py_ssize_t = nd // 2
    if not cython.compiled:
        live = np.frombuffer(off, dtype=np.int64)[np.frombuffer(order, dtype=np.int64) >= 0]
        if len(live) != nd:
            raise RuntimeError(f"dying_order lists {len(live)} memcgs, the dying set {nd}")
        return (nd, int(live[at_lo]), int(live[at_hi]), int(live[0]))
    slots: cython.p_longlong = order.data.as_longlongs
    times: cython.p_longlong = off.data.as_longlongs
    no: cython.Py_ssize_t = min(order.ob_size, off.ob_size)
    k: cython.Py_ssize_t
    d: cython.Py_ssize_t = 0
    lo: cython.longlong = 0
    hi: cython.longlong = 0
    first: cython.longlong = 0
    for k in range(no):
        if slots[k] < 0:
            continue
        if d == 0:
            first = times[k]
        if d == at_lo:
            lo = times[k]
        if d == at_hi:
            hi = times[k]
        d += 1
    if d != nd:
        raise RuntimeError(f"dying_order lists {d} memcgs, the dying set {nd}")
    return (nd, lo, hi, first)
