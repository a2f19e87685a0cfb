"""The dying memcgs of a table in offline order, kept as they go offline and are freed.

In: a ``MemcgTable`` and the memcg going offline (``enlist``, at its offline time) or being freed
(``unlist``). Out: the table's ``dying_order`` (slots) and ``dying_off`` (their offline times,
ascending), where a freed memcg's entry becomes -1 (``dying_holes`` counts them; the entries are
rewritten without them once they are half). A sample reads the zombies' offline times in order from
them (``core.sample_scan``): the median and oldest zombie age without sorting the dying set each time.
The machine's clock never goes back, so an offline time is appended; a table driven alone with an
earlier time gets it inserted in order.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.memcg import MemcgTable


def enlist(mem: MemcgTable, m: int, now: int) -> None:
    """Memcg ``m`` went offline at ``now``: add it to the offline order."""
    order, off = mem.dying_order, mem.dying_off
    if off and now < off[-1]:
        at = bisect_right(off, now)
        order.insert(at, m)
        off.insert(at, now)
    else:
        order.append(m)
        off.append(now)


def unlist(mem: MemcgTable, m: int) -> None:
    """Dying memcg ``m`` is being freed: its entry becomes -1; the entries are rewritten without the
    freed ones once those are half of them (amortised O(1) a release)."""
    order, off = mem.dying_order, mem.dying_off
    at = bisect_left(off, mem.offline_us[m])
    while order[at] != m:  # memcgs that went offline at the same time: in the order they did
        at += 1
    order[at] = -1
    mem.dying_holes += 1
    if 2 * mem.dying_holes > len(order):
        keep = [k for k in range(len(order)) if order[k] >= 0]
        mem.dying_order = array("q", [order[k] for k in keep])
        mem.dying_off = array("q", [off[k] for k in keep])
        mem.dying_holes = 0
