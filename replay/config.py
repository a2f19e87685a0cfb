"""Structured configuration of a replay run: typed dataclasses registered in Hydra's ConfigStore.

In: nothing (Hydra composes ``conf/config.yaml`` and its groups onto these schemas).
Out: ``ReplayConfig`` and its parts, ``register_configs()`` which stores the schema as
``replay_schema`` (listed first in ``conf/config.yaml``'s defaults, so a misspelt key or a
wrong type in a YAML file or on the command line fails before anything starts), and small
helpers that turn a config into what the model needs (``machine_config_kwargs``) or into a
cache key (``config_key``).

Each config group under ``conf/`` fills one of the nodes below: ``policy``, ``trace``,
``machine``, ``kernel``, ``fleet``, ``executor``, ``store``; ``ray`` is a plain node
(``ray.address=auto`` joins an existing cluster).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

import core
import traces
from core.kernel import REAL_MACHINE_SHRINKERS

GIB = 1 << 30
DEFAULT_MEM_BYTES = 64 * GIB  #: machine size for file/imported traces when machine.mem_gib is null


def _knobs_schema() -> type:
    """``PolicyKnobsCfg``: one field per policy with knobs, typed by that policy's ``Knobs`` dataclass
    (``core.policies``), whose defaults are the only ones; built from the policy registry."""
    from core.policy import REGISTRY

    return dataclasses.make_dataclass("PolicyKnobsCfg", [
        (name, cls.Knobs, field(default_factory=cls.Knobs))
        for name, cls in sorted(REGISTRY.items()) if dataclasses.fields(cls.Knobs)])


PolicyKnobsCfg = _knobs_schema()


@dataclass
class PolicyCfg:
    """Which policies a run compares: one replay of the same trace per name.

    A name is anything ``core.policy.make_policy`` accepts (``reparent``,
    ``recharge_async_walk+swap_walk``); ``all`` stands for every name in
    ``core.policy.POLICY_NAMES``. ``knobs.<policy>.<knob>`` sets one knob of one policy
    (e.g. ``policy.knobs.recharge_mapper.on_limit=oom``); each policy's knobs are a typed
    dataclass in ``core/policies/`` that holds their defaults, so an unknown knob or a value of
    the wrong type fails when the config is composed, and a value out of range (``ConfigError``)
    when it is checked, before any work.
    """

    names: list[str] = field(default_factory=lambda: ["none"])
    knobs: Any = field(default_factory=PolicyKnobsCfg)


def knobs_dict(knobs: Any) -> dict[str, dict[str, Any]]:
    """``policy.knobs`` (the typed node, or a plain mapping) as plain dicts per policy, for shard specs."""
    if dataclasses.is_dataclass(knobs) and not isinstance(knobs, type):
        return {f.name: dataclasses.asdict(getattr(knobs, f.name)) for f in dataclasses.fields(knobs)}
    return {k: dict(v) for k, v in dict(knobs).items()}


@dataclass
class TraceCfg:
    """Where the events come from.

    ``source`` is ``synthetic`` (``traces.generate`` preset ``preset`` with ``params`` overriding
    fields of its ``SynthParams``), ``file`` (a native Parquet/CSV trace at ``path``) or
    ``import`` (public trace at ``path`` through importer ``importer``).
    """

    source: str = "synthetic"
    preset: str = "tiny"
    params: dict[str, Any] = field(default_factory=dict)
    path: Optional[str] = None
    importer: Optional[str] = None


@dataclass
class MachineCfg:
    """Size of one simulated machine (every machine of the fleet is alike).

    For synthetic traces ``mem_gib``/``swap_gib``, when set, also replace the generator's
    ``mem_bytes``/``swap_bytes`` so that workload sizes are drawn against this machine.
    """

    name: str = "small"
    mem_gib: Optional[float] = None  # null: the synthetic preset's size (64 GiB for other traces);
    # a trace's own `memory` rows (traces generate, the importers) resize its machines either way
    swap_gib: Optional[float] = None  # null: whatever the trace's swap_on asks for (else none)
    cpus: int = 64
    numa_nodes: int = 1
    id_pool_size: int = 65535
    lru_gen: bool = False
    shrinkers: int = REAL_MACHINE_SHRINKERS  # memcg-aware shrinkers: a real host's (core/kernel.py)
    watermark_low: float = 0.01
    watermark_high: float = 0.015
    mapped_hot: bool = True
    dirty_expire_s: float = 30.0  # vm.dirty_expire_centisecs / 100: dirty page cache older than this is written back


@dataclass
class KernelCfg:
    """Kernel version the model emulates (cost per memcg, kmem reparenting, memory.reclaim)."""

    version: str = "6.12"


@dataclass
class FleetCfg:
    """How many machines and how often they are sampled.

    ``machines``: for synthetic traces the number generated; for file/imported traces the
    first N machines (sorted by id) are kept, 0 keeps all.
    """

    name: str = "small"
    machines: int = 8
    sample_interval_s: int = 60


@dataclass
class ExecutorCfg:
    """How machines are run.

    ``kind``: ``local`` (in-process) or ``ray`` (shard actors). ``shards``: number of shards
    (actors); 0 means one per CPU of the Ray cluster (local: 1), never more than machines.
    ``step_s``: simulated seconds per ``advance_to`` round (also the granularity of progress);
    ``checkpoint_every_s``: simulated seconds between shard checkpoints in the run store (0: none);
    ``checkpoint_min_wall_s``: of those, a checkpoint is taken only when at least this much wall
    time has passed since the previous one (0: at every ``checkpoint_every_s``). A checkpoint
    writes every machine's state, so at every simulated hour it cost a month-long replay of
    sparse machines most of its time; a killed run resumes from the last one, so this is also
    about the most wall time a kill loses. Results never depend on either.
    ``timeout_s``: the longest the coordinator waits for one round.
    ``pack_above``: a shard with more machines than this keeps each machine as a compressed
    pickle between rounds (-1: never, 0: always). A machine in memory takes several times its
    pickle, so packing is what lets a fleet larger than RAM replay; it costs a pickle and an
    unpickle per machine per round. Results are the same either way.
    ``wave_machines``: replay the fleet in consecutive waves of at most this many machines
    (0: all at once). A shard holds all its machines' events for the whole replay, so a fleet
    whose events do not fit in memory runs wave after wave; a finished wave's tables go to a
    file in the run directory (``replay.waves``) and its record to the run store, so the driver
    holds one wave's rows and an interrupted run resumes in the wave it stopped in. Same results.
    ``shard_memory_mib``: memory each Ray shard actor declares, so Ray places no more shards on
    a node than it holds (0: estimated from the shard's machines and expected events; -1: none).
    """

    kind: str = "ray"
    shards: int = 0
    step_s: int = 600
    checkpoint_every_s: int = 3600
    checkpoint_min_wall_s: float = 30.0
    timeout_s: float = 600.0
    max_restarts: int = 3
    pack_above: int = 1000
    wave_machines: int = 0
    shard_memory_mib: int = 0


@dataclass
class RayCfg:
    """How to reach Ray: ``address`` ``auto``, ``host:port`` or ``ray://host:port`` joins a cluster.

    ``address`` null: ``RAY_ADDRESS``, else the live cluster ``ray start`` recorded, else a new
    local cluster of ``num_cpus`` CPUs and ``object_store_mib`` of object store (these two apply
    only to a cluster the run starts). ``connect_timeout_s``: how long a cluster to join may
    take to answer before the run stops with an error.
    """

    address: Optional[str] = None
    num_cpus: Optional[int] = None
    object_store_mib: int = 512
    connect_timeout_s: float = 60.0


@dataclass
class StoreCfg:
    """The run store (Redis protocol).

    ``url`` null: an embedded fakeredis TCP server, persisted to ``embedded_path`` so an
    interrupted sweep resumes; ``redis://...``: a real Redis. ``cache``: reuse finished results and
    resume interrupted ones (false: replay from scratch and cache nothing).
    """

    url: Optional[str] = None
    embedded_path: str = "outputs/.replay-store/store.pkl"
    namespace: str = "memcg-replay"
    cache: bool = True
    connect_timeout_s: float = 5.0


@dataclass
class ReplayConfig:
    """A whole run: one trace replayed once per policy in ``policy.names``."""

    name: str = "default"
    seed: int = 0
    policy: PolicyCfg = field(default_factory=PolicyCfg)
    trace: TraceCfg = field(default_factory=TraceCfg)
    machine: MachineCfg = field(default_factory=MachineCfg)
    kernel: KernelCfg = field(default_factory=KernelCfg)
    fleet: FleetCfg = field(default_factory=FleetCfg)
    executor: ExecutorCfg = field(default_factory=ExecutorCfg)
    ray: RayCfg = field(default_factory=RayCfg)
    store: StoreCfg = field(default_factory=StoreCfg)
    output_dir: Optional[str] = None  # null: Hydra's output dir (or ./outputs/<name> outside Hydra)
    progress: bool = True
    plots: bool = True


def register_configs() -> None:
    """Store the schema in Hydra's ConfigStore (idempotent), and each policy's knobs dataclass on its own
    as ``policy_knobs/<name>`` (the same class the schema nests under ``policy.knobs.<name>``)."""
    cs = ConfigStore.instance()
    cs.store(name="replay_schema", node=ReplayConfig)
    for f in dataclasses.fields(PolicyKnobsCfg):
        cs.store(group="policy_knobs", name=f.name, node=f.type)


def to_config(cfg: DictConfig | ReplayConfig) -> ReplayConfig:
    """A composed DictConfig (or an already typed config) -> ``ReplayConfig`` instance."""
    if isinstance(cfg, ReplayConfig):
        return cfg
    merged = OmegaConf.merge(OmegaConf.structured(ReplayConfig), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


# Parts of the config that change how a run is executed but not its results: the cache key
# leaves them out, so a result computed by the Ray executor is reused by the local one.
_NOT_IN_KEY = ("executor", "ray", "store", "output_dir", "progress", "plots", "name")


def config_key(cfg: ReplayConfig, policy: str) -> str:
    """Stable hex key of everything that determines the results of ``policy`` under ``cfg``."""
    plain = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    assert isinstance(plain, dict)
    for k in _NOT_IN_KEY:
        plain.pop(k, None)
    knobs = plain["policy"].get("knobs", {})
    plain["policy"] = {"name": policy, "knobs": {k: v for k, v in knobs.items() if k in policy.split("+")}}
    plain["step_s"] = cfg.executor.step_s  # batch cuts are part of the replay's definition
    plain["trace_file"] = _file_identity(cfg.trace.path)
    plain["model"] = model_fingerprint()  # a changed model must not serve results of the old one
    from replay.outputs import LAYOUT

    plain["layout"] = LAYOUT  # cached files are written back where they were: same layout only
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: the files whose content decides a run's results: the modules, and the declarations (``.pxd``: C types,
#: and so where a value overflows) and sources (``.pyx``) of their compiled builds
_MODEL_SOURCES = ("*.py", "*.pxd", "*.pyx")


@functools.lru_cache(maxsize=1)
def model_fingerprint() -> str:
    """Hash of the source of every module that decides a run's results (``core``, ``traces``)."""
    return source_fingerprint([Path(pkg.__file__).resolve().parent for pkg in (core, traces)])


def source_fingerprint(roots: list[Path]) -> str:
    """16 hex digits of SHA-256 over the ``_MODEL_SOURCES`` files under each folder of ``roots``: their paths
    (from each folder's parent) and contents, in path order."""
    h = hashlib.sha256()
    for root in roots:
        for f in sorted({f for pattern in _MODEL_SOURCES for f in root.rglob(pattern)}):
            h.update(f.relative_to(root.parent).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _file_identity(path: Optional[str]) -> Optional[list[int]]:
    # a changed trace file must not hit results cached for its old content
    if not path or not os.path.exists(path):
        return None
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def machine_config_kwargs(cfg: ReplayConfig, trace_mem_bytes: Optional[int] = None) -> dict[str, Any]:
    """Keyword arguments of ``core.machine.MachineConfig`` from the machine + kernel + fleet groups.

    ``trace_mem_bytes``: the memory size a synthetic trace was drawn for (used when
    ``machine.mem_gib`` is null).
    """
    m = cfg.machine
    mem = int(m.mem_gib * GIB) if m.mem_gib is not None else (trace_mem_bytes or DEFAULT_MEM_BYTES)
    return dict(
        mem_bytes=mem, swap_bytes=int((m.swap_gib or 0) * GIB), cpus=m.cpus,
        numa_nodes=m.numa_nodes, kernel=cfg.kernel.version,
        sample_interval_us=cfg.fleet.sample_interval_s * 1_000_000, id_pool_size=m.id_pool_size,
        lru_gen=m.lru_gen, shrinkers=m.shrinkers, watermark_low=m.watermark_low,
        watermark_high=m.watermark_high, mapped_hot=m.mapped_hot,
        dirty_expire_us=int(round(m.dirty_expire_s * 1_000_000)),  # finite: check_config
    )


__all__ = [
    "PolicyCfg", "TraceCfg", "MachineCfg", "KernelCfg", "FleetCfg", "ExecutorCfg",
    "RayCfg", "StoreCfg", "ReplayConfig", "register_configs", "to_config", "config_key",
    "machine_config_kwargs", "policy_list", "check_config", "PolicyKnobsCfg", "knobs_dict",
]


def policy_list(cfg: ReplayConfig) -> list[str]:
    """``policy.names`` with ``all`` expanded, duplicates dropped, every name checked now.

    Raises ``core.errors.ConfigError`` naming an unknown policy before anything runs.
    """
    from core.policy import POLICY_NAMES, make_policy

    out: list[str] = []
    for name in cfg.policy.names:
        for n in (POLICY_NAMES if name == "all" else (name,)):
            if n not in out:
                make_policy(n, cfg.policy.knobs)  # cheap; raises ConfigError for unknown names or knobs
                out.append(n)
    return out


def check_config(cfg: ReplayConfig) -> None:
    """Semantic checks the schema cannot express; ``ConfigError`` naming the key, before any work."""
    from core.errors import ConfigError

    t, ex = cfg.trace, cfg.executor
    problems = []
    if t.source not in ("synthetic", "file", "import"):
        problems.append(f"trace.source: {t.source!r} is not one of synthetic, file, import")
    if t.source in ("file", "import") and not t.path:
        problems.append(f"trace.path: a {t.source} trace needs a path")
    elif t.source in ("file", "import") and not os.path.exists(str(t.path)):
        problems.append(f"trace.path: {t.path} does not exist")
    if t.source == "import" and not t.importer:
        problems.append("trace.importer: an imported trace needs an importer")
    if ex.kind not in ("local", "ray"):
        problems.append(f"executor.kind: {ex.kind!r} is not one of local, ray")
    if ex.step_s <= 0 or ex.checkpoint_every_s < 0 or ex.checkpoint_min_wall_s < 0 or ex.timeout_s <= 0:
        problems.append("executor: step_s and timeout_s must be > 0, checkpoint_every_s and checkpoint_min_wall_s >= 0")
    if ex.wave_machines < 0:
        problems.append("executor: wave_machines must be >= 0 (0: the whole fleet in one wave)")
    if ex.pack_above < -1:
        problems.append("executor: pack_above must be >= -1 (-1: never pack machines)")
    if cfg.ray.connect_timeout_s <= 0:
        problems.append("ray.connect_timeout_s must be > 0")
    if cfg.fleet.machines < 0:
        problems.append(f"fleet.machines: {cfg.fleet.machines} is negative (0 keeps every machine of the trace)")
    if cfg.fleet.sample_interval_s <= 0:
        problems.append("fleet.sample_interval_s must be > 0")
    # sizes in GiB and times in seconds must be finite numbers (nan or inf are neither)
    for key, what in (("mem_gib", "size"), ("swap_gib", "size"), ("dirty_expire_s", "number of seconds")):
        v = getattr(cfg.machine, key)
        if v is not None and not math.isfinite(v):
            problems.append(f"machine.{key}: {v} is not a finite {what}")
    if problems:
        raise ConfigError("; ".join(problems))
    from core.state import MachineConfig

    try:  # the machine's own rules (core.state.MachineConfig.validate), now rather than in a shard
        MachineConfig(**machine_config_kwargs(cfg)).validate()
    except ConfigError as exc:
        problems.append(f"machine/kernel/fleet: {exc}")
    if problems:
        raise ConfigError("; ".join(problems))
