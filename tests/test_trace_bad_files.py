"""Issue 14 item 1, trace side: every bad trace file is one clean, coded error naming the file,
and a CSV written by pandas (integers as ``1073741824.0``) reads as the integers it holds."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from core.errors import TraceError
from traces.cli import main as cli_main
from traces.io import read_trace, write_trace
from traces.problems import TraceInvalid
from traces.schema import COLUMN_NAMES, MAX_TIME_US
from traces.validate import ensure_valid_file, validate_file

from .tracehelp import ev, pod_rows, table

HEADER = ",".join(COLUMN_NAMES) + "\n"


def _bad_files(tmp_path):
    good = tmp_path / "good.csv.gz"
    write_trace(table(pod_rows()), good)
    data = good.read_bytes()
    pq = tmp_path / "good.parquet"
    write_trace(table(pod_rows()), pq)
    files = {
        "empty.csv": b"",
        "header.csv": HEADER.encode(),
        "garbage.csv": b"\x00\xff\xfe\x80garbage\n\x01,\x02",
        "garbage.parquet": b"PAR1 not really",
        "cut.csv.gz": data[: len(data) // 2],
        "cut.parquet": pq.read_bytes()[:-20],
        "trace.txt": HEADER.encode(),
        "dup.csv": (HEADER.rstrip("\n") + ",time_us\n0,m,sync,,,,,,,0\n").encode(),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return [tmp_path / n for n in files] + [tmp_path / "missing.csv", tmp_path]


def test_each_bad_file_is_one_coded_problem_naming_the_file(tmp_path):
    for path in _bad_files(tmp_path):
        problems = validate_file(path)
        assert problems, path
        assert all(p.source == str(path) for p in problems)
        assert problems[0].code in ("S106", "S107", "S108"), (path, problems)
        with pytest.raises(TraceInvalid) as err:
            ensure_valid_file(path)
        assert err.value.source == str(path) and "Traceback" not in str(err.value)


def test_header_only_csv_is_an_error_in_validate(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(HEADER)
    assert [(p.code, p.row) for p in validate_file(path)] == [("S107", 0)]
    assert cli_main(["validate", str(path)]) == 1
    assert "S107" in capsys.readouterr().out


def test_unreadable_files_never_raise_library_errors(tmp_path):
    for path in _bad_files(tmp_path):
        try:
            read_trace(path)
        except TraceError as e:
            assert str(path) in str(e)


def test_event_beyond_the_replay_horizon_is_a_coded_error(tmp_path):
    for t in (2**62, 2**63 - 1, MAX_TIME_US + 1):
        path = tmp_path / "far.csv"
        write_trace(table([ev(0, "sync"), ev(t, "sync")]), path)
        assert [(p.code, p.row, p.field) for p in validate_file(path)] == [("E211", 2, "time_us")]
        with pytest.raises(TraceInvalid) as err:
            ensure_valid_file(path)
        assert (err.value.row, err.value.field) == (2, "time_us")
    write_trace(table([ev(MAX_TIME_US, "sync")]), path)
    assert validate_file(path) == []


def test_csv_round_tripped_through_pandas_is_accepted(tmp_path):
    src = tmp_path / "t.csv"
    write_trace(table(pod_rows()), src)
    df = pd.read_csv(src)
    assert df["bytes"].dtype == float  # nulls make pandas write 1073741824.0
    out = tmp_path / "pandas.csv"
    df.to_csv(out, index=False)
    assert "1073741824.0" in out.read_text()
    assert validate_file(out) == []
    assert read_trace(out).to_pylist() == read_trace(src).to_pylist()
    with gzip.open(tmp_path / "pandas.csv.gz", "wt") as f:
        f.write(out.read_text().replace("1073741824.0", "1.073741824e9"))
    assert read_trace(tmp_path / "pandas.csv.gz").to_pylist() == read_trace(src).to_pylist()


def test_non_integral_float_in_an_integer_column_is_a_coded_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "0,m,memory,,,,,1073741824.5,\n1.5,m,sync,,,,,,\n")
    found = [(p.code, p.row, p.field) for p in validate_file(path)]
    assert found == [("S103", 1, "bytes"), ("S103", 2, "time_us")]
    with pytest.raises(TraceInvalid) as err:
        read_trace(path)
    assert "1073741824.5" in str(err.value) and "whole number" in str(err.value)


def test_plus_signed_integers_parse(tmp_path):
    # found by tests/test_fuzz.py: "+7" passed the integer check, then Arrow's cast raised ArrowInvalid
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "+7,m,memory,,,,,+4096.0,\n")
    assert read_trace(path).column("time_us").to_pylist() == [7]
    assert read_trace(path).column("bytes").to_pylist() == [4096]


def test_parquet_with_column_names_that_are_not_utf8(tmp_path):
    # found by tests/test_fuzz.py: one flipped byte in the footer's column name raised UnicodeDecodeError
    import pyarrow.parquet as pq

    t = table(pod_rows()).append_column("zzzz", table(pod_rows()).column("op"))
    good = tmp_path / "g.parquet"
    pq.write_table(t, good, store_schema=False)  # names from the footer, not the Arrow schema
    path = tmp_path / "bad.parquet"
    path.write_bytes(good.read_bytes().replace(b"zzzz", b"zz\xff\xfe"))
    assert [p.code for p in validate_file(path)] == ["S106"]
    with pytest.raises(TraceInvalid):
        read_trace(path)


def test_trace_commands_print_one_error_line_for_a_bad_file(tmp_path, capsys):
    # on main `python -m traces info garbage.csv` ended in a TraceInvalid traceback
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"\xff\xfe garbage")
    assert cli_main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:0: S106") and len(err.splitlines()) == 1


def test_missing_importer_input_is_an_error_naming_the_file(tmp_path):
    from traces.importers.google2011 import import_google2011

    with pytest.raises(TraceError) as e:
        import_google2011([str(tmp_path / "nope.csv")], lenient=True)
    assert (e.value.source, e.value.row) == (str(tmp_path / "nope.csv"), 0) and "no such file" in str(e.value)


def test_parquet_string_cells_that_are_not_utf8_are_s103(tmp_path):
    # found by the long fuzzing budget: validate_file raised UnicodeDecodeError on such a cell
    import pyarrow.parquet as pq

    good = tmp_path / "g.parquet"
    pq.write_table(table(pod_rows()), good, compression="none")
    path = tmp_path / "bad.parquet"
    path.write_bytes(good.read_bytes().replace(b"k-stack", b"k-\xff\xfeack"))
    found = [(p.code, p.row, p.field) for p in validate_file(path)]
    assert found == [("S103", 7, "object")]
    with pytest.raises(TraceInvalid) as err:
        read_trace(path)
    assert "not UTF-8" in str(err.value)
