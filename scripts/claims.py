"""The talk's claims as experiments: one small experiment per claim, measured, with a verdict.

In: ``--scale`` (1.0 = the full experiments; tests use a small scale) and an
optional ``--out`` Markdown file. Out: a table claim → measured evidence →
holds / does not hold, printed (and written atomically with ``--out``).

Each experiment is a short native trace built here (``_Trace``) and replayed
on ``core.machine.Machine`` under the policies it compares; the verdict is a
rule on the measured numbers, stated next to them. A claim the model cannot
reproduce is reported as "does not hold", with why — never forced.

    /work/venv/bin/python scripts/claims.py [--scale 1.0] [--out claims.md]

Claims are from "Reducing Zombie Memcgs" (LSF/MM/BPF 2023, ``../shared/seeds/``)
and KERNEL-MODEL.md §1, §5.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

from core.determinism import peak_spread
from core.events import EventBatch
from core.machine import Machine, MachineConfig
from core.memcontrol import memory_reclaim
from core.ops import Flag, Op
from core.policy import make_policy
from traces.io import atomic_write_text

MIB = 1 << 20
SEC = 1_000_000


@dataclass
class Result:
    """One row of the table."""

    claim: str
    evidence: str
    holds: bool
    why: str = ""


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


def replay(policy: str, tr: _Trace, knobs: dict | None = None, settle_us: int = 120 * SEC, **cfg) -> Machine:
    """Replay ``tr`` on a fresh machine (64 GiB unless told) and let its policy's workers run ``settle_us``."""
    cfg.setdefault("mem_bytes", 64 << 30)
    cfg.setdefault("sample_interval_us", 3600 * SEC)
    m = Machine(MachineConfig(**cfg), make_policy(policy, knobs), machine_id="claims", seed=0)
    m.apply(EventBatch.from_rows(tr.rows, "claims"))
    m.advance_to(tr.t + settle_us)
    return m


def _mib(nbytes: float) -> str:
    return f"{nbytes / MIB:.1f} MiB"


# ------------------------------------------------------------------ experiments
def churn(jobs: int, seed: int = 0) -> _Trace:
    """Jobs one after another (each overlapping the next) that share what containers share.

    Each job reads a random 1 MiB chunk of a 4 GiB shared dataset and one of 16
    libraries (Zipf-like), writes a tmpfs volume that the next job maps, grows
    8 MiB of anon and writes a log that is kept in 20% of the jobs.
    """
    rng = random.Random(seed)
    tr = _Trace()
    tr.op(Op.FILE_CREATE, obj="dataset", nbytes=4096 * MIB)
    for k in range(16):
        tr.op(Op.FILE_CREATE, obj=f"lib{k}", nbytes=4 * MIB)
    for i in range(jobs):
        cg, task = f"/jobs/j{i}", f"t{i}"
        if i == 0:
            tr.op(Op.MKDIR, cgroup="/jobs")
        tr.job(cg, task)
        lib = min(int(rng.paretovariate(1.0)) - 1, 15)
        tr.op(Op.FILE_READ, task=task, obj=f"lib{lib}")
        tr.op(Op.FILE_READ, task=task, obj="dataset", offset=rng.randrange(4096) * MIB, nbytes=MIB)
        tr.op(Op.ANON_ALLOC, task=task, obj=f"heap{i}", nbytes=8 * MIB)
        tr.op(Op.FILE_CREATE, obj=f"vol{i}", flags=Flag.SHMEM).op(Op.FILE_WRITE, task=task, obj=f"vol{i}", nbytes=MIB)
        if i:
            tr.op(Op.FILE_MAP, task=task, obj=f"vol{i - 1}")
        tr.op(Op.FILE_CREATE, obj=f"log{i}").op(Op.FILE_WRITE, task=task, obj=f"log{i}", nbytes=256 * 1024)
        if i:
            tr.end(f"/jobs/j{i - 1}", f"t{i - 1}").op(Op.FILE_DELETE, obj=f"vol{i - 1}")
            if rng.random() >= 0.2:
                tr.op(Op.FILE_DELETE, obj=f"log{i - 1}")
    return tr


def claim_accumulate(scale: float) -> Result:
    jobs = max(int(3000 * scale), 30)
    want = max(int(1000 * scale), 10)
    m = replay("none", churn(jobs))
    s = m.summary()
    before = m.counters["memcgs_visited"]
    memory_reclaim(m, 0, 1)  # one proactive pass on the root: how many memcgs it walks
    visited = m.counters["memcgs_visited"] - before
    ev = (f"{jobs} jobs: {s['memcgs_dying']} zombies (file {s['held_file']}, shmem {s['held_shmem']}), "
          f"{_mib(s['cost_dying_bytes'])} of memcg structures; one root reclaim pass visits {visited} memcgs "
          f"for {s['memcgs_online']} online")
    return Result("Zombies accumulate into the thousands under churn with sharing (`none`)", ev,
                  s["memcgs_dying"] >= want, f"threshold {want} zombies (1000 per 3000 jobs, scaled)")


def _shared_scene(tr: _Trace, swap: bool) -> None:
    """/a writes a tmpfs volume /b maps, reads data /b pins; then /a is removed."""
    tr.job("/a", "a1").job("/b", "b1")
    tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
    tr.op(Op.FILE_MAP, task="b1", obj="vol")
    tr.op(Op.FILE_CREATE, obj="data", nbytes=2 * MIB).op(Op.FILE_READ, task="a1", obj="data")
    tr.op(Op.PIN, task="b1", obj="data")
    tr.end("/a", "a1")


def claim_manual_shared(scale: float) -> Result:
    out = []
    for swap in (0, 256 * MIB):
        tr = _Trace()
        _shared_scene(tr, bool(swap))
        s = replay("manual_reclaim", tr, swap_bytes=swap).summary()
        out.append(s)
        held = f"held shmem {s['held_shmem']} file {s['held_file']} pinned {s['held_pinned']}"
        if not swap:
            ev = f"no swap: zombies {s['memcgs_dying']} ({held}, {_mib(s['zombie_charged_bytes'])})"
        else:
            ev += f"; with swap: zombies {s['memcgs_dying']} ({held}, {_mib(s['zombie_charged_bytes'])})"
    ok = all(s["memcgs_dying"] == 1 and s["zombie_charged_bytes"] == 6 * MIB for s in out)
    return Result("Manual reclaim cannot remove zombies held by shared-in-use or pinned memory", ev, ok,
                  "the mapped volume is referenced (mapped_hot) and the pinned file is unreclaimable")


def claim_manual_swap(scale: float) -> Result:
    tr = _Trace().job("/a", "a1")
    tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
    tr.end("/a", "a1")
    s = replay("manual_reclaim", tr, swap_bytes=256 * MIB).summary()
    ev = (f"tmpfs written then memory.reclaim before rmdir: zombies {s['memcgs_dying']}, held by swap "
          f"{s['held_swap']}, charged {_mib(s['zombie_charged_bytes'])}, swap {_mib(s['zombie_swap_bytes'])}, "
          f"IDs in use {s['ids_in_use']}")
    return Result("Manual reclaim with swap leaves zombies held by swap records", ev,
                  s["held_swap"] == 1 and s["zombie_charged_bytes"] == 0)


def _pod_lib(tr: _Trace) -> _Trace:
    tr.op(Op.MKDIR, cgroup="/pod").job("/pod/a", "a1").op(Op.FILE_CREATE, obj="lib", nbytes=8 * MIB)
    return tr.op(Op.FILE_READ, task="a1", obj="lib").end("/pod/a", "a1")


def claim_reparent_hides(scale: float) -> Result:
    res = {}
    for pol in ("none", "reparent"):
        m = replay(pol, _pod_lib(_Trace()))
        res[pol] = (m.summary(), m.mem.own_pages(m.mem.by_path["/pod"]) * 4096)
    (sn, on), (sr, orp) = res["none"], res["reparent"]
    ev = (f"none: {sn['memcgs_dying']} zombie holding {_mib(sn['zombie_charged_bytes'])}, parent owns "
          f"{_mib(on)}; reparent: {sr['memcgs_dying']} zombies, parent owns {_mib(orp)}, "
          f"misattributed {_mib(sr['misattributed_bytes'])}")
    return Result("Reparenting hides zombie memory in the parent", ev,
                  sr["memcgs_dying"] == 0 and orp == 8 * MIB and sr["misattributed_bytes"] == 8 * MIB)


def claim_reparent_stats(scale: float) -> Result:
    own = {}
    for pol in ("none", "reparent"):
        tr = _pod_lib(_Trace()).op(Op.RECLAIM, cgroup="/pod", nbytes=8 * MIB)
        m = replay(pol, tr)
        p = m.mem.by_path["/pod"]
        own[pol] = (m.mem.pgscan[p], m.mem.pgsteal[p])
    ev = (f"after memory.reclaim on the parent, its own pgscan/pgsteal: none {own['none'][0]}/{own['none'][1]}, "
          f"reparent {own['reparent'][0]}/{own['reparent'][1]} pages")
    return Result("Reparenting inflates the parent's reclaim stats (pgscan/pgsteal)", ev,
                  own["reparent"][1] > 0 and own["none"][1] == 0)


def claim_reparent_root(scale: float) -> Result:
    tr = _Trace().op(Op.MKDIR, cgroup="/a").op(Op.MKDIR, cgroup="/a/b").job("/a/b/c", "t")
    tr.op(Op.FILE_CREATE, obj="f", nbytes=4 * MIB).op(Op.FILE_READ, task="t", obj="f").end("/a/b/c", "t")
    tr.op(Op.RMDIR, cgroup="/a/b").op(Op.RMDIR, cgroup="/a")
    s = replay("reparent", tr).summary()
    ev = (f"/a/b/c, /a/b, /a removed in turn: root owns {_mib(s['root_charged_bytes'])}, "
          f"zombies {s['memcgs_dying']}")
    return Result("Reparenting can walk up to the root, where memory is unowned", ev,
                  s["root_charged_bytes"] == 4 * MIB)


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


def spreads(policies: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Per policy, the peak bytes of /job in the four neighbour placements."""
    return {p: peak_spread([replay(p, neighbour_runs(v)).job_table() for v in range(4)], "/job").peaks
            for p in policies}


def _fmt_spread(peaks: dict[str, tuple[int, ...]], pol: str) -> str:
    p = peaks[pol]
    return f"{pol} {'/'.join(f'{x / MIB:.0f}' for x in p)} MiB (spread {_mib(max(p) - min(p))})"


def claim_reparent_neighbours(scale: float) -> Result:
    peaks = spreads(("none", "reparent", "smemcg"))
    sp = {k: max(v) - min(v) for k, v in peaks.items()}
    ev = ("peak of the same job with 4 neighbour placements: "
          + "; ".join(_fmt_spread(peaks, p) for p in ("reparent", "none", "smemcg")))
    why = ("first touch already makes the bill depend on neighbours under `none`; in the model reparenting "
           "adds nothing to it (no memory pressure to tell the parent's LRU from a zombie's)"
           if sp["reparent"] <= sp["none"] else "reparenting adds to first-touch nondeterminism")
    return Result("Reparenting makes a job's memory use depend on its neighbours", ev, sp["reparent"] > 0, why)


def claim_evict(scale: float) -> Result:
    out = {}
    for pinned in (False, True):
        tr = _Trace().job("/a", "a1").job("/b", "b1").op(Op.FILE_CREATE, obj="f", nbytes=4 * MIB)
        tr.op(Op.FILE_READ, task="a1", obj="f")
        if pinned:
            tr.op(Op.PIN, task="b1", obj="f")
        tr.end("/a", "a1").op(Op.FILE_READ, task="b1", obj="f")
        for pol in ("none", "recharge_evict"):
            m = replay(pol, tr)
            out[(pinned, pol)] = (m.summary()["memcgs_dying"], m.counters["refaults"])
    ev = (f"unmapped file: zombies none {out[(False, 'none')][0]} → evict {out[(False, 'recharge_evict')][0]} "
          f"(refaults caused {out[(False, 'recharge_evict')][1]} pages); pinned file: none "
          f"{out[(True, 'none')][0]} → evict {out[(True, 'recharge_evict')][0]}")
    ok = out[(False, "recharge_evict")][0] == 0 < out[(False, "none")][0] and out[(True, "recharge_evict")][0] == 1
    return Result("Eviction helps file pages but not pinned ones", ev, ok)


def _limited(on_limit: str) -> Machine:
    tr = _Trace().job("/a", "a1").op(Op.MKDIR, cgroup="/b").op(Op.SET_LIMIT, cgroup="/b", nbytes=20 * MIB,
                                                               flags=Flag.MAX)
    tr.op(Op.TASK_START, cgroup="/b", task="b1").op(Op.FILE_CREATE, obj="so", nbytes=8 * MIB)
    tr.op(Op.FILE_MAP, task="a1", obj="so").op(Op.FILE_MAP, task="b1", obj="so")
    tr.op(Op.ANON_ALLOC, task="b1", obj="heap", nbytes=16 * MIB).end("/a", "a1")
    return replay("recharge_mapper", tr, {"recharge_mapper": {"on_limit": on_limit}})


def claim_mapper(scale: float) -> Result:
    peaks = spreads(("recharge_mapper",))
    oom, retry = _limited("oom"), _limited("retry")
    ev = (f"{_fmt_spread(peaks, 'recharge_mapper')}; under a 20 MiB limit with 16 MiB anon, a dead neighbour's "
          f"8 MiB .so: on_limit=oom → {oom.counters['policy_oom_kills']} OOM kill(s) in the mapper, "
          f"retry → {retry.counters['recharge_failed'] // 2048} refused attempts, 0 kills, zombie kept "
          f"{retry.summary()['memcgs_dying']}")
    p = peaks["recharge_mapper"]
    return Result("Direct recharge to a mapper causes nondeterministic charges and OOM kills under limits", ev,
                  max(p) > min(p) and oom.counters["policy_oom_kills"] > 0)


def claim_deferred(scale: float) -> Result:
    jobs = max(int(300 * scale), 20)
    work = {p: replay(p, churn(jobs)).counters for p in ("none", "recharge_deferred")}
    d = work["recharge_deferred"]
    ev = (f"{jobs}-job churn: access-path page checks none {work['none']['access_path_work']}, deferred "
          f"{d['access_path_work']}; recharged on access {d['recharged_pages']} pages, parked "
          f"{d['reparented_pages']}")
    return Result("Deferred recharge adds work on the access path", ev,
                  d["access_path_work"] > 0 == work["none"]["access_path_work"])


def claim_kmem(scale: float) -> Result:
    held = {}
    for kernel in ("5.10", "6.12"):
        tr = _Trace().op(Op.MKDIR, cgroup="/p").job("/p/a", "t")
        tr.op(Op.KMEM_ALLOC, task="t", obj="stack", nbytes=16 * 1024, flags=Flag.PAGE)
        tr.op(Op.KMEM_ALLOC, task="t", obj="dentries", nbytes=64 * 1024, flags=Flag.SLAB)
        tr.op(Op.TASK_MOVE, cgroup="/p", task="t").op(Op.RMDIR, cgroup="/p/a")
        held[kernel] = replay("none", tr, kernel=kernel).summary()["held_kmem"]
    ev = f"kmem left charged to a removed memcg: kmem zombies on 5.10 {held['5.10']}, on 6.12 {held['6.12']}"
    return Result("Kernel memory is already reparented (no kmem zombies on ≥ 5.13)", ev,
                  held["6.12"] == 0 and held["5.10"] == 1)


def claim_smemcg(scale: float) -> Result:
    jobs = max(int(300 * scale), 20)
    s = {p: replay(p, churn(jobs)) for p in ("none", "smemcg")}
    a, b = s["none"].summary(), s["smemcg"].summary()
    moved = b["recharged_pages"] + b["reparented_pages"] + b["swap_records_reparented"]
    ev = (f"{jobs}-job churn: zombies none {a['memcgs_dying']} (file {a['held_file']}, shmem {a['held_shmem']}) → "
          f"smemcg {b['memcgs_dying']} (file {b['held_file']}, shmem {b['held_shmem']}); pages moved {moved}; "
          f"{_mib(b['smemcg_bytes'])} in smemcgs, {_mib(b['borrowed_bytes'])} borrowed")
    return Result("smemcg leaves no zombie from shared memory and moves no charge", ev,
                  b["held_file"] == b["held_shmem"] == 0 and moved == 0)


def claim_swap_walk(scale: float) -> Result:
    tr = _Trace().job("/a", "a1")
    tr.op(Op.FILE_CREATE, obj="vol", flags=Flag.SHMEM).op(Op.FILE_WRITE, task="a1", obj="vol", nbytes=4 * MIB)
    tr.end("/a", "a1")
    z = {p: replay(p, tr, swap_bytes=256 * MIB).summary() for p in ("manual_reclaim", "manual_reclaim+swap_walk")}
    ev = (f"swap-only zombie: manual_reclaim {z['manual_reclaim']['memcgs_dying']} zombie(s); with swap_walk "
          f"{z['manual_reclaim+swap_walk']['memcgs_dying']} ({z['manual_reclaim+swap_walk']['swap_records_reparented']}"
          f" records reparented)")
    return Result("The swap walk removes zombies held only by swap", ev,
                  z["manual_reclaim"]["memcgs_dying"] == 1 and z["manual_reclaim+swap_walk"]["memcgs_dying"] == 0)


CLAIMS: tuple[Callable[[float], Result], ...] = (
    claim_accumulate, claim_manual_shared, claim_manual_swap, claim_reparent_hides, claim_reparent_stats,
    claim_reparent_root, claim_reparent_neighbours, claim_evict, claim_mapper, claim_deferred, claim_kmem,
    claim_smemcg, claim_swap_walk,
)


def evaluate(scale: float = 1.0) -> list[Result]:
    """Run every experiment at ``scale`` (sizes of the churn experiments)."""
    return [fn(scale) for fn in CLAIMS]


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    lines = ["| claim | measured evidence | verdict |", "|---|---|---|"]
    for r in results:
        verdict = "holds" if r.holds else "does not hold"
        note = f" — {r.why}" if r.why else ""
        lines.append(f"| {r.claim} | {r.evidence}{note} | **{verdict}** |")
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
