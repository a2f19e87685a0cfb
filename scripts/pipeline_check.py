"""Old-vs-new check of the trace pipeline's outputs: digests of every case, written or compared.

In: nothing but the repository (the Google 2011 excerpts of ``../shared/traces`` when present,
else the fixtures in ``tests/data``). Out: one line per case, ``name digest``; with ``--write FILE``
the digests are stored as JSON, with ``--compare FILE`` each is compared with the stored one and
the exit status is 1 if any differs. Run it at the commit before a speed change (``--write``)
and after it (``--compare``): a speed change must leave every digest as it was.

A case digests what a user gets: for ``generate`` the table (schema with metadata, every cell,
nulls included) and the bytes of the Parquet and CSV files ``write_trace`` makes of it; for the
Google 2011 import the table, the report and the rejected rows; for ``machine_batches`` every
batch (machine, arrays with their dtypes, name tables, rows). ``--quick`` runs the small cases
only (what ``tests/test_pipeline_digests.py`` pins).

    python scripts/pipeline_check.py --write /tmp/before.json   # on the old commit
    python scripts/pipeline_check.py --compare /tmp/before.json # on the new one
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import itertools
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SHARED = REPO.parent / "shared/traces/google-clusterdata-2011-2"
LOCAL = REPO / "tests/data/google2011"


# ---------------------------------------------------------------- digests

def _update_array(h: hashlib._Hash, arr: pa.Array) -> None:
    """Logical content of one array: validity, then values (nulls as 0 / empty), never raw buffers
    (the bytes under a null slot are unspecified)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    n = len(arr)
    h.update(np.packbits(arr.is_valid().to_numpy(zero_copy_only=False)).tobytes() if n else b"")
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        filled = pc.fill_null(arr, "")
        h.update(pc.binary_length(filled).to_numpy(zero_copy_only=False).astype("<i8").tobytes())
        h.update("".join(filled.to_pylist()).encode() if n else b"")
    else:
        h.update(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype("<i8").tobytes())


def table_digest(table: pa.Table) -> str:
    """SHA-256 of a table: schema (types and metadata) and every cell, independent of chunking."""
    h = hashlib.sha256()
    h.update(str(table.schema).encode())
    for k, v in sorted((table.schema.metadata or {}).items()):
        h.update(k + b"=" + v + b";")
    h.update(str(table.num_rows).encode())
    for col in table.columns:
        _update_array(h, col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    return h.hexdigest()


def file_digests(table: pa.Table) -> dict[str, str]:
    """SHA-256 of the Parquet and CSV files ``write_trace`` writes of ``table``."""
    from traces.io import write_trace
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for suffix in ("parquet", "csv"):
            path = Path(d) / f"t.{suffix}"
            write_trace(table, path)
            out[suffix] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def batches_digest(batches: Iterator) -> str:
    """SHA-256 of ``machine_batches`` output: per batch its machine, arrays (dtype and bytes), names, source."""
    h = hashlib.sha256()
    for machine, b in batches:
        h.update(f"{machine}|{len(b)}|{b.source}|".encode())
        for f in dataclasses.fields(b):
            if not f.compare:  # a cache Machine.apply fills (names, columns), not the batch's data
                continue
            v = getattr(b, f.name)
            if isinstance(v, np.ndarray):
                h.update(f"{f.name}:{v.dtype.str}:".encode() + np.ascontiguousarray(v).tobytes())
            elif isinstance(v, list):
                h.update(f"{f.name}:{len(v)}:".encode() + "\x00".join(v).encode())
            elif v is None:
                h.update(f"{f.name}:None".encode())
    return h.hexdigest()


# ---------------------------------------------------------------- cases

def _gen_cases(quick: bool) -> list[tuple[str, str, dict, int]]:
    """(case name, preset, overrides, seed)."""
    cases = [(f"tiny-s{s}", "tiny", {}, s) for s in (0, 1, 2, 7)]
    cases += [
        ("tiny-edge-a", "tiny", {"socket_fraction": 0.0, "access_interval_s": 0.0, "anon_free_fraction": 0.0,
                                 "swap_bytes": 0, "slab_free_s": 0.0, "socket_linger_s": 0.0}, 3),
        ("tiny-edge-b", "tiny", {"containers_per_pod_max": 1, "tasks_per_container_max": 1,
                                 "shared_files_per_pod": 0, "pinned_fraction": 1.0, "limit_fraction": 1.0}, 4),
        ("tiny-edge-c", "tiny", {"shared_files": 2, "shared_files_per_pod": 6, "tmpfs_fraction": 1.0,
                                 "tmpfs_outlive_fraction": 1.0, "log_keep_fraction": 1.0, "socket_fraction": 1.0,
                                 "anon_steps": 1, "log_bytes_median": 4096, "containers_per_pod_max": 5}, 5),
        ("tiny-edge-d", "tiny", {"pod_lifetime_median_s": 0.5, "pod_lifetime_sigma": 3.0, "duration_s": 120.5,
                                 "tmpfs_outlive_s": 0.0, "log_keep_s": 0.0, "anon_steps": 9}, 6),
        ("default-short", "default", {"duration_s": 1800.0}, 0),
    ]
    if not quick:
        cases += [("default-s1", "default", {}, 1), ("machine_day-s0", "machine_day", {}, 0)]
    return cases


def generate_cases(quick: bool) -> Iterator[tuple[str, str]]:
    """Digests of generated tables, their files, a lone machine (as replay shards make it) and their batches."""
    from traces.batches import machine_batches
    from traces.generate import PRESETS, generate, generate_machine
    for name, preset, over, seed in _gen_cases(quick):
        params = dataclasses.replace(PRESETS[preset], **over)
        table = generate(params, seed)
        yield f"generate/{name}/table", table_digest(table)
        for suffix, d in file_digests(table).items():
            yield f"generate/{name}/{suffix}", d
        yield f"generate/{name}/machine1", table_digest(generate_machine(params, seed, min(1, params.machines - 1)))
        for rows in (None, 1000, 7) if quick or table.num_rows < 200_000 else (None, 1 << 16):
            yield f"batches/{name}/max{rows}", batches_digest(machine_batches(table, f"{name}.parquet", rows))
    # a table whose machines interleave (the batcher must group them, stably)
    table = generate(PRESETS["tiny"], 9)
    perm = np.argsort(np.arange(table.num_rows) % 5, kind="stable")
    yield "batches/tiny-s9-interleaved/max500", batches_digest(machine_batches(table.take(pa.array(perm)), "x", 500))
    # machines in blocks, out of order (the last machine first), and the same as an importer's dictionary column
    codes = np.asarray(pc.dictionary_encode(table.column("machine")).combine_chunks().indices)
    backwards = table.take(pa.array(np.argsort(-codes, kind="stable")))
    yield "batches/tiny-s9-backwards/max500", batches_digest(machine_batches(backwards, "x", 500))
    enc = backwards.set_column(1, "machine", pc.dictionary_encode(backwards.column("machine")))
    enc = enc.set_column(2, "op", pc.dictionary_encode(enc.column("op")))
    yield "batches/tiny-s9-backwards-dict/max500", batches_digest(machine_batches(enc, "x", 500))


def _excerpt(kind: str, local_only: bool = False) -> str:
    shared = {"task": SHARED / "task_events/excerpt-t600-1400s/part-00000-of-00500.csv.gz",
              "machine": SHARED / "machine_events/part-00000-of-00001.csv.gz"}[kind]
    local = {"task": LOCAL / "task_events-part-00000-head6000.csv.gz",
             "machine": LOCAL / "machine_events-head3000.csv.gz"}[kind]
    return str(shared if shared.exists() and not local_only else local)


def _tiled(dst: Path, src: str, copies: int) -> str:
    # as scripts/bench_import.py: each copy shifted in time, with its own job ids
    lines = gzip.decompress(Path(src).read_bytes()).decode().splitlines()
    rows = [line.split(",") for line in lines]
    span = int(rows[-1][0]) - int(rows[0][0]) + 1
    out = []
    for c in range(copies):
        for r in rows:
            out.append(",".join([str(int(r[0]) + c * span), r[1], str(int(r[2]) + c * 10**11)] + r[3:]))
    dst.write_bytes(gzip.compress(("\n".join(out) + "\n").encode()))
    return str(dst)


def _bad_copy(dst: Path, src: str) -> str:
    # a few bad rows for the lenient path: an unknown event code, a negative request, a short row
    lines = gzip.decompress(Path(src).read_bytes()).decode().splitlines()
    for i, fix in ((5, lambda f: f[:5] + ["9"] + f[6:]), (17, lambda f: f[:10] + ["-0.5"] + f[11:]),
                   (40, lambda f: f[:4])):
        lines[i] = ",".join(fix(lines[i].split(",")))
    dst.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return str(dst)


def import_cases(quick: bool, local_only: bool = False) -> Iterator[tuple[str, str]]:
    """Digests of Google 2011 imports: table, report, rejects, and the batches of the table."""
    from traces.batches import machine_batches
    from traces.importers.google2011 import Params, import_google2011
    from traces.importers.sharing import parse_rules
    task, machine = _excerpt("task", local_only), _excerpt("machine", local_only)
    local = str(LOCAL / "task_events-part-00000-head6000.csv.gz")
    with tempfile.TemporaryDirectory() as d:
        cases: list[tuple[str, Callable]] = [
            ("local", lambda: import_google2011([local])),
            ("excerpt", lambda: import_google2011([task])),
            ("excerpt+machines", lambda: import_google2011([task], machine)),
            ("excerpt-norules", lambda: import_google2011([task], params=Params(rules=()))),
            ("excerpt-flat", lambda: import_google2011([task], params=Params(job_parent=False, machine_markers=False,
                                                                               rules=parse_rules(["job_image=1GiB:0.5"])))),
            ("two-files", lambda: import_google2011([local, task], machine)),
            ("lenient-bad", lambda: import_google2011([_bad_copy(Path(d) / "bad.csv.gz", task)], lenient=True)),
        ]
        if not quick:
            cases.append(("tiled5", lambda: import_google2011([_tiled(Path(d) / "t5.csv.gz", task, 5)], machine)))
        for name, fn in cases:
            table, report, rejects = fn()
            yield f"import/{name}/table", table_digest(table)
            text = json.dumps(report.to_dict(), sort_keys=True)  # input paths vary: only their names count
            text = text.replace(d, "<tmp>").replace(str(SHARED), "<shared>").replace(str(REPO), "<repo>")
            text = json.dumps(json.loads(text), sort_keys=True)  # files sorted by their names as shown
            yield f"import/{name}/report", hashlib.sha256(text.encode()).hexdigest()
            yield f"import/{name}/rejects", hashlib.sha256(repr([r[1:] for r in rejects.rows]).encode()).hexdigest()
            yield f"import/{name}/parquet", file_digests(table)["parquet"]
            yield f"batches/import-{name}/max4096", batches_digest(machine_batches(table, name, 4096))


def digests(quick: bool = False, local_only: bool = False, echo: bool = True) -> dict[str, str]:
    """Every case's digest, by case name (``local_only``: inputs from tests/data only, as the tests pin them)."""
    out = {}
    for name, d in itertools.chain(generate_cases(quick), import_cases(quick, local_only)):
        out[name] = d
        if echo:
            print(f"{name:48s} {d[:16]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: print digests, and write or compare them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="FILE.json")
    ap.add_argument("--compare", metavar="FILE.json")
    ap.add_argument("--quick", action="store_true", help="small cases only")
    ap.add_argument("--local", action="store_true", help="Google 2011 inputs from tests/data only")
    args = ap.parse_args(argv)
    now = digests(args.quick, args.local)
    if args.write:
        Path(args.write).write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        bad = [k for k in sorted(set(old) | set(now)) if old.get(k) != now.get(k) and (k in now or not args.quick)]
        for k in bad:
            print(f"DIFFERENT {k}: {old.get(k, 'missing')[:16]} -> {now.get(k, 'missing')[:16]}")
        print("IDENTICAL" if not bad else f"{len(bad)} case(s) differ", f"({len(now)} compared)")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
