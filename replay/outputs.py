"""Outputs of a run: one Parquet dataset per table, partitioned by policy and seed; summaries.

In: a policy's ``Collected`` results plus the fleet's machine ids, or cached file bytes.
Out: files written atomically into the run directory::

    <run>/machines/policy=<p>/seed=<s>/part-0.parquet   per-machine timeline
    <run>/fleet/policy=<p>/seed=<s>/part-0.parquet      fleet timeline
    <run>/jobs/policy=<p>/seed=<s>/part-0.parquet       per-job table
    <run>/summaries/policy=<p>/seed=<s>/summary.json    this policy's summary
    <run>/summary.json, <run>/summary.md                every policy of the run

A table's directory holds nothing but its partitions, so ``pd.read_parquet(<run>/machines)``
and ``pyarrow.dataset.dataset(<run>/machines, partitioning="hive")`` read every policy and
seed of it (``policy`` and ``seed`` come back as columns).

Column meanings are in ``replay.columns`` (and ``docs/output-columns.md``). The tables are
streamed into their files (a wave and a row group at a time), never whole in memory; the run
store caches the bytes written (``read_files``) when they are small enough.
"""

from __future__ import annotations

import io
import json
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.metrics import POINT_COLUMNS, expand_columns
from replay.columns import COST, HOLDERS, NOT_SUMMED, PERCPU, SIDE_EFFECTS, ZOMBIES
from replay.coordinator import Collected, wide
from replay.shard import Samples, concat_samples
from replay.waves import read_spilled, read_spilled_table
from traces.io import atomic_write

T = TypeVar("T")
TABLES = ("machines", "fleet", "jobs")  #: one directory (Parquet dataset) each in a run directory
PER_POLICY_FILES = ("machines.parquet", "fleet.parquet", "jobs.parquet", "summary.json")
SUMMARIES = "summaries"  #: directory of the per-policy summaries
LAYOUT = 2  #: version of this layout (part of the cache key: cached files are written back as they were)


def partition_dir(policy: str, seed: int) -> str:
    """Relative directory of one policy and seed inside a table (hive style)."""
    return f"policy={policy}/seed={seed}"


def partition_files(policy: str, seed: int) -> dict[str, str]:
    """Per name in ``PER_POLICY_FILES``, its path relative to the run directory."""
    d = partition_dir(policy, seed)
    out = {f"{t}.parquet": f"{t}/{d}/part-0.parquet" for t in TABLES}
    out["summary.json"] = f"{SUMMARIES}/{d}/summary.json"
    return out


def _named(s: Samples, names: list[str]) -> Samples:
    # machine columns travel as global indices; outputs carry the ids
    if not s:
        return s
    ids = np.asarray(names, dtype=object)[s["machine"]]
    return {**s, "machine": ids}


def parquet_bytes(s: Samples, order: Iterable[str] | None = None) -> bytes:
    """A columnar dict as Parquet bytes (zstd; byte-identical for identical input).

    Compact sample columns (``core.metrics.points_columns``) are expanded to the regular-interval
    table chunk by chunk as they are written (``ROW_GROUP`` rows each), so the whole expanded
    table is never in memory.
    """
    return stream_parquet([s], order)


def stream_parquet(parts: Iterable[Samples | pa.Table], order: Iterable[str] | None = None, sink: Any = None) -> bytes:
    """``parquet_bytes`` of the concatenation of ``parts`` (same bytes), reading one part at a
    time: the waves of a fleet (``replay.waves``), each loaded from its file when its turn comes.
    With ``sink`` (a path or a file) the bytes go there and b"" is returned, so a cell-scale table
    is never whole in memory, not even compressed. A part may also be an Arrow table (not compact):
    the job table's waves are, read from their files (``_job_parts``), and so are written without
    a round trip through Python strings; the parts are then all tables."""
    buf = io.BytesIO() if sink is None else sink
    writer = None
    chunks = _rechunked(c for part in parts if _present(part) for c in _chunks(part))
    # the next chunk is read, expanded and made a table in a thread while this one is encoded and compressed
    # (Arrow's Parquet writer runs without the GIL): the same tables in the same order, so the same bytes
    for table in ahead(_arrow_tables(chunks, order)):
        if writer is None:
            writer = pq.ParquetWriter(buf, table.schema, **PARQUET)
        writer.write_table(table, row_group_size=ROW_GROUP)
    if writer is None:  # no part at all: an empty table
        pq.write_table(pa.table({}), buf, row_group_size=ROW_GROUP, **PARQUET)
    else:
        writer.close()
    return buf.getvalue() if sink is None else b""


#: how the tables are written. A column chunk is dictionary-encoded only while its dictionary stays within
#: 4 KiB (512 distinct int64 values), then written plain: most sample and job columns take a new value
#: at nearly every row, and Arrow's default limit (1 MiB, more than a row group's distinct values) kept
#: them dictionary-encoded, which zstd compresses worse than plain -- a 1,000-machine wave of the cell
#: (4.2M sample rows, 3.4M job rows) took 4.6 CPU-s to encode into 193 MiB, now 3.4 s into 119 MiB;
#: counters that stay at a few values keep their dictionaries. Same tables read back.
PARQUET: dict[str, Any] = {"compression": "zstd", "dictionary_pagesize_limit": 4 << 10}


def _arrow_tables(chunks: Iterable[Samples | pa.Table], order: Iterable[str] | None) -> Iterator[pa.Table]:
    # each chunk as an Arrow table of the columns of ``order`` (default: the first chunk's, less POINT_COLUMNS);
    # a table's columns in one chunk each, as a table made of arrays has them (so the same pages, the same bytes)
    keys = list(order) if order is not None else None
    for chunk in chunks:
        names = chunk.column_names if isinstance(chunk, pa.Table) else list(chunk)
        if keys is None:
            keys = [k for k in names if k not in POINT_COLUMNS]
        if isinstance(chunk, pa.Table):
            yield chunk.select([k for k in keys if k in names]).combine_chunks()
        else:
            yield pa.table({k: chunk[k] for k in keys if k in chunk})


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items``, produced by a worker thread that runs up to ``depth`` items ahead of the caller.

    The producer's exception is raised here, at the item it failed on, after the items before it.
    If the caller stops early (the generator is closed or collected), the producer stops at its next
    item. One worker thread serves the calls (a call made while it is busy gets a thread of its own): a
    thread per table gives each its own malloc arena, which kept ~70 MB more in the README's main job.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(x: object) -> bool:  # False once the consumer has gone
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((done, None))
        except BaseException as e:  # noqa: BLE001 -- handed to the consumer, raised there
            put((done, e))

    shared = _AHEAD_LOCK.acquire(blocking=False)  # the worker is free (else, rarely: a thread of its own)
    try:
        if shared:
            wait: Callable[[], object] = _ahead_worker().submit(produce).result
        else:
            t = threading.Thread(target=produce, name="outputs-ahead", daemon=True)
            t.start()
            wait = t.join
        try:
            while True:
                x, err = q.get()
                if x is done:
                    if err is not None:
                        raise err
                    return
                yield x
        finally:
            stop.set()
            wait()
    finally:
        if shared:
            _AHEAD_LOCK.release()


_AHEAD_LOCK = threading.Lock()
_AHEAD: list[ThreadPoolExecutor] = []


def _ahead_worker() -> ThreadPoolExecutor:
    # the one worker thread of ``ahead``, started at its first use
    if not _AHEAD:
        _AHEAD.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs-ahead"))
    return _AHEAD[0]


def _present(part: Samples | pa.Table) -> bool:
    # a part with columns (even no rows: they make the file's schema); a wave without any spilled none
    return part.num_columns > 0 if isinstance(part, pa.Table) else bool(part)


def _chunks(s: Samples | pa.Table) -> Iterator[Samples | pa.Table]:
    # a part's rows as they are written: expanded a chunk at a time if compact
    if not isinstance(s, pa.Table) and "_reps" in s:
        yield from _expanded_chunks(s)
    else:
        yield s


def _rechunked(chunks: Iterable[Samples | pa.Table]) -> Iterator[Samples | pa.Table]:
    """The rows of ``chunks`` (column dicts, or Arrow tables) in chunks of exactly ``ROW_GROUP`` rows (the
    last one shorter): where the parts end does not change the row groups, so neither the bytes."""
    held: list = []
    n, emitted = 0, False
    for c in chunks:
        held.append(c)
        n += _rows(c)
        while n >= ROW_GROUP:
            whole = _concat(held) if len(held) > 1 else held[0]
            yield _rows_slice(whole, 0, ROW_GROUP)
            emitted = True
            rest = _rows_slice(whole, ROW_GROUP, None)
            n -= ROW_GROUP
            held = [rest] if n else []
    if n:
        yield _concat(held)
    elif held and not emitted:
        yield held[0]  # no rows at all: the columns still make the file's schema


def _rows(c: Samples | pa.Table) -> int:
    return c.num_rows if isinstance(c, pa.Table) else len(next(iter(c.values())))


def _rows_slice(c: Samples | pa.Table, lo: int, hi: int | None) -> Samples | pa.Table:
    if isinstance(c, pa.Table):
        return c.slice(lo) if hi is None else c.slice(lo, hi - lo)
    return {k: v[lo:hi] for k, v in c.items()}


def _concat(held: list) -> Samples | pa.Table:
    # consecutive chunks as one (of one kind: every part of a table is a dict, or every one a table)
    if isinstance(held[0], pa.Table):
        return pa.concat_tables(held, promote_options="default")  # a null column (no rows) takes the others' type
    return concat_samples(held)


#: rows per Parquet row group of an expanded sample table
ROW_GROUP = 1 << 17  # 131,072 rows: an expanded chunk of ~72 columns is ~75 MB in memory


def _expanded_chunks(s: Samples):
    """Regular-interval columns of compact samples ``s``, in consecutive chunks of ``ROW_GROUP`` rows
    (a stored row standing for more samples than fit is cut between chunks)."""
    ends = np.cumsum(s["_reps"], dtype=np.int64)  # expanded row just past each stored row
    total = int(ends[-1]) if len(ends) else 0
    if total == 0:
        yield expand_columns(s)
        return
    for lo in range(0, total, ROW_GROUP):
        hi = min(lo + ROW_GROUP, total)
        a = int(np.searchsorted(ends, lo, side="right"))  # stored row holding expanded row lo
        b = int(np.searchsorted(ends, hi - 1, side="right")) + 1
        part = wide({k: v[a:b].copy() for k, v in s.items()})  # int64 again, as the outputs hold them
        skip = lo - (int(ends[a - 1]) if a else 0)  # samples of row a already written
        part["_reps"][0] -= skip
        part["time_us"][0] += skip * int(part["_interval"][0])
        part["_reps"][-1] -= int(ends[b - 1]) - hi  # samples of the last row left for the next chunk
        yield expand_columns(part)


def policy_summary(c: Collected, policy: str, seed: int, n_machines: int) -> dict[str, Any]:
    """Headline numbers of one policy: zombies (fleet and per machine), events, model totals."""
    out: dict[str, Any] = {"policy": policy, "seed": seed, "machines": n_machines, "events": c.events}
    if c.fleet:
        z = c.fleet[ZOMBIES]
        out.update(zombies_final=int(z[-1]), zombies_peak=int(z.max()))
        per = np.sort(c.last[ZOMBIES])
        for name, q in (("p50", 50), ("p99", 99), ("max", 100)):
            rank = max(0, int(np.ceil(q / 100 * len(per))) - 1)
            out[f"zombies_per_machine_{name}"] = int(per[rank])
    out.update(_totals(c.summaries))
    return out


def _totals(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    # fleet view of the model's per-machine end-of-run summaries (NOT_SUMMED says how)
    keys = [k for k in (summaries[0] if summaries else {}) if k != "machine"]
    out: dict[str, Any] = {}
    for k in keys:
        vals = [s[k] for s in summaries]
        how = NOT_SUMMED.get(k, "sum")
        if how == "max":
            out[k] = max(vals)
        elif how == "first":
            out[k] = vals[0]
        elif how == "sum":
            out[k] = sum(vals)
    return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in out.items()}


def write_policy(run_dir: str, c: Collected, names: list[str], policy: str, seed: int) -> list[str]:
    """Write one policy and seed's files under ``run_dir``, each atomically, the tables streamed
    to their files a wave (and row group) at a time; returns their paths relative to ``run_dir``
    (what ``read_files`` gives back to the run store's cache)."""
    where = partition_files(policy, seed)
    summary = policy_summary(c, policy, seed, len(names))
    tables = {"machines.parquet": lambda: (_named(t, names) for t in _tables(c, "machines")),
              "fleet.parquet": lambda: [c.fleet],
              "jobs.parquet": lambda: _job_parts(c, names)}
    for name, parts in tables.items():
        atomic_write(os.path.join(run_dir, where[name]), lambda tmp, parts=parts: stream_parquet(parts(), sink=tmp))
    write_files(run_dir, {where["summary.json"]: json.dumps(summary, indent=2, sort_keys=True).encode()})
    return [where[n] for n in PER_POLICY_FILES]


def read_files(run_dir: str, rels: list[str]) -> dict[str, bytes]:
    """The bytes of files ``write_policy`` wrote (for the run store's cache)."""
    return {rel: Path(run_dir, rel).read_bytes() for rel in rels}


def _job_parts(c: Collected, names: list[str]) -> Iterator[Samples | pa.Table]:
    """The job table of ``c`` a wave at a time: in memory as columns, or each spilled wave as the Arrow table
    read from its file, its machine indices made ids by Arrow (the same table as ``_named`` columns give,
    without making 3.4M cgroup paths Python strings and back per 1,000-machine wave)."""
    if not c.spilled:
        yield _named(c.jobs, names)
    ids = pa.array(names, pa.string()) if c.spilled else None
    for prefix in c.spilled:
        t = read_spilled_table(prefix, "jobs")
        if t.num_rows == 0:  # typed as its columns were (no strings: Arrow's null type) when no wave has rows
            yield pa.table(_named(read_spilled(prefix, "jobs"), names))
        else:
            yield t.set_column(t.column_names.index("machine"), "machine", ids.take(t.column("machine")))


def _tables(c: Collected, table: str) -> Iterator[Samples]:
    # a table of ``c``: in memory, or a wave at a time from the files ``replay.waves.spill`` wrote
    if not c.spilled:
        yield getattr(c, table)
    for prefix in c.spilled:
        yield read_spilled(prefix, table)


def write_files(run_dir: str, files: dict[str, bytes]) -> None:
    """Write each file atomically under ``run_dir``."""
    for rel, payload in sorted(files.items()):
        atomic_write(os.path.join(run_dir, rel), lambda tmp, p=payload: Path(tmp).write_bytes(p))


def read_summary(run_dir: str, policy: str, seed: int) -> dict[str, Any]:
    """A policy's summary as written by ``write_policy``."""
    return json.loads(Path(run_dir, partition_files(policy, seed)["summary.json"]).read_text())


def markdown_table(summaries: list[dict[str, Any]], keys: list[str] | None = None) -> str:
    """One row per summary, the headline columns (what the user compares across policies).

    Byte counts are shown in MiB or GiB. A value given as ``{"mean", "min", "max"}`` (seeds
    aggregated by ``replay.compare``) is shown as ``mean (min–max)``.
    """
    keys = keys or headline_keys(summaries)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for s in summaries:
        lines.append("| " + " | ".join(_cell(s.get(k), k) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def headline_keys(summaries: list[dict[str, Any]]) -> list[str]:
    """Columns of the comparison table: identity, zombies, cost, side effects, what holds zombies."""
    base = ["policy", "seed", "machines", "events", "zombies_final", "zombies_peak",
            "zombies_per_machine_p50", "zombies_per_machine_p99", COST, PERCPU, *SIDE_EFFECTS]
    present = set().union(*summaries) if summaries else set()
    return [k for k in base if k in present] + [k for k in HOLDERS if k in present]


def size(n: float) -> str:
    """Bytes for people: MiB below 1 GiB, GiB from there (1 decimal; 2 for GiB)."""
    return f"{n / 2**30:,.2f} GiB" if abs(n) >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _cell(v: Any, key: str = "") -> str:
    if isinstance(v, dict) and "mean" in v:
        mean, lo, hi = (_cell(v[k], key) for k in ("mean", "min", "max"))
        return mean if lo == hi else f"{mean} ({lo}–{hi})"
    if v is None:
        return ""
    if key.endswith("_bytes") and isinstance(v, (int, float)):
        return size(v)
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_run_summary(run_dir: str, summaries: list[dict[str, Any]], config: dict[str, Any]) -> None:
    """``summary.json`` (config + every policy) and ``summary.md`` (the comparison table)."""
    doc = {"config": config, "policies": summaries}
    text = json.dumps(doc, indent=2, sort_keys=True, default=str)
    atomic_write(os.path.join(run_dir, "summary.json"), lambda tmp: Path(tmp).write_text(text))
    md = "# memcg-replay summary\n\n" + markdown_table(summaries)
    atomic_write(os.path.join(run_dir, "summary.md"), lambda tmp: Path(tmp).write_text(md))


def short_lines(s: dict[str, Any]) -> str:
    """One policy in a line: zombies, what they cost, what the policy broke, what holds the zombies."""
    held = ", ".join(f"{k[5:]} {s[k]:,}" for k in HOLDERS if s.get(k))
    ooms = sum(s.get(k, 0) for k in ("oom_kills", "global_oom_kills"))
    return (f"{s['policy']:>28}: zombies {s.get('zombies_final', 0):,} (peak {s.get('zombies_peak', 0):,}, "
            f"p99/machine {s.get('zombies_per_machine_p99', 0):,}); cost {size(s.get(COST, 0))} "
            f"(percpu {size(s.get(PERCPU, 0))}); side effects: OOM kills {ooms:,} "
            f"({s.get('policy_oom_kills', 0):,} by the policy), charges failed {s.get('charge_failed', 0):,}, "
            f"misattributed {size(s.get('misattributed_bytes', 0))}; held by: {held or 'nothing'}")
