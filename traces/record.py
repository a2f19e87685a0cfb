"""Host recorder: poll a live cgroup v2 hierarchy and turn what it saw into a native trace.

In: the root directory of a cgroup v2 mount (or any subtree of it, or a fake
tree with the same files), a machine id and a polling schedule. It only reads:
``memory.current``, ``memory.stat`` (anon, file, shmem, file_mapped),
``memory.swap.current`` and ``cgroup.stat`` (nr_dying_descendants) of every
cgroup below the root. Out: a native trace (via ``traces.importers.emit``) and
a table of the raw samples (the sidecar ``OUT.samples.parquet``, which keeps
what the trace cannot express: swap and the kernel's own dying count, the
ground truth to compare the replay with). Both anonymised when a key is given.

Mapping (documented in docs/importers.md): a cgroup seen for the first time is
``mkdir``-ed at that poll (parents first) and gets one synthetic task
``rec-<n>`` that holds its memory; a cgroup gone at a poll exits its task and
is ``rmdir``-ed then (children first); a path that comes back is a new cgroup.
Each cgroup's own memory is its figure minus its children's (memory.stat is
hierarchical): anon -> anon regions, file - shmem -> private page cache,
file_mapped -> mapped part, shmem -> a tmpfs object.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from traces.anonymize import Anonymizer, anonymize_names, anonymize_table
from traces.importers.common import NEVER, ImportReport
from traces.importers.emit import Cgroups, ProfileParams, Samples, Updates, emit

STAT_KEYS = ("anon", "file", "shmem", "file_mapped")
SAMPLE_COLUMNS = ("time_us", "machine", "cgroup", "memory_current", "anon", "file", "shmem", "file_mapped",
                  "swap_current", "nr_dying_descendants")


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return 0
    return 0 if text in ("", "max") else int(text)


def _read_kv(path: Path, keys: tuple[str, ...]) -> dict[str, int]:
    out = dict.fromkeys(keys, 0)
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return out
    for line in lines:
        k, _, v = line.partition(" ")
        if k in out:
            out[k] = int(v)
    return out


def read_cgroup(d: Path) -> dict[str, int]:
    """The recorded figures of one cgroup directory (missing files read as 0)."""
    stat = _read_kv(d / "memory.stat", STAT_KEYS)
    return {"memory_current": _read_int(d / "memory.current"), **stat,
            "swap_current": _read_int(d / "memory.swap.current"),
            "nr_dying_descendants": _read_kv(d / "cgroup.stat", ("nr_dying_descendants",))["nr_dying_descendants"]}


def scan(root: Path) -> dict[str, dict[str, int]]:
    """Every cgroup below ``root`` (not the root itself): path like '/a/b' -> figures."""
    out = {}
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            continue
        if not os.path.exists(os.path.join(dirpath, "memory.current")) and not os.path.exists(
                os.path.join(dirpath, "cgroup.procs")):
            continue  # not a cgroup directory (or removed while walking)
        out["/" + rel.replace(os.sep, "/")] = read_cgroup(Path(dirpath))
    return out


@dataclass
class _Life:
    path: str
    start_us: int
    end_us: int = NEVER
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)


class Recorder:
    """Accumulates polls of one machine's cgroup tree; ``trace`` converts them."""

    def __init__(self, root: str | os.PathLike, machine: str) -> None:
        self.root = Path(root)
        self.machine = machine
        self.lives: list[_Life] = []
        self._open: dict[str, int] = {}
        self.polls = 0

    def poll(self, t_us: int) -> int:
        """Read the tree once at simulated time ``t_us``; returns the number of cgroups seen."""
        seen = scan(self.root)
        for path in [p for p in self._open if p not in seen]:
            self.lives[self._open.pop(path)].end_us = t_us
        for path in sorted(seen):
            if path not in self._open:
                self._open[path] = len(self.lives)
                self.lives.append(_Life(path, t_us))
            self.lives[self._open[path]].samples.append((t_us, seen[path]))
        self.polls += 1
        return len(seen)

    def sample_table(self) -> pa.Table:
        """Every raw reading, one row per (poll, cgroup)."""
        rows = [(t, self.machine, life.path, *(fig[c] for c in SAMPLE_COLUMNS[3:]))
                for life in self.lives for t, fig in life.samples]
        cols = list(zip(*rows)) if rows else [[] for _ in SAMPLE_COLUMNS]
        types = [pa.int64(), pa.string(), pa.string()] + [pa.int64()] * (len(SAMPLE_COLUMNS) - 3)
        return pa.table({n: pa.array(list(c), t) for n, c, t in zip(SAMPLE_COLUMNS, cols, types)})

    def trace(self, params: ProfileParams = ProfileParams()) -> tuple[pa.Table, ImportReport]:
        """The native trace of everything polled so far."""
        report = ImportReport("record")
        report.file(str(self.root)).read = sum(len(life.samples) for life in self.lives)
        n = len(self.lives)
        cg = Cgroups(pa.array([self.machine] * n, pa.string()), pa.array([lf.path for lf in self.lives], pa.string()),
                     pa.array([f"rec-{i}" for i in range(n)], pa.string()), np.full(n, -1, np.int64),
                     np.array([lf.start_us for lf in self.lives], np.int64),
                     np.array([lf.end_us for lf in self.lives], np.int64), np.full(n, -1, np.int64),
                     np.zeros(n, np.int64), np.zeros(n, np.int64), {})
        table = emit(cg, self._own_samples(), Updates.empty(), (), params, report)
        return table, report

    def _own_samples(self) -> Samples:
        # memory.stat is hierarchical: a cgroup's own share is its figure minus its direct children's
        rows: list[tuple[int, int, int, int, int, int]] = []
        by_time: dict[int, dict[str, tuple[int, dict[str, int]]]] = {}
        for i, life in enumerate(self.lives):
            for t, fig in life.samples:
                by_time.setdefault(t, {})[life.path] = (i, fig)
        for t in sorted(by_time):
            snap = by_time[t]
            own = {p: dict(fig) for p, (_, fig) in snap.items()}
            for p, (_, fig) in snap.items():
                parent = p.rsplit("/", 1)[0]
                if parent in own:
                    for k in STAT_KEYS:
                        own[parent][k] -= fig[k]
            for p, (i, _) in snap.items():
                f = {k: max(v, 0) for k, v in own[p].items()}
                cache = max(f["file"] - f["shmem"], 0)
                rows.append((i, t, f["anon"], cache, min(f["file_mapped"], cache), f["shmem"]))
        if not rows:
            return Samples.empty()
        a = np.array(rows, dtype=np.int64)
        return Samples(*(a[:, j] for j in range(6)))


def root_problem(root: str | os.PathLike) -> str | None:
    """Why ``root`` cannot be recorded (None: it can).

    It must be a directory of a cgroup v2 hierarchy with the memory controller: every cgroup v2
    directory, the root included, has ``cgroup.controllers``, and ``memory`` must be listed in
    it. A cgroup v1 mount (``memory/`` controller directories, ``memory.usage_in_bytes``) or a
    hybrid one (v1 controllers, v2 under ``unified/``) has no such file at the top.
    """
    d = Path(root)
    if not d.exists():
        return f"--root {root}: no such directory"
    if not d.is_dir():
        return f"--root {root}: not a directory"
    controllers = d / "cgroup.controllers"
    if controllers.exists():
        try:
            names = controllers.read_text().split()
        except OSError as e:
            return f"--root {root}: cannot read cgroup.controllers ({e})"
        if "memory" in names:
            return None
        return f"--root {root}: the memory controller is not enabled here (cgroup.controllers: {' '.join(names) or 'empty'})"
    if (d / "unified" / "cgroup.controllers").exists():
        return (f"--root {root}: a hybrid cgroup v1/v2 host; memory is accounted by cgroup v1 here, which "
                "the recorder does not read (it needs a cgroup v2 hierarchy with the memory controller)")
    if (d / "memory").is_dir() or (d / "memory.usage_in_bytes").exists() or (d / "tasks").exists():
        return f"--root {root}: cgroup v1; the recorder reads cgroup v2 only (memory.current, memory.stat)"
    return f"--root {root}: not a cgroup v2 directory (no cgroup.controllers)"


def record(root: str | os.PathLike, machine: str, interval_s: float, count: int | None = None,
           duration_s: float | None = None, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           on_poll: Callable[[int, int], None] | None = None) -> Recorder:
    """Poll every ``interval_s`` until ``count`` polls or ``duration_s`` seconds (or Ctrl-C)."""
    rec = Recorder(root, machine)
    t0 = clock()
    try:
        while True:
            now = clock() - t0
            seen = rec.poll(int(now * 1_000_000))
            if on_poll:
                on_poll(rec.polls, seen)
            if (count is not None and rec.polls >= count) or (duration_s is not None and now >= duration_s):
                break
            sleep(max(interval_s - (clock() - t0 - now), 0.0))
    except KeyboardInterrupt:
        pass  # stop recording; what was polled is kept
    return rec


def anonymized(rec: Recorder, table: pa.Table, anon: Anonymizer | None) -> tuple[pa.Table, pa.Table]:
    """The trace and the sample sidecar, anonymised with ``anon`` when given."""
    samples = rec.sample_table()
    if anon is None:
        return table, samples
    samples = samples.set_column(1, "machine", pa.array(anonymize_names(samples.column("machine").to_pylist(),
                                                                         anon, "machine"), pa.string()))
    samples = samples.set_column(2, "cgroup", pa.array(anonymize_names(samples.column("cgroup").to_pylist(),
                                                                        anon, "path"), pa.string()))
    return anonymize_table(table, anon), samples
