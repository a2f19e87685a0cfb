"""Rule mutations of the model: does the test suite notice when a kernel rule is broken?

In: a curated list of mutations, at least one per rule class of docs/model.md, each a
one-place edit of a ``core/`` source that breaks one modelled kernel rule. Out: for each,
the default tests that failed with it applied, up to the first five (run on a scratch copy of
the repository, pure build); a markdown table with ``--markdown FILE`` (docs/mutations.md). Exit 1 when some
mutation is caught by no test. Nothing in the checkout is modified.

    python scripts/mutations.py [--markdown docs/mutations.md] [--only NAME ...] [-k PYTEST_EXPR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the default tests that exercise the model (the rest test traces and the replay stack)
#: (fastest first: a run stops after ``MAXFAIL`` failures)
TESTS = ("tests/test_core_scenarios.py", "tests/test_kernel_records.py", "tests/test_goldens.py",
         "tests/test_policies_recharge.py", "tests/test_policies_reclaim.py", "tests/test_policies_reparent.py",
         "tests/test_policies_smemcg.py", "tests/test_lifecycle_properties.py", "tests/test_core_properties.py",
         "tests/test_policies_properties.py", "tests/test_core_fastpath_ids.py", "tests/test_core_fastpath_runs.py",
         "tests/test_claims.py")
MAXFAIL = 5  #: failures after which a mutation's run stops (it is caught; the table lists these)


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``path``: breaks ``rule``."""

    name: str
    rule_class: str  #: the section of docs/model.md the rule belongs to
    rule: str
    path: str
    old: str
    new: str


MUTATIONS = (
    Mutation("file_pages_do_not_hold", "Life cycle", "a dying memcg is freed while page cache is charged to it",
             "core/memcg.py", "self.anon[m] or self.file[m] or", "self.anon[m] or"),
    Mutation("swap_records_do_not_hold", "Life cycle", "swap entries do not keep a removed memcg alive",
             "core/memcg.py", "self.shmem[m] or self.swap[m]", "self.shmem[m]"),
    Mutation("swapin_charges_the_accessor", "Charging",
             "swap-in charges the faulting task even when the recorded memcg is online",
             "core/policy.py", "return record if machine.mem.state[record] == State.ONLINE else memcg",
             "return memcg"),
    Mutation("refaults_not_counted", "Charging", "a refault does not count as the accessor's refault",
             "core/memory.py", "        machine.mem.count_refault(memcg, n)\n", ""),
    Mutation("memory_max_ignored", "Charging", "a charge over memory.max neither reclaims nor OOM-kills",
             "core/memcontrol.py", "while x >= 0 and usage[x] + n <= mx[x]:", "while x >= 0:"),
    Mutation("oom_kills_the_smallest", "Charging", "the OOM killer picks the smallest task",
             "core/oom_kill.py", "if best < 0 or k < key:", "if best < 0 or k > key:"),
    Mutation("no_oom_reaper_hold", "Charging", "the OOM reaper does not hold its victim's memcg (v5.18+)",
             "core/oom_kill.py", "if machine.kernel.at_least(5, 18):", "if False:"),
    Mutation("memory_high_never_reclaims", "Charging", "memory.high is never reclaimed",
             "core/memcontrol.py", "    for h in machine.mem.over_high(m):", "    for h in ():"),
    Mutation("swapoff_charges_the_record", "Charging", "swapoff charges a dying record's memcg, not the caller",
             "core/swapfile.py", "tgt = rec if mem.state[rec] == _ONLINE else caller", "tgt = rec"),
    Mutation("zombies_not_scraped", "Reclaim", "reclaim scans a dying memcg like a live one (no scrape)",
             "core/vmscan.py", "dying = np.array([machine.mem.state[m] == State.DYING for m in sub.tolist()], dtype=bool)",
             "dying = np.zeros(len(sub), dtype=bool)"),
    Mutation("pinned_pages_reclaimed", "Reclaim", "pinned and mlocked pages are reclaimed",
             "core/vmscan.py", "ok = (state == St.RESIDENT) & (pinc == 0)", "ok = state == St.RESIDENT"),
    Mutation("mapped_pages_reclaimed", "Reclaim", "mapped page cache of live mappers is reclaimed (mapped_hot)",
             "core/vmscan.py", "        ok &= ~((mapc > 0) & (kind != Kind.ANON))\n", "        pass\n"),
    Mutation("swap_record_names_the_dying", "Reclaim", "swap-out records the memcg itself, dying or not",
             "core/vmscan.py", "rec = machine.mem.nearest_online(R.memcg[r])", "rec = R.memcg[r]"),
    Mutation("memcg_reclaim_abort_from_117", "Reclaim", "MGLRU memcg reclaim stops at its target from 6.12.117 (D12)",
             "core/kernel.py", "self.patch >= 118", "self.patch >= 117"),
    Mutation("cgwb_never_pins", "Writeback and swap slots", "a dirty inode's cgwb does not pin the dying memcg",
             "core/fs_writeback.py", "if any(inode_dirty(machine, o) for o in inodes):", "if False:"),
    Mutation("no_swap_slot_cache", "Writeback and swap slots", "freed swap slots are released at once",
             "core/swap_slots.py",
             "return machine.slot_cache_enabled and machine.swap_total >= machine.cfg.cpus * THRESHOLD_ACTIVATE",
             "return False"),
    Mutation("slab_reparented_late", "Kernel memory", "slab objects are reparented only from v6.2 (not v5.9)",
             "core/kernel.py", "return self.at_least(5, 9)", "return self.at_least(6, 2)"),
    Mutation("percpu_cost_off_by_one", "Cost", "6.1's percpu bytes per CPU are 1297, not 1296",
             "core/kernel.py", "(6, 1): (1296, 688,", "(6, 1): (1297, 688,"),
)


def apply(tree: Path, m: Mutation) -> None:
    """Edit ``tree``'s copy of ``m.path``; ValueError when ``m.old`` is not there exactly once."""
    p = tree / m.path
    text = p.read_text()
    if text.count(m.old) != 1:
        raise ValueError(f"{m.name}: the text to mutate occurs {text.count(m.old)} times in {m.path}")
    p.write_text(text.replace(m.old, m.new))


def failed_tests(tree: Path, tests: tuple[str, ...], expr: str | None) -> tuple[list[str], float]:
    """Run ``tests`` in ``tree`` (pure build); the ids of the tests that failed, and the seconds taken."""
    env = dict(os.environ, MEMCG_REPLAY_PURE="1", PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--timeout", "600",
           f"--maxfail={MAXFAIL}",
           *[t for t in tests if (tree / t).exists()]]
    if expr:
        cmd += ["-k", expr]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)
    return failed, time.perf_counter() - t0


def scratch_copy() -> Path:
    """The checkout's tracked files, in a temporary directory (no compiled modules)."""
    dst = Path(tempfile.mkdtemp(prefix="mutations-"))
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst / f)
    return dst


def markdown(rows: list[tuple[Mutation, list[str]]]) -> str:
    """The table of docs/mutations.md."""
    out = ["| mutation | rule class | what it breaks | tests that failed |", "|---|---|---|---|"]
    for m, failed in rows:
        names = sorted({f.split("::")[0].removeprefix("tests/") for f in failed})
        n = f"{len(failed)}+" if len(failed) >= MAXFAIL else str(len(failed))
        caught = f"{n} ({', '.join(names)})" if failed else "**none: not caught**"
        out.append(f"| `{m.name}` | {m.rule_class} | {m.rule} (`{m.path}`) | {caught} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every mutation (or ``--only`` some); print the table; 1 if one is not caught."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="run only this mutation (repeatable)")
    ap.add_argument("--markdown", help="write the table to this file")
    ap.add_argument("-k", dest="expr", help="pytest -k expression narrowing the tests")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    tree = scratch_copy()
    rows = []
    try:
        for m in chosen:
            original = (tree / m.path).read_text()
            apply(tree, m)
            try:
                failed, secs = failed_tests(tree, TESTS, args.expr)
            finally:
                (tree / m.path).write_text(original)
            rows.append((m, failed))
            print(f"{m.name:32} {len(failed):4} failed  ({secs:.0f} s)", flush=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    table = markdown(rows)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0 if all(f for _, f in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
