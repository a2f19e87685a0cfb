"""The model against every committed random-trace record (tests/kernel_random/), no VM.

The random runs of docs/kernel-validation.md ("Random differential testing") keep each trace and
what the kernel showed of it (``python -m scripts.kernel_check --random N --save DIR``); they are
committed under tests/kernel_random/<build>/, and ``--replay-saved tests/kernel_random`` prints the
same comparison. Every trace must agree on every build, but for those listed in
``scripts.kernel_check.known.RANDOM_KNOWN``, which must disagree on at least one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.kernel_check.known import RANDOM_GROUPS, RANDOM_KNOWN
from scripts.kernel_check.randomized import replay_saved

RANDOM_DIR = Path(__file__).resolve().parent / "kernel_random"


@pytest.fixture(scope="module")
def results() -> list:
    return replay_saved(RANDOM_DIR)


def test_the_random_records_cover_both_series(results: list) -> None:
    series = {r.kernel_build.series for r in results}
    assert {"6.1", "6.12"} <= series, series


def test_every_random_trace_agrees_but_for_the_listed_ones(results: list) -> None:
    disagree = {r.name for r in results if not r.agrees}
    unlisted = sorted(disagree - set(RANDOM_KNOWN), key=lambda n: int(n.rsplit("-", 1)[1]))
    assert not unlisted, "\n\n".join(f"{r.name} on {r.build}\n{r.table()}" for r in results
                                     if r.name in unlisted and not r.agrees)
    fixed = sorted(set(RANDOM_KNOWN) - disagree)
    assert not fixed, f"these agree on every build now: remove them from known.RANDOM_KNOWN: {fixed}"
    assert set(RANDOM_KNOWN.values()) <= set(RANDOM_GROUPS)
