"""Page and folio vocabulary shared by the page core and its callers (include/linux/mm_types.h).

In: nothing. Out: the page size, what backs a page (``Kind``), the state of a run of pages
(``St``), the ``rflags`` bit of a parked charge and the bytes-to-pages rounding. ``core.pages``
builds its run table on these and re-exports them, where most modules import them from.
"""

from __future__ import annotations

import enum

PAGE = 4096


class Kind(enum.IntEnum):
    """What backs a page: anonymous memory, page cache of a disk file, or shmem/tmpfs."""

    ANON = 0
    FILE = 1
    SHMEM = 2


class St(enum.IntEnum):
    """State of a run. FREE marks an unused slot of the table."""

    FREE = 0
    RESIDENT = 1
    SWAPPED = 2
    EVICTED = 3


#: ``rflags`` bit: the run's charge is parked on an ancestor until its next accessor
#: takes it over (deferred recharge, Yosry Ahmed's RFC patches 4-5; ``core.recharge``).
PARKED = 1


def pages_of(nbytes: int) -> int:
    """Bytes -> 4 KiB pages, partial pages rounded up."""
    return -(-nbytes // PAGE)
