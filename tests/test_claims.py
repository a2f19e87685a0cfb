"""Small versions of ``scripts/claims.py``: every claim is evaluated, the table is complete, outputs are atomic.

The verdicts are asserted too: each one is a rule on measured numbers, so a
change in the model that breaks a claim fails here and names the claim.
"""

from __future__ import annotations

import pytest

from scripts import claims as claims_module


@pytest.fixture(scope="module")
def claims():
    return claims_module


@pytest.fixture(scope="module")
def results(claims):
    return claims.evaluate(scale=0.02)


def test_every_claim_is_evaluated_with_evidence(claims, results):
    assert len(results) == len(claims.CLAIMS) >= 12
    assert all(r.claim and r.evidence for r in results)


@pytest.mark.parametrize("i", range(13))
def test_claim_holds_in_the_model(results, i):
    r = results[i]
    assert r.holds, f"{r.claim}: {r.evidence} {r.why}"


def test_table_has_one_row_per_claim(claims, results):
    text = claims.table(results)
    lines = text.strip().splitlines()
    assert len(lines) == 2 + len(results) and all(line.count("|") >= 4 for line in lines)
    assert "does not hold" not in text


def test_main_writes_the_table(claims, tmp_path, capsys):
    out = tmp_path / "claims.md"
    assert claims.main(["--scale", "0.01", "--out", str(out)]) == 0
    assert out.read_text() == capsys.readouterr().out
    with pytest.raises(SystemExit):
        claims.main(["--scale", "0"])


def test_neighbour_placements_give_smemcg_a_deterministic_peak(claims):
    peaks = claims.spreads(("none", "smemcg"))
    assert len(set(peaks["smemcg"])) == 1 and len(set(peaks["none"])) > 1
