"""``run(cfg)``: one replay run, callable from Hydra's entry point and from tests alike.

In: a ``ReplayConfig`` (or the DictConfig Hydra composed). Out: a ``RunResult`` and, in the run
directory, per policy and seed the Parquet timelines, job table and summary
(``replay.outputs``), the run's ``summary.json``/``summary.md`` and PNG plots.

Flow: open the run store (a clear error when it is unreachable) -> serve policies whose
results the store has cached -> for the others load, validate and partition the trace once,
then replay it per policy on the chosen executor (resuming from a committed checkpoint when an
earlier process was interrupted) -> write and cache the outputs -> summarise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pyarrow.compute as pc
from omegaconf import DictConfig, OmegaConf

from replay.config import (ReplayConfig, check_config, config_key, knobs_dict, machine_config_kwargs, policy_list,
                           to_config)
from replay.coordinator import Cadence, StepHook
from replay.executors import make_executor, shard_count
from replay.outputs import read_files, read_summary, write_files, write_policy, write_run_summary
from replay.plan import Plan, expected_events_per_machine, load_checked, make_plans, synth_params
from replay.progress import Progress
from replay.shard import ShardSpec
from replay.store import RunStore, StoreError, open_store, redact
from replay.waves import replay_waves
from traces.io import atomic_write_text


@dataclass
class RunResult:
    """Where the outputs are and what each policy gave (``summaries`` in ``policy_list`` order)."""

    run_dir: str
    summaries: list[dict[str, Any]]
    cached: list[str] = field(default_factory=list)
    resumed: dict[str, int] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)  # per policy: where time went
    plots: list[str] = field(default_factory=list)


def output_dir(cfg: ReplayConfig) -> str:
    """The run directory: ``cfg.output_dir``, else Hydra's output dir, else ./outputs/<name>."""
    if cfg.output_dir:
        return os.path.abspath(cfg.output_dir)
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.output_dir
    except ValueError:  # not inside a Hydra app (tests, scripts)
        return os.path.abspath(os.path.join("outputs", cfg.name))


def shard_specs(plan: Plan, cfg: ReplayConfig, policy: str, run: str,
                store: Optional[RunStore]) -> list[ShardSpec]:
    """One spec per shard of ``plan`` for replaying ``policy``."""
    kwargs = machine_config_kwargs(cfg, plan.mem_bytes)
    sized = cfg.executor.kind == "ray" and cfg.executor.shard_memory_mib == 0  # else nobody reads ShardSpec.events
    per_machine = _expected_per_machine(plan.synth, cfg.seed) if plan.synth is not None and sized else -1.0
    return [ShardSpec(i, s.machines, s.first_machine, s.trace_path, kwargs, policy, cfg.seed,
                      cfg.executor.step_s * 1_000_000, run, plan.layout, store, plan.synth, knobs_dict(cfg.policy.knobs),
                      pack=0 <= cfg.executor.pack_above < len(s.machines),
                      events=s.events if s.events >= 0 else max(-1, int(per_machine * len(s.machines))))
            for i, s in enumerate(plan.shards)]


_PER_MACHINE: dict[tuple, float] = {}


def _expected_per_machine(synth: dict[str, Any], seed: int) -> float:
    # only the Ray executor's shard sizing and memory declaration use it; one sample per fleet and seed
    key = (tuple(sorted(synth.items())), seed)
    if key not in _PER_MACHINE:
        _PER_MACHINE[key] = expected_events_per_machine(synth, seed)
    return _PER_MACHINE[key]


def _fleet_events(cfg: ReplayConfig, loaded) -> tuple[int, int]:
    """(machines, events) of the whole fleet for sizing shards: a trace's own, a synthetic fleet's
    expected (machine 0 sampled); (0, -1) where nothing is sized by them."""
    ex = cfg.executor
    if ex.kind != "ray" or ex.shards > 0 or ex.shard_memory_mib != 0:
        return 0, -1
    if loaded is not None:
        table = loaded[0]
        return len(pc.unique(table.column("machine"))), table.num_rows
    params = dataclasses.asdict(synth_params(cfg))
    return params["machines"], int(_expected_per_machine(params, cfg.seed) * params["machines"])


def _replay_policies(cfg: ReplayConfig, todo: list[str], keys: dict[str, str], store: RunStore,
                     run_dir: str, result: RunResult, on_step: Optional[StepHook], trace: list) -> None:
    setup = Progress("setup", 1, enabled=cfg.progress)
    setup.note(f"{cfg.executor.kind} executor" + (", joining or starting Ray" if cfg.executor.kind == "ray" else ""))
    executor = make_executor(cfg.executor, cfg.ray)
    if cfg.executor.kind == "ray":
        from replay.executors import check_store

        check_store(embedded=store.snapshot_path is not None)
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=WORK_PREFIX) as work, _cleaned(executor):
        # trace.pop(): once written into the shards' partitions the table is not held any more
        fleet, events = _fleet_events(cfg, trace[0])
        plans = make_plans(cfg, lambda machines: shard_count(cfg.executor, machines,
                                                             events * machines // fleet if events >= 0 else -1),
                           work, reuse=len(todo) > 1, loaded=trace.pop())
        setup.note(f"{len(plans[0].machines)} machines in {len(plans)} wave{'s' if len(plans) > 1 else ''} of "
                   f"{len(plans[0].shards)} shard{'s' if len(plans[0].shards) > 1 else ''}; "
                   f"{len(todo)} polic{'ies' if len(todo) > 1 else 'y'} to replay")
        for p in todo:
            waves = os.path.join(run_dir, WAVES_PREFIX + keys[p])  # finished waves' tables, until written
            if not cfg.store.cache:
                store.clear_run(keys[p])  # from scratch: no stale checkpoints either
                shutil.rmtree(waves, ignore_errors=True)
            got = replay_waves(plans, executor, lambda plan: shard_specs(plan, cfg, p, keys[p], store),
                               store, keys[p], cfg.executor.step_s * 1_000_000,
                               Cadence(cfg.executor.checkpoint_every_s * 1_000_000, cfg.executor.checkpoint_min_wall_s),
                               lambda k: Progress(_wave_label(p, k, len(plans)), plans[k].t_end_us,
                                                  enabled=cfg.progress), on_step, folder=waves)
            written = write_policy(run_dir, got, plans[0].machines, p, cfg.seed)
            shutil.rmtree(waves, ignore_errors=True)
            if cfg.store.cache:
                _cache(store, keys[p], run_dir, written, setup)
            else:
                store.clear_run(keys[p])
            store.persist()
            result.wall_s[p] = got.wall_s
            result.stats[p] = dict(got.stats, replay_s=got.wall_s)
            if got.resumed_from_us >= 0:
                result.resumed[p] = got.resumed_from_us


#: outputs larger than this are not kept in the run store's cache (the store would hold them in
#: memory, and so would the driver while putting them there)
CACHE_MAX_BYTES = 512 << 20


def _cache(store: RunStore, key: str, run_dir: str, written: list[str], note: Progress) -> None:
    """Keep a policy's files in the run store so that the same config is served from it."""
    size = sum(os.path.getsize(os.path.join(run_dir, rel)) for rel in written)
    if size > CACHE_MAX_BYTES:
        note.note(f"outputs of {size / 2**30:.2f} GiB not cached in the run store (more than "
                  f"{CACHE_MAX_BYTES >> 20} MiB); the same config will replay again")
        store.clear_run(key)
        return
    store.put_result(key, read_files(run_dir, written))


@contextlib.contextmanager
def _cleaned(executor):
    """Run ``executor.cleanup()`` (the nodes' scratch folders) however the run ends."""
    try:
        yield
    finally:
        executor.cleanup()


def _wave_label(policy: str, k: int, waves: int) -> str:
    return policy if waves == 1 else f"{policy} wave {k + 1}/{waves}"


def run(cfg: DictConfig | ReplayConfig, on_step: Optional[StepHook] = None) -> RunResult:
    """Replay the configured trace once per policy; write outputs; return what happened."""
    cfg = to_config(cfg)
    check_config(cfg)
    policies = policy_list(cfg)
    trace = [load_checked(cfg)]  # a bad trace or parameter is refused before the store, Ray or any output
    run_dir = output_dir(cfg)
    with run_dir_lock(run_dir):
        return _run_locked(cfg, policies, trace, run_dir, on_step)


#: prefix of the work folders (a shard's events, on disk for the next policies) in a run directory
WORK_PREFIX = ".shards-"
#: prefix of a policy's folder of finished waves (``replay.waves``): kept by a killed run for the
#: next one to resume from, removed once the policy's files are written
WAVES_PREFIX = ".waves-"


@contextlib.contextmanager
def run_dir_lock(run_dir: str):
    """Hold ``<run_dir>/.lock`` for a run; a second run in the same directory is a ``ConfigError``.

    Holding it also means no other run works here, so the work folders a killed run left
    behind (``.shards-*``) are removed.
    """
    from core.errors import ConfigError

    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, ".lock"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"output_dir: {run_dir} is in use by another run; give this one another "
                              "output_dir (or hydra.run.dir)") from None
        for stale in Path(run_dir).glob(WORK_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield  # the lock goes with the file's close


def _run_locked(cfg: ReplayConfig, policies: list[str], trace: list, run_dir: str,
                on_step: Optional[StepHook]) -> RunResult:
    s = cfg.store
    store = open_store(s.url, s.namespace, s.embedded_path, s.connect_timeout_s)
    keys = {p: config_key(cfg, p) for p in policies}
    result = RunResult(run_dir, [])
    cached = {p: store.get_result(k) for p, k in keys.items()} if s.cache else {}
    for p, files in cached.items():
        if files:
            write_files(run_dir, files)
            result.cached.append(p)
    todo = [p for p in policies if p not in result.cached]
    if todo:
        _replay_policies(cfg, todo, keys, store, run_dir, result, on_step, trace)
    result.summaries = [read_summary(run_dir, p, cfg.seed) for p in policies]
    _finish(cfg, result, store, policies)
    return result


#: exit status of a run refused for bad input (a trace, a parameter, an unreachable store)
EXIT_BAD_INPUT = 2


def one_line(exc: BaseException) -> str:
    """An error as one line: a trace's first problem (and how many others), else the message."""
    problems = getattr(exc, "problems", None)
    if problems:
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''}: python -m traces validate " \
               f"{problems[0].source})" if more else ""
        return f"{problems[0]}{tail}"
    return " ".join(str(exc).split())


#: exit status of a run stopped part-way by a fault (store gone, actors dead); Ctrl-C gives 130
EXIT_FAULT = 1
EXIT_INTERRUPTED = 130
_RESUME = "run the same command again to resume from the last checkpoint"


def fault_line(exc: BaseException, cfg: ReplayConfig) -> Optional[str]:
    """What stopped a run part-way, in one line with how to go on; None for any other error."""
    import redis

    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted; {_RESUME}"
    cause = getattr(exc, "cause", None)  # a Ray task error carries the actor's exception
    for e in (exc, cause):
        if isinstance(e, redis.RedisError) and not _is_ray_error(e):
            where = redact(cfg.store.url) if cfg.store.url else "the embedded run store"
            when = " once it is reachable" if cfg.store.url else ""  # the embedded one restarts with the run
            return (f"the run store ({where}) went away mid-run ({e.__class__.__name__}: "
                    f"{' '.join(str(e).split())[:200]}); {_RESUME}{when}")
    if _is_ray_error(exc):
        from ray.exceptions import GetTimeoutError, RayActorError

        if isinstance(exc, RayActorError):
            return (f"a shard actor died more often than executor.max_restarts={cfg.executor.max_restarts} "
                    f"allows; {_RESUME}")
        if isinstance(exc, GetTimeoutError):
            return (f"a round took longer than executor.timeout_s={cfg.executor.timeout_s:g} s; "
                    f"{_RESUME} (with a larger executor.timeout_s)")
    return None


def _is_ray_error(exc: BaseException) -> bool:
    ray_exc = sys.modules.get("ray.exceptions")  # only a run that used Ray can fail with its errors
    return ray_exc is not None and isinstance(exc, ray_exc.RayError)


def run_command(cfg: DictConfig | ReplayConfig, err=None, on_step: Optional[StepHook] = None) -> int:
    """``run`` for the command line; returns the exit status.

    An error the user can fix (a bad trace or parameter, an unreachable store or Ray cluster)
    is one ``error:`` line and status 2. A fault part-way (the run store going away, shard
    actors dying more often than ``executor.max_restarts``, a round timing out, Ctrl-C) is
    one ``error:`` line saying what happened and that re-running the same command resumes
    (from the last checkpoint the store holds): status 1, or 130 for Ctrl-C.
    """
    from core.errors import ConfigError, TraceError

    err = err or sys.stderr
    typed = to_config(cfg)
    redact_hydra_files(typed.store.url)
    try:
        run(typed, on_step)
    except (TraceError, StoreError, ConfigError) as exc:
        err.write(f"error: {one_line(exc)}\n")
        return EXIT_BAD_INPUT
    except BaseException as exc:  # noqa: BLE001 -- a known fault is one line, anything else propagates
        line = fault_line(exc, typed)
        if line is None:
            raise
        err.write(f"error: {line}\n")
        err.flush()
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_FAULT
    return 0


def redact_hydra_files(url: Optional[str]) -> None:
    """Replace the password of ``url`` by ``***`` in the files Hydra wrote for this job.

    Hydra saves the composed config and the command line (``.hydra/*.yaml``, ``multirun.yaml``)
    before the app runs; a ``store.url=redis://:PASSWORD@host`` given on the command line would
    stay there. (A URL read from ``REDIS_URL`` is saved as the unresolved ``${oc.env:...}``.)
    """
    from urllib.parse import urlsplit

    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return  # not run by Hydra: it wrote nothing
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        password = None
    if not password:
        return
    dirs = [Path(hc.runtime.output_dir, hc.output_subdir or ".hydra"), Path(hc.sweep.dir or ".")]
    for path in [p for d in dirs if d.is_dir() for p in d.glob("*.yaml")]:
        text = path.read_text()
        if password in text:
            atomic_write_text(path, text.replace(password, "***"))


def _finish(cfg: ReplayConfig, result: RunResult, store: RunStore, policies: list[str]) -> None:
    plain = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    assert isinstance(plain, dict)
    if plain["store"].get("url"):
        plain["store"]["url"] = redact(plain["store"]["url"])
    write_run_summary(result.run_dir, result.summaries, plain)
    if cfg.plots:
        from replay.plots import plot_all
        from replay.compare import fleet_timelines

        result.plots = plot_all(fleet_timelines(result.run_dir, policies, [cfg.seed]),
                                result.run_dir)
    print_summary(result, store, sys.stdout)


def print_summary(result: RunResult, store: RunStore, out) -> None:
    """A few lines per policy: zombies, their cost and what holds them."""
    from replay.outputs import short_lines

    where = redact(store.url) + (" (embedded)" if store.snapshot_path else "")
    import core
    from traces import synth_build

    out.write(f"run dir: {result.run_dir}\nstore: {where}\nmodel: {core.build_description()}\n"
              f"trace generator: {synth_build.describe()}\n")
    for s in result.summaries:
        tag = " (cached)" if s["policy"] in result.cached else ""
        out.write(short_lines(s) + tag + "\n")
    out.flush()
