"""Trace IO: round trips, strict reading with file/row/column errors, atomic writes, the docs file."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import TraceError
from tests.tracehelp import pod_rows, table
from traces.commands.schema import render
from traces.io import read_trace, write_trace
from traces.schema import DICT_STRING, TRACE_SCHEMA

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.csv.gz"])
def test_round_trip(tmp_path, name):
    t = table(pod_rows())
    write_trace(t, tmp_path / name)
    back = read_trace(tmp_path / name)
    assert back.schema.equals(TRACE_SCHEMA, check_metadata=False)
    assert back.to_pylist() == t.to_pylist()


@pytest.mark.parametrize("name", ["t.parquet", "t.csv.gz"])
def test_writes_are_byte_identical(tmp_path, name):
    t = table(pod_rows("m2") + pod_rows("m1"))
    write_trace(t, tmp_path / ("a" + name))
    write_trace(t, tmp_path / ("b" + name))
    assert (tmp_path / ("a" + name)).read_bytes() == (tmp_path / ("b" + name)).read_bytes()


def test_parquet_groups_machines_and_keeps_their_order(tmp_path):
    a, b = pod_rows("m2"), pod_rows("m1")
    interleaved = [r for pair in zip(a, b) for r in pair]
    write_trace(table(interleaved), tmp_path / "t.parquet")
    back = read_trace(tmp_path / "t.parquet").to_pylist()
    assert [r["machine"] for r in back] == ["m1"] * len(b) + ["m2"] * len(a)
    assert [r["op"] for r in back[: len(b)]] == [r[2] for r in b]
    sorting = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0).sorting_columns
    assert [s.column_index for s in sorting] == [1, 0]


def test_csv_bad_cell_names_file_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time_us,machine,op,cgroup,task,object,offset,bytes,flags\n"
                    "0,m,mkdir,/a,,,,,\n"
                    "1,m,anon_alloc,,t,h,,12kB,\n")
    with pytest.raises(TraceError) as err:
        read_trace(path)
    e = err.value
    assert (e.source, e.row, e.field) == (str(path), 2, "bytes")
    assert "12kB" in str(e)


def test_csv_whitespace_and_big_ints_parse(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("time_us,machine,op,cgroup,task,object,offset,bytes,flags\n"
                    " 7 ,m,swap_on,,,,,9223372036854775807,\n")
    assert read_trace(path).column("bytes").to_pylist() == [2**63 - 1]
    path.write_text(path.read_text().replace("9223372036854775807", "9223372036854775808"))
    with pytest.raises(TraceError):
        read_trace(path)


@pytest.mark.parametrize("change,field", [("drop", "flags"), ("extra", "colour")])
def test_missing_or_extra_column_is_a_clear_error(tmp_path, change, field):
    t = table(pod_rows())
    t = t.drop_columns(["flags"]) if change == "drop" else t.append_column("colour", pa.array(["x"] * t.num_rows))
    pq.write_table(t, tmp_path / "t.parquet")
    with pytest.raises(TraceError) as err:
        read_trace(tmp_path / "t.parquet")
    assert err.value.field == field and err.value.row == 0
    with pytest.raises(TraceError):
        write_trace(t, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_parquet_with_other_int_and_dictionary_types_is_cast(tmp_path):
    t = table(pod_rows())
    t = t.set_column(0, "time_us", t.column("time_us").cast(pa.int32()))
    t = t.set_column(2, "op", t.column("op").dictionary_encode())
    pq.write_table(t, tmp_path / "t.parquet")
    assert read_trace(tmp_path / "t.parquet").column("op").type == pa.string()


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import traces.io as tio

    def boom(table, tmp):
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("disk full")

    write_trace(table(pod_rows()), tmp_path / "t.parquet")
    before = (tmp_path / "t.parquet").read_bytes()
    monkeypatch.setattr(tio, "_write_parquet", boom)
    with pytest.raises(RuntimeError):
        write_trace(table(pod_rows()[:3]), tmp_path / "t.parquet")
    assert (tmp_path / "t.parquet").read_bytes() == before
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="unknown trace format"):
        write_trace(table(pod_rows()), tmp_path / "t.json")


def test_committed_schema_doc_is_current():
    assert (REPO / "docs" / "trace-schema.md").read_text(encoding="utf-8") == render(), \
        "regenerate: python -m traces schema --markdown --out docs/trace-schema.md"


def _encoded(t: pa.Table) -> pa.Table:
    """``t`` with every string column dictionary-encoded (int32 indices), as an importer returns them."""
    cols = [pa.chunked_array([c.combine_chunks().dictionary_encode().cast(DICT_STRING)])
            if c.type == pa.string() else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names)


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_dictionary_columns_round_trip_as_plain_strings(tmp_path, name):
    t = table(pod_rows("m2") + pod_rows("m1"))
    write_trace(_encoded(t), tmp_path / name)
    back = read_trace(tmp_path / name)
    assert back.schema.equals(TRACE_SCHEMA, check_metadata=False)
    assert back.to_pylist() == read_trace_of(t, tmp_path, name).to_pylist()


def read_trace_of(t: pa.Table, tmp_path: Path, name: str = "t.parquet") -> pa.Table:
    """``t`` written without encoding (in the format of ``name``) and read back."""
    write_trace(t, tmp_path / ("plain-" + name))
    return read_trace(tmp_path / ("plain-" + name))


def test_parquet_row_groups_carry_only_the_names_they_use(tmp_path, monkeypatch):
    import traces.io as tio
    monkeypatch.setattr(tio, "ROW_GROUP_ROWS", 4)
    rows = pod_rows("m1")
    t = _encoded(table(rows))
    write_trace(t, tmp_path / "t.parquet")
    pf = pq.ParquetFile(tmp_path / "t.parquet")
    assert pf.num_row_groups == -(-len(rows) // 4)
    for i in range(pf.num_row_groups):
        g = pf.read_row_group(i, columns=["cgroup"]).column(0).combine_chunks()
        used = {v for v in g.to_pylist() if v is not None}
        assert len(g.dictionary) == len(used)  # not the whole trace's dictionary in every group
    assert read_trace(tmp_path / "t.parquet").to_pylist() == read_trace_of(table(rows), tmp_path).to_pylist()
