"""Static validation of a native trace: every problem, with a rule code and its place.

In: an Arrow table (ideally already ``traces.io.conform``-ed) or a trace file.
Out: a sorted list of ``traces.problems.Problem`` (empty = valid). Nothing is
raised for bad content; ``ensure_valid`` turns a non-empty report into
``TraceInvalid`` for callers (replay) that must refuse the trace, and
``ensure_valid_file`` does the same for a file up front: whatever is wrong with
it (unreadable, empty, no events, a bad cell, a time past the horizon), the one
exception is ``TraceInvalid``, whose first problem names file, row and field.

Two passes:
1. column checks, vectorised over the whole table (types, nulls, unknown ops
   and flags, required fields, negative numbers, time order per machine);
2. a replay of each machine's namespace (cgroups, tasks, objects, pins) in
   row order, over pre-extracted integer columns. It tracks only what the
   trace itself promises (existence, ownership), never memory: whether a
   charge succeeds is the model's business, not a trace error.

A row with a structural problem (unknown op, missing required field, bad
path, unparsable cell) is reported once and then ignored by pass 2, so one
bad cell does not cascade into dozens of follow-up reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.ops import FLAG_TOKENS, OP_BY_NAME, OP_SPECS, Flag, Op, OpSpec
from traces.io import conform, open_raw, strings_are_utf8, version_problems
from traces.problems import Problem, raise_problems
from traces.schema import MAX_TIME_US, TRACE_SCHEMA, YEAR_US

#: Every rule: code -> what it checks. Codes are stable; never renumber, only add.
RULES: dict[str, str] = {
    "S101": "a schema column is missing",
    "S102": "a column that is not in the schema",
    "S103": "a cell (or a whole column) of the wrong type, e.g. text in an integer column",
    "S104": "null in a column that never allows null (`time_us`, `machine`, `op`)",
    "S105": "the file declares a trace schema version this code does not read",
    "S106": "the file cannot be read as a trace: missing, empty, truncated, corrupt, or not CSV/Parquet "
            "(by its suffix: `.parquet`, `.pq`, `.csv`, `.csv.gz`)",
    "S107": "the trace has no events (e.g. a CSV file with only its header line)",
    "S108": "a schema column appears more than once",
    "E201": "unknown op",
    "E202": "unknown flag token",
    "E203": "flag not allowed for the op",
    "E204": "a column the op requires is null",
    "E205": "negative `bytes`",
    "E206": "negative `offset`",
    "E207": "negative `time_us`",
    "E208": "time goes backwards within a machine",
    "E209": "`set_limit` without a `max` or `high` flag",
    "E210": "`kmem_alloc` without exactly one of the `slab`/`page` flags",
    "E211": f"`time_us` after {MAX_TIME_US} µs ({MAX_TIME_US // YEAR_US} years), the longest trace the "
            "replay handles (Google's 2^63-1 \"after the window\" times are not events)",
    "C301": "malformed cgroup path (must be `/` or `/a/b` without empty, `.` or `..` parts)",
    "C302": "`mkdir` of a cgroup that already exists (online)",
    "C303": "`mkdir` under a parent that does not exist or was removed",
    "C304": "`rmdir` of a cgroup that was never created or was already removed",
    "C305": "`rmdir` of the root cgroup",
    "C306": "`rmdir` of a cgroup that still has live tasks (EBUSY)",
    "C307": "`rmdir` of a cgroup that still has online children (EBUSY; dying children do not block)",
    "C308": "`task_start`/`task_move` into a cgroup that is not online",
    "C309": "`set_limit` on a cgroup that is not online, or on the root (which has no limit files)",
    "C310": "`reclaim` on a cgroup that is not online",
    "K401": "task started twice (task ids are never reused on a machine)",
    "K402": "op by a task that was never started",
    "K403": "op by a task that already exited",
    "O501": "object created twice while it still exists (`file_create`, `kmem_alloc`)",
    "O502": "object used but never created",
    "O503": "object used after it was deleted (or after its owning task exited)",
    "O504": "anon region used by a task other than the one that created it",
    "O505": "object used as the wrong kind (e.g. `file_read` of an anon region)",
    "O506": "`unpin` without a matching `pin` (same task, object, offset, bytes, mlock flag)",
    "O507": "`kmem_free` of a kmem object that was never allocated or is already freed",
    "O508": "`sock_close` of a socket that was never opened or is already closed",
    "M601": "`swap_off` while no swap is on",
    "M602": "`memory` smaller than one 4 KiB page",
}

_NAME_COLS = ("cgroup", "task", "object")
#: report(mask, code, field, message_of_row, exclude_from_pass_2)
_Report = Callable[[np.ndarray, str, str, Callable[[int], str], bool], None]
_FILE, _SHMEM, _ANON, _KMEM, _SOCK = range(5)
_KIND_NAMES = ("file", "shmem file", "anon region", "kmem object", "socket")


def render_rules_markdown() -> str:
    """The rule table as Markdown (appended to docs/trace-schema.md)."""
    lines = ["## Validation rules", "",
             "`python -m traces validate FILE` reports each problem as `FILE:ROW: CODE field: message` "
             "(ROW is the 1-based data row; 0 = the file or a whole column).", "",
             "| code | problem |", "|---|---|"]
    lines += [f"| `{code}` | {text} |" for code, text in RULES.items()]
    return "\n".join(lines) + "\n"


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """Every problem of the trace file at ``path`` (a file that cannot be read is one S106 problem)."""
    raw, problems = open_raw(path)
    if raw is None:
        return problems
    return validate_table(raw, str(path))


def ensure_valid(table: pa.Table, source: str = "") -> pa.Table:
    """The conformed table if it is valid, else ``TraceInvalid`` carrying every problem."""
    table, problems = conform(table, source)
    problems += validate_table(table, source)
    raise_problems(sorted(set(problems)))
    return table


def ensure_valid_file(path: str | os.PathLike) -> pa.Table:
    """Read and check the trace file at ``path`` up front: its table conformed to the schema if
    the file is a valid trace, else ``TraceInvalid`` (a ``core.errors.TraceError``) whose first
    problem names the file, row and field, and which carries every problem. Never another
    exception for bad content: a missing, empty, truncated or garbage file is S106."""
    raw, problems = open_raw(path)
    raise_problems(problems)
    return ensure_valid(raw, str(path))


def validate_table(table: pa.Table, source: str = "") -> list[Problem]:
    """Every problem of ``table`` (conformed to the schema first if needed), sorted by row."""
    problems: list[Problem] = []
    if (not table.schema.equals(TRACE_SCHEMA, check_metadata=False) or version_problems(table.schema)
            or not strings_are_utf8(table)):
        table, problems = conform(table, source)
        if any(p.code in ("S101", "S108") and p.field in ("time_us", "machine", "op") for p in problems):
            return sorted(problems)  # nothing row-level can be checked without these
    if table.num_rows == 0:
        return sorted(problems + [Problem(source, 0, "S107", "", "the trace has no events")])
    cols = _Extract(table)
    static, bad = _static_checks(cols, source, _nulled_cells(problems, table.num_rows))
    problems += static
    problems += _namespace_checks(cols, ~bad, source)
    return sorted(problems)


def _nulled_cells(problems: list[Problem], n: int) -> dict[str, np.ndarray]:
    """Per column, the cells ``conform`` set to null because they did not parse."""
    out = {name: np.zeros(n, dtype=bool) for name in TRACE_SCHEMA.names}
    for p in problems:
        if p.code == "S103" and p.row > 0:
            out[p.field][p.row - 1] = True
    return out


class _Extract:
    """The table as numpy columns; names as global dictionary ids (-1 = null)."""

    def __init__(self, table: pa.Table) -> None:
        self.n = table.num_rows
        self.time = _ints(table, "time_us")
        self.time_null = _nulls(table, "time_us")
        self.offset, self.offset_null = _ints(table, "offset"), _nulls(table, "offset")
        self.nbytes, self.nbytes_null = _ints(table, "bytes"), _nulls(table, "bytes")
        self.machine, self.machines = _encode(table, "machine")
        op_idx, op_names = _encode(table, "op")
        self.op_idx, self.op_names = op_idx, op_names
        lut = np.array([int(OP_BY_NAME.get(s, -1)) for s in op_names] + [-1], dtype=np.int16)
        self.op = lut[op_idx]  # op_idx -1 (null) picks the trailing -1
        self.op_null = op_idx < 0
        self.flag_idx, self.flag_names = _encode(table, "flags")
        self.names = {c: _encode(table, c) for c in _NAME_COLS}
        self.flag_bits = np.zeros(self.n, dtype=np.int64)  # filled by pass 1

    def op_text(self, i: int) -> str:
        return Op(int(self.op[i])).name.lower()


def _ints(table: pa.Table, name: str) -> np.ndarray:
    col = pc.fill_null(table.column(name), 0).combine_chunks()
    return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _nulls(table: pa.Table, name: str) -> np.ndarray:
    return pc.is_null(table.column(name)).combine_chunks().to_numpy(zero_copy_only=False)


def _encode(table: pa.Table, name: str) -> tuple[np.ndarray, list[str]]:
    enc = pc.dictionary_encode(table.column(name)).combine_chunks()
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return idx, enc.dictionary.to_pylist()


# ---------------------------------------------------------------- pass 1: columns


class _Reporter:
    """Collects pass-1 problems and the rows that pass 2 must skip."""

    def __init__(self, n: int, source: str) -> None:
        self.out: list[Problem] = []
        self.bad = np.zeros(n, dtype=bool)
        self.source = source

    def __call__(self, mask: np.ndarray, code: str, field: str, msg: Callable[[int], str],
                 exclude: bool) -> None:
        rows = np.flatnonzero(mask)
        self.out.extend(Problem(self.source, int(i) + 1, code, field, msg(int(i))) for i in rows.tolist())
        if exclude:
            self.bad[rows] = True


def _static_checks(c: _Extract, source: str, nulled: dict[str, np.ndarray]) -> tuple[list[Problem], np.ndarray]:
    """Vectorised row checks. Returns the problems and the rows pass 2 must skip.

    ``nulled`` marks cells already reported as unparsable: their null is not reported again.
    """
    report = _Reporter(c.n, source)
    known = c.op >= 0
    opk = np.where(known, c.op, 0)
    # a null time does not stop the namespace replay; a null machine or op does
    for name, nulls in (("time_us", c.time_null), ("machine", c.machine < 0), ("op", c.op_null)):
        report(nulls & ~nulled[name], "S104", name, lambda i: "null is not allowed here", name != "time_us")
    report(~known & ~c.op_null, "E201", "op", lambda i: f"unknown op {c.op_names[c.op_idx[i]]!r}", True)
    c.flag_bits = _flag_checks(c, known, opk, report)
    _required_checks(c, known, opk, report, nulled)
    _number_checks(c, report)
    _path_checks(c, known, opk, report)
    return report.out, report.bad


def _flag_checks(c: _Extract, known: np.ndarray, opk: np.ndarray, report: _Report) -> np.ndarray:
    """E202, E203, E209, E210. Returns each row's known flag bits."""
    flag_bits, flag_bad = _flag_tables(c.flag_names)
    fidx = np.where(c.flag_idx >= 0, c.flag_idx, len(flag_bits))  # null flags -> the appended entry
    bits = np.append(flag_bits, 0)[fidx]
    report(np.append(flag_bad, "")[fidx] != "", "E202", "flags", lambda i: flag_bad[c.flag_idx[i]], False)
    allowed = _op_lut(lambda s: sum(int(FLAG_TOKENS[f]) for f in s.flags))
    report(known & ((bits & ~allowed[opk]) != 0), "E203", "flags",
           lambda i: _flag_not_allowed(c.op_text(i), int(bits[i])), False)
    limit_bits = int(Flag.MAX | Flag.HIGH)
    report((c.op == Op.SET_LIMIT) & ((bits & limit_bits) == 0), "E209", "flags",
           lambda i: "set_limit needs flag `max` or `high`", False)
    kmem_kind = bits & int(Flag.SLAB | Flag.PAGE)
    report((c.op == Op.KMEM_ALLOC) & ((kmem_kind == 0) | (kmem_kind == int(Flag.SLAB | Flag.PAGE))),
           "E210", "flags", lambda i: "kmem_alloc needs exactly one of `slab`, `page`", False)
    return bits


def _number_checks(c: _Extract, report: _Report) -> None:
    """E205-E208: negative numbers and time going backwards within a machine."""
    report(~c.nbytes_null & (c.nbytes < 0), "E205", "bytes", lambda i: f"negative size {c.nbytes[i]}", False)
    report(~c.offset_null & (c.offset < 0), "E206", "offset", lambda i: f"negative offset {c.offset[i]}", False)
    report(~c.time_null & (c.time < 0), "E207", "time_us", lambda i: f"negative time {c.time[i]}", False)
    report(~c.time_null & (c.time > MAX_TIME_US), "E211", "time_us",
           lambda i: f"time {c.time[i]} is after {MAX_TIME_US} ({MAX_TIME_US // YEAR_US} years), the "
                     "longest trace the replay handles", False)
    back, prev = _time_backwards(c)
    report(back, "E208", "time_us", lambda i: f"time {c.time[i]} is before {prev[i]}, the time of the "
           f"previous row of machine {c.machines[c.machine[i]]!r}", False)


def _flag_tables(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct flags string: its known bits, and an error text ('' if all tokens known)."""
    bits = np.zeros(len(names), dtype=np.int64)
    errs = np.full(len(names), "", dtype=object)
    for k, text in enumerate(names):
        unknown = []
        for tok in (t.strip().lower() for t in text.split("|")):
            if tok in FLAG_TOKENS:
                bits[k] |= int(FLAG_TOKENS[tok])
            elif tok:
                unknown.append(tok)
        if unknown:
            errs[k] = f"unknown flag {', '.join(map(repr, unknown))} (known: {', '.join(FLAG_TOKENS)})"
    return bits, errs


def _op_lut(fn: Callable[[OpSpec], int]) -> np.ndarray:
    return np.array([fn(OP_SPECS[op]) for op in Op], dtype=np.int64)


def _flag_not_allowed(op: str, bits: int) -> str:
    allowed = OP_SPECS[OP_BY_NAME[op]].flags
    extra = [name for name, f in FLAG_TOKENS.items() if bits & int(f) and name not in allowed]
    return f"flag {', '.join(map(repr, extra))} not allowed for {op} (allowed: {', '.join(allowed) or 'none'})"


def _required_checks(c: _Extract, known: np.ndarray, opk: np.ndarray, report: _Report,
                     nulled: dict[str, np.ndarray]) -> None:
    nulls = {"cgroup": c.names["cgroup"][0] < 0, "task": c.names["task"][0] < 0,
             "object": c.names["object"][0] < 0, "bytes": c.nbytes_null, "offset": c.offset_null}
    for col, isnull in nulls.items():
        needs = _op_lut(lambda s: col in s.required).astype(bool)
        report(known & needs[opk] & isnull & ~nulled[col], "E204", col,
               lambda i, col=col: f"{c.op_text(i)} requires `{col}`", True)


def _time_backwards(c: _Extract) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose time is earlier than the previous row of the same machine, and that time."""
    out = np.zeros(c.n, dtype=bool)
    prev = np.zeros(c.n, dtype=np.int64)
    if c.n < 2:
        return out, prev
    order = np.argsort(c.machine, kind="stable")
    m, t = c.machine[order], c.time[order]
    valid = ~c.time_null[order] & (m >= 0)  # a row without a machine (S104) has no predecessor
    back = (m[1:] == m[:-1]) & (t[1:] < t[:-1]) & valid[1:] & valid[:-1]
    out[order[1:][back]] = True
    prev[order[1:]] = t[:-1]
    return out, prev


def _path_checks(c: _Extract, known: np.ndarray, opk: np.ndarray, report: _Report) -> None:
    idx, names = c.names["cgroup"]
    ok = np.array([_path_ok(p) for p in names] + [True], dtype=bool)
    uses = _op_lut(lambda s: "cgroup" in s.required).astype(bool)
    report(known & uses[opk] & ~ok[np.where(idx >= 0, idx, len(names))], "C301", "cgroup",
           lambda i: f"malformed cgroup path {names[idx[i]]!r}", True)


def _path_ok(path: str) -> bool:
    if path == "/":
        return True
    parts = path.split("/")
    return path.startswith("/") and all(p not in ("", ".", "..") for p in parts[1:])


def cgroup_parent(path: str) -> str:
    """'/a/b' -> '/a'; '/a' -> '/'."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


# ---------------------------------------------------------------- pass 2: namespaces


class _Rows:
    """Pass-2 inputs as Python lists (fast to index in a loop) plus the name tables."""

    def __init__(self, c: _Extract, source: str) -> None:
        self.source = source
        self.op = c.op.tolist()
        self.cg, self.cg_names = c.names["cgroup"][0].tolist(), c.names["cgroup"][1]
        self.task, self.task_names = c.names["task"][0].tolist(), c.names["task"][1]
        self.obj, self.obj_names = c.names["object"][0].tolist(), c.names["object"][1]
        self.offset = np.where(c.offset_null, 0, c.offset).tolist()
        self.nbytes = np.where(c.nbytes_null, -1, c.nbytes).tolist()
        self.flags = c.flag_bits.tolist()
        self.root = self.cg_names.index("/") if "/" in self.cg_names else len(self.cg_names)
        ids = {p: k for k, p in enumerate(self.cg_names)}
        # a parent path that never appears in the trace can never be online: -2
        self.parent = [self.root if cgroup_parent(p) == "/" else ids.get(cgroup_parent(p), -2)
                       for p in self.cg_names]

    def cg_name(self, k: int) -> str:
        return "/" if k == self.root else self.cg_names[k]


def _namespace_checks(c: _Extract, ok: np.ndarray, source: str) -> list[Problem]:
    """Replay each machine's namespace over the rows without structural problems."""
    out: list[Problem] = []
    rows = np.flatnonzero(ok)
    rows = rows[np.argsort(c.machine[rows], kind="stable")]
    if rows.size == 0:
        return out
    ctx = _Rows(c, source)
    cuts = np.flatnonzero(np.diff(c.machine[rows])) + 1
    for seg in np.split(rows, cuts):
        ns = _Namespace(ctx, out)
        handlers, op = ns.handlers, ctx.op
        for i in seg.tolist():
            handlers[op[i]](i)
    return out


class _Namespace:
    """What one machine's trace has created so far, and the rules that use it."""

    def __init__(self, ctx: _Rows, out: list[Problem]) -> None:
        self.x, self.out = ctx, out
        self.online: set[int] = {ctx.root}
        self.removed: set[int] = set()
        self.children: dict[int, int] = {}
        self.ntasks: dict[int, int] = {}
        self.task_cg: dict[int, int] = {}  # live task -> its cgroup
        self.exited: set[int] = set()
        self.objs: dict[int, int] = {}  # live object -> kind
        self.dead: set[int] = set()  # objects that existed and are gone
        self.owner: dict[int, int] = {}  # anon region / kmem page object -> task
        self.owned: dict[int, set[int]] = {}  # task -> its anon regions and kmem page objects
        self.pins: dict[tuple, int] = {}
        self.swap = False
        handlers = {
            Op.MKDIR: self.mkdir, Op.RMDIR: self.rmdir, Op.SET_LIMIT: self.set_limit,
            Op.TASK_START: self.task_start, Op.TASK_EXIT: self.task_exit, Op.TASK_MOVE: self.task_move,
            Op.ANON_ALLOC: self.anon_alloc, Op.ANON_FREE: self.anon_free,
            Op.FILE_CREATE: self.file_create, Op.FILE_DELETE: self.file_delete,
            Op.FILE_READ: self.file_use, Op.FILE_WRITE: self.file_use, Op.FILE_MAP: self.file_use,
            Op.FILE_UNMAP: self.file_unmap, Op.PIN: self.pin, Op.UNPIN: self.unpin,
            Op.KMEM_ALLOC: self.kmem_alloc, Op.KMEM_FREE: self.kmem_free, Op.RECLAIM: self.reclaim,
            Op.SWAP_ON: self.swap_on, Op.SWAP_OFF: self.swap_off, Op.MEMORY: self.memory,
            Op.SOCK_OPEN: self.sock_open, Op.SOCK_CLOSE: self.sock_close,
        }
        self.handlers = [handlers.get(op, self.nothing) for op in Op]

    def report(self, i: int, code: str, field: str, msg: str) -> None:
        self.out.append(Problem(self.x.source, i + 1, code, field, msg))

    def nothing(self, i: int) -> None:
        """drop_caches, sync: no namespace effect."""

    # ------------------------------------------------------------ cgroups

    def mkdir(self, i: int) -> None:
        k = self.x.cg[i]
        name = self.x.cg_name(k)
        parent = self.x.parent[k] if k != self.x.root else -1
        if k in self.online:
            self.report(i, "C302", "cgroup", f"mkdir {name!r}: cgroup already exists")
        elif parent not in self.online:
            why = "was removed" if parent in self.removed else "does not exist"
            self.report(i, "C303", "cgroup", f"mkdir {name!r}: parent {cgroup_parent(name)!r} {why}")
        else:
            self.online.add(k)
            self.removed.discard(k)
            self.children[parent] = self.children.get(parent, 0) + 1

    def rmdir(self, i: int) -> None:
        k = self.x.cg[i]
        name = self.x.cg_name(k)
        if k == self.x.root:
            self.report(i, "C305", "cgroup", "the root cgroup cannot be removed")
        elif k not in self.online:
            why = "was already removed" if k in self.removed else "was never created"
            self.report(i, "C304", "cgroup", f"rmdir {name!r}: cgroup {why}")
        else:
            self._rmdir_online(i, k, name)

    def _rmdir_online(self, i: int, k: int, name: str) -> None:
        busy = False
        if self.ntasks.get(k, 0):
            busy = True
            self.report(i, "C306", "cgroup", f"rmdir {name!r}: {self.ntasks[k]} live task(s) inside")
        if self.children.get(k, 0):
            busy = True
            self.report(i, "C307", "cgroup", f"rmdir {name!r}: {self.children[k]} online child cgroup(s)")
        if not busy:  # EBUSY leaves the cgroup online, as the kernel does
            self.online.discard(k)
            self.removed.add(k)
            parent = self.x.parent[k]
            self.children[parent] -= 1

    def _need_online(self, i: int, code: str, what: str) -> bool:
        k = self.x.cg[i]
        if k in self.online:
            return True
        why = "was removed" if k in self.removed else "does not exist"
        self.report(i, code, "cgroup", f"{what} {self.x.cg_name(k)!r}: cgroup {why}")
        return False

    def set_limit(self, i: int) -> None:
        if self.x.cg[i] == self.x.root:
            self.report(i, "C309", "cgroup", "the root cgroup has no memory.max/memory.high")
        else:
            self._need_online(i, "C309", "set_limit")

    def reclaim(self, i: int) -> None:
        self._need_online(i, "C310", "reclaim")

    # ------------------------------------------------------------ tasks

    def _live(self, i: int) -> bool:
        t = self.x.task[i]
        if t in self.task_cg:
            return True
        name = self.x.task_names[t]
        if t in self.exited:
            self.report(i, "K403", "task", f"task {name!r} already exited")
        else:
            self.report(i, "K402", "task", f"task {name!r} was never started")
        return False

    def task_start(self, i: int) -> None:
        t = self.x.task[i]
        if t in self.task_cg or t in self.exited:
            self.report(i, "K401", "task", f"task {self.x.task_names[t]!r} started twice")
        elif self._need_online(i, "C308", "task_start into"):
            k = self.x.cg[i]
            self.task_cg[t] = k
            self.ntasks[k] = self.ntasks.get(k, 0) + 1

    def task_move(self, i: int) -> None:
        if self._live(i) and self._need_online(i, "C308", "task_move into"):
            t, k = self.x.task[i], self.x.cg[i]
            self.ntasks[self.task_cg[t]] -= 1
            self.task_cg[t] = k
            self.ntasks[k] = self.ntasks.get(k, 0) + 1

    def task_exit(self, i: int) -> None:
        if not self._live(i):
            return
        t = self.x.task[i]
        self.ntasks[self.task_cg.pop(t)] -= 1
        self.exited.add(t)
        for o in self.owned.pop(t, ()):  # anon regions and kmem pages die with the task
            self._remove(o)

    # ------------------------------------------------------------ objects

    def _remove(self, o: int) -> None:
        self.objs.pop(o, None)
        self.owner.pop(o, None)
        self.dead.add(o)

    def _create(self, o: int, kind: int, owner: int = -1) -> None:
        self.objs[o] = kind
        self.dead.discard(o)
        if owner >= 0:
            self.owner[o] = owner
            self.owned.setdefault(owner, set()).add(o)

    def _use(self, i: int, kinds: tuple[int, ...], what: str) -> bool:
        """Check that row i's object is live, of one of ``kinds``, and (anon) owned by the task."""
        o = self.x.obj[i]
        kind = self.objs.get(o)
        name = self.x.obj_names[o]
        if kind is None:
            code, why = ("O503", "was deleted") if o in self.dead else ("O502", "was never created")
            self.report(i, code, "object", f"{what} {name!r}: object {why}")
            return False
        if kind not in kinds:
            self.report(i, "O505", "object", f"{what} {name!r}: object is a {_KIND_NAMES[kind]}")
            return False
        if kind == _ANON and self.owner[o] != self.x.task[i]:
            owner = self.x.task_names[self.owner[o]]
            self.report(i, "O504", "object", f"{what} {name!r}: anon region belongs to task {owner!r}")
            return False
        return True

    def anon_alloc(self, i: int) -> None:
        if not self._live(i):
            return
        o = self.x.obj[i]
        if o in self.objs:
            self._use(i, (_ANON,), "anon_alloc")
        else:
            self._create(o, _ANON, self.x.task[i])

    def anon_free(self, i: int) -> None:
        if not (self._live(i) and self._use(i, (_ANON,), "anon_free")):
            return
        if self.x.nbytes[i] < 0 and self.x.offset[i] == 0:  # whole region: munmap of the VMA
            o = self.x.obj[i]
            self.owned[self.x.task[i]].discard(o)
            self._remove(o)

    def file_create(self, i: int) -> None:
        o = self.x.obj[i]
        if o in self.objs:
            self.report(i, "O501", "object", f"file_create {self.x.obj_names[o]!r}: object already exists")
        else:
            self._create(o, _SHMEM if self.x.flags[i] & Flag.SHMEM else _FILE)

    def file_use(self, i: int) -> None:
        if self._live(i):
            self._use(i, (_FILE, _SHMEM), Op(self.x.op[i]).name.lower())

    def file_unmap(self, i: int) -> None:
        # a mapping outlives unlink, so unmapping a deleted file is fine
        if self._live(i) and self.x.obj[i] not in self.dead:
            self._use(i, (_FILE, _SHMEM), "file_unmap")

    def file_delete(self, i: int) -> None:
        if self._use(i, (_FILE, _SHMEM), "file_delete"):
            self._remove(self.x.obj[i])

    def _pin_key(self, i: int) -> tuple:
        x = self.x
        return (x.task[i], x.obj[i], x.offset[i], x.nbytes[i], x.flags[i] & Flag.MLOCK)

    def pin(self, i: int) -> None:
        if self._live(i) and self._use(i, (_FILE, _SHMEM, _ANON), "pin"):
            key = self._pin_key(i)
            self.pins[key] = self.pins.get(key, 0) + 1

    def unpin(self, i: int) -> None:
        if not self._live(i):
            return
        key = self._pin_key(i)
        if self.pins.get(key, 0) > 0:
            self.pins[key] -= 1
        else:
            self.report(i, "O506", "object", f"unpin {self.x.obj_names[self.x.obj[i]]!r}: no matching pin "
                                             "(same task, offset, bytes and mlock flag)")

    def kmem_alloc(self, i: int) -> None:
        if not self._live(i):
            return
        o = self.x.obj[i]
        if o in self.objs:
            self.report(i, "O501", "object", f"kmem_alloc {self.x.obj_names[o]!r}: object already exists")
            return
        # page objects (stacks, page tables) die with the task; slab objects outlive it
        self._create(o, _KMEM, self.x.task[i] if self.x.flags[i] & Flag.PAGE else -1)

    def kmem_free(self, i: int) -> None:
        o = self.x.obj[i]
        kind = self.objs.get(o)
        if kind == _KMEM:
            owner = self.owner.get(o)
            if owner is not None:
                self.owned[owner].discard(o)
            self._remove(o)
        elif kind is not None:
            self.report(i, "O505", "object", f"kmem_free {self.x.obj_names[o]!r}: object is a "
                                             f"{_KIND_NAMES[kind]}")
        else:
            why = "already freed" if o in self.dead else "never allocated"
            self.report(i, "O507", "object", f"kmem_free {self.x.obj_names[o]!r}: kmem object {why}")

    def sock_open(self, i: int) -> None:
        if not self._live(i):
            return
        o = self.x.obj[i]
        if o in self.objs:
            self.report(i, "O501", "object", f"sock_open {self.x.obj_names[o]!r}: object already exists")
            return
        self._create(o, _SOCK)  # no owner: a socket outlives its opener until it is closed

    def sock_close(self, i: int) -> None:
        o = self.x.obj[i]
        kind = self.objs.get(o)
        if kind == _SOCK:
            self._remove(o)
        elif kind is not None:
            self.report(i, "O505", "object", f"sock_close {self.x.obj_names[o]!r}: object is a "
                                             f"{_KIND_NAMES[kind]}")
        else:
            why = "already closed" if o in self.dead else "never opened"
            self.report(i, "O508", "object", f"sock_close {self.x.obj_names[o]!r}: socket {why}")

    # ------------------------------------------------------------ machine

    def memory(self, i: int) -> None:
        if 0 <= self.x.nbytes[i] < 4096:
            self.report(i, "M602", "bytes", f"memory of {self.x.nbytes[i]} bytes: a machine needs at least one page")

    def swap_on(self, i: int) -> None:
        self.swap = True

    def swap_off(self, i: int) -> None:
        if not self.swap:
            self.report(i, "M601", "op", "swap_off while no swap is on")
        self.swap = False
