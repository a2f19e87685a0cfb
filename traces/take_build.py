"""Which build of the importers' string gather runs: compiled (``traces/_take.pyx``) or pure (``traces/take.py``).

The compiled gather (Cython, typed memoryviews) runs when it is built and current with its sources
(``traces/take.py``, the pure reference, and ``traces/_take.pyx``: ``traces.build_check``) and
``MEMCG_REPLAY_PURE`` is not set. Both give the same tables (``tests/test_take.py``).
"""

from __future__ import annotations

from traces import build_check
from traces.build_check import Build

SOURCES = build_check.SOURCES["_take"]  #: what the compiled build is made from, in hash order
BUILD = Build("_take", "string gather", "same tables")


#: the compiled module if it is built, current and not refused, else None; which build runs, in a line;
#: the SHA-256 of its sources, as ``setup.py`` records it
module, describe, source_hash = BUILD.module, BUILD.describe, BUILD.source_hash
