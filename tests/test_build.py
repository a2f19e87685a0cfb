"""One model, two builds: the compiled core (Cython, from the same ``.py`` sources) and the pure one.

In: the installed package (``core/*.so`` and ``core/_build.json`` after ``pip install -e .``). Out:
assertions that CI runs the compiled build, that a module edited since the build runs from its
source instead of its stale compiled copy, that ``MEMCG_REPLAY_PURE=1`` runs every module pure, and
that both builds give the committed model goldens bit for bit.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI builds the compiled core; a checkout may not")
def test_ci_runs_the_compiled_core():
    assert core.BUILD == "compiled", core.build_description()
    memory = importlib.import_module("core.memory")
    assert memory.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _probe(pkg_root: Path, env: dict | None = None) -> dict:
    """Import ``core`` (and ``core.memory``) from ``pkg_root`` in a fresh interpreter: what ran."""
    code = ("import json, warnings, core, core.memory; "
            "print(json.dumps({'build': core.BUILD, 'stale': list(core.STALE), 'memory': core.memory.__file__}))")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=pkg_root, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(pkg_root), **(env or {})))
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout), "stderr": proc.stderr}


def _fake_build(tmp_path: Path, edit: str | None, modules: tuple[str, ...] = ("memory",),
                edited: str = "memory.py") -> Path:
    """A copy of ``core/`` whose ``modules`` have a (fake, unloadable) compiled build recorded in
    ``_build.json``; ``edit``: text appended to ``edited`` (a ``.py`` or ``.pxd``) after that build."""
    dst = tmp_path / "pkg"
    shutil.copytree(ROOT / "core", dst / "core", ignore=shutil.ignore_patterns("*.so", "*.c", "_build.json",
                                                                               "__pycache__"))
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for m in modules:
        (dst / "core" / f"{m}{suffix}").write_bytes(b"not a shared object: importing it would fail")
    hashes = {m: core._source_hash(m, dst / "core") for m in modules}
    (dst / "core" / "_build.json").write_text(json.dumps({"compiled": hashes}))
    if edit is not None:
        with open(dst / "core" / edited, "a") as f:
            f.write(edit)
    return dst


def test_a_module_edited_after_the_build_runs_from_its_source(tmp_path):
    got = _probe(_fake_build(tmp_path, "\n# edited after the build\n"))
    assert got["memory"].endswith("memory.py") and got["stale"] == ["memory"]
    assert "changed since the compiled build" in got["stderr"] and "memory" in got["stderr"]


def test_an_edited_type_declaration_takes_every_module_pure(tmp_path):
    # compiled modules read MachineState/MemcgTable/RunTable at fixed offsets (core/*.pxd): an edited
    # layout must not be trusted by any of them, not only by the module it sits beside
    pkg = _fake_build(tmp_path, "\n# edited after the build\n", ("memory", *core.TYPE_MODULES), "state.pxd")
    got = _probe(pkg)
    assert got["memory"].endswith("memory.py") and got["build"] == "pure" and got["stale"] == ["state"]
    assert "static types" in got["stderr"]


def test_pure_requested_never_loads_a_compiled_module(tmp_path):
    got = _probe(_fake_build(tmp_path, None), {"MEMCG_REPLAY_PURE": "1"})
    assert got["memory"].endswith("memory.py") and got["build"] == "pure"


def test_an_unrecorded_compiled_file_is_not_trusted(tmp_path):
    pkg = _fake_build(tmp_path, None)
    (pkg / "core" / "_build.json").unlink()
    got = _probe(pkg)
    assert got["memory"].endswith("memory.py") and got["build"] == "pure"


def _run(args: list[str], pure: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, MEMCG_REPLAY_PURE="1" if pure else "0")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.skipif(core.BUILD == "pure", reason="no compiled build here to compare with the pure one")
def test_pure_and_compiled_builds_give_identical_lifecycle_replays_for_every_policy():
    compiled, pure = _run(["-m", "tests.differential"], False), _run(["-m", "tests.differential"], True)
    assert compiled.returncode == 0 and pure.returncode == 0, compiled.stderr + pure.stderr
    a, b = json.loads(compiled.stdout), json.loads(pure.stdout)
    assert a.keys() == b.keys() and len(a) >= 12 * 10
    assert [k for k in a if a[k] != b[k]] == []


@pytest.mark.skipif(core.BUILD == "pure", reason="no compiled build here to compare with the pure one")
def test_the_pure_build_gives_the_committed_goldens_too():
    # this process runs the compiled build through tests/test_goldens.py; the pure one runs here
    proc = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_goldens.py"], True)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_run_summary_names_the_model_and_trace_generator_builds():
    import io
    from types import SimpleNamespace

    from replay.app import print_summary
    from traces import synth_build

    out = io.StringIO()
    print_summary(SimpleNamespace(run_dir="/r", summaries=[], cached=set()),
                  SimpleNamespace(url="redis://127.0.0.1:1/0", snapshot_path=None), out)
    lines = out.getvalue().splitlines()
    assert lines[2] == f"model: {core.build_description()}"
    assert lines[3] == f"trace generator: {synth_build.describe()}"
    if os.environ.get("CI") == "true":
        assert lines[3].startswith("trace generator: compiled")


def test_every_core_module_imports_first_in_a_fresh_interpreter():
    """Compiled, a module loads the modules its .pxd cimports before its own body runs: a module
    that imported a name from one of them which imports it back failed when it came first
    (``import core.metrics`` on its own raised ImportError for COUNTERS, core.dying_order for enlist)."""
    names = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__")
    procs = {n: subprocess.Popen([sys.executable, "-c", f"import core.{n}"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for n in names}
    failed = {n: p.communicate(timeout=120)[1].strip().splitlines()[-1:] for n, p in procs.items()}
    assert not {n: err for n, err in failed.items() if procs[n].returncode}
