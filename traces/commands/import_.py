"""`python -m traces import SOURCE ... --out FILE`: public trace -> native trace.

In: the raw files of one source (Google 2011, Google 2019, Alibaba 2018) and the
import assumptions as options. Out: the native trace (Parquet or CSV by
suffix), ``FILE.report.json`` (every row read / imported / rejected / skipped,
machines and their memory) and, with ``--lenient``, ``FILE.rejects.csv``.
Exit status 0, or 1 when the input has a bad row (strict mode) and nothing is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import replace

from core.errors import TraceError
from traces.importers.common import write_json
from traces.importers.emit import ProfileParams
from traces.importers.sharing import describe, parse_rules, parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `import` verb with one sub-verb per source."""
    p = subparsers.add_parser("import", help="import a public production trace",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sources = p.add_subparsers(dest="source", required=True)
    _google2011(sources)
    _google2019(sources)
    _alibaba2018(sources)


def _common(p: argparse.ArgumentParser, machine_bytes: str) -> None:
    p.add_argument("--out", required=True, help="native trace to write (.parquet, .csv, .csv.gz)")
    p.add_argument("--machine-bytes", default=machine_bytes,
                   help=f"bytes of a machine with normalised memory 1.0 (default {machine_bytes})")
    p.add_argument("--share", action="append", metavar="RULE=off|SIZE[:MAPPED]",
                   help="change a sharing rule (job_image, user_libs, pod_tmpfs); repeatable")
    p.add_argument("--min-change", default="1MiB", help="smallest memory change turned into an event")
    p.add_argument("--mapped-fraction", type=float, default=0.3,
                   help="share of a task's own page cache that is mmapped when the trace has no split")
    p.add_argument("--delete-private-cache", action="store_true",
                   help="unlink each task's private cache file at exit (default: keep, so it can linger)")
    p.add_argument("--no-job-parent", action="store_true", help="no per-job parent cgroup")
    p.add_argument("--no-machine-markers", action="store_true", help="no sync marker per machine-add row")
    p.add_argument("--lenient", action="store_true", help="quarantine bad rows to FILE.rejects.csv instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _google2011(sources: argparse._SubParsersAction) -> None:
    p = sources.add_parser("google2011", help="Google ClusterData 2011 (v2.1 CSV)")
    p.add_argument("--task-events", nargs="+", required=True, help="task_events part files")
    p.add_argument("--machine-events", help="machine_events file")
    p.add_argument("--task-usage", nargs="*", default=[], help="task_usage part files")
    p.add_argument("--anon-fraction", type=float, default=0.5, help="anon = fraction x request without usage")
    p.add_argument("--cache-fraction", type=float, default=0.25, help="page cache = fraction x request without usage")
    _common(p, "64GiB")
    p.set_defaults(func=_run_google2011)


def _google2019(sources: argparse._SubParsersAction) -> None:
    p = sources.add_parser("google2019", help="Google ClusterData 2019 (v3 JSON shards)")
    p.add_argument("--instance-events", nargs="*", default=[], help="instance_events shards")
    p.add_argument("--machine-events", nargs="*", default=[], help="machine_events shards")
    p.add_argument("--instance-usage", nargs="*", default=[], help="instance_usage shards")
    p.add_argument("--usage-excludes-cache", action="store_true",
                   help="average_usage.memory does not include page_cache_memory (UNVERIFIED either way)")
    _common(p, "64GiB")
    p.set_defaults(func=_run_google2019)


def _alibaba2018(sources: argparse._SubParsersAction) -> None:
    p = sources.add_parser("alibaba2018", help="Alibaba cluster-trace-v2018 (CSV)")
    p.add_argument("--machine-meta", help="machine_meta.csv")
    p.add_argument("--container-meta", nargs="*", default=[], help="container_meta.csv")
    p.add_argument("--batch-instance", nargs="*", default=[], help="batch_instance.csv")
    p.add_argument("--machine-usage", nargs="*", default=[], help="machine_usage.csv (background memory)")
    p.add_argument("--container-interval", type=int, default=300,
                   help="seconds after a container's last snapshot row at which it exits")
    p.add_argument("--background-fraction", type=float, default=0.0,
                   help="replay fraction x machine_usage memory as a background cgroup (0 = off)")
    _common(p, "96GiB")
    p.set_defaults(func=_run_alibaba2018)


def _progress(args: argparse.Namespace):
    if args.quiet:
        return None
    t0 = time.monotonic()
    return lambda msg: print(f"[{time.monotonic() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def _shared(args: argparse.Namespace) -> dict:
    return {
        "machine_bytes": parse_size(args.machine_bytes),
        "job_parent": not args.no_job_parent,
        "machine_markers": not args.no_machine_markers,
        "rules": parse_rules(args.share),
        "profile": ProfileParams(min_change_bytes=parse_size(args.min_change),
                                 mapped_fraction=args.mapped_fraction,
                                 delete_private_at_exit=args.delete_private_cache),
    }


def _run_google2011(args: argparse.Namespace) -> int:
    from traces.importers import google2011 as g
    params = replace(g.Params(), anon_fraction=args.anon_fraction, cache_fraction=args.cache_fraction,
                     **_shared(args))
    return _finish(args, lambda progress: g.import_google2011(
        args.task_events, args.machine_events, args.task_usage, params, args.lenient, progress), params.rules)


def _run_google2019(args: argparse.Namespace) -> int:
    from traces.importers import google2019 as g
    params = replace(g.Params(), usage_includes_cache=not args.usage_excludes_cache, **_shared(args))
    return _finish(args, lambda progress: g.import_google2019(
        args.instance_events, args.machine_events, args.instance_usage, params, args.lenient, progress),
        params.rules)


def _run_alibaba2018(args: argparse.Namespace) -> int:
    from traces.importers import alibaba2018 as a
    params = replace(a.Params(), container_interval_s=args.container_interval,
                     background_fraction=args.background_fraction, **_shared(args))
    return _finish(args, lambda progress: a.import_alibaba2018(
        args.machine_meta, args.container_meta, args.batch_instance, args.machine_usage, params,
        args.lenient, progress), params.rules)


def _finish(args: argparse.Namespace, run, rules) -> int:
    from traces.io import write_trace
    progress = _progress(args)
    try:
        table, report, rejects = run(progress)
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if progress:
        progress(f"{table.num_rows} events; writing {args.out}")
    write_trace(table, args.out)
    summary = report.to_dict() | {"sharing_rules": describe(rules)}
    write_json(f"{args.out}.report.json", summary)
    shutil.copymode(args.out, f"{args.out}.report.json")  # as readable as the trace it describes
    if args.lenient:
        rejects.write(f"{args.out}.rejects.csv")
        if os.path.exists(f"{args.out}.rejects.csv"):
            shutil.copymode(args.out, f"{args.out}.rejects.csv")
    print(report.summary())
    if report.rows_rejected:
        print(f"  {report.rows_rejected} bad rows quarantined in {args.out}.rejects.csv")
    return 0
