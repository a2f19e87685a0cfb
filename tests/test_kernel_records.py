"""The model against recorded kernel outputs, on every default run (no VM).

tests/kernel_records/<uname -r>_<package version>/<scenario>.json holds what one exact
Debian kernel build showed after every step of one scenario of tests/kernel_scenarios/
(written by ``python -m scripts.kernel_check --kernel … --record``, the opt-in VM run).
Each record is replayed through the same model run and comparison as a live boot
(``scripts.kernel_check.run.model_result``: the Machine's public API via simulate.py,
translate.py and compare.py), with the build's upstream release as the model's kernel.

The verdicts are pinned:
- every (build, scenario) agrees, except those in ``scripts/kernel_check/known.py``;
- those are strict expected failures: they must disagree at exactly the listed steps, so a
  model that starts to agree (or disagrees elsewhere) fails here until the list is updated.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from scripts.kernel_check import known, records
from scripts.kernel_check.compare import Check
from scripts.kernel_check.parse import VmRun
from scripts.kernel_check.run import scenario_paths

RECORDS = records.load_records()
BUILDS = records.builds(RECORDS)


def _case_id(rec: records.Record) -> str:
    return f"{rec.build.upstream}-{rec.scenario}"


def _cases() -> list:
    out = []
    for rec in RECORDS:
        entry = known.expected_disagreement(rec.scenario, rec.build.upstream)
        # a model entry is a strict expected failure; a timing or flaky one is checked in the test itself
        must_fail = entry and not entry.may_agree
        marks = [pytest.mark.xfail(strict=True, reason=f"{entry.issue}: {entry.why}")] if must_fail else []
        out.append(pytest.param(rec, marks=marks, id=_case_id(rec)))
    return out


# ---------------------------------------------------------------- the records themselves
def test_every_scenario_is_recorded_on_each_build_from_its_current_trace() -> None:
    names = {p.stem: p for p in scenario_paths()}
    assert len(BUILDS) >= 2 and {b.series for b in BUILDS} >= {"6.1", "6.12"}
    for build in BUILDS:
        mine = {r.scenario: r for r in RECORDS if r.build.name == build.name}
        assert set(mine) == set(names), f"{build.label}: scenarios recorded != tests/kernel_scenarios"
        for name, rec in mine.items():
            assert rec.trace_sha256 == records.trace_digest(names[name]), \
                f"{rec.path()}: stale, re-record with --kernel {build.package} --record"
            assert rec.path().parent.name == build.name == f"{build.release}_{build.version}"
            assert rec.observed.rc and -1 in rec.observed.steps  # a complete boot was recorded


def test_each_record_names_its_exact_build() -> None:
    for rec in RECORDS:
        b = rec.build
        assert b.package == f"linux-image-{b.release}" and b.release.endswith("-cloud-amd64")
        assert b.version.startswith(b.upstream + "-") and b.upstream.count(".") == 2
        assert b.label == f"{b.release} ({b.version})"
        # Debian boots 6.12 with MGLRU and 6.1 without (CONFIG_LRU_GEN_ENABLED)
        assert b.lru_gen == (b.series == "6.12")


# ---------------------------------------------------------------- the model against them
@pytest.mark.parametrize("rec", _cases())
def test_model_agrees_with_the_recorded_kernel(rec: records.Record) -> None:
    res = records.replay(rec)
    assert res.build == rec.build.label and res.kernel == rec.build.upstream
    entry = known.expected_disagreement(rec.scenario, rec.build.upstream)
    if entry and entry.may_agree:  # agrees, or disagrees at some of the listed steps only
        assert known.verdict_ok(entry, res.failed_steps), f"{rec.scenario} on {rec.build.label}:\n{res.table()}"
        return
    assert res.agrees, f"{rec.scenario} on {rec.build.label}:\n{res.table()}"


@pytest.mark.parametrize("entry", known.KNOWN, ids=lambda k: f"{k.scenario}-since-{k.since}")
def test_known_disagreements_are_exactly_where_listed(entry: known.KnownDisagreement) -> None:
    """A listed disagreement is on a recorded build, at exactly its steps; before ``since`` it agrees."""
    mine = [r for r in RECORDS if r.scenario == entry.scenario and r.build.series == entry.series]
    applying = [r for r in mine if entry.applies(r.build.upstream)]
    assert applying, f"{entry.scenario}: no recorded {entry.series} build from {entry.since} on"
    assert entry.issue and entry.why
    for rec in mine:
        bad = records.replay(rec).failed_steps
        applies = entry.applies(rec.build.upstream)
        want = set(entry.steps) if applies else set()
        assert known.verdict_ok(entry if applies else None, bad), \
            f"{entry.scenario} on {rec.build.label}: disagreeing steps {sorted(bad)}, listed {sorted(want)} " \
            f"({entry.issue}, {entry.kind})"


def test_a_flaky_or_timing_entry_may_agree_a_model_entry_must_disagree_exactly() -> None:
    # global_reclaim_with_swap on 6.12.118 disagreed in 5 of 7 boots at steps 12-14 (the kernel's own
    # spread straddles the tolerance): a flaky entry accepts either, and nothing outside its steps
    model = known.KnownDisagreement("s", "6.12", "6.12.118", frozenset({9, 10}), "i", "w")
    flaky = replace(model, kind="flaky")
    timing = replace(model, kind="timing")
    assert [known.verdict_ok(model, f) for f in (set(), {9}, {9, 10}, {9, 11})] == [False, False, True, False]
    for entry in (flaky, timing):
        assert entry.may_agree and not model.may_agree
        assert [known.verdict_ok(entry, f) for f in (set(), {9}, {9, 10}, {9, 11})] == [True, True, True, False]
    assert known.verdict_ok(None, set()) and not known.verdict_ok(None, {3})
    assert {k.kind for k in known.KNOWN} <= {"model", "timing", "flaky"}
    assert known.expected_disagreement("global_reclaim_with_swap", "6.12.118").kind == "flaky"


def test_known_list_is_one_entry_per_scenario_and_series() -> None:
    keys = [(k.scenario, k.series) for k in known.KNOWN]
    assert len(keys) == len(set(keys))
    names = {p.stem for p in scenario_paths()}
    assert {k.scenario for k in known.KNOWN} <= names
    # a range of one release: only that build
    entry = known.KnownDisagreement("oom_after_zombie_scraped", "6.12", "6.12.118", frozenset({13}), "i", "w",
                                    until="6.12.118", kind="timing")
    assert [entry.applies(v) for v in ("6.12.117", "6.12.118", "6.12.119", "6.1.118")] == [False, True, False, False]
    # D12 is modelled (core.kernel.Kernel.mglru_memcg_reclaim_aborts): no longer listed
    assert known.expected_disagreement("high_reclaims_zombie", "6.12.118") is None


# ---------------------------------------------------------------- record files and drift (unit)
def _run(**steps: dict) -> VmRun:
    return VmRun(release="6.12.118+deb12-cloud-amd64",
                 steps={int(k[1:]): v for k, v in steps.items()}, rc={int(k[1:]): 0 for k in steps},
                 mem_free=458407936, wmark_low=887, wmark_high=1057)


def _stats(file: int, dying: int = 0) -> dict[str, int]:
    return {"nr_dying_descendants": dying, "memory.current": file, "kernel": 0, "anon": 0, "file": file,
            "shmem": 0, "file_mapped": 0, "memory.swap.current": 0}


BUILD_117 = records.Build("linux-image-6.12.117+deb12-cloud-amd64", "6.12.117-1~deb12u1",
                          "6.12.117+deb12-cloud-amd64", True)
BUILD_118 = records.Build("linux-image-6.12.118+deb12-cloud-amd64", "6.12.118-1~deb12u1",
                          "6.12.118+deb12-cloud-amd64", True)


def test_a_record_keeps_only_what_compare_reads_and_round_trips(tmp_path: Path) -> None:
    scen = tmp_path / "s.csv"
    scen.write_text("time_us,machine,op,cgroup,task,object,offset,bytes,flags\n0,m0,mkdir,/a,,,,,\n")
    run = _run(s0={"/": {"nr_dying_descendants": 0, "pgsteal": 7},
                   "/a": {**_stats(4096), "pgscan": 9, "workingset_refault_file": 1}})
    rec = records.Record.from_run(scen, BUILD_118, run)
    assert set(rec.observed.steps[0]["/a"]) == set(records.RECORD_KEYS)
    path = records.write_record(rec, tmp_path / "rec")
    assert path == tmp_path / "rec" / "6.12.118+deb12-cloud-amd64_6.12.118-1~deb12u1" / "s.json"
    assert records.load_record(path) == rec
    assert json.loads(path.read_text())["build"]["upstream"] == "6.12.118"
    assert [b.name for b in records.builds(records.load_records(tmp_path / "rec"))] == [BUILD_118.name]
    # the free pages on the per-CPU lists are kept when the boot reported them, absent (0) before
    assert "pcp_free" not in json.loads(path.read_text())["vm"]
    rec = records.Record.from_run(scen, BUILD_118, replace(run, pcp_free=8101888))
    path = records.write_record(rec, tmp_path / "rec")
    assert json.loads(path.read_text())["vm"]["pcp_free"] == 8101888
    assert records.load_record(path).observed.free_bytes == 458407936 + 8101888


def test_drift_names_the_steps_and_values_a_stable_update_changed(tmp_path: Path) -> None:
    scen = tmp_path / "s.csv"
    scen.write_text("x\n")
    mib = 1 << 20
    old = records.Record.from_run(scen, BUILD_117, _run(s0={"/": _stats(0), "/pod": _stats(32 * mib)},
                                                        s1={"/": _stats(0, 1), "/pod": _stats(int(15.75 * mib))}))
    new = records.Record.from_run(scen, BUILD_118, _run(s0={"/": _stats(0), "/pod": _stats(32 * mib)},
                                                        s1={"/": _stats(0, 1), "/pod": _stats(int(23.5 * mib))}))
    failed = records.drift(old, new, ["/pod"])
    assert {(c.step, c.cgroup, c.key) for c in failed} == {(1, "/pod", "file"), (1, "/pod", "memory.current-kernel")}
    text = records.describe_drift(old, new, failed)
    assert "6.12.117+deb12-cloud-amd64 (6.12.117-1~deb12u1) -> 6.12.118+deb12-cloud-amd64 (6.12.118-1~deb12u1)" in text
    assert "step 1 /pod file: 15.75M -> 23.50M" in text
    assert records.drift(old, old, ["/pod"]) == []
    assert records.previous_build(BUILD_118, [old, new]) == BUILD_117
    assert records.previous_build(BUILD_117, [old, new]) is None


def test_a_record_of_another_trace_version_is_refused(tmp_path: Path) -> None:
    scen = tmp_path / "s.csv"
    scen.write_text("x\n")
    rec = records.Record.from_run(scen, BUILD_118, _run(s0={"/": _stats(0)}))
    scen.write_text("y\n")
    with pytest.raises(records.StaleRecord, match="re-record"):
        records.replay(rec, scen)


def test_check_formats_both_sides() -> None:
    assert Check(3, "/a", "file", 23 << 20, 1 << 19, 0).formatted() == ("23.00M", "0.50M")
    assert Check(3, "/", "nr_dying_descendants", 1, 0, 0).formatted() == ("1", "0")
