"""The optional compiled modules of ``traces/`` run only when built, current and not refused.

In: each ``traces.build_check.Build`` (the event generator's, the importers' string gather's). Out:
an edited source (its hash no longer the recorded one) runs the pure module with a warning, as
``MEMCG_REPLAY_PURE=1`` does without one; each says why in ``describe()``. Each module's own tests
check what else it refuses (the generator: another numpy) and that the pure module then gives the
same results.
"""

from __future__ import annotations

import pytest

from traces import synth_build, take_build


@pytest.mark.parametrize("build", [synth_build.BUILD, take_build.BUILD], ids=lambda b: b.name)
def test_an_edited_source_or_the_pure_switch_runs_the_pure_module(build, monkeypatch):
    if build.module() is None:
        pytest.skip(f"not compiled here: {build.describe()}")
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setattr(build, "source_hash", lambda where=None: "edited")
    with pytest.warns(RuntimeWarning, match="edited after the build"):
        assert build.module() is None
    assert "edited" in build.describe()
    monkeypatch.undo()
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("MEMCG_REPLAY_PURE", "1")
    assert build.module() is None and "MEMCG_REPLAY_PURE" in build.describe()
    monkeypatch.undo()
    monkeypatch.setattr(build, "_state", {})
    assert build.module() is not None
