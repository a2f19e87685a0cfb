"""Which build of the per-machine event generator runs: compiled (``traces/_synth.pyx``) or pure.

``setup.py`` compiles ``traces/_synth.pyx`` (Cython, numpy's C random API) when it can and records
the SHA-256 of its sources (``traces/synth.py``, the pure reference, then ``traces/_synth.pyx``)
in ``traces/_build.json``. The compiled module runs only when that hash matches the sources as
they are now, so an edit to either file runs the pure generator (with one warning naming it)
until the next build: a stale build never shadows an edited generator. ``MEMCG_REPLAY_PURE=1``
runs the pure one anyway. The build also records numpy's version (major.minor): the compiled draws
are the linked numpy's, the pure ones the running numpy's, so another version runs pure too. Both
give the same events for every seed (``tests/test_generate.py``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

_HERE = Path(__file__).resolve().parent
SOURCES = ("synth.py", "_synth.pyx")  #: what the compiled build is made from, in hash order
_state: dict[str, object] = {}


def source_hash(where: Path = _HERE) -> str:
    """SHA-256 of the generator's sources, as ``setup.py`` records it (keep the two in step)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (where / name).read_bytes() + b"\0")
    return digest.hexdigest()


def module() -> ModuleType | None:
    """The compiled generator if it is built, current and not refused (``MEMCG_REPLAY_PURE=1``), else None."""
    if "module" not in _state:
        _state["module"], _state["why"] = _load()
    return _state["module"]  # type: ignore[return-value]


def describe() -> str:
    """One line: which generator runs, and why the pure one if so."""
    m = module()
    return "compiled (traces._synth, Cython)" if m is not None else f"pure ({_state['why']})"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("MEMCG_REPLAY_PURE", "") not in ("", "0"):
        return None, "MEMCG_REPLAY_PURE is set"
    try:
        build = json.loads((_HERE / "_build.json").read_text())["compiled"]
        recorded = build["_synth"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "not built"
    built_numpy, numpy_now = build.get("_synth_numpy"), ".".join(np.__version__.split(".")[:2])
    if built_numpy != numpy_now:  # its draws are the linked numpy's; Generator's may differ in another version
        warnings.warn(f"traces: the compiled generator was built with numpy {built_numpy}, this is {numpy_now}; "
                      "the pure generator runs until the next build", RuntimeWarning, stacklevel=3)
        return None, f"built with numpy {built_numpy}, running {numpy_now}"
    try:
        mod = importlib.import_module("traces._synth")
    except ImportError as exc:
        return None, f"not importable: {exc}"
    try:
        current = source_hash()
    except OSError as exc:  # a source not shipped: the build cannot be checked, so it does not run
        return None, f"sources missing: {exc}"
    if recorded != current:
        warnings.warn("traces: traces/synth.py or traces/_synth.pyx was edited after the build; the pure "
                      "generator runs (same events, slower) until the next build", RuntimeWarning, stacklevel=3)
        return None, "sources edited since the build"
    return mod, ""
