"""Build of memcg-replay: the pure-Python package, plus the model's modules compiled by Cython.

The modules listed in ``COMPILED`` (``core/``) are compiled from their own ``.py`` sources
(Cython 3, pure-Python mode): one source is both the reference model and the compiled one.
Without Cython or a working C compiler the install still succeeds and the pure modules run;
the build prints one warning line saying so. ``MEMCG_REPLAY_PURE=1`` at build time skips the
compilation. Each build records the SHA-256 of every compiled module's source in
``core/_build.json``; ``core/__init__.py`` falls back to the source of any module edited since
(with a warning), so a stale build never shadows an edited model.

The trace generator's pods (``traces/_synth.pyx``, numpy's C random API, linked against numpy's
``npyrandom`` library) are compiled the same way when numpy is present at build time; the build
records its sources' hash in ``traces/_build.json`` (``traces/build_check.py`` checks it), and
without it the pure ``traces/synth.py`` runs, with the same events. The importers' string gather
(``traces/_take.pyx``, no numpy headers) is compiled beside it and recorded there too
(checked the same way); without it the pure gather runs, with the same tables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: the per-event path: the event loop, the op handlers and every kernel-named module they call
COMPILED = ("machine", "syscalls", "memory", "memcontrol", "vmscan", "page_alloc", "oom_kill", "page_counter",
            "truncate", "rmap", "task", "kmem", "fs_writeback", "swap_slots", "swapfile", "cgroup", "workqueue",
            "scan_count", "recharge", "stat", "pages", "run_index", "memcg", "metrics", "sample_scan", "state",
            "events", "dying_order", "fault_pieces", "zombie_gauges")
BUILD_FILE = "core/_build.json"
TRACES_BUILD_FILE = "traces/_build.json"
DIRECTIVES = {"language_level": 3, "annotation_typing": True, "binding": True, "embedsignature": False,
              # C integer arithmetic raises OverflowError instead of wrapping, as Python ints never wrap
              "overflowcheck": True}


def _warn(msg: str) -> None:
    print(f"memcg-replay: WARNING: {msg}; the pure-Python model will run (same results, slower)",
          file=sys.stderr)


def source_hashes() -> dict[str, str]:
    """SHA-256 of each compiled module's source, as ``core/__init__.py`` checks it."""
    return {m: source_hash(ROOT / "core", m) for m in COMPILED}


def source_hash(where: Path, module: str) -> str:
    """SHA-256 of a compiled module's source: its ``.py``, then its ``.pxd`` (the static types) if any.

    ``core/__init__.py`` computes the same hash; keep the two in step."""
    digest = hashlib.sha256((where / f"{module}.py").read_bytes())
    pxd = where / f"{module}.pxd"
    if pxd.exists():
        digest.update(b"\0pxd\0" + pxd.read_bytes())
    return digest.hexdigest()


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a module that does not compile stays pure.

    The C compiles run in parallel, one per CPU (``build_ext --parallel``), which pip does not ask for.
    """

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        self.failed: list[tuple[str, str]] = []  # (module, why), filled by build_extension (threads)
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, ... (an in-place build then fails to copy)
            _warn(self._failures() if self.failed else f"the compiled core could not be built ({exc})")
            return
        if self.failed:
            _warn(self._failures())
        built = [e.name.split(".")[-1] for e in self.extensions if Path(self.get_ext_fullpath(e.name)).exists()]
        hashes = {m: h for m, h in source_hashes().items() if m in built}
        traces = {"_synth": _synth_hash(), "_synth_numpy": _numpy_minor()} if "_synth" in built else {}
        if "_take" in built:
            traces["_take"] = _take_hash()
        for base in {Path(self.build_lib), ROOT} if self.inplace else {Path(self.build_lib)}:
            for name, record in ((BUILD_FILE, hashes), (TRACES_BUILD_FILE, traces)):
                target = base / name
                if target.parent.is_dir():
                    target.write_text(json.dumps({"compiled": record}, indent=1, sort_keys=True) + "\n")

    def _failures(self) -> str:
        """One line for every module that did not compile: without a compiler they all fail alike."""
        names = "all" if len(self.failed) == len(self.extensions) else ", ".join(sorted(n for n, _ in self.failed))
        return (f"{len(self.failed)} of {len(self.extensions)} modules could not be compiled ({names}; "
                f"first error: {self.failed[0][1]})")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.failed.append((ext.name, str(exc)))


class BuildPyWithConf(build_py):
    """build_py that also puts the Hydra configs (``conf/``) into the package as ``replay/conf/``,
    so ``pip install .`` ships them; an editable install reads ``conf/`` where it is."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            shutil.copytree(ROOT / "conf", Path(self.build_lib) / "replay" / "conf", dirs_exist_ok=True)


def extensions() -> list[Extension]:
    """The compiled modules, or none (pure build asked for, or Cython missing)."""
    if os.environ.get("MEMCG_REPLAY_PURE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn("Cython is not installed")
        return []
    exts = [Extension(f"core.{m}", [f"core/{m}.py"], extra_compile_args=["-O2", "-g0"]) for m in COMPILED]
    exts = cythonize(exts, compiler_directives=DIRECTIVES, quiet=True, nthreads=os.cpu_count() or 1)
    try:
        return exts + cythonize(_traces_extensions(), compiler_directives=DIRECTIVES, quiet=True)
    except Exception as exc:  # the core still compiles; the trace generator stays pure
        _warn(f"traces/_synth.pyx could not be translated ({exc})")
        return exts


def _traces_extensions() -> list[Extension]:
    """The compiled trace generator, built against numpy's random C library (none without numpy)."""
    try:
        import numpy
    except ImportError:
        _warn("numpy is not installed at build time: the trace generator stays pure")
        return []
    lib = Path(numpy.random.__file__).parent / "lib"
    # no FMA contraction: the float operations must round as numpy's and Python's do
    return [Extension("traces._synth", ["traces/_synth.pyx"], include_dirs=[numpy.get_include()],
                      library_dirs=[str(lib)], libraries=["npyrandom", "m"],
                      extra_compile_args=["-O2", "-g0", "-ffp-contract=off"]),
            # the importers' string gather (typed memoryviews only: no numpy headers or libraries)
            Extension("traces._take", ["traces/_take.pyx"], extra_compile_args=["-O2", "-g0"])]


def _numpy_minor() -> str:
    # the numpy whose random C library the generator was linked with: its draws are that version's
    import numpy
    return ".".join(numpy.__version__.split(".")[:2])


def _synth_hash() -> str:
    return _hash_of("_synth")


def _take_hash() -> str:
    return _hash_of("_take")


def _hash_of(name: str) -> str:
    """The hash of compiled module ``name``'s sources that ``traces/build_check.py`` checks at import, from that
    file loaded by its path (not as the package, whose dependencies the build may lack): the two stay in step."""
    spec = importlib.util.spec_from_file_location("_traces_build_check", ROOT / "traces" / "build_check.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.source_hash(name, ROOT / "traces")


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithConf})
