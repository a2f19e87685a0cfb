"""Random differential testing: random single-machine traces, run in the VM and in the model.

In: a count, a seed, a kernel (series or exact package), and how many traces share one boot.
Out: one ``compare.ScenarioResult`` per trace (named ``random-<seed>-<i>``), a summary
(traces run, steps and checks compared, agreements, disagreements, traces per minute),
and for every disagreement a shrunk trace: the smallest trace found that still disagrees
on the same key, written as a new scenario under ``tests/kernel_scenarios/``.

Generation (``generate``): a state machine over what the VM can run (``translate``): nested
cgroups (depth <= 2), tasks started, moved and exiting, anon regions grown and freed, tmpfs
and ext4 files created, written, read, mapped and unmapped by tasks in cgroups, shared between
cgroups, deleted; mlock; memory.max and memory.high; memory.reclaim; swap on and off;
drop_caches (with and without inodes); sync; sockets that outlive their opener. Sizes stay
small (tens of MiB in all), so the VM's 512 MiB never comes under global pressure and a run
is about the rules, not about the VM's own footprint. Rows are 10 µs apart: no sleeps.
The same (seed, index) always gives the same trace.

Many traces per boot (``run_batch``): init runs them one after the other and resets the
machine between them (every helper killed, the socket holder closed, tmpfs emptied, the ext4
disk unmounted and mounted again, swap off, every cgroup removed, until the root has no dying
descendants). Each trace starts from its own baseline (step -1) and its own free memory. A
reset that leaves a dying cgroup stops the boot; the traces after it run in the next boot.

Shrinking (``shrink``): a disagreeing trace is first cut after its first disagreeing step;
then each round removes one row together with the rows that depend on it (a task's rows with
its ``task_start``, a file's with its ``file_create``, a cgroup's with its ``mkdir``), runs
every such candidate in one boot, and keeps the smallest that still disagrees on the same
key; it stops when no removal keeps the disagreement or after ``max_rounds`` boots.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TraceError
from scripts.kernel_check import fetch, vm
from scripts.kernel_check.compare import ScenarioResult
from scripts.kernel_check.parse import VmOutputError, parse_output
from scripts.kernel_check.records import Build
from scripts.kernel_check.translate import Script, translate

KIB, MIB = 1 << 10, 1 << 20
HEAD = ("time_us", "machine", "op", "cgroup", "task", "object", "offset", "bytes", "flags")
STEP_US = 10
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "tests" / "kernel_scenarios"

Row = dict


# ---------------------------------------------------------------- generation
@dataclass
class _Gen:
    """What the trace has made so far (the generator's view of the machine)."""

    rng: random.Random
    rows: list[Row] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)  #: online, creation order
    tasks: dict[str, str] = field(default_factory=dict)  #: live task -> cgroup
    homes: dict[str, set[str]] = field(default_factory=dict)  #: live task -> every cgroup it has been in
    regions: dict[str, list[str]] = field(default_factory=dict)  #: task -> its anon regions
    files: dict[str, str] = field(default_factory=dict)  #: live file -> "shmem" | "disk"
    sizes: dict[str, int] = field(default_factory=dict)  #: bytes written/created per file
    maps: set[tuple[str, str]] = field(default_factory=set)  #: (task, file) mapped
    locks: set[tuple[str, str]] = field(default_factory=set)  #: (task, object) mlocked
    socks: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)  #: cgroups that ever had a child (memory in subtree_control)
    swap: bool = False
    n: int = 0  #: names handed out

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def emit(self, op: str, cgroup: str | None = None, task: str | None = None, obj: str | None = None,
             offset: int | None = None, nbytes: int | None = None, flags: str | None = None) -> None:
        self.rows.append(dict(zip(HEAD, (len(self.rows) * STEP_US, "m0", op, cgroup, task, obj, offset,
                                         nbytes, flags))))

    def size(self, lo_kib: int = 64, hi_kib: int = 4096) -> int:
        """A size in whole pages, log-uniform-ish between lo and hi KiB."""
        kib = int(lo_kib * (hi_kib / lo_kib) ** self.rng.random())
        return max(4, kib // 4 * 4) * KIB

    def children(self, cg: str) -> list[str]:
        return [c for c in self.cgroups if c.startswith(cg + "/")]

    # each op returns False when its preconditions do not hold (another op is drawn)
    def mkdir(self) -> bool:
        # cgroup v2's no-internal-process rule: a cgroup with tasks cannot enable the memory
        # controller for children (EBUSY on cgroup.subtree_control), and a cgroup that has it
        # enabled (the harness never clears it) cannot take tasks; the model does not enforce
        # this, so the generator keeps tasks in leaves, as systemd and container runtimes do
        busy = set(self.tasks.values())
        parents = ["/"] + [c for c in self.cgroups if c.count("/") < 2 and c not in busy]
        parent = self.rng.choice(parents)
        cg = f"{'' if parent == '/' else parent}/{self.name('c')}"
        self.parents.add(parent)
        self.cgroups.append(cg)
        self.emit("mkdir", cg)
        return True

    def rmdir(self) -> bool:
        # not a cgroup a live task has been in: the task's helper process faulted its own stack and
        # data there (charged there, kept there after a move, as cgroup v2 does), which the trace
        # does not describe, and they would keep that cgroup dying until the task exits
        # (random-2-14); a real trace's task would list such memory as ops
        held = set().union(*self.homes.values())
        empty = [c for c in self.cgroups if not self.children(c) and c not in held]
        if not empty:
            return False
        cg = self.rng.choice(empty)
        self.cgroups.remove(cg)
        self.emit("rmdir", cg)
        return True

    def set_limit(self) -> bool:
        if not self.cgroups:
            return False
        cg, knob = self.rng.choice(self.cgroups), self.rng.choice(["max", "high"])
        nbytes = None if self.rng.random() < 0.2 else self.rng.choice([2, 4, 6, 8, 12, 16]) * MIB
        self.emit("set_limit", cg, nbytes=nbytes, flags=knob)
        return True

    def task_start(self) -> bool:
        leaves = [c for c in self.cgroups if c not in self.parents]
        if not leaves or len(self.tasks) >= 6:
            return False
        t, cg = self.name("t"), self.rng.choice(leaves)
        self.tasks[t] = cg
        self.homes[t] = {cg}
        self.emit("task_start", cg, t)
        return True

    def task_exit(self) -> bool:
        if not self.tasks:
            return False
        t = self.rng.choice(sorted(self.tasks))
        del self.tasks[t]
        self.homes.pop(t, None)
        self.regions.pop(t, None)
        self.maps = {m for m in self.maps if m[0] != t}
        self.locks = {m for m in self.locks if m[0] != t}
        self.emit("task_exit", task=t)
        return True

    def task_move(self) -> bool:
        if not self.tasks:
            return False
        t = self.rng.choice(sorted(self.tasks))
        dest = [c for c in self.cgroups if c != self.tasks[t] and c not in self.parents]
        if not dest:
            return False
        cg = self.rng.choice(dest)
        self.tasks[t] = cg
        self.homes[t].add(cg)
        self.emit("task_move", cg, t)
        return True

    def anon_alloc(self) -> bool:
        if not self.tasks:
            return False
        t = self.rng.choice(sorted(self.tasks))
        mine = self.regions.setdefault(t, [])
        region = self.rng.choice(mine) if mine and self.rng.random() < 0.3 else self.name("a")
        if region not in mine:
            mine.append(region)
        self.emit("anon_alloc", task=t, obj=region, nbytes=self.size())
        return True

    def anon_free(self) -> bool:
        owners = [t for t in sorted(self.regions) if self.regions[t]]
        if not owners:
            return False
        t = self.rng.choice(owners)
        region = self.rng.choice(self.regions[t])
        if self.rng.random() < 0.5:  # the whole region: it is gone (a later use starts a new one)
            self.regions[t].remove(region)
            self.locks.discard((t, region))
            self.emit("anon_free", task=t, obj=region)
        else:
            self.emit("anon_free", task=t, obj=region, offset=0, nbytes=self.size(16, 512))
        return True

    def file_create(self) -> bool:
        if len(self.files) >= 6:
            return False
        f, shmem = self.name("f"), self.rng.random() < 0.45
        self.files[f] = "shmem" if shmem else "disk"
        size = 0 if shmem or self.rng.random() < 0.4 else self.size(64, 4096)
        self.sizes[f] = size
        self.emit("file_create", obj=f, nbytes=None if shmem else size, flags="shmem" if shmem else None)
        return True

    def _task_file(self, need_data: bool = False) -> tuple[str, str] | None:
        files = [f for f in sorted(self.files) if self.sizes[f] or not need_data]
        if not self.tasks or not files:
            return None
        return self.rng.choice(sorted(self.tasks)), self.rng.choice(files)

    def file_write(self) -> bool:
        tf = self._task_file()
        if tf is None:
            return False
        t, f = tf
        off = self.rng.choice([0, self.sizes[f]]) if self.sizes[f] else 0
        nbytes = self.size()
        self.sizes[f] = max(self.sizes[f], off + nbytes)
        self.emit("file_write", task=t, obj=f, offset=off, nbytes=nbytes)
        return True

    def file_read(self) -> bool:
        tf = self._task_file(need_data=True)
        if tf is None:
            return False
        t, f = tf
        self.emit("file_read", task=t, obj=f)
        return True

    def file_map(self) -> bool:
        tf = self._task_file(need_data=True)
        if tf is None:
            return False
        t, f = tf
        self.maps.add((t, f))
        self.emit("file_map", task=t, obj=f, offset=0, nbytes=self.sizes[f])
        return True

    def file_unmap(self) -> bool:
        if not self.maps:
            return False
        t, f = self.rng.choice(sorted(self.maps))
        self.maps.discard((t, f))
        self.locks.discard((t, f))
        self.emit("file_unmap", task=t, obj=f)
        return True

    def file_delete(self) -> bool:
        if not self.files:
            return False
        f = self.rng.choice(sorted(self.files))
        del self.files[f]
        self.locks = {m for m in self.locks if m[1] != f}
        self.emit("file_delete", obj=f)
        return True

    def mlock(self) -> bool:
        anon = [(t, r) for t in sorted(self.regions) for r in self.regions[t]]
        cands = anon + sorted(m for m in self.maps if m[1] in self.files)
        if not cands:
            return False
        t, o = self.rng.choice(cands)
        self.locks.add((t, o))
        self.emit("pin", task=t, obj=o, flags="mlock")
        return True

    def munlock(self) -> bool:
        if not self.locks:
            return False
        t, o = self.rng.choice(sorted(self.locks))
        self.locks.discard((t, o))
        self.emit("unpin", task=t, obj=o, flags="mlock")
        return True

    def reclaim(self) -> bool:
        if not self.cgroups:
            return False
        self.emit("reclaim", self.rng.choice(self.cgroups), nbytes=self.size(256, 8192))
        return True

    def swap_on(self) -> bool:
        if self.swap:
            return False
        self.swap = True
        self.emit("swap_on", nbytes=64 * MIB)
        return True

    def swap_off(self) -> bool:
        if not self.swap:
            return False
        self.swap = False
        self.emit("swap_off")
        return True

    def drop_caches(self) -> bool:
        self.emit("drop_caches", flags="inodes" if self.rng.random() < 0.3 else None)
        return True

    def sync(self) -> bool:
        self.emit("sync")
        return True

    def sock_open(self) -> bool:
        if not self.tasks or len(self.socks) >= 3:
            return False
        s = self.name("s")
        self.socks.append(s)
        self.emit("sock_open", task=self.rng.choice(sorted(self.tasks)), obj=s)
        return True

    def sock_close(self) -> bool:
        if not self.socks:
            return False
        s = self.rng.choice(self.socks)
        self.socks.remove(s)
        self.emit("sock_close", obj=s)
        return True


#: op -> relative weight (cgroup and task lifecycles often, the rarer machine-wide ops less)
WEIGHTS = {
    "mkdir": 8, "rmdir": 7, "set_limit": 3, "task_start": 9, "task_exit": 6, "task_move": 3,
    "anon_alloc": 8, "anon_free": 3, "file_create": 5, "file_write": 8, "file_read": 7, "file_map": 3,
    "file_unmap": 2, "file_delete": 3, "mlock": 2, "munlock": 2, "reclaim": 4, "swap_on": 2,
    "swap_off": 1, "drop_caches": 3, "sync": 3, "sock_open": 2, "sock_close": 2,
}


def generate(seed: int, index: int, steps: int = 24) -> list[Row]:
    """Random trace ``index`` of ``seed``: about ``steps`` rows, ending with every task gone and
    every cgroup removed, so the last steps show which removed cgroups stay dying."""
    g = _Gen(random.Random(f"kernel-check-random:{seed}:{index}"))
    ops, weights = list(WEIGHTS), list(WEIGHTS.values())
    while len(g.rows) < steps:
        while not getattr(g, g.rng.choices(ops, weights)[0])():
            pass
    for t in sorted(g.tasks, key=lambda t: int(t[1:])):
        g.emit("task_exit", task=t)
    g.tasks.clear()
    g.homes.clear()
    for cg in sorted(g.cgroups, key=lambda c: (-c.count("/"), c)):
        g.emit("rmdir", cg)
    g.cgroups.clear()
    if g.rng.random() < 0.5:
        g.emit("sync")
        g.emit("drop_caches", flags="inodes" if g.rng.random() < 0.5 else None)
    return g.rows


def to_csv(rows: list[Row]) -> str:
    """Rows as a scenario CSV (empty cells for nulls, as the hand-written scenarios)."""
    lines = [",".join(HEAD)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else str(r[k]) for k in HEAD))
    return "\n".join(lines) + "\n"


def retime(rows: list[Row]) -> list[Row]:
    """Rows renumbered STEP_US apart (after rows were removed)."""
    return [{**r, "time_us": i * STEP_US} for i, r in enumerate(rows)]


# ---------------------------------------------------------------- running in the VM
@dataclass
class Trace:
    """One random (or shrink-candidate) trace, written where the model and records read it."""

    name: str
    rows: list[Row]
    path: Path
    script: Script

    @classmethod
    def make(cls, name: str, rows: list[Row], work: Path) -> Trace:
        rows = retime(rows)
        path = work / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_csv(rows))
        return cls(name, rows, path, translate(rows, str(path)))


def render_batch(traces: list[Trace]) -> str:
    """Every trace's steps framed by kc_trace_begin/kc_trace_end (init.sh resets between them)."""
    parts = [f"# {len(traces)} traces, generated by scripts.kernel_check.randomized\n"]
    for i, t in enumerate(traces):
        body = t.script.render().replace("/mnt/disk/", f"/mnt/disk/{i}/")  # each trace its own files
        parts.append(f"kc_trace_begin {i}\n{body}kc_trace_end {i}\n")
    return "".join(parts)


def batch_files(traces: list[Trace]) -> dict[str, int]:
    """Every trace's disk files, under its own directory (as ``render_batch`` names them)."""
    return {p.replace("/mnt/disk/", f"/mnt/disk/{i}/"): n for i, t in enumerate(traces)
            for p, n in t.script.disk_files.items()}


def split_output(text: str) -> tuple[str, dict[int, str]]:
    """The VM's stat-port text cut per trace: (release, trace index -> text that
    ``parse_output`` reads as one boot). Only traces whose reset completed are returned."""
    release, cur, out, buf = "", None, {}, []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("KC-BEGIN"):
            release = s.partition(" ")[2].strip()
        elif s.startswith("KC-TRACE "):
            cur, buf = int(s.split()[1]), []
        elif s.startswith("KC-TRACE-END ") and cur is not None and int(s.split()[1]) == cur:
            out[cur] = "\n".join([f"KC-BEGIN {release}", *buf, "KC-END"]) + "\n"
            cur = None
        elif cur is not None:
            buf.append(s)
    return release, out


#: a batch's guest prints a step's stats every 0.3-1 s under TCG (a settle is at most 3 s): one silent
#: for this long has hung (seen once in ~60 boots), and its traces run again in the next boot
BOOT_IDLE_S = 300.0


def _boot_timeout(traces: list[Trace]) -> float:
    # TCG on a shared host: about 0.3-1 s per step (the settle loop and the stat dump), plus the boot
    return 120.0 + 4.0 * sum(len(t.rows) + 1 for t in traces)


def run_batch(traces: list[Trace], art: fetch.Artifacts, series: str, cache: Path, work: Path,
              accel: str) -> tuple[dict[str, ScenarioResult], float]:
    """Boot once for ``traces``; results of those the VM finished (by name), and the boot's seconds."""
    from scripts.kernel_check.run import model_result

    batch = Script("random-batch", swap_bytes=max([64 * MIB] + [t.script.swap_bytes for t in traces]),
                   disk_files=batch_files(traces))
    boot = vm.run_script(art, batch, work / "boot", cache, accel=accel, timeout=_boot_timeout(traces),
                         rendered=render_batch(traces), idle_s=BOOT_IDLE_S)
    release, texts = split_output(boot.output)
    if not release:
        raise VmOutputError(f"the VM never reached its init\n{boot.console[-2000:]}")
    results = {}
    for i, text in texts.items():
        t = traces[i]
        observed = parse_output(text, boot.console)
        res = model_result(t.path, observed, art.upstream or series, art.lru_gen, art.build)
        res.accel, res.observed = boot.accel, observed
        res.kernel_build = Build.from_artifacts(art)
        results[t.name] = res
    return results, boot.seconds


def run_traces(traces: list[Trace], art: fetch.Artifacts, series: str, cache: Path, work: Path, accel: str,
               per_boot: int, log=print) -> tuple[dict[str, ScenarioResult], list[float]]:
    """Run ``traces`` ``per_boot`` at a time; a trace the VM did not finish runs again in the next
    boot, at the head of it (twice at most)."""
    pending, results, boots, tries = list(traces), {}, [], {t.name: 0 for t in traces}
    while pending:
        chunk, pending = pending[:per_boot], pending[per_boot:]
        got, secs = run_batch(chunk, art, series, cache, work, accel)
        boots.append(secs)
        results.update(got)
        missed = [t for t in chunk if t.name not in got]
        for t in missed:
            tries[t.name] += 1
        again = [t for t in missed if tries[t.name] < 2]
        if missed:
            log(f"#   boot of {len(chunk)} traces: {len(got)} finished, {len(again)} run again")
        pending = again + pending
    return results, boots


def run_scenarios_batched(paths: list[Path], series: str, cache: Path | None = None, accel: str = "auto",
                          per_boot: int = 30, log=print) -> list[ScenarioResult]:
    """The scenario suite, ``per_boot`` scenarios per boot with init's reset between them
    (``--batch``): one boot instead of one per scenario; results in ``paths`` order."""
    from traces.io import read_trace

    cache = cache or fetch.default_cache()
    art = fetch.fetch_all(series, cache)
    work = cache / "work" / f"batch-{series}"
    if accel == "auto":
        accel = "kvm" if vm.kvm_usable(cache, art, work) else "tcg"
    traces = []
    for p in paths:
        rows = read_trace(p).to_pylist()
        traces.append(Trace(p.stem, rows, p, translate(rows, str(p))))
    got, _ = run_traces(traces, art, series, cache, work, accel, per_boot, log)
    missing = [t.name for t in traces if t.name not in got]
    if missing:
        raise VmOutputError(f"the VM did not finish {', '.join(missing)}")
    return [got[t.name] for t in traces]


# ---------------------------------------------------------------- shrinking
def signature(res: ScenarioResult) -> set[str]:
    """The keys that disagree at the first disagreeing step."""
    first = min(res.failed_steps)
    return {c.key for c in res.failures if c.step == first}


def _deps(rows: list[Row], i: int) -> set[int]:
    """Row ``i`` and every row that cannot run without it."""
    r, out = rows[i], {i}
    op = r["op"]
    if op == "task_start":
        out |= {j for j, x in enumerate(rows) if x.get("task") == r["task"]}
    elif op == "file_create" or (op == "anon_alloc" and
                                 not any(x.get("object") == r["object"] for x in rows[:i])):
        out |= {j for j, x in enumerate(rows) if x.get("object") == r["object"] and j > i}
    elif op == "sock_open":
        out |= {j for j, x in enumerate(rows) if x.get("object") == r["object"]}
    elif op == "mkdir":
        cg = r["cgroup"]
        gone = {j for j, x in enumerate(rows) if x.get("cgroup") and
                (x["cgroup"] == cg or x["cgroup"].startswith(cg + "/"))}
        tasks = {rows[j]["task"] for j in gone if rows[j]["op"] == "task_start"}
        out |= gone | {j for j, x in enumerate(rows) if x.get("task") in tasks}
    elif op == "swap_on":
        nxt = next((j for j in range(i + 1, len(rows)) if rows[j]["op"] in ("swap_off", "swap_on")), None)
        if nxt is not None and rows[nxt]["op"] == "swap_off":
            out.add(nxt)
    for j in sorted(out):  # removing an object's first anon_alloc takes its later uses too
        x = rows[j]
        if x["op"] == "anon_alloc" and not any(y.get("object") == x["object"] for y in rows[:j]):
            out |= {k for k, y in enumerate(rows) if y.get("object") == x["object"] and k > j}
    return out


def runnable(rows: list[Row]) -> bool:
    """Do the VM harness and the model both accept ``rows``?"""
    import tempfile

    from scripts.kernel_check.simulate import simulate
    from traces.io import read_trace

    try:
        translate(retime(rows), "candidate")
        with tempfile.TemporaryDirectory() as tmp:
            t = Trace.make("candidate", rows, Path(tmp))
            simulate(read_trace(t.path), str(t.path), "6.1", 460 * MIB)
    except TraceError:
        return False
    return True


def candidates(rows: list[Row], limit: int = 24) -> list[list[Row]]:
    """Smaller traces: one row and its dependents removed each (distinct, largest removals first)."""
    seen, out = set(), []
    for i in range(len(rows)):
        drop = _deps(rows, i)
        key = frozenset(drop)
        if key in seen or len(drop) == len(rows):
            continue
        seen.add(key)
        cand = [r for j, r in enumerate(rows) if j not in drop]
        if runnable(cand):
            out.append(cand)
    out.sort(key=len)
    return out[:limit]


def shrink(name: str, rows: list[Row], res: ScenarioResult, run, work: Path, max_rounds: int = 6,
           log=print) -> tuple[list[Row], ScenarioResult]:
    """The smallest trace found that disagrees like ``res`` (``run(traces) -> results by name``)."""
    want = signature(res)
    cut = max(res.failed_steps)
    best_rows, best = rows[:min(res.failed_steps) + 1], res
    if len(best_rows) < len(rows):
        t = Trace.make(f"{name}-cut", best_rows, work)
        r = run([t]).get(t.name)
        if r is not None and not r.agrees and signature(r) & want:
            best = r
        else:
            best_rows = rows[:cut + 1]
    for rnd in range(max_rounds):
        cands = [Trace.make(f"{name}-s{rnd}-{k}", c, work) for k, c in enumerate(candidates(best_rows))]
        if not cands:
            break
        got = run(cands)
        failing = [(len(c.rows), c) for c in cands if c.name in got and not got[c.name].agrees
                   and signature(got[c.name]) & want]
        log(f"#   shrink {name} round {rnd}: {len(best_rows)} rows, {len(cands)} candidates, "
            f"{len(failing)} still disagree")
        if not failing:
            break
        _, c = min(failing, key=lambda x: x[0])
        best_rows, best = c.rows, got[c.name]
    return retime(best_rows), best


# ---------------------------------------------------------------- the command
@dataclass
class Summary:
    """What a random run did, for the table in docs/kernel-validation.md."""

    kernel: str
    build: str = ""
    seed: int = 0
    traces: int = 0
    steps: int = 0
    checks: int = 0
    agreeing: int = 0
    disagreeing: list[str] = field(default_factory=list)
    shrunk: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    boots: int = 0

    def line(self) -> str:
        rate = self.traces / (self.seconds / 60) if self.seconds else 0.0
        return (f"kernel {self.build or self.kernel}: seed {self.seed}, {self.traces} traces, {self.steps} steps "
                f"and {self.checks} checks compared, {self.agreeing} agree, {len(self.disagreeing)} disagree; "
                f"{self.boots} boots, {self.seconds:.0f} s ({rate:.1f} traces/min)")


def save_result(res: ScenarioResult, trace: Trace, root: Path) -> Path:
    """Keep what the kernel showed of random trace ``trace``: ``root/<build>/<name>.csv`` (the trace)
    and ``<name>.json`` (its record, ``records.Record``), so ``replay_saved`` rechecks the model
    against it without a VM."""
    from scripts.kernel_check.records import Record, write_record

    d = Path(root) / res.kernel_build.name
    d.mkdir(parents=True, exist_ok=True)
    csv = d / f"{trace.name}.csv"
    csv.write_text(to_csv(trace.rows))
    write_record(Record.from_run(csv, res.kernel_build, res.observed), Path(root))
    return csv


def replay_saved(root: Path, kernels: list[str] | None = None) -> list[ScenarioResult]:
    """The model against every saved random trace under ``root`` (``save_result``), no VM; only the
    builds of ``kernels`` (series or package) when given. Ordered by build, then seed and index."""
    from scripts.kernel_check.records import load_record, replay

    out = []
    for js in Path(root).glob("*/*.json"):
        rec = load_record(js)
        if kernels and not rec.build.named_by(kernels):
            continue
        res = replay(rec, js.with_suffix(".csv"))
        res.observed, res.kernel_build = rec.observed, rec.build
        out.append(res)

    def key(r: ScenarioResult) -> tuple:
        _, seed, i = r.name.rsplit("-", 2)
        return (r.build, int(seed), int(i))
    return sorted(out, key=key)


def run_random(n: int, seed: int, series: str, cache: Path | None = None, accel: str = "auto",
               per_boot: int = 10, steps: int = 24, shrink_rounds: int = 6, out_dir: Path = SCENARIO_DIR,
               start: int = 0, log=print, save: Path | None = None) -> tuple[Summary, list[ScenarioResult]]:
    """``n`` random traces (indices ``start``..) on one kernel; shrink and save each disagreement.
    With ``save``, every trace's record is kept there as soon as its boot ends (``save_result``)."""
    cache = cache or fetch.default_cache()
    art = fetch.fetch_all(series, cache)
    work = cache / "work" / f"random-{series}"
    if accel == "auto":
        accel = "kvm" if vm.kvm_usable(cache, art, work) else "tcg"
    t0 = time.monotonic()
    summary = Summary(series, art.build, seed)
    traces = [Trace.make(f"random-{seed}-{i}", generate(seed, i, steps), work / "traces")
              for i in range(start, start + n)]
    results: dict[str, ScenarioResult] = {}
    for k in range(0, len(traces), per_boot):
        got, boots = run_traces(traces[k:k + per_boot], art, series, cache, work, accel, per_boot, log)
        results.update(got)
        summary.boots += len(boots)
        if save is not None:
            for t in traces[k:k + per_boot]:
                if t.name in got:
                    save_result(got[t.name], t, save)
        done = len(results)
        bad = sum(1 for r in results.values() if not r.agrees)
        log(f"# {done}/{n} traces on {art.build}: {bad} disagree ({time.monotonic() - t0:.0f} s)")
    ordered = [results[t.name] for t in traces if t.name in results]
    for r in ordered:
        summary.traces += 1
        summary.steps += len(r.steps)
        summary.checks += len(r.checks)
        if r.agrees:
            summary.agreeing += 1
        else:
            summary.disagreeing.append(r.name)

    def run(ts: list[Trace]) -> dict[str, ScenarioResult]:
        got, boots = run_traces(ts, art, series, cache, work, accel, per_boot=max(per_boot, 24), log=log)
        summary.boots += len(boots)
        return got

    by_name = {t.name: t for t in traces}
    for name in summary.disagreeing:
        if shrink_rounds <= 0:
            break
        rows, res = shrink(name, by_name[name].rows, results[name], run, work / "shrink", shrink_rounds, log)
        path = out_dir / f"random_{series.replace('.', '_')}_{seed}_{name.rsplit('-', 1)[1]}.csv"
        path.write_text(to_csv(rows))
        summary.shrunk[name] = path
        log(f"# {name}: shrunk to {len(rows)} rows, saved as {path}\n{res.table()}")
    summary.seconds = time.monotonic() - t0
    return summary, ordered
