"""Small versions of ``scripts/claims.py``: each claim by name against a pinned verdict, and rules that can say no.

A verdict is a rule on measured numbers against the ``none`` baseline or a stated
control. ``PINNED`` is what the model gives today, "does not hold" included: a
model change that flips a verdict fails here by the claim's name, and the pin and
the README's claims section are then updated together, with the reason. Each
claim about a policy is evaluated again with that policy made a no-op (replaced
by ``none``): a claim that holds must then not hold, or its rule cannot fail.
"""

from __future__ import annotations

import pytest

from scripts import claims as claims_module

SCALE = 0.02

#: claim name -> verdict of the model today (README "The talk's claims, reproduced")
PINNED = {
    "accumulate": "holds",
    "manual_shared": "holds",
    "manual_swap": "holds",
    "reparent_hides": "holds",
    "reparent_stats": "holds",
    "reparent_root": "holds",
    "reparent_neighbours": "does not hold",
    "evict": "holds",
    "mapper_neighbours": "holds",
    "mapper_oom": "does not hold",
    "mapper_oom_knob": "holds",
    "deferred": "holds",
    "kmem": "holds",
    "smemcg": "holds",
    "swap_walk": "holds",
}

#: (claim, policy made a no-op) for every claim about a policy
NOOPS = [(name, pol) for name, pols in (
    ("manual_shared", ("manual_reclaim",)), ("manual_swap", ("manual_reclaim",)), ("reparent_hides", ("reparent",)),
    ("reparent_stats", ("reparent",)), ("reparent_root", ("reparent",)), ("reparent_neighbours", ("reparent",)),
    ("evict", ("recharge_evict",)), ("mapper_neighbours", ("recharge_mapper",)),
    ("mapper_oom", ("recharge_mapper",)), ("mapper_oom_knob", ("recharge_mapper",)),
    ("deferred", ("recharge_deferred",)), ("smemcg", ("smemcg",)), ("swap_walk", ("swap_walk",)),
) for pol in pols]


def _verdict(r) -> str:
    return "holds" if r.holds else "does not hold"


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in claims_module.evaluate(scale=SCALE)}


def test_every_claim_is_pinned_and_evaluated_with_evidence_and_rule(results):
    assert set(results) == set(PINNED) and len(results) == len(claims_module.CLAIMS)
    assert all(r.claim and r.evidence and r.rule for r in results.values())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_claim_verdict_is_the_pinned_one(results, name):
    r = results[name]
    assert _verdict(r) == PINNED[name], f"{r.claim}: {r.evidence} — rule: {r.rule}"


@pytest.mark.parametrize("name", sorted(n for n, v in PINNED.items() if v == "does not hold"))
def test_a_claim_that_does_not_hold_says_why(results, name):
    assert len(results[name].why) > 20


def test_noop_list_names_each_claims_policies(results):
    named = {}
    for name, pol in NOOPS:
        named.setdefault(name, set()).add(pol)
    assert {n: set(r.policies) for n, r in results.items() if r.policies} == named


@pytest.mark.parametrize("name,policy", NOOPS, ids=[f"{n}-{p}" for n, p in NOOPS])
def test_claim_does_not_hold_when_its_policy_is_a_noop(name, policy):
    """A rule that can say no: with the claimed policy replaced by ``none`` the claim must not hold."""
    (r,) = claims_module.evaluate(scale=SCALE, noop={policy}, only=name)
    assert not r.holds, f"{r.claim} still holds with {policy} a no-op: {r.evidence}"


def test_noop_replaces_only_the_named_part_of_a_composition():
    lab = claims_module.Lab(noop=frozenset({"swap_walk"}))
    assert lab.policy("manual_reclaim+swap_walk").name == "manual_reclaim"
    assert lab.policy("swap_walk").name == "none" and lab.policy("reparent").name == "reparent"


def test_accumulate_control_is_the_same_churn_without_sharing():
    shared, control = claims_module.churn(40), claims_module.churn(40, shared=False)
    jobs = [sum(1 for r in tr.rows if r[1] == claims_module.Op.MKDIR) for tr in (shared, control)]
    assert jobs[0] == jobs[1] == 41  # /jobs and 40 jobs
    objs = {r[4] for r in shared.rows if r[1] == claims_module.Op.FILE_READ}
    assert "dataset" in objs and not {"dataset"} & {r[4] for r in control.rows}


def test_table_has_one_row_per_claim_and_says_which_do_not_hold(results):
    text = claims_module.table(list(results.values()))
    lines = text.strip().splitlines()
    assert len(lines) == 2 + len(results) and all(line.count("|") == 5 for line in lines)
    assert text.count("**does not hold**") == sum(v == "does not hold" for v in PINNED.values())


def test_main_writes_the_table(tmp_path, capsys):
    out = tmp_path / "claims.md"
    assert claims_module.main(["--scale", "0.01", "--out", str(out)]) == 0
    assert out.read_text() == capsys.readouterr().out
    with pytest.raises(SystemExit):
        claims_module.main(["--scale", "0"])


def test_neighbour_placements_give_smemcg_a_deterministic_peak():
    peaks = claims_module.spreads(("none", "smemcg"))
    assert len(set(peaks["smemcg"])) == 1 and len(set(peaks["none"])) > 1
