"""Which build of the per-machine event generator runs: compiled (``traces/_synth.pyx``) or pure.

The compiled generator (Cython, numpy's C random API) runs when it is built and current with its
sources (``traces/synth.py``, the pure reference, and ``traces/_synth.pyx``: ``traces.build_check``)
and ``MEMCG_REPLAY_PURE`` is not set. The build also records numpy's version (major.minor): the
compiled draws are the linked numpy's, the pure ones the running numpy's, so another version runs
pure too. Both give the same events for every seed (``tests/test_generate.py``).
"""

from __future__ import annotations

import warnings

import numpy as np

from traces import build_check
from traces.build_check import Build

SOURCES = build_check.SOURCES["_synth"]  #: what the compiled build is made from, in hash order


def _numpy_matches(build: dict) -> str | None:
    """Why the compiled generator must not run under this numpy (None: it may)."""
    built_numpy, numpy_now = build.get("_synth_numpy"), ".".join(np.__version__.split(".")[:2])
    if built_numpy == numpy_now:
        return None
    # its draws are the linked numpy's; Generator's may differ in another version
    warnings.warn(f"traces: the compiled generator was built with numpy {built_numpy}, this is {numpy_now}; "
                  "the pure generator runs until the next build", RuntimeWarning, stacklevel=5)
    return f"built with numpy {built_numpy}, running {numpy_now}"


BUILD = Build("_synth", "generator", "same events", check=_numpy_matches)


#: the compiled module if it is built, current and not refused, else None; which build runs, in a line;
#: the SHA-256 of its sources, as ``setup.py`` records it
module, describe, source_hash = BUILD.module, BUILD.describe, BUILD.source_hash
