"""Hygiene: work folders of killed runs, concurrent runs, secrets in Hydra's files, the recorder's
root, file modes of side files, and docs that point only at files in the repo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from replay.app import run, run_dir_lock
from replay.store import EmbeddedServer, RunStore
from traces.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
QUICK = ("trace=tiny", "+trace.params.duration_s=120", "policy=none", "executor=local", "plots=false")


def test_a_killed_runs_work_folders_are_removed_by_the_next_run(compose_replay, tmp_path):
    left = tmp_path / "run" / ".shards-abc123"
    (left / "synth-0000.parquet").parent.mkdir(parents=True)
    (left / "synth-0000.parquet").write_bytes(b"half written")
    run(compose_replay(*QUICK, "store.cache=false"))
    assert not list((tmp_path / "run").glob(".shards-*"))


def test_a_second_run_in_a_directory_in_use_is_refused(compose_replay, tmp_path):
    with run_dir_lock(str(tmp_path / "run")):
        with pytest.raises(ConfigError, match="in use by another run"):
            run(compose_replay(*QUICK))
    run(compose_replay(*QUICK))  # free again once the first is done


def test_two_runs_sharing_a_snapshot_keep_each_others_cached_results(tmp_path):
    snap = str(tmp_path / "store.pkl")
    servers = [EmbeddedServer(), EmbeddedServer()]  # two processes' embedded stores
    try:
        a, b = (RunStore(s.url, "ns", snap) for s in servers)
        a.put_checkpoint("old", "l", 0, 60, b"ckpt")
        a.persist()
        b.load()
        a.put_result("run-a", {"summaries/x.json": b"A"})
        b.put_result("run-b", {"summaries/y.json": b"B"})
        b.clear_run("old")  # deleted by b: must not come back from the snapshot
        a.persist()
        b.persist()  # b never saw run-a
        fresh = EmbeddedServer()
        try:
            c = RunStore(fresh.url, "ns", snap)
            c.load()
            assert c.get_result("run-a") == {"summaries/x.json": b"A"}
            assert c.get_result("run-b") == {"summaries/y.json": b"B"}
            assert c.latest_checkpoint("old", "l", 0) is None
        finally:
            fresh.stop()
    finally:
        for s in servers:
            s.stop()


def test_a_password_in_store_url_is_in_no_file_of_the_run(tmp_path):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "replay", "experiment=quick", "store.url=redis://user:Pa55word@127.0.0.1:1/0",
         f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "user:***@" in proc.stderr and "Pa55word" not in proc.stdout + proc.stderr
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files)
    leaked = [p for p in files if b"Pa55word" in p.read_bytes()]
    assert not leaked


def _cgroup_v1(root: Path) -> None:
    for c in ("memory", "cpu"):
        (root / c).mkdir(parents=True)
    (root / "memory" / "memory.usage_in_bytes").write_text("0\n")


def _hybrid(root: Path) -> None:
    _cgroup_v1(root)
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.controllers").write_text("\n")


def _v2_without_memory(root: Path) -> None:
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu io pids\n")


@pytest.mark.parametrize("make, needle", [
    (None, "no such directory"),
    (_cgroup_v1, "cgroup v1"),
    (_hybrid, "hybrid cgroup v1/v2"),
    (_v2_without_memory, "memory controller is not enabled"),
])
def test_record_refuses_a_root_it_cannot_read(tmp_path, capsys, make, needle):
    root = tmp_path / "cg"
    if make:
        make(root)
    out = tmp_path / "rec.parquet"
    assert cli_main(["record", "--root", str(root), "--out", str(out), "--interval", "0", "--count", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --root {root}: ") and needle in err[0]
    assert not out.exists() and not Path(f"{out}.samples.parquet").exists()


def test_the_import_report_has_the_mode_of_the_trace(tmp_path):
    out = tmp_path / "g.parquet"
    tasks = ROOT / "tests/data/google2011/task_events-part-00000-head6000.csv.gz"
    old = os.umask(0o022)
    try:
        assert cli_main(["import", "google2011", "--task-events", str(tasks), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(f"{out}.report.json") == mode(out) == 0o644


_DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
_TOP = ("core", "traces", "replay", "scripts", "tests", "docs", ".ci")


@pytest.mark.parametrize("doc", _DOCS)
def test_docs_point_only_at_files_in_the_repo(doc):
    text = (ROOT / doc).read_text()
    missing = []
    for m in re.finditer(r"\]\(([^)\s#]+)[^)]*\)", text):  # Markdown links
        target = m.group(1)
        if "://" not in target and not (ROOT / doc).parent.joinpath(target).exists():
            missing.append(target)
    for m in re.finditer(r"`((?:%s)/[^`\s<>*{}…]*)`" % "|".join(map(re.escape, _TOP)), text):  # repo paths
        path, _, test = m.group(1).partition("::")
        if not (ROOT / path.rstrip("/")).exists():
            missing.append(path)
        elif test and f"def {test}(" not in (ROOT / path).read_text():
            missing.append(m.group(1))
    assert not missing, missing


# files the project's commands write (named in docs as outputs, not as files of the repo)
_OUTPUT_NAMES = {"summary.md", "comparison.md", "claims.md", "table.md"}


@pytest.mark.parametrize("doc", _DOCS)
def test_docs_name_no_file_outside_the_repo(doc):
    text = (ROOT / doc).read_text()
    in_repo = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts}
    named = set(re.findall(r"[\w.-]+\.md\b", text)) - _OUTPUT_NAMES
    assert named <= in_repo, sorted(named - in_repo)
    assert not re.findall(r"(?<![\w.])/(?:work|root|home)/\S+", text)  # no path of one machine
