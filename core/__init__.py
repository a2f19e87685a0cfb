"""memcg-replay's model of one machine: memcg hierarchy, page core, reclaim, swap, policies, cost.

Python + numpy; imports no Ray, Hydra, pandas, pyarrow or redis. Entry points:
``core.machine.Machine`` / ``MachineConfig``, ``core.policy.make_policy``,
``core.events.EventBatch``, ``core.metrics.SAMPLE_COLUMNS``.

One source, two builds. The install compiles the per-event modules with Cython
(``setup.py``); the ``.py`` files are the reference model, and run as they are when there
is no compiled build, when ``MEMCG_REPLAY_PURE=1`` is set, or, module by module, when a
source was edited after the build: ``core/_build.json`` holds each compiled module's source
hash, checked here on import, so a stale ``.so`` never shadows an edited ``.py`` (a warning
names the module). ``MachineState``, ``MemcgTable`` and ``RunTable`` have a static layout
(``core/{state,memcg,pages}.pxd``) that every compiled module reads: if one of those three is
edited or missing from the build, every module runs pure. ``BUILD`` says which ran: ``"compiled"``, ``"pure"`` or
``"mixed"``; ``build_description()`` says it in a line.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_EXT = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _compiled_modules() -> dict[str, str]:
    """Modules whose compiled build is present: name -> the source hash it was built from."""
    try:
        recorded = json.loads((_HERE / "_build.json").read_text())["compiled"]
    except (OSError, ValueError, KeyError):
        recorded = {}
    present = {p.name.split(".")[0] for p in _HERE.iterdir() if p.name.endswith(_EXT)}
    return {m: h for m, h in recorded.items() if m in present}


def _source_hash(module: str, where: Path = _HERE) -> str:
    """SHA-256 of a module's ``.py`` then, if present, its ``.pxd``: as ``setup.py`` records it."""
    digest = hashlib.sha256((where / f"{module}.py").read_bytes())
    pxd = where / f"{module}.pxd"
    if pxd.exists():
        digest.update(b"\0pxd\0" + pxd.read_bytes())
    return digest.hexdigest()


#: modules whose classes have a static layout (``.pxd``) that the other compiled modules read at
#: fixed offsets, or whose ``.pxd`` holds C code inlined into them (``run_index.insert_i32``): unless
#: all of them run compiled and current, no module may run compiled
TYPE_MODULES = ("memcg", "pages", "state", "events", "run_index", "zombie_gauges")


#: ``MEMCG_REPLAY_PURE=1``: run the pure-Python modules even where a compiled build exists
PURE_REQUESTED = os.environ.get("MEMCG_REPLAY_PURE", "") not in ("", "0")
_built = _compiled_modules()
#: modules whose source changed since they were compiled (they run pure)
STALE: tuple[str, ...] = tuple(sorted(m for m, h in _built.items() if _source_hash(m) != h))
#: modules that run compiled in this process
COMPILED: tuple[str, ...] = () if PURE_REQUESTED else tuple(sorted(set(_built) - set(STALE)))
#: a type module edited since the build (or not built): its compiled users would misread its objects
TYPES_PURE = bool(COMPILED) and not set(TYPE_MODULES) <= set(COMPILED)
if TYPES_PURE:
    COMPILED = ()
#: modules that would have run compiled had their compiled build been found and current
_PURE_HERE = frozenset(_built) - frozenset(COMPILED) | {p.name.split(".")[0] for p in _HERE.iterdir()
                                                         if p.name.endswith(_EXT) and p.name.split(".")[0] not in _built}
BUILD = "pure" if not COMPILED else ("compiled" if not STALE else "mixed")


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Import ``core.<name>`` from its ``.py`` when its compiled build must not run."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        pkg, _, name = fullname.rpartition(".")
        if pkg != __name__ or name not in _PURE_HERE:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / f"{name}.py")


if _PURE_HERE:
    sys.meta_path.insert(0, _SourceFinder())
if TYPES_PURE:
    warnings.warn(f"memcg-replay: the static types of core/{{{','.join(TYPE_MODULES)}}} changed since the compiled "
                  "build (or were not built); running every module pure (same results, slower). "
                  "Rebuild with: pip install -e .", stacklevel=2)
elif STALE and not PURE_REQUESTED:
    warnings.warn(f"memcg-replay: core/{{{','.join(STALE)}}}.py changed since the compiled build; running "
                  "those modules pure (same results, slower). Rebuild with: pip install -e .", stacklevel=2)


def build_description() -> str:
    """One line: which build of the model runs in this process."""
    if BUILD == "compiled":
        return f"compiled ({len(COMPILED)} modules, Cython)"
    if BUILD == "mixed":
        return f"mixed ({len(COMPILED)} modules compiled; edited since the build, pure: {', '.join(STALE)})"
    why = ("MEMCG_REPLAY_PURE=1" if PURE_REQUESTED else
           "a typed class (core/memcg, pages or state) edited since the build" if TYPES_PURE else
           "no compiled build found")
    return f"pure Python ({why})"
