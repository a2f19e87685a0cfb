"""Mappings and pins of object pages (mm/rmap.c, mm/mmap.c, mm/gup.c, mm/mlock.c).

In: a task mapping or unmapping an object's range, pinning or mlocking it, unpinning.
Out: the per-run map and pin counts of ``core.pages.RunTable`` and the ``mapped`` /
``pinned`` counters of the memcgs charged for them. A deleted object whose last mapping
or pin goes is freed (``core.truncate.free_if_unused``).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from core.pages import Kind, St
from core.run_index import starts_right
from core.truncate import free_if_unused
from core.zombie_gauges import touch

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.pages import RunTable
    from core.state import MachineState, Pin

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_RESIDENT = int(St.RESIDENT)
_ANON = int(Kind.ANON)


def map_object(machine: MachineState, t: cython.int, o: cython.int, lo: cython.longlong, hi: cython.longlong) -> None:
    """Task ``t`` maps pages [lo, hi) of ``o`` (mmap + faults); an empty range maps no page but, as
    the VMA's ``vm_file`` reference does, keeps ``o`` alive after unlink until the munmap (mm/mmap.c)."""
    machine.o_maps[o].append((t, lo, hi))
    machine.t_maps[t].append((o, lo, hi))
    if hi > lo:
        add_count(machine, o, lo, hi, "mapc", +1)


def unmap_object(machine: MachineState, t: cython.int, o: cython.int) -> None:
    """Remove every mapping of ``o`` by task ``t``."""
    mine: list[tuple[int, int, int]] = []
    keep: list[tuple[int, int, int]] = []
    mp: tuple
    x: cython.int  # (a C int: comparing the tuple's int object with C ``t`` would box ``t`` per mapping)
    for mp in machine.o_maps[o]:  # one pass: an object can have many mappers
        x = mp[0]
        if x == t:
            mine.append(mp)
        else:
            keep.append(mp)
    if not mine:
        return
    machine.o_maps[o] = keep
    left: list[tuple[int, int, int]] = []
    for mp in machine.t_maps[t]:
        x = mp[0]
        if x != o:
            left.append(mp)
    machine.t_maps[t] = left
    for _, lo, hi in mine:
        if hi > lo:
            add_count(machine, o, lo, hi, "mapc", -1)
    if machine.wants_access:
        machine.policy.on_access(machine, o, 0, machine.o_size[o], machine.t_cg[t], "unmap")
    free_if_unused(machine, o)


def unpin_user_pages(machine: MachineState, t: int, pin: Pin) -> None:
    """Drop one pin (o, lo, hi, mlock, key) held by task ``t``."""
    o, lo, hi = pin[0], pin[1], pin[2]
    machine.t_pins[t].remove(pin)
    machine.o_pins[o] -= 1
    add_count(machine, o, lo, hi, "pinc", -1)
    free_if_unused(machine, o)


def munlock_range(machine: MachineState, t: int, pin: Pin, lo: int, hi: int) -> bool:
    """Pages [lo, hi) of task ``t``'s ``pin`` are unmapped (munmap, or munlock + MADV_DONTNEED):
    the pin is dropped; an mlock keeps the rest of its range locked, as pieces under the same key
    (munmap of part of a VM_LOCKED range splits the VMA, ``__split_vma`` in mm/mmap.c, and only the
    unmapped part's folios are munlocked; the rest stays mlocked until the trace's munlock of the
    range, mm/mlock.c). Returns whether a piece is left."""
    unpin_user_pages(machine, t, pin)
    o = pin[0]
    rest = [(o, a, b, 1, pin[4]) for a, b in ((pin[1], lo), (hi, pin[2])) if b > a] if pin[3] else []
    machine.t_pins[t] += rest
    machine.o_pins[o] += len(rest)
    for p in rest:
        add_count(machine, o, p[1], p[2], "pinc", +1)
    return bool(rest)


def map_pieces(machine: MachineState, o: int, s: int, e: int) -> list[tuple[int, int, int]]:
    """[s, e) cut where the set of mappings of ``o`` changes: (lo, hi, map count)."""
    maps = machine.o_maps[o]
    if not maps:
        return [(s, e, 0)]
    cuts = sorted({s, e, *(x for _, a, b in maps for x in (a, b) if s < x < e)})
    return [(a, b, sum(1 for _, lo, hi in maps if lo <= a and b <= hi)) for a, b in zip(cuts, cuts[1:])]


def maps_pages(machine: MachineState, o: cython.int) -> cython.bint:
    """Does any mapping of ``o`` map a page (an empty range maps none)?"""
    for _, a, b in machine.o_maps[o]:
        if b > a:
            return True
    return False


def add_count(machine: MachineState, o: cython.int, lo: cython.longlong, hi: cython.longlong, field: str,
              delta: cython.int) -> None:
    """Add ``delta`` to the map or pin count of every run in [lo, hi) of ``o``."""
    R: RunTable = machine.runs
    mem = machine.mem
    pins: cython.bint = field == "pinc"
    if not pins and field != "mapc":
        raise ValueError(f"add_count counts mapc or pinc, not {field!r}")
    counter: array = mem.pinned if pins else mem.mapped
    R.split_ends(o, lo, hi)  # (the last change to the table's size below: the runs are now inside or outside)
    col: cython.p_int
    npages: cython.p_int
    memcg: cython.p_int
    state: cython.p_schar
    kind: cython.p_schar
    cnt: cython.p_int  # the memcgs' mapped or pinned pages
    if cython.compiled:
        col = R.pinc.data.as_ints if pins else R.mapc.data.as_ints
        npages, memcg = R.npages.data.as_ints, R.memcg.data.as_ints
        state, kind = R.state.data.as_schars, R.kind.data.as_schars
        cnt = counter.data.as_ints
    else:
        col = getattr(R, field)
        npages, memcg, state, kind, cnt = R.npages, R.memcg, R.state, R.kind, counter
    nslots: cython.Py_ssize_t = len(counter)
    r: cython.Py_ssize_t
    m: cython.Py_ssize_t
    old: cython.int
    new: cython.int
    runs: array | None = (R.obj_runs[o] if o < len(R.obj_runs) else None)
    n: cython.Py_ssize_t = len(runs) if runs is not None and lo < hi else 0
    i: cython.Py_ssize_t = starts_right(R.obj_starts[o], lo) - 1 if n else 0
    rp: cython.p_int  # the object's run ids, in page order
    start: cython.p_int
    if cython.compiled:
        rp, start = (runs.data.as_ints if n else cython.NULL), R.start.data.as_ints
    else:
        rp, start = runs, R.start
    if i < 0:
        i = 0
    for i in range(i, n):  # the runs in [lo, hi), in page order (what segments() lists, holes aside)
        r = rp[i]
        if start[r] >= hi:
            break
        if start[r] + npages[r] <= lo:
            continue
        old = col[r]
        new = old + delta
        col[r] = new
        if state[r] == _RESIDENT and (old > 0) != (new > 0):
            if pins or kind[r] != _ANON:
                m = memcg[r]
                if not 0 <= m < nslots:
                    raise IndexError(f"run {r} is charged to memcg slot {m}, not one of {nslots}")
                cnt[m] += npages[r] if new > 0 else -npages[r]  # (C: overflow-checked, as the array is)
                if pins:
                    touch(mem.zg, mem.state, m)  # (a dying memcg's held_pinned)
    R.coalesce(o, lo, hi)
