"""Host recorder on a fake cgroupfs tree in a temp dir (never a real cgroupfs)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from traces.anonymize import Anonymizer
from traces.cli import main as cli_main
from traces.importers.emit import ProfileParams
from traces.record import Recorder, anonymized, record
from traces.validate import validate_table

MiB = 1 << 20


def make_cgroup(root: Path, path: str, anon: int = 0, file: int = 0, shmem: int = 0, mapped: int = 0,
                swap: int = 0, dying: int = 0) -> None:
    d = root / path.strip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.procs").write_text("")
    (d / "memory.current").write_text(f"{anon + file}\n")
    (d / "memory.stat").write_text(f"anon {anon}\nfile {file}\nkernel 0\nshmem {shmem}\nfile_mapped {mapped}\n")
    (d / "memory.swap.current").write_text(f"{swap}\n")
    (d / "cgroup.stat").write_text(f"nr_descendants 0\nnr_dying_descendants {dying}\n")


def test_polls_become_a_valid_trace(tmp_path):
    root = tmp_path / "cg"
    make_cgroup(root, "/pod", anon=40 * MiB, file=20 * MiB)
    make_cgroup(root, "/pod/c1", anon=30 * MiB, file=20 * MiB, mapped=4 * MiB)
    rec = Recorder(root, "host-1")
    rec.poll(0)
    make_cgroup(root, "/pod/c2", anon=8 * MiB, shmem=6 * MiB, file=6 * MiB)
    make_cgroup(root, "/pod", anon=50 * MiB, file=26 * MiB, dying=0)
    make_cgroup(root, "/pod/c1", anon=10 * MiB, file=20 * MiB)
    rec.poll(1_000_000)
    shutil.rmtree(root / "pod" / "c1")
    make_cgroup(root, "/pod", anon=8 * MiB, file=6 * MiB, dying=1)
    rec.poll(2_000_000)
    table, report = rec.trace(ProfileParams(min_change_bytes=MiB))
    assert validate_table(table) == []
    mk = table.filter(pc.equal(table.column("op"), "mkdir"))
    assert list(zip(mk.column("time_us").to_pylist(), mk.column("cgroup").to_pylist())) == [
        (0, "/pod"), (0, "/pod/c1"), (1_000_000, "/pod/c2")]
    rm = table.filter(pc.equal(table.column("op"), "rmdir"))
    assert rm.column("cgroup").to_pylist() == ["/pod/c1"] and rm.column("time_us").to_pylist() == [2_000_000]
    c1 = table.filter(pc.equal(table.column("task"), "rec-1"))
    ops = Counter(c1.column("op").to_pylist())
    assert ops["anon_alloc"] == 1 and ops["anon_free"] == 1 and ops["task_exit"] == 1
    freed = c1.filter(pc.equal(c1.column("op"), "anon_free")).column("bytes").to_pylist()
    assert freed == [20 * MiB]
    # the parent's own memory excludes its children: 40 - 30 MiB anon at the first poll
    pod = table.filter(pc.and_(pc.equal(table.column("task"), "rec-0"), pc.equal(table.column("op"), "anon_alloc")))
    assert pod.column("bytes").to_pylist()[0] == 10 * MiB
    shm = table.filter(pc.equal(table.column("object"), "rec-2:shm"))
    assert shm.column("op").to_pylist() == ["file_create", "file_write"]
    s = rec.sample_table()
    assert s.num_rows == 2 + 3 + 2
    assert s.filter(pc.equal(s.column("cgroup"), "/pod")).column("nr_dying_descendants").to_pylist() == [0, 0, 1]


def test_record_loop_and_anonymised_cli(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    make_cgroup(root, "/secret-service", anon=5 * MiB)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")  # a cgroup v2 root
    ticks = iter(range(100))
    rec = record(root, "host-x", 1.0, count=3, clock=lambda: float(next(ticks)), sleep=lambda s: None)
    assert rec.polls == 3
    table, samples = anonymized(rec, rec.trace()[0], Anonymizer(b"k" * 16))
    assert "secret-service" not in str(table.to_pydict()) + str(samples.to_pydict())
    assert "host-x" not in str(samples.to_pydict())
    monkeypatch.setenv("MEMCG_REPLAY_ANON_KEY", "x" * 20)
    out = tmp_path / "rec.parquet"
    assert cli_main(["record", "--root", str(root), "--out", str(out), "--interval", "0", "--count", "2",
                     "--machine", "host-y", "--anonymize"]) == 0
    raw = out.read_bytes() + Path(f"{out}.samples.parquet").read_bytes()
    assert b"secret-service" not in raw and b"host-y" not in raw
    assert pq.read_table(f"{out}.samples.parquet").num_rows == 2
