"""Every policy on random container lifecycles that reach zombies, swap-held zombies, OOM kills and kswapd.

The traces come from ``tests/lifecycle.py`` (seeded: trace ``i`` is the same for
every policy and every run). After every event the machine is checked twice:
by ``core.invariants.check`` and by ``tests.lifecycle.lifecycle_errors``, which
recomputes what holds each zombie from the page runs, kmem objects, sockets,
writeback pins and the tree, and that nothing references a freed memcg. At the
end the summary's zombie columns are compared with that recomputation, and the
run's coverage (share of traces that reached each state) is asserted, so a
generator that stops reaching the states that matter fails here, not silently.

The default run replays ``TRACES`` traces per policy; ``-m slow_props`` replays
``SLOW_TRACES`` (≥ 10,000) per policy. Measured coverage is in docs/evidence.md.
"""

from __future__ import annotations

import os

import pytest

from core.errors import TraceError
from core.events import EventBatch
from core.invariants import check
from core.machine import Machine, MachineConfig
from core.ops import Op
from core.policy import POLICY_NAMES, make_policy
from tests.lifecycle import lifecycle_errors, lifecycle_trace, machine_state, never_made

TRACES = 24
SLOW_TRACES = int(os.environ.get("SLOW_PROPS_TRACES", "10000"))

#: minimum share of traces reaching each state, per policy (measured shares are in docs/evidence.md)
FLOOR = {"zombie": 0.5, "swap_zombie": 0.1, "oom_kill": 0.15, "global_oom": 0.02, "kswapd": 0.25,
         "policy_work": 0.4}
#: per-policy exceptions, with why: `none` does nothing; swap_walk acts only on swap-held zombies, once a
#: minute; smemcg owns every shared and tmpfs page, so only an anon swap record can hold a zombie
FLOOR_OF = {"none": {"policy_work": 0.0}, "swap_walk": {"policy_work": 0.1}, "smemcg": {"swap_zombie": 0.04}}

_HELD = {"held_swap": "swap", "held_file": "file", "held_shmem": "shmem", "held_anon": "anon", "held_sock": "sock",
         "held_cgwb": "cgwb", "held_kmem": "kmem", "held_child": "child", "held_oom": "oom"}


def replay_checked(policy: str, seed: int) -> dict[str, bool]:
    """Replay lifecycle trace ``seed`` under ``policy`` checking after every event; what it reached."""
    cfg, rows = lifecycle_trace(seed)
    m = Machine(MachineConfig(**cfg), make_policy(policy), "life", seed=seed)
    seen = {"zombie": False, "swap_zombie": False}
    for row in rows:
        if never_made(m, row):
            continue
        m.apply(EventBatch.from_rows([row], "life"))
        _check(m, seen, f"{policy} seed {seed} after {Op(row[1]).name} at {row[0]}")
    m.advance_to(rows[-1][0] + 120_000_000)
    dying = _check(m, seen, f"{policy} seed {seed} at the end")
    s = m.summary()
    assert s["memcgs_dying"] == len(dying), f"{policy} seed {seed}: summary {s['memcgs_dying']} zombies, {len(dying)}"
    for col, why in _HELD.items():
        want = sum(1 for reasons in dying.values() if why in reasons)
        assert s[col] == want, f"{policy} seed {seed}: {col} = {s[col]}, recomputed {want}"
    c = m.counters
    base = Machine(MachineConfig(**cfg), make_policy("none"), "life", seed=seed)
    for row in rows:
        if not never_made(base, row):
            base.apply(EventBatch.from_rows([row], "life"))
    base.advance_to(rows[-1][0] + 120_000_000)
    return {**seen, "oom_kill": c["oom_kills"] + c["global_oom_kills"] > 0, "global_oom": c["global_oom_kills"] > 0,
            "kswapd": c["kswapd_wakeups"] > 0, "policy_work": base.summary() != s}


def _check(m: Machine, seen: dict, where: str) -> dict:
    errs = check(m)
    assert not errs, f"{where}: {errs[:5]}"
    errs, dying = lifecycle_errors(machine_state(m))
    assert not errs, f"{where}: {errs[:5]}"
    seen["zombie"] |= bool(dying)
    seen["swap_zombie"] |= any("swap" in why for why in dying.values())
    return dying


def coverage(policy: str, seeds: range) -> tuple[dict[str, float], list[str]]:
    """Share of the traces ``seeds`` that reached each state under ``policy``, and the traces that failed a check."""
    hits, failed = dict.fromkeys(FLOOR, 0), []
    for seed in seeds:
        try:
            reached = replay_checked(policy, seed)
        except (AssertionError, TraceError) as exc:  # keep going: the report lists every failing trace
            failed.append(f"seed {seed}: {str(exc).splitlines()[0][:300]}")
            continue
        for k, v in reached.items():
            hits[k] += v
    return {k: v / len(seeds) for k, v in hits.items()}, failed


def _assert_clean_and_covered(policy: str, cov: dict[str, float], failed: list[str]) -> None:
    print(f"\n{policy}: " + ", ".join(f"{k} {v:.1%}" for k, v in cov.items()) + f"; {len(failed)} failed")
    assert not failed, f"{len(failed)} traces failed: {failed}"
    floor = {**FLOOR, **FLOOR_OF.get(policy, {})}
    low = {k: v for k, v in cov.items() if v < floor[k]}
    assert not low, f"{policy}: coverage below the floor {floor}: {low}"


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_lifecycles_keep_every_invariant_and_reach_the_states_that_matter(policy):
    _assert_clean_and_covered(policy, *coverage(policy, range(TRACES)))


@pytest.mark.slow_props
@pytest.mark.timeout(0)  # about an hour per policy at 10,000 traces; the suite's 600 s limit is for the default run
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_lifecycles_many(policy):
    _assert_clean_and_covered(policy, *coverage(policy, range(TRACES, TRACES + SLOW_TRACES)))


def test_the_generator_is_deterministic_and_valid_for_every_policy_config():
    assert lifecycle_trace(7) == lifecycle_trace(7) and lifecycle_trace(7) != lifecycle_trace(8)
    cfg, rows = lifecycle_trace(3)
    assert rows == sorted(rows, key=lambda r: r[0]) and MachineConfig(**cfg).validate() is None

