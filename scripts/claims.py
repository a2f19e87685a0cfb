"""The talk's claims as experiments: one small experiment per claim, measured, with a verdict.

In: ``--scale`` (1.0 = the full experiments; tests use a small scale) and an
optional ``--out`` Markdown file. Out: a table claim → measured evidence → rule →
holds / does not hold, printed (and written atomically with ``--out``).

Each experiment is a short native trace built here (``_Trace``) and replayed
on ``core.machine.Machine`` under the policies it compares. Every comparative
claim is decided against the ``none`` baseline, or against a control stated in
its rule, replayed in the same experiment; every measure a rule compares is one
that every policy reports (summary columns, the job table, counters all policies
share) or one this script measures itself from the machine's state. Thresholds
are derived, and the derivation is written beside the rule. A claim the model
cannot separate is reported as "does not hold", with why — never forced.

``evaluate(scale, noop={"reparent"})`` replays the same experiments with the
named policies replaced by ``none`` (dropped from compositions): a rule that can
say no must then say no (``tests/test_claims.py``).

    python scripts/claims.py [--scale 1.0] [--out claims.md]

Claims are from "Reducing Zombie Memcgs" (LSF/MM/BPF 2023, ``../shared/seeds/``)
and KERNEL-MODEL.md §1, §5.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.determinism import peak_spread
from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.memcontrol import memory_reclaim
from core.ops import Flag, Op
from core.pages import PAGE, St
from core.policy import make_policy
from traces.io import atomic_write_text

MIB = 1 << 20
SEC = 1_000_000
#: the model accounts to the 4 KiB page and is deterministic (no noise to allow for), so "more
#: than the baseline" means by at least one page
ONE_PAGE = PAGE


@dataclass
class Result:
    """One row of the table: the claim, what was measured, the rule with its threshold, the verdict."""

    claim: str
    evidence: str
    holds: bool
    rule: str
    why: str = ""
    name: str = ""
    policies: tuple[str, ...] = ()  # the policies the claim is about (what ``noop`` may disable)


@dataclass
class Lab:
    """Where experiments run: their size, and the policies made no-ops (replaced by ``none``)."""

    scale: float = 1.0
    noop: frozenset[str] = field(default_factory=frozenset)

    def policy(self, spec: str, knobs: dict | None = None):
        """``spec`` with every part in ``noop`` dropped (``none`` when nothing is left)."""
        parts = [p for p in spec.split("+") if p not in self.noop] or ["none"]
        return make_policy("+".join(parts), knobs)

    def machine(self, policy: str, knobs: dict | None = None, **cfg) -> Machine:
        """A fresh machine (64 GiB unless told, one sample an hour) under ``policy``."""
        cfg.setdefault("mem_bytes", 64 << 30)
        cfg.setdefault("sample_interval_us", 3600 * SEC)
        # noatime: the claims are about page charges; under relatime a read would also pin the reader's
        # removed cgroup through its cgwb until writeback (D14), a zombie no claim is about
        cfg.setdefault("atime", "noatime")
        return Machine(MachineConfig(**cfg), self.policy(policy, knobs), machine_id="claims", seed=0)

    def replay(self, policy: str, tr: "_Trace", knobs: dict | None = None, settle_us: int = 120 * SEC,
               **cfg) -> Machine:
        """Replay ``tr`` and let the policy's workers run ``settle_us`` after its last event."""
        m = self.machine(policy, knobs, **cfg)
        m.apply(EventBatch.from_rows(tr.rows, "claims"))
        m.advance_to(tr.t + settle_us)
        return m


class _Trace:
    """Rows of a one-machine native trace, one second apart unless told otherwise."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.t = 0

    def op(self, op: Op, cgroup=None, task=None, obj=None, offset=None, nbytes=None, flags=0, dt=SEC) -> "_Trace":
        self.t += dt
        self.rows.append((self.t, op, cgroup, task, obj, offset, nbytes, flags))
        return self

    def job(self, cg: str, task: str) -> "_Trace":
        return self.op(Op.MKDIR, cgroup=cg).op(Op.TASK_START, cgroup=cg, task=task)

    def end(self, cg: str, task: str) -> "_Trace":
        return self.op(Op.TASK_EXIT, task=task).op(Op.RMDIR, cgroup=cg)


def _mib(nbytes: float) -> str:
    return f"{nbytes / MIB:.1f} MiB"


def _zf(zombie: bool) -> str:
    return "zombie" if zombie else "freed"


# ------------------------------------------------------------------ reading a machine
# Every read of machine state beyond summary / stat / job_table / counters is here.
def _zombie(m: Machine, path: str) -> bool:
    """Is the cgroup removed at ``path`` still a zombie (dying, not freed)?"""
    try:
        return bool(m.stat(path)["dying"])
    except KeyError:
        return False


def _own(m: Machine, path: str, column: str) -> int:
    """A memcg's own (not hierarchical) value of a MemcgTable column, e.g. pgsteal or own pages."""
    x = m.mem.by_path[path]
    return m.mem.own_pages(x) if column == "pages" else int(getattr(m.mem, column)[x])


def _owners(m: Machine, obj: str | None) -> dict[int, int]:
    """Resident page -> charged memcg, for the object named ``obj``."""
    o = m.obj_by_name.get(obj, -1) if obj is not None else -1
    if o < 0:
        return {}
    R = m.runs
    out: dict[int, int] = {}
    for r in np.flatnonzero((R.view("obj") == o) & (R.view("state") == St.RESIDENT)).tolist():
        out.update(dict.fromkeys(range(R.start[r], R.start[r] + R.npages[r]), R.memcg[r]))
    return out


def _kills(m: Machine) -> int:
    """OOM kills of every cgroup (the job table's column, which every policy reports)."""
    return sum(m.job_table()["oom_kills"])


# ------------------------------------------------------------------ experiments
def churn(jobs: int, seed: int = 0, shared: bool = True) -> _Trace:
    """Jobs one after another (each overlapping the next) that share what containers share.

    Each job reads a random 1 MiB chunk of a 4 GiB shared dataset and one of 16
    libraries (Zipf-like), writes a tmpfs volume that the next job maps, grows
    8 MiB of anon and writes a log that is kept in 20% of the jobs. With
    ``shared=False`` (the control) the same job reads private copies of the same
    sizes and maps its own volume, each deleted when the job ends; logs are kept as before.
    """
    rng = random.Random(seed)
    tr = _Trace()
    if shared:
        tr.op(Op.FILE_CREATE, obj="dataset", nbytes=4096 * MIB)
        for k in range(16):
            tr.op(Op.FILE_CREATE, obj=f"lib{k}", nbytes=4 * MIB)
    for i in range(jobs):
        cg, task = f"/jobs/j{i}", f"t{i}"
        if i == 0:
            tr.op(Op.MKDIR, cgroup="/jobs")
        tr.job(cg, task)
        lib = min(int(rng.paretovariate(1.0)) - 1, 15)
        chunk = rng.randrange(4096) * MIB
        data, libf = ("dataset", f"lib{lib}") if shared else (f"data{i}", f"libc{i}")
        if not shared:
            tr.op(Op.FILE_CREATE, obj=data, nbytes=chunk + MIB).op(Op.FILE_CREATE, obj=libf, nbytes=4 * MIB)
        tr.op(Op.FILE_READ, task=task, obj=libf)
        tr.op(Op.FILE_READ, task=task, obj=data, offset=chunk, nbytes=MIB)
        tr.op(Op.ANON_ALLOC, task=task, obj=f"heap{i}", nbytes=8 * MIB)
        tr.op(Op.FILE_CREATE, obj=f"vol{i}", flags=Flag.SHMEM).op(Op.FILE_WRITE, task=task, obj=f"vol{i}", nbytes=MIB)
        if i:
            tr.op(Op.FILE_MAP, task=task, obj=f"vol{i - 1}" if shared else f"vol{i}")
        tr.op(Op.FILE_CREATE, obj=f"log{i}").op(Op.FILE_WRITE, task=task, obj=f"log{i}", nbytes=256 * 1024)
        if i:
            tr.end(f"/jobs/j{i - 1}", f"t{i - 1}").op(Op.FILE_DELETE, obj=f"vol{i - 1}")
            if not shared:
                tr.op(Op.FILE_DELETE, obj=f"data{i - 1}").op(Op.FILE_DELETE, obj=f"libc{i - 1}")
            if rng.random() >= 0.2:
                tr.op(Op.FILE_DELETE, obj=f"log{i - 1}")
    return tr


def claim_accumulate(lab: Lab) -> Result:
    jobs = max(int(3000 * lab.scale), 30)
    want = -(-jobs // 3)
    m = lab.replay("none", churn(jobs))
    s, c = m.summary(), lab.replay("none", churn(jobs, shared=False)).summary()
    before = m.counters["memcgs_visited"]
    memory_reclaim(m, 0, 1)  # one proactive pass on the root: how many memcgs it walks
    visited = m.counters["memcgs_visited"] - before
    ev = (f"{jobs} jobs: {s['memcgs_dying']} zombies (file {s['held_file']}, shmem {s['held_shmem']}), "
          f"{_mib(s['cost_dying_bytes'])} of memcg structures; one root reclaim pass visits {visited} memcgs "
          f"for {s['memcgs_online']} online. Control, same jobs with nothing shared: {c['memcgs_dying']} zombies")
    rule = (f"zombies ≥ {want} with sharing and < {want} in the control. Derivation: 'into the thousands' is "
            f"≥ 1,000 zombies; the full experiment is 3,000 back-to-back jobs (about 12 h), so one zombie per "
            f"3 removed jobs at any scale")
    return Result("Zombies accumulate into the thousands under churn with sharing (`none`)", ev,
                  s["memcgs_dying"] >= want > c["memcgs_dying"], rule)


def claim_manual_shared(lab: Lab) -> Result:
    """/a writes a tmpfs volume /b maps and reads data /b pins; /c reads a private file; /a and /c removed."""
    out, ev = {}, []
    for swap in (0, 256 * MIB):
        tr = _Trace().job("/a", "a1").job("/b", "b1").job("/c", "c1")
        tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
        tr.op(Op.FILE_MAP, task="b1", obj="vol")
        tr.op(Op.FILE_CREATE, obj="data", nbytes=2 * MIB).op(Op.FILE_READ, task="a1", obj="data")
        tr.op(Op.PIN, task="b1", obj="data")
        tr.op(Op.FILE_CREATE, obj="own", nbytes=2 * MIB).op(Op.FILE_READ, task="c1", obj="own")
        tr.end("/a", "a1").end("/c", "c1")
        for pol in ("none", "manual_reclaim"):
            m = lab.replay(pol, tr, swap_bytes=swap)
            s = m.summary()
            out[(swap, pol)] = (_zombie(m, "/a"), _zombie(m, "/c"), s["zombie_charged_bytes"])
        a_n, c_n, _ = out[(swap, "none")]
        a_m, c_m, b_m = out[(swap, "manual_reclaim")]
        ev.append(f"{'with' if swap else 'no'} swap: /a none {_zf(a_n)} → manual {_zf(a_m)} ({_mib(b_m)} "
                  f"charged to zombies), control /c none {_zf(c_n)} → manual {_zf(c_m)}")
    ok = all(out[(s, "none")][:2] == (True, True) and out[(s, "manual_reclaim")][:2] == (True, False)
             and out[(s, "manual_reclaim")][2] == 6 * MIB for s in (0, 256 * MIB))
    rule = ("with and without swap: the control /c (private unmapped page cache) is a zombie under `none` and "
            "freed by manual reclaim (the reclaim works), while /a stays a zombie under both with its 6 MiB "
            "(4 MiB mapped volume + 2 MiB pinned data) charged")
    return Result("Manual reclaim cannot remove zombies held by shared-in-use or pinned memory", "; ".join(ev), ok,
                  rule, policies=("manual_reclaim",))


def claim_manual_swap(lab: Lab) -> Result:
    tr = _Trace().job("/a", "a1")
    tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
    tr.end("/a", "a1")
    z = {p: lab.replay(p, tr, swap_bytes=256 * MIB).summary() for p in ("none", "manual_reclaim")}
    ev = "; ".join(f"{p}: zombies {s['memcgs_dying']}, held by swap {s['held_swap']} / by shmem {s['held_shmem']}, "
                   f"charged {_mib(s['zombie_charged_bytes'])}, swap {_mib(s['zombie_swap_bytes'])}, "
                   f"IDs in use {s['ids_in_use']}" for p, s in z.items())
    n, r = z["none"], z["manual_reclaim"]
    ok = (n["held_swap"] == 0 and n["zombie_charged_bytes"] == 4 * MIB
          and r["memcgs_dying"] == r["held_swap"] == 1 and r["zombie_charged_bytes"] == 0)
    rule = ("a tmpfs-only zombie: under `none` held by its 4 MiB of shmem and no swap record; under manual "
            "reclaim nothing charged and held by swap records alone")
    return Result("Manual reclaim with swap leaves zombies held by swap records", "tmpfs written, job removed: "
                  + ev, ok, rule, policies=("manual_reclaim",))


def _pod_lib(tr: _Trace) -> _Trace:
    tr.op(Op.MKDIR, cgroup="/pod").job("/pod/a", "a1").op(Op.FILE_CREATE, obj="lib", nbytes=8 * MIB)
    return tr.op(Op.FILE_READ, task="a1", obj="lib").end("/pod/a", "a1")


def claim_reparent_hides(lab: Lab) -> Result:
    res = {}
    for pol in ("none", "reparent"):
        m = lab.replay(pol, _pod_lib(_Trace()))
        res[pol] = (m.summary(), _own(m, "/pod", "pages") * PAGE)
    (sn, on), (sr, orp) = res["none"], res["reparent"]
    ev = (f"none: {sn['memcgs_dying']} zombie holding {_mib(sn['zombie_charged_bytes'])}, parent owns "
          f"{_mib(on)}, misattributed {_mib(sn['misattributed_bytes'])}; reparent: {sr['memcgs_dying']} zombies, "
          f"parent owns {_mib(orp)}, misattributed {_mib(sr['misattributed_bytes'])}")
    held = sn["zombie_charged_bytes"]
    ok = (sn["memcgs_dying"] == 1 and held > 0 and sr["memcgs_dying"] == 0 and orp - on == held
          and sr["misattributed_bytes"] - sn["misattributed_bytes"] == held)
    rule = ("`none` keeps a zombie holding the job's page cache; reparent leaves no zombie, and the parent's own "
            "pages and the misattributed bytes both grow by exactly what `none`'s zombie holds")
    return Result("Reparenting hides zombie memory in the parent", ev, ok, rule, policies=("reparent",))


def claim_reparent_stats(lab: Lab) -> Result:
    own = {}
    for pol in ("none", "reparent"):
        m = lab.replay(pol, _pod_lib(_Trace()).op(Op.RECLAIM, cgroup="/pod", nbytes=8 * MIB))
        own[pol] = (_own(m, "/pod", "pgscan"), _own(m, "/pod", "pgsteal"))
    ev = (f"after memory.reclaim on the parent, its own pgscan/pgsteal: none {own['none'][0]}/{own['none'][1]}, "
          f"reparent {own['reparent'][0]}/{own['reparent'][1]} pages")
    rule = "the parent's own pgsteal exceeds `none`'s by ≥ 1 page (the model counts reclaim to the page)"
    return Result("Reparenting inflates the parent's reclaim stats (pgscan/pgsteal)", ev,
                  own["reparent"][1] - own["none"][1] >= 1, rule, policies=("reparent",))


def claim_reparent_root(lab: Lab) -> Result:
    tr = _Trace().op(Op.MKDIR, cgroup="/a").op(Op.MKDIR, cgroup="/a/b").job("/a/b/c", "t")
    tr.op(Op.FILE_CREATE, obj="f", nbytes=4 * MIB).op(Op.FILE_READ, task="t", obj="f").end("/a/b/c", "t")
    tr.op(Op.RMDIR, cgroup="/a/b").op(Op.RMDIR, cgroup="/a")
    s = {p: lab.replay(p, tr).summary() for p in ("none", "reparent")}
    ev = (f"/a/b/c, /a/b, /a removed in turn: root owns none {_mib(s['none']['root_charged_bytes'])} "
          f"({s['none']['memcgs_dying']} zombies) → reparent {_mib(s['reparent']['root_charged_bytes'])} "
          f"({s['reparent']['memcgs_dying']} zombies)")
    rule = "the root's own charge grows over `none`'s by the job's whole 4 MiB"
    return Result("Reparenting can walk up to the root, where memory is unowned", ev,
                  s["reparent"]["root_charged_bytes"] - s["none"]["root_charged_bytes"] == 4 * MIB, rule,
                  policies=("reparent",))


def neighbour_runs(variant: int) -> _Trace:
    """Job /job (16 MiB anon, reads lib, maps so) with neighbour /n in one of four placements.

    0: no neighbour; 1: /n touches lib and so first and outlives the job;
    2: /n touches them first and dies while the job runs (the job touches them again);
    3: /n touches them first and is gone before the job starts.
    """
    tr = _Trace()
    for obj in ("lib", "so"):
        tr.op(Op.FILE_CREATE, obj=obj, nbytes=(8 if obj == "lib" else 4) * MIB)
    if variant:
        tr.job("/n", "n1").op(Op.FILE_READ, task="n1", obj="lib").op(Op.FILE_MAP, task="n1", obj="so")
        if variant == 3:
            tr.end("/n", "n1")
    tr.job("/job", "j1").op(Op.ANON_ALLOC, task="j1", obj="heap", nbytes=16 * MIB)
    tr.op(Op.FILE_READ, task="j1", obj="lib").op(Op.FILE_MAP, task="j1", obj="so")
    if variant == 2:
        tr.end("/n", "n1").op(Op.FILE_READ, task="j1", obj="lib").op(Op.FILE_MAP, task="j1", obj="so")
    tr.op(Op.FILE_READ, task="j1", obj="lib", dt=60 * SEC).end("/job", "j1")
    if variant == 1:
        tr.end("/n", "n1")
    return tr


def spreads(policies: tuple[str, ...], lab: Lab | None = None) -> dict[str, tuple[int, ...]]:
    """Per policy, the peak bytes of /job in the four neighbour placements."""
    lab = lab or Lab()
    return {p: peak_spread([lab.replay(p, neighbour_runs(v)).job_table() for v in range(4)], "/job").peaks
            for p in policies}


def _fmt_peaks(p: tuple[int, ...]) -> str:
    return f"{'/'.join(f'{x / MIB:.0f}' for x in p)} MiB"


def _added_spread(lab: Lab, pol: str) -> tuple[str, int]:
    """Evidence and the spread over placements of what ``pol`` adds to `none`'s peak of the same job."""
    peaks = spreads(("none", pol), lab)
    added = [a - b for a, b in zip(peaks[pol], peaks["none"])]
    ev = (f"peak of the same job in 4 neighbour placements: none {_fmt_peaks(peaks['none'])}, {pol} "
          f"{_fmt_peaks(peaks[pol])}; added by {pol} {_fmt_peaks(tuple(added))} "
          f"(spread {_mib(max(added) - min(added))})")
    return ev, max(added) - min(added)


_NEIGHBOUR_RULE = ("what the policy adds to `none`'s peak of the same job varies with the neighbour's placement "
                   "by ≥ 1 page. `none` already varies (first touch), so the policy's own part is the "
                   "difference to it, placement by placement")


def claim_reparent_neighbours(lab: Lab) -> Result:
    ev, sp = _added_spread(lab, "reparent")
    why = ("" if sp >= ONE_PAGE else "in the model reparenting adds nothing to the first-touch dependence `none` "
           "already has: without memory pressure nothing tells the parent's LRU from a zombie's")
    return Result("Reparenting makes a job's memory use depend on its neighbours", ev, sp >= ONE_PAGE,
                  _NEIGHBOUR_RULE, why, policies=("reparent",))


def claim_evict(lab: Lab) -> Result:
    out = {}
    for pinned in (False, True):
        tr = _Trace().job("/a", "a1").job("/b", "b1").op(Op.FILE_CREATE, obj="f", nbytes=4 * MIB)
        tr.op(Op.FILE_READ, task="a1", obj="f")
        if pinned:
            tr.op(Op.PIN, task="b1", obj="f")
        tr.end("/a", "a1").op(Op.FILE_READ, task="b1", obj="f")
        for pol in ("none", "recharge_evict"):
            m = lab.replay(pol, tr)
            out[(pinned, pol)] = (m.summary()["memcgs_dying"], m.counters["refaults"])
    ev = (f"unmapped file: zombies none {out[(False, 'none')][0]} → evict {out[(False, 'recharge_evict')][0]} "
          f"(refaults caused {out[(False, 'recharge_evict')][1] - out[(False, 'none')][1]} pages); pinned file: "
          f"none {out[(True, 'none')][0]} → evict {out[(True, 'recharge_evict')][0]}")
    ok = (out[(False, "none")][0] == 1 and out[(False, "recharge_evict")][0] == 0
          and out[(True, "none")][0] == out[(True, "recharge_evict")][0] == 1)
    rule = "the unmapped file's zombie, kept by `none`, is gone; the pinned file's zombie stays under both"
    return Result("Eviction helps file pages but not pinned ones", ev, ok, rule, policies=("recharge_evict",))


def _limited(lab: Lab, policy: str, on_limit: str) -> Machine:
    """A dead neighbour's 8 MiB .so mapped by /b, which has 16 MiB anon under a 20 MiB limit."""
    tr = _Trace().job("/a", "a1").op(Op.MKDIR, cgroup="/b").op(Op.SET_LIMIT, cgroup="/b", nbytes=20 * MIB,
                                                               flags=Flag.MAX)
    tr.op(Op.TASK_START, cgroup="/b", task="b1").op(Op.FILE_CREATE, obj="so", nbytes=8 * MIB)
    tr.op(Op.FILE_MAP, task="a1", obj="so").op(Op.FILE_MAP, task="b1", obj="so")
    tr.op(Op.ANON_ALLOC, task="b1", obj="heap", nbytes=16 * MIB).end("/a", "a1")
    return lab.replay(policy, tr, {"recharge_mapper": {"on_limit": on_limit}})


def claim_mapper_neighbours(lab: Lab) -> Result:
    ev, sp = _added_spread(lab, "recharge_mapper")
    return Result("Direct recharge to a mapper makes a job's charges depend on its neighbours", ev, sp >= ONE_PAGE,
                  _NEIGHBOUR_RULE, policies=("recharge_mapper",))


def _mapper_oom(lab: Lab, on_limit: str) -> tuple[str, int]:
    base, m = _limited(lab, "none", on_limit), _limited(lab, "recharge_mapper", on_limit)
    ev = (f"/b (20 MiB limit, 16 MiB anon) maps a dead neighbour's 8 MiB .so, on_limit={on_limit}: OOM kills "
          f"none {_kills(base)} → mapper {_kills(m)}; refused recharge attempts "
          f"{m.counters['recharge_retries']}, zombie kept {m.summary()['memcgs_dying']}")
    return ev, _kills(m) - _kills(base)


def claim_mapper_oom(lab: Lab) -> Result:
    ev, extra = _mapper_oom(lab, "retry")
    why = ("" if extra >= 1 else "with its default knobs (on_limit=retry) a refused recharge is retried with "
           "backoff and then given up, keeping the zombie instead of killing; only on_limit=oom kills "
           "(next row)")
    return Result("Direct recharge to a mapper causes OOM kills under limits (default knobs)", ev, extra >= 1,
                  "OOM kills exceed `none`'s on the same trace by ≥ 1", why, policies=("recharge_mapper",))


def claim_mapper_oom_knob(lab: Lab) -> Result:
    ev, extra = _mapper_oom(lab, "oom")
    return Result("Direct recharge to a mapper that OOMs on a refused charge (on_limit=oom) kills under limits",
                  ev, extra >= 1, "OOM kills exceed `none`'s on the same trace by ≥ 1",
                  policies=("recharge_mapper",))


_ACCESS = (Op.FILE_READ, Op.FILE_WRITE, Op.FILE_MAP)


def _access_moves(lab: Lab, policy: str, tr: _Trace) -> tuple[int, Machine]:
    """Pages whose charge moved to another memcg during a read, write or map event (not in workers)."""
    m, moved = lab.machine(policy), 0
    for row in tr.rows:
        m.advance_to(row[0])  # queued policy work due by then runs first, outside the access
        before = _owners(m, row[4]) if row[1] in _ACCESS else None
        m.apply(EventBatch.from_rows([row], "claims"))
        if before:
            after = _owners(m, row[4])
            moved += sum(1 for p, x in before.items() if after.get(p, x) != x)
    m.advance_to(tr.t + 120 * SEC)
    return moved, m


def claim_deferred(lab: Lab) -> Result:
    jobs = max(int(300 * lab.scale), 20)
    tr = churn(jobs)
    (mn, _), (md, m) = _access_moves(lab, "none", tr), _access_moves(lab, "recharge_deferred", tr)
    ev = (f"{jobs}-job churn: pages recharged inside a read/write/map (measured here from page ownership): none "
          f"{mn}, deferred {md}; the policy's own hook count (access_path_work) {m.counters['access_path_work']}")
    rule = "pages whose charge moves during an access exceed `none`'s by ≥ 1 (every policy is measured the same way)"
    return Result("Deferred recharge adds work on the access path", ev, md - mn >= 1, rule,
                  policies=("recharge_deferred",))


def claim_kmem(lab: Lab) -> Result:
    held = {}
    for kernel in ("5.10", "6.12"):
        tr = _Trace().op(Op.MKDIR, cgroup="/p").job("/p/a", "t")
        tr.op(Op.KMEM_ALLOC, task="t", obj="stack", nbytes=16 * 1024, flags=Flag.PAGE)
        tr.op(Op.KMEM_ALLOC, task="t", obj="dentries", nbytes=64 * 1024, flags=Flag.SLAB)
        tr.op(Op.TASK_MOVE, cgroup="/p", task="t").op(Op.RMDIR, cgroup="/p/a")
        held[kernel] = lab.replay("none", tr, kernel=kernel).summary()["held_kmem"]
    ev = f"kmem left charged to a removed memcg: kmem zombies on 5.10 {held['5.10']}, on 6.12 {held['6.12']}"
    rule = "control: the same trace on 5.10 (kmem pages not yet reparented) keeps a kmem zombie; on 6.12 none"
    return Result("Kernel memory is already reparented (no kmem zombies on ≥ 5.13)", ev,
                  held["6.12"] == 0 and held["5.10"] == 1, rule)


def claim_smemcg(lab: Lab) -> Result:
    jobs = max(int(300 * lab.scale), 20)
    s = {p: lab.replay(p, churn(jobs)).summary() for p in ("none", "smemcg")}
    moved = {p: v["recharged_pages"] + v["reparented_pages"] + v["swap_records_reparented"] for p, v in s.items()}
    a, b = s["none"], s["smemcg"]
    ev = (f"{jobs}-job churn: zombies none {a['memcgs_dying']} (file {a['held_file']}, shmem {a['held_shmem']}) → "
          f"smemcg {b['memcgs_dying']} (file {b['held_file']}, shmem {b['held_shmem']}); pages moved none "
          f"{moved['none']}, smemcg {moved['smemcg']}; {_mib(b['smemcg_bytes'])} in smemcgs, "
          f"{_mib(b['borrowed_bytes'])} borrowed")
    ok = a["held_file"] + a["held_shmem"] >= 1 and b["held_file"] == b["held_shmem"] == 0 and moved["smemcg"] == 0
    rule = ("`none` has zombies held by file or shmem pages on the same churn; smemcg has none, and moves no page "
            "or swap record (the move counters every policy reports stay 0)")
    return Result("smemcg leaves no zombie from shared memory and moves no charge", ev, ok, rule,
                  policies=("smemcg",))


def claim_swap_walk(lab: Lab) -> Result:
    tr = _Trace().job("/a", "a1")
    tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
    tr.end("/a", "a1")
    z = {p: lab.replay(p, tr, swap_bytes=256 * MIB).summary() for p in ("manual_reclaim", "manual_reclaim+swap_walk")}
    w = z["manual_reclaim+swap_walk"]
    ev = (f"swap-only zombie: manual_reclaim {z['manual_reclaim']['memcgs_dying']} zombie(s) (held by swap "
          f"{z['manual_reclaim']['held_swap']}); with swap_walk {w['memcgs_dying']} "
          f"({w['swap_records_reparented']} records reparented)")
    rule = "control: `manual_reclaim` alone keeps the swap-held zombie; composed with swap_walk it is freed"
    ok = z["manual_reclaim"]["held_swap"] == z["manual_reclaim"]["memcgs_dying"] == 1 and w["memcgs_dying"] == 0
    return Result("The swap walk removes zombies held only by swap", ev, ok, rule, policies=("swap_walk",))


CLAIMS: tuple[Callable[[Lab], Result], ...] = (
    claim_accumulate, claim_manual_shared, claim_manual_swap, claim_reparent_hides, claim_reparent_stats,
    claim_reparent_root, claim_reparent_neighbours, claim_evict, claim_mapper_neighbours, claim_mapper_oom,
    claim_mapper_oom_knob, claim_deferred, claim_kmem, claim_smemcg, claim_swap_walk,
)


def evaluate(scale: float = 1.0, noop: frozenset[str] | set[str] = frozenset(),
             only: str | None = None) -> list[Result]:
    """Run every experiment (or the claim named ``only``) at ``scale``, with the ``noop`` policies as `none`."""
    lab = Lab(scale, frozenset(noop))
    out = []
    for fn in CLAIMS:
        name = fn.__name__.removeprefix("claim_")
        if only is None or only == name:
            r = fn(lab)
            r.name = name
            out.append(r)
    return out


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    lines = ["| claim | measured evidence | rule | verdict |", "|---|---|---|---|"]
    for r in results:
        verdict = "holds" if r.holds else "does not hold"
        note = f" — {r.why}" if r.why else ""
        lines.append(f"| {r.claim} | {r.evidence}{note} | {r.rule} | **{verdict}** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Evaluate the claims, print the table, optionally write it to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="size of the churn experiments (1.0 = full)")
    ap.add_argument("--out", help="also write the Markdown table here (atomically)")
    args = ap.parse_args(argv)
    if args.scale <= 0:
        ap.error("--scale must be > 0")
    text = table(evaluate(args.scale))
    print(text, end="")
    if args.out:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
