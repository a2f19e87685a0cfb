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
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Optional, Protocol

from core.errors import ConfigError
from replay.config import ExecutorCfg, RayCfg
from replay.shard import Shard, ShardSpec, StepResult


class Executor(Protocol):
    """What the coordinator needs from an executor."""

    def start(self, specs: list[ShardSpec]) -> None:
        """Create the shards (restoring checkpoints where the store has them)."""

    def submit(self, t_us: int, ack_us: int) -> None:
        """Queue a round: every shard to ``t_us``, acknowledging samples up to ``ack_us``."""

    def collect(self) -> list[StepResult]:
        """Results of the oldest queued round, in shard order."""

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Every shard's final results at ``t_us`` (the replay's end), in shard order."""

    def close(self) -> None:
        """Release the shards (not the Ray cluster)."""


class LocalExecutor:
    """Shards as plain objects in this process, advanced one after the other."""

    def __init__(self) -> None:
        self.shards: list[Shard] = []
        self.queued: deque[tuple[int, int]] = deque()

    def start(self, specs: list[ShardSpec]) -> None:
        """Build every shard here."""
        self.shards = [Shard(s) for s in specs]

    def submit(self, t_us: int, ack_us: int) -> None:
        """Remember the round; it runs in ``collect`` (nothing runs in the background here)."""
        self.queued.append((t_us, ack_us))

    def collect(self) -> list[StepResult]:
        """Advance each shard in turn through the oldest queued round."""
        t_us, ack_us = self.queued.popleft()
        return [s.advance_to(t_us, ack_us) for s in self.shards]

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Each shard's final results."""
        return [s.finish(t_us) for s in self.shards]

    def close(self) -> None:
        """Drop the shards."""
        self.shards = []


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


class RayExecutor:
    """One ``ShardActor`` per shard; rounds are submitted to all actors, then gathered."""

    def __init__(self, cfg: ExecutorCfg, ray_cfg: RayCfg) -> None:
        self.cfg = cfg
        ensure_ray(ray_cfg)
        self.actors: list[Any] = []
        self.queued: deque[list[Any]] = deque()  # object refs of submitted rounds, oldest first

    def start(self, specs: list[ShardSpec]) -> None:
        """Create the actors (each loads its own partition and checkpoint)."""
        from replay.actors import ShardActor

        opts = dict(max_restarts=self.cfg.max_restarts, max_task_retries=self.cfg.max_restarts)
        self.actors = [ShardActor.options(**opts).remote(s) for s in specs]

    def _get(self, refs: list[Any]) -> list[Any]:
        import ray

        return ray.get(refs, timeout=self.cfg.timeout_s)

    def submit(self, t_us: int, ack_us: int) -> None:
        """Send a round to every actor; an actor runs its calls in the order they were sent."""
        self.queued.append([a.advance_to.remote(t_us, ack_us) for a in self.actors])

    def collect(self) -> list[StepResult]:
        """Wait for the oldest submitted round on every actor."""
        return self._get(self.queued.popleft())

    def finish(self, t_us: int) -> list[dict[str, Any]]:
        """Final results of every actor."""
        return self._get([a.finish.remote(t_us) for a in self.actors])

    def pids(self) -> list[int]:
        """Process ids of the actors (for fault-injection tests)."""
        return self._get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        """Kill the actors; the cluster stays up for the next run."""
        import ray

        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.actors = []
        self.queued.clear()


def make_executor(cfg: ExecutorCfg, ray_cfg: RayCfg) -> Executor:
    """The executor ``cfg.kind`` names."""
    if cfg.kind == "local":
        return LocalExecutor()
    if cfg.kind == "ray":
        return RayExecutor(cfg, ray_cfg)
    raise ValueError(f"executor.kind: {cfg.kind!r} is not one of local, ray")


def shard_count(cfg: ExecutorCfg, machines: int) -> int:
    """Shards to use: ``cfg.shards`` or, when 0, one per Ray CPU (local: 1); at most ``machines``."""
    n = cfg.shards
    if n <= 0:
        n = ray_cpus() if cfg.kind == "ray" else 1
    return max(1, min(n, machines))


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor", "shard_count", "ensure_ray",
           "ray_address", "check_ray_address"]
