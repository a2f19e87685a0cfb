"""Anonymizer: structure kept, no original name survives, key never written, coarsening."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from traces.anonymize import Anonymizer, anonymize_table, load_key
from traces.cli import main as cli_main
from traces.importers.google2019 import import_google2019
from traces.io import write_trace
from traces.validate import validate_table

DATA = Path(__file__).parent / "data" / "google2019" / "handwritten"
KEY = b"0123456789abcdef-test-key"


@pytest.fixture(scope="module")
def trace():
    t, _, _ = import_google2019([str(DATA / "instance_events.json")], [], [str(DATA / "instance_usage.json")])
    return t


def _names(t) -> dict[str, list]:
    return {c: t.column(c).to_pylist() for c in ("machine", "cgroup", "task", "object")}


def _components(values) -> set[str]:
    return {c for v in values if v for c in v.split("/") if c}


def test_structure_is_kept(trace):
    a = anonymize_table(trace, Anonymizer(KEY))
    assert validate_table(a) == []
    before, after = _names(trace), _names(a)
    for col in before:  # same name -> same token, different names -> different tokens
        pairs = {(x, y) for x, y in zip(before[col], after[col])}
        assert len({x for x, _ in pairs}) == len(pairs) == len({y for _, y in pairs})
    for x, y in zip(before["cgroup"], after["cgroup"]):
        if x is not None:
            assert x.count("/") == y.count("/") and (x == "/") == (y == "/")
    # the importer's string columns are dictionary-encoded; the anonymised table's are plain
    assert a.column("op").equals(trace.column("op").cast(pa.string())) and a.column("bytes").equals(trace.column("bytes"))


def test_no_original_string_survives(trace, tmp_path):
    a = anonymize_table(trace, Anonymizer(KEY))
    originals = set(pc.unique(trace.column("machine")).to_pylist()) | set(
        pc.unique(trace.column("task")).drop_null().to_pylist())
    originals |= _components(trace.column("cgroup").to_pylist()) | _components(trace.column("object").to_pylist())
    out = tmp_path / "a.csv"
    write_trace(a, out)
    text = out.read_text()
    tokens = _components(_names(a)["cgroup"]) | _components(_names(a)["object"]) | set(_names(a)["task"])
    assert originals.isdisjoint(tokens | set(_names(a)["machine"]))
    leaked = [n for n in originals if len(n) >= 5 and n in text]
    assert leaked == []
    assert KEY.decode() not in text


def test_key_sources_and_tokens_depend_on_key(tmp_path, monkeypatch, trace):
    kf = tmp_path / "key"
    kf.write_bytes(KEY + b"\n")
    assert load_key(kf) == KEY
    monkeypatch.setenv("MY_KEY", KEY.decode())
    assert load_key(None, "MY_KEY") == KEY
    with pytest.raises(ValueError):
        load_key(None, "UNSET_KEY_VAR_FOR_TEST")
    a = anonymize_table(trace, Anonymizer(KEY))
    b = anonymize_table(trace, Anonymizer(KEY + b"x"))
    assert a.equals(anonymize_table(trace, Anonymizer(KEY)))
    assert set(a.column("task").drop_null().to_pylist()).isdisjoint(b.column("task").drop_null().to_pylist())
    assert KEY.decode() not in repr(Anonymizer(KEY))


def test_coarsening(trace):
    a = anonymize_table(trace, Anonymizer(KEY), time_quantum_us=60_000_000, bytes_quantum=1 << 20)
    t = a.column("time_us").to_numpy()
    assert (t % 60_000_000 == 0).all()
    b = a.column("bytes").drop_null().to_numpy()
    assert (b % (1 << 20) == 0).all() and (b > 0).all()
    assert validate_table(a) == []


def test_cli(tmp_path, monkeypatch, trace):
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_trace(trace, src)
    monkeypatch.delenv("MEMCG_REPLAY_ANON_KEY", raising=False)
    assert cli_main(["anonymize", str(src), "--out", str(out)]) == 2
    monkeypatch.setenv("MEMCG_REPLAY_ANON_KEY", KEY.decode())
    assert cli_main(["anonymize", str(src), "--out", str(out), "--bytes-quantum", "64KiB"]) == 0
    assert KEY not in out.read_bytes()
