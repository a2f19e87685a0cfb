"""`python -m scripts.kernel_check`: validate the model against a real kernel.

In: argv — scenario names (default: every tests/kernel_scenarios/*.csv),
``--kernel`` (a series, 6.1 or 6.12, meaning the build Debian ships today, or an
exact image package such as linux-image-6.12.117+deb12-cloud-amd64; repeat for
several), ``--accel``, ``--cache``, ``--markdown FILE`` (write the agreement
table there, atomically), ``--record`` (write what each build showed to
tests/kernel_records/<build>/ and report the drift from the build recorded before),
``--replay`` (no VM: the model against the committed records instead of a boot),
``--batch`` (the scenarios in shared boots, ``--per-boot`` at a time, reset between them),
``--random N --seed S`` (N random traces instead of the scenarios, scripts/kernel_check/randomized.py:
compared step by step, a disagreement shrunk and saved under tests/kernel_scenarios/),
``--cost`` (no scenarios: bytes per zombie memcg measured for each kernel and ``--cpus``
count, ``--zombies`` per boot, against the model's cost, scripts/kernel_check/cost.py;
``--record`` saves them under tests/kernel_scenarios/cost/),
``--then SHELL`` (repeatable; one scenario: boot it with each SHELL as an extra step after its
last row and print the dying cgroups after each, scripts/kernel_check/probe.py).
Out: on stdout, the per-step diff of every scenario that disagrees (or of
all with ``--steps``), the agreement table naming each exact build (uname -r
and package version), and with ``--record`` the drift report; exit status 0 if
every scenario agrees, 1 if any disagrees, 2 if the VM could not run (or,
with ``--replay``, no record matched).

Fetches what it needs (apt) into the cache on first use; nothing touches the
host's own cgroup hierarchy — every cgroup operation happens inside the VM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scripts.kernel_check.parse import VmOutputError
from scripts.kernel_check.records import RECORD_DIR, load_records, refresh, replay
from scripts.kernel_check.run import markdown_table, run_suite, scenario_paths, text_table
from traces.io import atomic_write_text


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m scripts.kernel_check", description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", help="scenario names or CSV paths (default: the whole suite)")
    p.add_argument("--kernel", action="append",
                   help="Debian cloud kernel: series 6.1 or 6.12 (today's build), or an image package "
                        "name (linux-image-...-cloud-amd64); repeat for several (default 6.1)")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--cache", type=Path, default=None, help="download/build cache directory")
    p.add_argument("--jobs", type=int, default=None, help="parallel VMs (default: one per core)")
    p.add_argument("--steps", action="store_true", help="print the per-step table of every scenario")
    p.add_argument("--markdown", type=Path, default=None, help="write the agreement table (Markdown) here")
    p.add_argument("--record", nargs="?", type=Path, const=RECORD_DIR, default=None, metavar="DIR",
                   help=f"write each build's observations under DIR (default {RECORD_DIR}) and report drift")
    p.add_argument("--replay", nargs="?", type=Path, const=RECORD_DIR, default=None, metavar="DIR",
                   help=f"no VM: compare the model with the records under DIR (default {RECORD_DIR}), "
                        "every recorded build, or those of --kernel (series or package)")
    p.add_argument("--batch", action="store_true",
                   help="run the scenarios in shared boots (--per-boot at a time, reset between them) "
                        "instead of one boot each")
    p.add_argument("--random", type=int, default=None, metavar="N",
                   help="run N random traces (scripts/kernel_check/randomized.py) instead of the scenarios; "
                        "each disagreement is shrunk and saved under tests/kernel_scenarios/")
    p.add_argument("--seed", type=int, default=0, help="seed of the random traces (default 0)")
    p.add_argument("--start", type=int, default=0, help="index of the first random trace (default 0)")
    p.add_argument("--per-boot", type=int, default=10, help="random traces per VM boot (default 10)")
    p.add_argument("--random-steps", type=int, default=24, help="rows of a random trace before its "
                   "closing task exits and rmdirs (default 24)")
    p.add_argument("--save", type=Path, default=None, metavar="DIR",
                   help="with --random: keep every trace and what the kernel showed of it under "
                        "DIR/<build>/ (a record per trace), for --replay-saved")
    p.add_argument("--replay-saved", type=Path, default=None, metavar="DIR",
                   help="no VM: the model against the random traces saved under DIR (--save), every "
                        "build or those of --kernel")
    p.add_argument("--shrink-rounds", type=int, default=6,
                   help="boots spent shrinking each disagreement (0: do not shrink or save)")
    p.add_argument("--then", action="append", default=None, metavar="SHELL",
                   help="one scenario: run SHELL (init's shell, e.g. 'sleep 30; kc_drop_caches 3') as an "
                        "extra step after its last row, repeatable; prints the dying cgroups after each")
    p.add_argument("--cost", action="store_true",
                   help="measure the bytes per zombie memcg (percpu, slab, vmalloc) instead of the scenarios")
    p.add_argument("--cpus", default="1,2,4", help="--cost: possible CPU counts, comma-separated (default 1,2,4)")
    p.add_argument("--zombies", type=int, default=8000, help="--cost: zombies per boot (default 8000)")
    p.add_argument("--nodes", type=int, default=1, help="--cost: NUMA nodes of the VM (default 1)")
    return p


def random_main(args: argparse.Namespace) -> int:
    """``--random N``: random traces on each kernel; 0 = all agree, 1 = some disagree."""
    from scripts.kernel_check.randomized import run_random

    status = 0
    for kernel in args.kernel or ["6.1"]:
        try:
            summary, results = run_random(args.random, args.seed, kernel, cache=args.cache, accel=args.accel,
                                          per_boot=args.per_boot, steps=args.random_steps,
                                          shrink_rounds=args.shrink_rounds, start=args.start,
                                          save=args.save)
        except VmOutputError as exc:
            print(f"kernel {kernel}: {exc}", file=sys.stderr)
            return 2
        for r in results:
            if args.steps or not r.agrees:
                print(f"\n== {r.name} on {r.build} (model kernel {r.kernel})\n{r.table()}")
        print("\n" + summary.line())
        for name, path in summary.shrunk.items():
            print(f"  {name} -> {path}")
        if args.markdown:
            atomic_write_text(args.markdown, markdown_table(results))
        status = max(status, 0 if not summary.disagreeing else 1)
    return status


def replay_saved_main(args: argparse.Namespace) -> int:
    """``--replay-saved DIR``: the model against saved random traces; a summary line per build. A
    disagreeing trace not in ``known.RANDOM_KNOWN`` gets a line "suggested group: X" (``known.suggest_group``)."""
    from scripts.kernel_check.known import RANDOM_KNOWN, suggest_group
    from scripts.kernel_check.randomized import replay_saved

    results = replay_saved(args.replay_saved, args.kernel)
    if not results:
        print(f"no saved random traces under {args.replay_saved}", file=sys.stderr)
        return 2
    for r in results:
        if args.steps or not r.agrees:
            print(f"\n== {r.name} on {r.build} (saved, model kernel {r.kernel})\n{r.table()}")
            if not r.agrees:
                print(f"listed: {RANDOM_KNOWN[r.name]}" if r.name in RANDOM_KNOWN
                      else f"suggested group: {suggest_group(r) or 'none (no rule matches)'}")
    by_build: dict[str, list] = {}
    for r in results:
        by_build.setdefault(r.build, []).append(r)
    for build, rs in by_build.items():
        bad = [r.name for r in rs if not r.agrees]
        print(f"saved {build}: {len(rs)} traces, {sum(len(r.steps) for r in rs)} steps and "
              f"{sum(len(r.checks) for r in rs)} checks compared, {len(rs) - len(bad)} agree, "
              f"{len(bad)} disagree" + (f": {' '.join(bad)}" if bad else ""))
    if args.markdown:
        atomic_write_text(args.markdown, markdown_table(results))
    return 0 if all(r.agrees for r in results) else 1


def probe_main(args: argparse.Namespace) -> int:
    """``--then SHELL ...``: one scenario's end state probed on each kernel; 2 if the VM failed."""
    from scripts.kernel_check.probe import probe

    if len(args.scenarios) != 1:
        print("--then probes one scenario: name exactly one", file=sys.stderr)
        return 2
    paths = scenario_paths(args.scenarios)
    for kernel in args.kernel or ["6.1"]:
        try:
            print(probe(paths[0], args.then, kernel, cache=args.cache, accel=args.accel).table() + "\n")
        except VmOutputError as exc:
            print(f"kernel {kernel}: {exc}", file=sys.stderr)
            return 2
    return 0


def replay_records(args: argparse.Namespace, paths: list[Path]) -> list:
    """The model against recorded boots (the default test's comparison), filtered like a live run."""
    wanted = {p.stem for p in paths}
    recs = [r for r in load_records(args.replay) if r.scenario in wanted]
    if args.kernel:
        recs = [r for r in recs if r.build.named_by(args.kernel)]
    return [replay(r) for r in recs]


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 = all agree, 1 = some disagree, 2 = the VM failed."""
    args = build_parser().parse_args(argv)
    if args.cost:
        from scripts.kernel_check.cost import COST_DIR, cost_main

        save_dir = (COST_DIR if args.record == RECORD_DIR else args.record) if args.record else None
        return cost_main(args.kernel or ["6.1"], [int(c) for c in args.cpus.split(",")], args.zombies,
                         args.cache, args.accel, save_dir, args.markdown, args.nodes)
    if args.replay_saved is not None:
        return replay_saved_main(args)
    if args.random is not None:
        return random_main(args)
    if args.then:
        return probe_main(args)
    paths, results = scenario_paths(args.scenarios), []
    if args.replay:
        results = replay_records(args, paths)
        if not results:
            print(f"no records under {args.replay} for these scenarios and kernels", file=sys.stderr)
            return 2
    for kernel in [] if args.replay else args.kernel or ["6.1"]:
        start = time.monotonic()
        try:
            if args.batch:
                from scripts.kernel_check.randomized import run_scenarios_batched

                results += run_scenarios_batched(paths, kernel, cache=args.cache, accel=args.accel,
                                                 per_boot=args.per_boot)
            else:
                results += run_suite(paths, kernel, cache=args.cache, accel=args.accel, jobs=args.jobs)
        except VmOutputError as exc:
            print(f"kernel {kernel}: {exc}", file=sys.stderr)
            return 2
        print(f"# kernel {kernel} = {results[-1].build}: {len(paths)} scenarios in "
              f"{time.monotonic() - start:.1f} s (accel {results[-1].accel}, model kernel "
              f"{results[-1].kernel})", file=sys.stderr)
    for r in results:
        if args.steps or not r.agrees:
            how = "recorded" if args.replay else f"{r.seconds:.1f} s boot"
            print(f"\n== {r.name} on {r.build} ({how}, model kernel {r.kernel})\n{r.table()}")
    print("\n" + text_table(results))
    if args.markdown:
        atomic_write_text(args.markdown, markdown_table(results))
    if args.record and not args.replay:
        report = refresh(results, paths, args.record)
        print(f"\n# records written under {args.record}\n" + (report or "no earlier records to compare"))
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
