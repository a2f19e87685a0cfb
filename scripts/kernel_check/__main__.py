"""`python -m scripts.kernel_check`: validate the model against a real kernel.

In: argv — scenario names (default: every tests/kernel_scenarios/*.csv),
``--kernel`` series (6.1 and/or 6.12), ``--accel``, ``--cache``,
``--markdown FILE`` (write the agreement table there, atomically).
Out: on stdout, the per-step diff of every scenario that disagrees (or of
all with ``--steps``) and the agreement table; exit status 0 if every
scenario agrees, 1 if any disagrees, 2 if the VM could not run.

Fetches what it needs (apt) into the cache on first use; nothing touches the
host's own cgroup hierarchy — every cgroup operation happens inside the VM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scripts.kernel_check.parse import VmOutputError
from scripts.kernel_check.run import markdown_table, run_suite, scenario_paths, text_table
from traces.io import atomic_write_text


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m scripts.kernel_check", description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", help="scenario names or CSV paths (default: the whole suite)")
    p.add_argument("--kernel", action="append", choices=("6.1", "6.12"),
                   help="Debian cloud kernel series; repeat for several (default 6.1)")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--cache", type=Path, default=None, help="download/build cache directory")
    p.add_argument("--jobs", type=int, default=None, help="parallel VMs (default: one per core)")
    p.add_argument("--steps", action="store_true", help="print the per-step table of every scenario")
    p.add_argument("--markdown", type=Path, default=None, help="write the agreement table (Markdown) here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 = all agree, 1 = some disagree, 2 = the VM failed."""
    args = build_parser().parse_args(argv)
    paths, results = scenario_paths(args.scenarios), []
    for series in args.kernel or ["6.1"]:
        start = time.monotonic()
        try:
            results += run_suite(paths, series, cache=args.cache, accel=args.accel, jobs=args.jobs)
        except VmOutputError as exc:
            print(f"kernel {series}: {exc}", file=sys.stderr)
            return 2
        print(f"# kernel {series}: {len(paths)} scenarios in {time.monotonic() - start:.1f} s "
              f"(accel {results[-1].accel})", file=sys.stderr)
    for r in results:
        if args.steps or not r.agrees:
            print(f"\n== {r.name} on {r.release} ({r.seconds:.1f} s boot)\n{r.table()}")
    print("\n" + text_table(results))
    if args.markdown:
        atomic_write_text(args.markdown, markdown_table(results))
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
