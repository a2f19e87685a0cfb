"""Executors: run a set of shards in-process or as Ray actors, with one interface.

In: ``ShardSpec``s and the ``ExecutorCfg``/``RayCfg`` of a run. Out: per round, the shards'
``StepResult``s in shard order; at the end their ``finish()`` results in shard order.
Both executors run ``replay.shard.Shard``; results are identical whichever is used.

The Ray executor finds Ray as ``ray.init()`` does (``ray_address``): ``ray.address``, else
``RAY_ADDRESS``, else the cluster ``ray start`` recorded in ``<ray temp dir>/ray_current_cluster``
while it still answers; with none of them it starts a private local cluster. It does so once per
process and keeps the cluster for the following runs of a sweep (a start costs ~5 s). An address
nobody answers at is a ``ConfigError`` after ``ray.connect_timeout_s``, never a hang.
A shard actor that dies is restarted by Ray from its newest checkpoint (``max_restarts``) and
the interrupted call is retried (``max_task_retries``); every ``ray.get`` has a timeout.

Nothing assumes one host (docs/cluster.md): a shard's Parquet partition reaches its actor through
Ray's object store (``ShardSpec.trace_ref``), generated synthetic events are kept in a scratch
folder on the node the shard runs on (removed from every node at ``cleanup``), actors are spread
over the nodes and each declares the memory its shard needs (``shard_memory_mib``), and whole
node losses are survived like actor deaths (the actor restarts on another node). The embedded
run store listens on the driver's loopback only, so it is refused on a multi-node cluster
(``check_store``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Protocol

from core.errors import ConfigError
from replay.config import ExecutorCfg, RayCfg
from replay.shard import Shard, ShardSpec, StepResult

Note = Callable[[str], None]


class Executor(Protocol):
    """What the coordinator needs from an executor."""

    def start(self, specs: list[ShardSpec], note: Note | None = None) -> None:
        """Create the shards (restoring checkpoints where the store has them); ``note`` tells progress."""

    def submit(self, t_us: int, ack_us: int, checkpoint: bool = False) -> None:
        """Queue a round: every shard to ``t_us``, acknowledging samples up to ``ack_us``, and
        (``checkpoint``) saving its state there."""

    def collect(self) -> list[StepResult]:
        """Results of the oldest queued round, in shard order."""

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Every shard's final results at ``t_us`` (the replay's end), in shard order."""

    def close(self) -> None:
        """Release the shards (not the Ray cluster)."""

    def cleanup(self) -> None:
        """At the end of a run: remove what the shards left on the nodes (scratch files, trace pieces)."""


class LocalExecutor:
    """Shards as plain objects in this process, advanced one after the other."""

    def __init__(self) -> None:
        self.shards: list[Shard] = []
        self.queued: deque[tuple[int, int, bool]] = deque()

    def start(self, specs: list[ShardSpec], note: Note | None = None) -> None:
        """Build every shard here."""
        self.shards = []
        for s in specs:
            if note is not None:
                note(f"setting up shard {s.index + 1}/{len(specs)} ({len(s.machines)} machines)")
            self.shards.append(Shard(s))

    def submit(self, t_us: int, ack_us: int, checkpoint: bool = False) -> None:
        """Remember the round; it runs in ``collect`` (nothing runs in the background here)."""
        self.queued.append((t_us, ack_us, checkpoint))

    def collect(self) -> list[StepResult]:
        """Advance each shard in turn through the oldest queued round."""
        t_us, ack_us, checkpoint = self.queued.popleft()
        return [s.advance_to(t_us, ack_us, checkpoint) for s in self.shards]

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Each shard's final results."""
        return [s.finish(t_us) for s in self.shards]

    def close(self) -> None:
        """Drop the shards."""
        self.shards = []

    def cleanup(self) -> None:
        """Nothing: the shards' files are in the run's work folder, which the run removes."""


def ray_address(cfg: RayCfg) -> tuple[Optional[str], str]:
    """(address to join or None to start a local cluster, the setting it came from).

    Ray's own order for ``ray.init()``: ``ray.address``, then ``RAY_ADDRESS``, then the address
    ``ray start`` left in ``ray_current_cluster`` under Ray's temp dir (``RAY_TMPDIR`` aware).
    That file outlives its cluster: an address in it that nobody answers at is ignored.
    """
    if cfg.address:
        return cfg.address, "ray.address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    from ray._common.utils import get_ray_address_file  # Ray's location of the file

    path = get_ray_address_file(None)
    try:
        current = Path(path).read_text().strip()
    except OSError:
        return None, ""
    return (current, path) if current and _tcp_error(current, 2.0) is None else (None, "")


def _tcp_error(address: str, timeout_s: float) -> Optional[str]:
    # None when something accepts a TCP connection at host:port, else why not
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return f"{exc.__class__.__name__}: {exc}"


_PROBE = ("import sys, ray\n"
          "ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, configure_logging=False)\n"
          "ray.shutdown()\n")


def check_ray_address(address: str, origin: str, timeout_s: float) -> None:
    """``ConfigError`` unless a Ray cluster answers at ``address`` within ``timeout_s``.

    ``ray.init`` retries an address where no GCS answers for minutes, so a separate process
    (ours, killed at the timeout) tries first.
    """
    if address != "auto":
        why = _tcp_error(address, timeout_s)
        if why:
            raise ConfigError(f"{origin}: no Ray cluster at {address} ({why}); "
                              "leave ray.address unset and RAY_ADDRESS empty to start a local cluster")
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE, address], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{origin}: no Ray cluster answered at {address} within {timeout_s:g} s "
                          "(ray.connect_timeout_s)") from None
    if probe.returncode:
        last = [ln for ln in probe.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise ConfigError(f"{origin}: cannot join the Ray cluster at {address}: {last[-1] if last else 'failed'}")


def ensure_ray(cfg: RayCfg) -> None:
    """Join or start Ray once per process (kept across the runs of a sweep); see ``ray_address``."""
    import ray

    if ray.is_initialized():
        return
    # token auth is on by default in Ray 2.60; a private local cluster does not need it
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  logging_level=logging.WARNING, configure_logging=False,
                                  namespace="memcg-replay")
    address, origin = ray_address(cfg)
    if address is None:
        # "local": a new cluster even where ray.init() would pick up RAY_ADDRESS or a stale file
        ray.init(address="local", num_cpus=cfg.num_cpus, object_store_memory=cfg.object_store_mib << 20, **kwargs)
        return
    check_ray_address(address, origin, cfg.connect_timeout_s)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"{origin}: cannot join the Ray cluster at {address}: {exc}") from None


def ray_cpus() -> int:
    """CPUs of the Ray cluster we are connected to."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


#: bytes a shard holds per event of its machines for the whole replay (README "Fleets larger than memory")
EVENT_BYTES = 49
#: a machine's state in memory (about 1.9 MiB after a simulated hour of ``default``) and packed
MACHINE_MIB, PACKED_MACHINE_MIB = 2.0, 0.2
#: an actor process before it holds any machine (Python, numpy, pyarrow, Ray's worker)
BASE_MIB = 256
#: longest wait for the nodes to remove a run's scratch folders (``RayExecutor.cleanup``)
CLEANUP_S = 30.0


def shard_memory_mib(spec: ShardSpec, cfg: ExecutorCfg) -> int:
    """The memory a shard actor declares to Ray: ``cfg.shard_memory_mib``, or when 0 an estimate
    from its machines and their expected events (``ShardSpec.events``); -1: declare nothing."""
    if cfg.shard_memory_mib:
        return max(cfg.shard_memory_mib, 0)
    per_machine = PACKED_MACHINE_MIB if spec.pack else MACHINE_MIB
    events = max(spec.events, 0)
    return int(BASE_MIB + len(spec.machines) * per_machine + events * EVENT_BYTES / (1 << 20)) + 1


def alive_nodes() -> list[dict[str, Any]]:
    """The Ray nodes that are alive (``ray.nodes()`` entries)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_store(embedded: bool) -> None:
    """``ConfigError`` when the embedded store is used with shard actors on other hosts.

    The embedded store is a fakeredis server on the driver's loopback (127.0.0.1): an actor on
    another node would connect to its own loopback. It is refused rather than served on a
    network address: it has no password, its snapshot lives on the driver's disk, and it is
    single-threaded Python that parses large values slowly -- a real Redis is the tool for a cluster.
    """
    if not embedded:
        return
    import ray

    nodes = alive_nodes()
    here = ray.get_runtime_context().get_node_id()
    others = [n for n in nodes if n.get("NodeID") != here]
    if others:
        addrs = sorted({n.get("NodeManagerAddress", "?") for n in others})
        raise ConfigError(
            f"store: the embedded run store listens on this machine's loopback only, and the Ray cluster "
            f"has {len(others)} other node{'s' if len(others) > 1 else ''} ({', '.join(addrs[:3])}"
            f"{', ...' if len(addrs) > 3 else ''}) whose shard actors could not reach it; use store=redis "
            "store.url=redis://<host every node reaches>:6379/0 (docs/cluster.md)")


@dataclasses.dataclass
class _Cluster:
    nodes: int
    memory_mib: list[int]  # Ray's "memory" resource per alive node


def _cluster() -> _Cluster:
    nodes = alive_nodes()
    return _Cluster(len(nodes), [int(n.get("Resources", {}).get("memory", 0)) >> 20 for n in nodes])


class RayExecutor:
    """One ``ShardActor`` per shard; rounds are submitted to all actors, then gathered.

    Actors are spread over the cluster's nodes (``SPREAD``) and declare their memory
    (``shard_memory_mib``), so Ray does not pack more shards on a node than it holds.
    """

    def __init__(self, cfg: ExecutorCfg, ray_cfg: RayCfg) -> None:
        self.cfg = cfg
        ensure_ray(ray_cfg)
        self.actors: list[Any] = []
        self.queued: deque[list[Any]] = deque()  # object refs of submitted rounds, oldest first
        self.scratch = f"run-{uuid.uuid4().hex[:12]}"  # this executor's scratch folder on every node
        self.pieces: dict[str, Any] = {}  # partition file -> object ref of its bytes (kept for all policies)

    def _for_ray(self, spec: ShardSpec) -> ShardSpec:
        """``spec`` with nothing that only the driver's host can see: partitions as object refs,
        generated events in the node's scratch folder."""
        import ray

        if spec.synth is not None:
            if spec.trace_path:
                return dataclasses.replace(spec, trace_path=os.path.basename(spec.trace_path), scratch=self.scratch)
            return spec
        if spec.trace_path:
            if spec.trace_path not in self.pieces:
                self.pieces[spec.trace_path] = ray.put(Path(spec.trace_path).read_bytes())
            return dataclasses.replace(spec, trace_path="", trace_ref=self.pieces[spec.trace_path])
        return spec

    def start(self, specs: list[ShardSpec], note: Note | None = None) -> None:
        """Create the actors (each loads its own partition and checkpoint) and wait until they are
        set up, telling ``note`` how many are ready every few seconds."""
        from replay.actors import ShardActor

        cluster = _cluster()
        mem = [shard_memory_mib(s, self.cfg) for s in specs]
        self._check_fits(mem, cluster)
        say = note or (lambda _m: None)
        say(f"starting {len(specs)} shard actor{'s' if len(specs) > 1 else ''} on {cluster.nodes} "
            f"Ray node{'s' if cluster.nodes > 1 else ''}" + (f", {max(mem)} MiB each at most" if any(mem) else ""))
        base = dict(max_restarts=self.cfg.max_restarts, max_task_retries=self.cfg.max_restarts,
                    scheduling_strategy="SPREAD")
        self.actors = [ShardActor.options(**base, **({"memory": m << 20} if m else {})).remote(self._for_ray(s))
                       for s, m in zip(specs, mem)]
        self._wait_ready(say)

    def _check_fits(self, mem: list[int], cluster: _Cluster) -> None:
        if not any(mem) or not cluster.memory_mib:
            return
        biggest, total = max(cluster.memory_mib), sum(cluster.memory_mib)
        hint = ("more shards (executor.shards), packed machines (executor.pack_above), waves "
                "(executor.wave_machines) or bigger nodes; executor.shard_memory_mib overrides the estimate")
        if max(mem) > biggest:
            raise ConfigError(f"executor: a shard needs about {max(mem):,} MiB and the largest Ray node offers "
                              f"{biggest:,} MiB of memory; use {hint}")
        if sum(mem) > total:
            raise ConfigError(f"executor: {len(mem)} shards need about {sum(mem):,} MiB and the Ray cluster "
                              f"offers {total:,} MiB of memory; use {hint}")

    def _wait_ready(self, say: Note) -> None:
        import ray

        pending = {a.pid.remote(): i for i, a in enumerate(self.actors)}
        t0 = last = time.monotonic()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=2.0)
            for ref in ready:
                pending.pop(ref)
            ray.get(ready, timeout=self.cfg.timeout_s)  # a shard that failed to set up raises here
            now = time.monotonic()
            if pending and now - t0 > self.cfg.timeout_s:
                raise ray.exceptions.GetTimeoutError(
                    f"{len(pending)} shard actors were not set up within executor.timeout_s={self.cfg.timeout_s:g} s")
            if now - last >= 2.0 or not pending:
                last = now
                say(f"{len(self.actors) - len(pending)}/{len(self.actors)} shards set up "
                    f"(events loaded or generated), {now - t0:.0f} s")

    def _get(self, refs: list[Any]) -> list[Any]:
        import ray

        return ray.get(refs, timeout=self.cfg.timeout_s)

    def submit(self, t_us: int, ack_us: int, checkpoint: bool = False) -> None:
        """Send a round to every actor; an actor runs its calls in the order they were sent."""
        self.queued.append([a.advance_to.remote(t_us, ack_us, checkpoint) for a in self.actors])

    def collect(self) -> list[StepResult]:
        """Wait for the oldest submitted round on every actor."""
        return self._get(self.queued.popleft())

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Final results of every actor."""
        return self._get([a.finish.remote(t_us) for a in self.actors])

    def pids(self) -> list[int]:
        """Process ids of the actors (for fault-injection tests)."""
        return self._get([a.pid.remote() for a in self.actors])

    def nodes(self) -> list[str]:
        """Ray node id of each actor, in shard order (for node-loss tests and diagnostics)."""
        return self._get([a.node.remote() for a in self.actors])

    def close(self) -> None:
        """Kill the actors; the cluster stays up for the next run."""
        import ray

        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.actors = []
        self.queued.clear()

    def cleanup(self) -> None:
        """Remove this run's scratch folder from every alive node and drop the trace pieces.

        A node lost during the run took its scratch folder with it (or keeps it until its temp
        dir is cleaned; the folder name is unique to the run).
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from replay.actors import remove_scratch

        self.pieces = {}
        refs = [remove_scratch.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(self.scratch) for n in alive_nodes()]
        # best effort: a node that has just died (not yet known as dead) never runs its task, and
        # a run whose results are written must not fail for that
        done, late = ray.wait(refs, num_returns=len(refs), timeout=min(CLEANUP_S, self.cfg.timeout_s))
        for ref in done:
            try:
                ray.get(ref)
            except ray.exceptions.RayError:
                pass
        for ref in late:
            ray.cancel(ref)


def make_executor(cfg: ExecutorCfg, ray_cfg: RayCfg) -> Executor:
    """The executor ``cfg.kind`` names."""
    if cfg.kind == "local":
        return LocalExecutor()
    if cfg.kind == "ray":
        return RayExecutor(cfg, ray_cfg)
    raise ValueError(f"executor.kind: {cfg.kind!r} is not one of local, ray")


def shard_count(cfg: ExecutorCfg, machines: int, events: int = -1) -> int:
    """Shards to use: ``cfg.shards`` or, when 0, one per Ray CPU (local: 1) -- and with Ray, when the
    memory is estimated (``shard_memory_mib`` 0) and the ``events`` of these machines are known, at
    least as many as it takes for each shard to fit the largest node (``shards_to_fit``); at most
    ``machines``."""
    n = cfg.shards
    if n <= 0:
        n = ray_cpus() if cfg.kind == "ray" else 1
        if cfg.kind == "ray" and cfg.shard_memory_mib == 0 and events >= 0:
            n = max(n, shards_to_fit(machines, events, cfg.pack_above == 0, _cluster().memory_mib))
    return max(1, min(n, machines))


def shards_to_fit(machines: int, events: int, packed: bool, node_mib: list[int]) -> int:
    """The fewest shards of ``machines`` machines and ``events`` events each of which fits the
    largest node's memory (``shard_memory_mib``'s estimate); 1 when no node reports memory."""
    room = max(node_mib, default=0) - BASE_MIB
    if room <= 0:
        return 1
    need = machines * (PACKED_MACHINE_MIB if packed else MACHINE_MIB) + events * EVENT_BYTES / (1 << 20)
    return max(1, -(-int(need) // room))


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor", "shard_count", "ensure_ray",
           "ray_address", "check_ray_address", "check_store", "shard_memory_mib"]
