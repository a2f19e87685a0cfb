"""Committed model goldens (``tests/data/goldens/``): every default run replays them bit for bit.

Each case is a synthetic machine (``scripts/golden_check.py``'s nine policy/kernel cases on 15
or 10 simulated minutes); its digest holds the whole summary and a SHA-256 per sample column and
of the job table. A change meant to change results refreshes them with
``python scripts/golden_check.py write --set committed`` and says why in its commit.
"""

from __future__ import annotations

import json

import pytest

from scripts import golden_check as gc


@pytest.mark.parametrize("case", gc.CASES, ids=gc.case_name)
def test_model_matches_its_committed_golden(case):
    diffs = gc.check_committed(case)
    assert not diffs, f"{case}: {diffs[:10]}"


def test_goldens_reach_zombies_reclaim_and_policy_work():
    """The committed cases are not idle machines: what the check would miss if they were."""
    sums = {c: json.loads((gc.COMMITTED_DIR / f"{gc.case_name(c)}.json").read_text())["summary"] for c in gc.CASES}
    assert all(s["events"] > 4000 and s["memcgs_dying"] > 0 and s["memcgs_freed"] > 0 for s in sums.values())
    assert sum(s["pgsteal"] > 0 for s in sums.values()) >= 6
    moved = ("recharged_pages", "reparented_pages", "policy_evicted_pages", "swap_records_reparented",
             "reaper_reclaimed_pages")
    assert all(sum(s[k] for k in moved) > 0 for c, s in sums.items() if c[2] not in ("none", "smemcg"))


def test_a_different_result_is_reported_key_by_key(tmp_path):
    case, other = ("tiny", 6, "manual_reclaim"), ("tiny", 6, "none")
    ref = gc.digest(gc.replay(*other, duration_s=gc.COMMITTED_S["tiny"]))
    (tmp_path / f"{gc.case_name(case)}.json").write_text(json.dumps(ref))
    diffs = gc.check_committed(case, tmp_path)
    assert any(d.startswith("summary policy_evicted_pages: 0 -> ") for d in diffs)
    assert "sample column policy_evicted_pages" in diffs and "jobs" in diffs
