"""The trace pipeline's outputs, pinned: ``traces generate``, the Google 2011 import and ``machine_batches``.

The digests in ``tests/data/pipeline_digests.json`` were taken before the issue-13 speed work
(``python scripts/pipeline_check.py --quick --local --write``, Parquet bytes left out: they carry
the writer's version) on c61fcb2; the Google 2011 import ones were re-taken on main e6da036, whose
agent-owned sharing rules (issue 16) changed the importer's output on purpose. Every case digests the whole output: the table's schema, metadata and cells,
the CSV file ``write_trace`` writes, the import report and rejected rows, every batch's arrays and
name tables. A change of behaviour fails here; a speed change must not. If an output is meant to
change, say so in the commit and re-pin with the command above.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scripts.pipeline_check import digests

PINNED = Path(__file__).resolve().parent / "data" / "pipeline_digests.json"


@pytest.fixture(scope="module")
def now() -> dict[str, str]:
    return digests(quick=True, local_only=True, echo=False)


@pytest.mark.parametrize("name", sorted(json.loads(PINNED.read_text())))
def test_output_is_pinned(now, name):
    assert now[name] == json.loads(PINNED.read_text())[name]


def test_no_case_is_left_unpinned(now):
    assert {k for k in now if not k.endswith("/parquet")} == set(json.loads(PINNED.read_text()))


@pytest.mark.parametrize("nfiles,k,zipf", [(128, 6, 1.1), (16, 6, 1.1), (6, 6, 1.1), (2, 2, 1.1), (8, 3, 2.5),
                                           (40, 40, 0.5)])
def test_choose_draws_what_numpy_choice_draws(nfiles, k, zipf):
    from traces.synth import _choose, _SharedFiles
    w = 1.0 / np.arange(1, nfiles + 1) ** zipf
    w = w / w.sum()
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    shared = _SharedFiles(list(range(nfiles)), [4096] * nfiles, w, cdf)
    for seed in range(40):
        a, b = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 1])
        for _ in range(10):
            assert a.choice(nfiles, size=k, replace=False, p=w).tolist() == _choose(b, shared, k)
            assert a.random() == b.random()  # and the stream goes on alike


@pytest.mark.parametrize("lo,hi", [(0, 1), (1, 4), (5, 100), (0, 1 << 32), (3, (1 << 32) + 3), (0, (1 << 32) + 1),
                                   (10, 1 << 40), (-(1 << 62), 1 << 62)])
def test_integers_draws_what_numpy_draws(lo, hi):
    from traces.synth import _integers
    for seed in range(20):
        a, b = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 2])
        for n in (0, 1, 2, 5, 6, 7, 30):
            assert a.integers(lo, hi, n).tolist() == _integers(b, lo, hi, n)
            assert a.random() == b.random()
