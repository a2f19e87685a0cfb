"""The release path of a memcg (kernel/cgroup/cgroup.c): ``css_put`` -> ``css_release_work``.

In: a memcg slot whose reference (a charged page, a swap entry, a pinning kmem
object, a cgwb, a socket, an OOM victim, a child) has just been dropped by its
caller. Out: dying memcgs that nothing holds any more are freed (``State.FREED``),
their dying ancestors after them, and ``memcgs_freed`` is counted.

The references themselves are the counters of ``core.memcg.MemcgTable`` (what
``MemcgTable.held`` reads); ``css_put`` only queues a dying memcg for the check,
so the release happens once the handler that dropped the reference has finished
(css_release_work_fn / css_free_rwork_fn run from a workqueue). This is the one
place where a memcg is queued for release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.memcg import State

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.memcg import MemcgTable
    from core.state import MachineState
if not cython.compiled:  # the compiled build cimports its C version (core/run_index.pxd)
    from core.run_index import i32_at

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_DYING = int(State.DYING)


def css_put(machine: MachineState, m: cython.Py_ssize_t) -> None:
    """A reference to memcg ``m`` was dropped by the caller: queue it for release if it is dying.

    The caller has already lowered the counter that held the reference; whether anything
    still holds ``m`` is decided by ``css_release_work`` once the current handler is done, and
    its zombie gauges are recounted at the next sample (``core.zombie_gauges``).
    """
    mem: MemcgTable = machine.mem
    if i32_at(mem.state, m) == _DYING:
        machine.release_q.append(m)
        mem.zg.mark(m)


def css_release_work(machine: MachineState) -> None:
    """Free every queued dying memcg that nothing holds any more, and its dying ancestors after it
    (css_release_work_fn / css_free_rwork_fn), counting ``memcgs_freed`` (once, when some were: a memcg is
    queued once per reference dropped, and most checks free nothing)."""
    q = machine.release_q
    mem: MemcgTable = machine.mem
    freed: cython.Py_ssize_t = 0
    while q:
        m = q.pop()
        if i32_at(mem.state, m) == _DYING:
            freed += mem.try_release(m, machine.now_us)
    if freed:
        machine.counters["memcgs_freed"] += freed
