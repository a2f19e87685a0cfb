"""Which build of the importers' string gather runs: compiled (``traces/_take.pyx``) or pure (``traces/take.py``).

``setup.py`` compiles ``traces/_take.pyx`` (Cython, typed memoryviews) when it can and records the
SHA-256 of its sources (``traces/take.py``, the pure reference, then ``traces/_take.pyx``) in
``traces/_build.json`` under ``_take``. The compiled gather runs only when that hash matches the
sources as they are now, so an edit to either file runs the pure one (with one warning naming it)
until the next build: a stale build never shadows an edited gather. ``MEMCG_REPLAY_PURE=1`` runs
the pure one anyway. Only the standard library is imported here: ``setup.py`` loads this file
for the hash at build time, where pyarrow may not be installed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
SOURCES = ("take.py", "_take.pyx")  #: what the compiled build is made from, in hash order
BUILD_KEY = "_take"  #: its entry in ``traces/_build.json``
_state: dict[str, object] = {}


def source_hash(where: Path = _HERE) -> str:
    """SHA-256 of the gather's sources, as ``setup.py`` records it (keep the two in step)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (where / name).read_bytes() + b"\0")
    return digest.hexdigest()


def module() -> ModuleType | None:
    """The compiled gather if it is built, current and not refused (``MEMCG_REPLAY_PURE=1``), else None."""
    if "module" not in _state:
        _state["module"], _state["why"] = _load()
    return _state["module"]  # type: ignore[return-value]


def describe() -> str:
    """One line: which gather runs, and why the pure one if so."""
    m = module()
    return "compiled (traces._take, Cython)" if m is not None else f"pure ({_state['why']})"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("MEMCG_REPLAY_PURE", "") not in ("", "0"):
        return None, "MEMCG_REPLAY_PURE is set"
    try:
        recorded = json.loads((_HERE / "_build.json").read_text())["compiled"][BUILD_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "not built"
    try:
        mod = importlib.import_module("traces._take")
    except ImportError as exc:
        return None, f"not importable: {exc}"
    try:
        current = source_hash()
    except OSError as exc:  # a source not shipped: the build cannot be checked, so it does not run
        return None, f"sources missing: {exc}"
    if recorded != current:
        warnings.warn("traces: traces/take.py or traces/_take.pyx was edited after the build; the pure "
                      "string gather runs (same tables, slower) until the next build", RuntimeWarning, stacklevel=3)
        return None, "sources edited since the build"
    return mod, ""
