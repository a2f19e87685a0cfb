"""Whether an optional compiled module of ``traces/`` may run: built, current with its sources, not refused.

``setup.py`` compiles ``traces/_synth.pyx`` (the per-machine event generator) and ``traces/_take.pyx``
(the importers' string gather) when it can, and records in ``traces/_build.json`` the SHA-256 of each
one's sources (``SOURCES``: the pure reference ``.py``, then the ``.pyx``). A compiled module runs only
when that hash matches its sources as they are now, so an edit to either file runs the pure one (with
one warning naming it) until the next build: a stale build never shadows edited code.
``MEMCG_REPLAY_PURE=1`` runs the pure one anyway. ``traces.synth_build`` and ``traces.take_build``
each hold one ``Build``. Only the standard library is imported here: ``setup.py`` loads this file by
its path for the hashes at build time, where the package's dependencies may not be installed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Callable

_HERE = Path(__file__).resolve().parent
#: each optional compiled module (its name in ``traces/``, its key in ``_build.json``) -> its sources, in hash order
SOURCES = {"_synth": ("synth.py", "_synth.pyx"), "_take": ("take.py", "_take.pyx")}


def source_hash(name: str, where: Path = _HERE) -> str:
    """SHA-256 of compiled module ``name``'s sources in folder ``where``, as ``setup.py`` records it."""
    digest = hashlib.sha256()
    for source in SOURCES[name]:
        digest.update(source.encode() + b"\0" + (where / source).read_bytes() + b"\0")
    return digest.hexdigest()


class Build:
    """One optional compiled module and the decision, made once per process, whether it runs.

    In: its name (``"_synth"``), what it is and what the pure one gives alike (for the messages), and
    an optional further check of the recorded build (``_build.json``'s ``compiled`` entry -> why it
    must not run, or None). Out: ``module()`` (the compiled module, or None: run the pure one) and
    ``describe()`` (one line: which runs, and why the pure one if so).
    """

    def __init__(self, name: str, what: str, alike: str,
                 check: Callable[[dict], str | None] | None = None) -> None:
        self.name, self.what, self.alike, self.check = name, what, alike, check
        self._state: dict[str, object] = {}

    def source_hash(self, where: Path = _HERE) -> str:
        """SHA-256 of this module's sources (``source_hash``)."""
        return source_hash(self.name, where)

    def module(self) -> ModuleType | None:
        """The compiled module if it is built, current and not refused, else None."""
        if "module" not in self._state:
            self._state["module"], self._state["why"] = self._load()
        return self._state["module"]  # type: ignore[return-value]

    def describe(self) -> str:
        """One line: which build runs, and why the pure one if so."""
        m = self.module()
        return f"compiled (traces.{self.name}, Cython)" if m is not None else f"pure ({self._state['why']})"

    def _load(self) -> tuple[ModuleType | None, str]:
        if os.environ.get("MEMCG_REPLAY_PURE", "") not in ("", "0"):
            return None, "MEMCG_REPLAY_PURE is set"
        try:
            build = json.loads((_HERE / "_build.json").read_text())["compiled"]
            recorded = build[self.name]
        except (OSError, ValueError, KeyError, TypeError):
            return None, "not built"
        refused = self.check(build) if self.check is not None else None
        if refused:
            return None, refused
        try:
            mod = importlib.import_module(f"traces.{self.name}")
        except ImportError as exc:
            return None, f"not importable: {exc}"
        try:
            current = self.source_hash()
        except OSError as exc:  # a source not shipped: the build cannot be checked, so it does not run
            return None, f"sources missing: {exc}"
        if recorded != current:
            py, pyx = SOURCES[self.name]
            warnings.warn(f"traces: traces/{py} or traces/{pyx} was edited after the build; the pure {self.what} "
                          f"runs ({self.alike}, slower) until the next build", RuntimeWarning, stacklevel=4)
            return None, "sources edited since the build"
        return mod, ""
