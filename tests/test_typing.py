"""``mypy core`` is clean (issue "Core v2, step 1", item 6): every field of the state and every
function over it type-checks, under the ``[tool.mypy]`` settings of ``pyproject.toml``.

In: the sources of ``core/``. Out: a failure listing mypy's report when it finds any error.
The cache lives in the repository's git-ignored ``.mypy_cache`` (the ``cache_dir`` of the
config), so a warm run takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_core_is_clean() -> None:
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),
        str(ROOT / "core"),
    ])
    assert status == 0, f"mypy core reports errors:\n{stdout}{stderr}"
    assert stdout.startswith("Success: no issues found"), stdout
