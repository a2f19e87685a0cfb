"""Fuzzing every reader: any input ends in success or one clean, project-typed error.

Readers: the native trace reader (CSV, CSV.gz and Parquet), the validator, the row parsers of
the three importers (Google 2011, Google 2019, Alibaba 2018, each run end to end on the rows)
and the replay config check. "Clean" means: ``core.errors.TraceError`` for a trace (a
``TraceInvalid`` from the native reader, file/row/field from an importer),
``core.errors.ConfigError`` for a config, and nothing else; and what an importer or the reader
accepts must pass the validator (an importer never writes a trace the replay refuses).

Inputs come from grammars close to each format (real field values, numbers at the edges of
int64 and of the replay's horizon, near misses, byte flips, cuts and garbage), so most inputs
reach the code past the first parse. A grammar draws through a ``Source``: hypothesis in the
default ``pytest`` run (a short seeded budget, ``FUZZ_SHORT`` inputs per reader, the same every
run, failures shrunk), and a seeded ``random.Random`` in ``pytest -m fuzz`` (``FUZZ_LONG``,
default 100,000 inputs per reader, seed ``FUZZ_SEED``): hypothesis spends ~30 ms per input
drawing these structures, the plain generator microseconds, so the long budget fits in minutes.
A long-budget failure names its seed and input number, which reproduce it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import string
from collections import Counter
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, TraceError
from traces.importers.alibaba2018 import Params as AlibabaParams
from traces.importers.alibaba2018 import import_alibaba2018
from traces.importers.google2011 import import_google2011
from traces.importers.google2019 import INSTANCE_EVENTS, INSTANCE_USAGE, MACHINE_EVENTS, import_google2019
from traces.io import read_trace
from traces.schema import COLUMN_NAMES, MAX_TIME_US, TRACE_SCHEMA
from traces.validate import ensure_valid, ensure_valid_file, validate_file, validate_table

FUZZ_SHORT = int(os.environ.get("FUZZ_SHORT", "30"))
FUZZ_LONG = int(os.environ.get("FUZZ_LONG", "100000"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "14"))
LOG = os.environ.get("FUZZ_LOG", "")  #: a file the long budget appends its progress to
RAN: Counter = Counter()  #: inputs run per reader in this session (printed at the end)

INT64_MAX = (1 << 63) - 1
EDGE_INTS = [0, 1, -1, 2, 7, 600_000_000, 4155527081, MAX_TIME_US, MAX_TIME_US + 1, 2**53, 2**62,
             INT64_MAX, -INT64_MAX - 1]
OPS = ["mkdir", "rmdir", "set_limit", "task_start", "task_exit", "task_move", "anon_alloc", "anon_free",
       "file_create", "file_delete", "file_read", "file_write", "file_map", "file_unmap", "pin", "unpin",
       "kmem_alloc", "kmem_free", "reclaim", "swap_on", "swap_off", "memory", "sock_open", "sock_close",
       "drop_caches", "sync", "bogus", "MKDIR", ""]
FLAGS = ["", "max", "high", "shmem", "mlock", "slab", "page", "max|high", "bogus", "|", "slab|page"]
PATHS = ["/", "/a", "/a/b", "/a/b/c", "a", "/a//b", "/a/../b", "/.", ""]
NAMES = ["t1", "t2", "h", "f", "k", "s", "", "x y", "é", "a,b", 'q"q']
INT_TEXTS = ["1073741824.0", "1e9", "1.5", "-0", "+7", " 3 ", "0x10", "nan", "inf", "1e999999", "9" * 40,
             "1_000", "١٢", "+4096.0", "-1.0e3", "9223372036854775807.0"]
ALPHABET = string.printable + "é\x00\u2028\ud800"


# ---------------------------------------------------------------- sources of choices

class Source:
    """What a grammar draws from. Two implementations: hypothesis (short, shrinking) and random."""

    def int(self, lo: int, hi: int) -> int: ...
    def choice(self, seq: Sequence): ...
    def float(self) -> float: ...
    def text(self, max_size: int) -> str: ...

    def bool(self) -> bool:
        return self.int(0, 1) == 1


class HypothesisSource(Source):
    def __init__(self, data) -> None:
        self.d = data.draw

    def int(self, lo, hi):
        return self.d(st.integers(lo, hi))

    def choice(self, seq):
        return self.d(st.sampled_from(list(seq)))

    def float(self):
        return self.d(st.floats())

    def text(self, max_size):
        return self.d(st.text(alphabet=ALPHABET, max_size=max_size))


class RandomSource(Source):
    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def int(self, lo, hi):
        # edge values of the range come up often, as hypothesis makes them do
        k = self.r.random()
        return lo if k < 0.05 else hi if k < 0.1 else self.r.randint(lo, hi)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]

    def float(self):
        k = self.r.random()
        if k < 0.2:
            return self.r.choice([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, 5e-324, 2.0**63])
        return self.r.uniform(-2.0, 2.0) * 10 ** self.r.randint(-5, 20)

    def text(self, max_size):
        return "".join(self.r.choice(ALPHABET) for _ in range(self.r.randint(0, max_size)))


def fuzz_both(fn: Callable[[Source, str], None]):
    """``fn(src, tmp)`` as two tests: the short seeded hypothesis budget and the long ``fuzz`` one."""
    name = fn.__name__.removeprefix("check_")

    @settings(max_examples=FUZZ_SHORT, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(data=st.data())
    def short(tmp_path_factory, data):
        RAN[name] += 1
        fn(HypothesisSource(data), str(tmp_path_factory.getbasetemp()))

    @pytest.mark.fuzz
    @pytest.mark.timeout(0)
    def long(tmp_path_factory):
        tmp = str(tmp_path_factory.mktemp(name))
        for k in range(FUZZ_LONG):
            rng = random.Random(f"{FUZZ_SEED}:{name}:{k}")
            try:
                fn(RandomSource(rng), tmp)
            except BaseException as e:
                raise AssertionError(f"{name}: input {k} of seed {FUZZ_SEED} failed (reproduce: "
                                     f"check_{name}(RandomSource(random.Random('{FUZZ_SEED}:{name}:{k}')), tmp))") from e
            RAN[name] += 1
            if LOG and (k + 1) % 5000 == 0:
                with open(LOG, "a") as f:
                    f.write(f"{name} {k + 1}\n")  # progress of a long run, readable while it goes

    short.__name__, long.__name__ = f"test_fuzz_{name}", f"test_fuzz_{name}_long"
    return short, long


# ---------------------------------------------------------------- cells and files

def _int_text(src: Source) -> str:
    k = src.int(0, 2)
    if k == 0:
        return str(src.choice(EDGE_INTS))
    if k == 1:
        return str(src.int(-10**20, 10**20))
    return src.choice(INT_TEXTS)


def _cell(src: Source) -> str:
    k = src.int(0, 3)
    if k == 0:
        return _int_text(src)
    if k == 1:
        return src.choice(OPS + FLAGS + PATHS + NAMES)
    if k == 2:
        return ""
    return src.text(12)


def _csv_rows(src: Source, rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=src.choice(["\n", "\r\n"])).writerows(rows)
    return buf.getvalue()


def _header(src: Source) -> list[str]:
    cols = list(COLUMN_NAMES)
    action = src.choice(["keep", "keep", "keep", "drop", "dup", "extra", "shuffle", "none"])
    if action == "drop":
        cols.pop(src.int(0, len(cols) - 1))
    elif action == "dup":
        cols.append(src.choice(COLUMN_NAMES))
    elif action == "extra":
        cols.append(src.choice(["colour", "", '"', "time_us "]))
    elif action == "shuffle":
        for i in range(len(cols) - 1, 0, -1):
            j = src.int(0, i)
            cols[i], cols[j] = cols[j], cols[i]
    elif action == "none":
        cols = []
    return cols


def _mangle(src: Source, data: bytes) -> bytes:
    how = src.choice(["keep", "keep", "keep", "cut", "flip", "empty"])
    if how == "cut" and data:
        return data[:src.int(0, len(data) - 1)]
    if how == "flip" and data:
        i = src.int(0, len(data) - 1)
        return data[:i] + bytes([data[i] ^ src.int(1, 255)]) + data[i + 1:]
    if how == "empty":
        return b""
    return data


def _write(tmp: str, name: str, data: bytes) -> str:
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _reader_ok(path: str) -> None:
    """The native reader and the validator on one file: success or TraceError, never another."""
    try:
        table = read_trace(path)
    except TraceError as e:
        assert path in str(e)
    else:
        assert all(p.source == path for p in validate_table(table, path))
    problems = validate_file(path)
    try:
        ensure_valid_file(path)
    except TraceError as e:
        assert e.source == path and problems
    else:
        assert problems == []


# ---------------------------------------------------------------- native reader: CSV

def check_native_csv(src: Source, tmp: str) -> None:
    cols = _header(src)
    width = len(cols or COLUMN_NAMES)
    rows = [[_cell(src) for _ in range(width)] for _ in range(src.int(0, 8))]
    if rows and src.bool():  # a row with a wrong field count
        rows[src.int(0, len(rows) - 1)].append(_cell(src))
    text = (",".join(cols) + "\n" if cols else "") + _csv_rows(src, rows)
    raw = text.encode("utf-8", errors="surrogatepass")
    suffix = src.choice([".csv", ".csv", ".csv.gz", ".txt", ".parquet"])
    if suffix == ".csv.gz":
        raw = gzip.compress(raw, mtime=0)
    _reader_ok(_write(tmp, "fuzz" + suffix, _mangle(src, raw)))


test_fuzz_native_csv, test_fuzz_native_csv_long = fuzz_both(check_native_csv)


# ---------------------------------------------------------------- native reader: Parquet

_ARROW_TYPES = [pa.int64(), pa.int32(), pa.float64(), pa.string(), pa.bool_(), pa.large_string(),
                pa.dictionary(pa.int32(), pa.string()), pa.timestamp("us"), pa.uint64(), pa.binary()]


def _arrow_column(src: Source, typ: pa.DataType, n: int) -> pa.Array:
    def maybe(v):
        return None if src.int(0, 4) == 0 else v()

    if pa.types.is_integer(typ) or pa.types.is_timestamp(typ):
        lo, hi = ((0, 2**64 - 1) if typ == pa.uint64() else (-2**31, 2**31 - 1) if typ == pa.int32()
                  else (-INT64_MAX - 1, INT64_MAX))
        edges = [v for v in EDGE_INTS if lo <= v <= hi]
        return pa.array([maybe(lambda: src.choice(edges) if src.bool() else src.int(lo, hi)) for _ in range(n)],
                        type=typ)
    if pa.types.is_floating(typ):
        return pa.array([maybe(lambda: src.choice([1073741824.0, 2.0**62, src.float()])) for _ in range(n)], type=typ)
    if pa.types.is_boolean(typ):
        return pa.array([maybe(src.bool) for _ in range(n)], type=typ)
    vals = [maybe(lambda: _cell(src)) for _ in range(n)]
    if pa.types.is_binary(typ):
        return pa.array([None if v is None else v.encode("utf-8", "surrogatepass") for v in vals], type=typ)
    vals = [None if v is None else v.encode("utf-8", "replace").decode() for v in vals]
    if pa.types.is_dictionary(typ):
        return pa.array(vals, type=pa.string()).dictionary_encode()
    return pa.array(vals, type=typ)


def check_native_parquet(src: Source, tmp: str) -> None:
    n = src.int(0, 6)
    cols = _header(src) or ["time_us"]
    arrays = []
    for c in cols:
        want = {"time_us": pa.int64(), "offset": pa.int64(), "bytes": pa.int64()}.get(c, pa.string())
        arrays.append(_arrow_column(src, want if src.int(0, 2) else src.choice(_ARROW_TYPES), n))
    meta = src.choice([None, {b"memcg_replay.trace_version": b"1"}, {b"memcg_replay.trace_version": b"9"},
                       {b"memcg_replay.trace_version": b"\xff"}])
    table = pa.Table.from_arrays(arrays, names=cols, metadata=meta)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    raw = _mangle(src, buf.getvalue().to_pybytes())
    _reader_ok(_write(tmp, "fuzz" + src.choice([".parquet", ".pq", ".csv"]), raw))
    # the validator on the table itself, as replay hands it an imported table
    try:
        ensure_valid(table, "t")
    except TraceError:
        pass
    assert isinstance(validate_table(table, "t"), list)


test_fuzz_native_parquet, test_fuzz_native_parquet_long = fuzz_both(check_native_parquet)


# ---------------------------------------------------------------- validator: traces close to valid

def _row(src: Source) -> tuple:
    def maybe(seq):
        return None if src.int(0, 5) == 0 else src.choice(seq)

    t = src.choice([None, src.int(0, 40), src.int(0, 40), src.choice(EDGE_INTS)])
    nums = [0, 1, 4095, 4096, 1 << 20, -1, 2**62, INT64_MAX]
    return (t, maybe(["m1", "m1", "m2"]), maybe(OPS), maybe(PATHS), maybe(NAMES), maybe(NAMES), maybe(nums),
            maybe(nums), maybe(FLAGS))


def check_validator(src: Source, tmp: str) -> None:
    rows = [_row(src) for _ in range(src.int(0, 25))]
    cols = list(zip(*rows)) if rows else [[] for _ in COLUMN_NAMES]
    schema = pa.schema([f.with_nullable(True) for f in TRACE_SCHEMA])
    table = pa.table({n: pa.array(list(c), type=f.type) for n, c, f in zip(COLUMN_NAMES, cols, schema)})
    problems = validate_table(table, "v")
    assert problems == sorted(problems)
    try:
        ensure_valid(table, "v")
    except TraceError as e:
        assert problems and e.source == "v"
    else:
        assert not problems


test_fuzz_validator, test_fuzz_validator_long = fuzz_both(check_validator)


# ---------------------------------------------------------------- importers

def _import_ok(run, paths: list[str]) -> None:
    """Strict import: success (and a valid trace) or TraceError; then, if it raised, the lenient
    import: success and a valid trace (when strict succeeds, lenient has nothing to reject)."""
    for lenient in (False, True):
        try:
            table, report, _ = run(lenient)
        except TraceError as e:
            assert not lenient, f"lenient import raised {e}"
            assert e.source in paths, e
            continue
        problems = [p for p in validate_table(table, "import") if p.code != "S107"]
        assert problems == [], problems[:3]
        assert report.rows_read == report.rows_imported + report.rows_rejected + report.rows_skipped
        return


def _csv_lines(src: Source, fields: list[Sequence[str]], max_rows: int = 8) -> bytes:
    rows = [",".join(src.choice(f) for f in fields) for _ in range(src.int(0, max_rows))]
    text = "".join(r + "\n" for r in rows)
    if src.int(0, 9) == 0:
        text += src.choice(["garbage\n", "1,2\n", '"unterminated\n', ",,,,,,,,,,,,,,,,,,,,,,,\n", src.text(20)])
    return text.encode("utf-8", "surrogatepass")


def _maybe_gz(src: Source, tmp: str, name: str, raw: bytes) -> str:
    if src.bool():
        return _write(tmp, name + ".csv.gz", _mangle(src, gzip.compress(raw, mtime=0)))
    return _write(tmp, name + ".csv", raw)


_T = ["0", "600000000", "600000001", "700000000", "900000000", str(INT64_MAX), "", "-5", "1e3", "x", str(2**63),
      "1200000000", str(MAX_TIME_US + 600_000_000), str(MAX_TIME_US + 600_000_001)]
_NORM = ["0.25", "0.5", "1", "0", "", "-0.1", "1.5", "nan", "inf", "abc", "0.001", "2e-3"]
_MID = ["4155527081", "5", "6", "", "0", "-1", "x"]


def _small(*extra: str) -> list[str]:
    return ["0", "1", "2", ""] + list(extra)


def check_google2011(src: Source, tmp: str) -> None:
    types = [str(i) for i in range(10)] + ["", "-1", "12"]
    ev = _csv_lines(src, [_T, _small(), ["3418309", "7", "", "j"], _small("3"), _MID, types, ["u1", ""],
                          _small("3"), _small("9", "11"), _NORM, _NORM, _NORM, _small()])
    ev2 = _csv_lines(src, [_T, _small(), ["7"], _small(), _MID, _small("4", "5", "8"), ["u"], _small(), _small(),
                           _NORM, _NORM, _NORM, _small()])
    me = _csv_lines(src, [_T, _MID, ["0", "1", "2", "3", ""], ["p", ""], _NORM, _NORM])
    us = _csv_lines(src, [_T, _T, ["3418309", "7", ""], _small("3"), _MID] + [_NORM] * 6 + [_small()] * 9)
    parts = [_maybe_gz(src, tmp, "task_events", ev), _maybe_gz(src, tmp, "task_events-2", ev2)]
    mp = _maybe_gz(src, tmp, "machine_events", me) if src.bool() else None
    up = [_maybe_gz(src, tmp, "task_usage", us)] if src.bool() else []
    _import_ok(lambda lenient: import_google2011(parts, mp, up, lenient=lenient), parts + up + [mp])


test_fuzz_google2011, test_fuzz_google2011_long = fuzz_both(check_google2011)


_JSON_VALUES = ["0", "1", "3", "10", "11", "-1", "", "x", str(INT64_MAX), "600000000", "700000000", "4000",
                "0.25", "1.5", "-0.5", str(MAX_TIME_US + 600_000_001)]


def _json_value(src: Source) -> object:
    k = src.int(0, 6)
    if k <= 2:
        return src.choice(_JSON_VALUES)
    return [lambda: src.int(-2**64, 2**64), src.float, lambda: None, src.bool, lambda: {}, lambda: [1]][k - 1]()


def _ndjson(src: Source, keys: list[str], max_rows: int = 8) -> bytes:
    lines = []
    for _ in range(src.int(0, max_rows)):
        obj: dict = {}
        for k in keys:
            if src.int(0, 3) == 0:
                continue  # omitted = the proto default
            v = _json_value(src)
            if "." in k:
                outer, inner = k.split(".")
                if not isinstance(obj.setdefault(outer, {}), dict):
                    continue
                obj[outer][inner] = v
            else:
                obj[k] = v
        lines.append(json.dumps(obj))
    if src.int(0, 9) == 0:
        lines.append(src.choice(["{", "[1,2]", "null", '"s"', '{"time": NaN}', src.text(20)]))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def check_google2019(src: Source, tmp: str) -> None:
    ev = _write(tmp, "instance_events.json", _mangle(src, _ndjson(src, [c.name for c in INSTANCE_EVENTS])))
    me = [_write(tmp, "machine_events.json", _ndjson(src, [c.name for c in MACHINE_EVENTS]))] if src.bool() else []
    us = [_write(tmp, "instance_usage.json", _ndjson(src, [c.name for c in INSTANCE_USAGE]))] if src.bool() else []
    _import_ok(lambda lenient: import_google2019([ev], me, us, lenient=lenient), [ev] + me + us)


test_fuzz_google2019, test_fuzz_google2019_long = fuzz_both(check_google2019)


def check_alibaba2018(src: Source, tmp: str) -> None:
    ts = ["0", "1", "300", "600", "86400", "", "-3", "x", str(INT64_MAX), "1e2", str(MAX_TIME_US // 10**6 + 1)]
    mid = ["m_1", "m_2", "", "c_1"]
    pct = ["0", "1.56", "50", "100", "101", "-1", "", "nan", "x"]
    cm = _csv_lines(src, [["c_1", "c_2", "m_1", "", "x y"], mid, ts, ["app_1", "app_2", ""], ["started", ""],
                          pct, pct, pct])
    mm = _csv_lines(src, [mid, ts, ["1"], ["2"], pct, pct, ["USING", ""]])
    bi = _csv_lines(src, [["i_1", "i_2", ""], ["M1", "R2_1", ""], ["j_1", ""], ["1"], ["Terminated", "Running"],
                          ts, ts, mid, _small(), _small(), pct, pct, pct, pct])
    mu = _csv_lines(src, [mid, ts] + [pct] * 7)
    cmp, bip = [_maybe_gz(src, tmp, "container_meta", cm)], [_maybe_gz(src, tmp, "batch_instance", bi)]
    mmp, mup = _maybe_gz(src, tmp, "machine_meta", mm), [_maybe_gz(src, tmp, "machine_usage", mu)]
    params = AlibabaParams(background_fraction=src.choice([0.0, 0.1]))
    _import_ok(lambda lenient: import_alibaba2018(mmp, cmp, bip, mup, params=params, lenient=lenient),
               cmp + bip + mup + [mmp])


test_fuzz_alibaba2018, test_fuzz_alibaba2018_long = fuzz_both(check_alibaba2018)


# ---------------------------------------------------------------- replay config check

def _config(src: Source):
    from replay.config import (ExecutorCfg, FleetCfg, MachineCfg, PolicyCfg, ReplayConfig, StoreCfg,
                               TraceCfg)

    def i() -> int:
        return src.choice([0, 1, -1, 8, 600, -600, 2**31, -2**63, 2**63 - 1]) if src.bool() else src.int(-10**30, 10**30)

    def f() -> float:
        return src.choice([0.0, -1.0, 0.5, 64.0]) if src.bool() else src.float()

    def t() -> str:
        return src.choice(["", "tiny", "default", "file", "import", "synthetic", "ray", "local", "none", "all",
                           "reparent", "recharge_async_walk+swap_walk", "x", "google2011", "/nonexistent", "/",
                           "\x00", "."]) if src.int(0, 3) else src.text(8)

    def opt(fn):
        return None if src.int(0, 3) == 0 else fn()

    def knob():
        return src.choice([i, f, t, src.bool, lambda: None])()

    def dic(val, n):
        return {t(): val() for _ in range(src.int(0, n))}

    return ReplayConfig(
        seed=i(),
        policy=PolicyCfg(names=[t() for _ in range(src.int(0, 3))], knobs=dic(lambda: dic(knob, 2), 2)),
        trace=TraceCfg(source=t(), preset=t(), params=dic(knob, 3), path=opt(t), importer=opt(t)),
        machine=MachineCfg(mem_gib=opt(f), swap_gib=opt(f), cpus=i(), numa_nodes=i(), id_pool_size=i(),
                           shrinkers=i(), watermark_low=f(), watermark_high=f()),
        fleet=FleetCfg(machines=i(), sample_interval_s=i()),
        executor=ExecutorCfg(kind=t(), shards=i(), step_s=i(), checkpoint_every_s=i(), checkpoint_min_wall_s=f(), timeout_s=f(),
                             max_restarts=i(), pack_above=i(), wave_machines=i()),
        store=StoreCfg(url=opt(t), connect_timeout_s=f()),
    )


def check_config(src: Source, tmp: str) -> None:
    from replay.config import check_config as check, policy_list

    cfg = _config(src)
    try:
        check(cfg)
        policy_list(cfg)
    except ConfigError:
        pass


test_fuzz_config, test_fuzz_config_long = fuzz_both(check_config)


@pytest.fixture(scope="session", autouse=True)
def _print_counts():
    yield
    if RAN:
        print("\nfuzz inputs run per reader: " + ", ".join(f"{k} {v}" for k, v in sorted(RAN.items())))
