"""The run store: progress, shard checkpoints and a result cache behind the Redis protocol.

In: a store URL (``redis://...``) or nothing, in which case an embedded fakeredis TCP server is
started in a child process (so Ray actors in other processes share it) and its content is
persisted to a file so that an interrupted sweep can resume in a later process.
Out: ``RunStore`` with the few operations the coordinator and the shards need; every key lives
under ``<namespace>:``. Values are bytes (pickles, Parquet, JSON) produced by the callers.

Key layout (``run`` is ``config.config_key``, ``layout`` a digest of the shard plan):
- ``result:<run>``            hash  file name -> bytes of a finished run's outputs
- ``ckpt:<run>:<layout>:<i>``  hash  simulated time (µs, decimal) -> pickled shard state
- ``commit:<run>:<layout>``    hash  ``t`` -> last committed time, ``chunk:<t>`` -> samples up to t
- ``wave:<run>:<layout>``      hash  ``collected`` -> a finished wave's results (``executor.wave_machines``)
- ``progress:<run>``           hash  simulated time, events, wall time (for watchers)

Values larger than ``CHUNK_BYTES`` are stored in pieces (``_put_blob``): the hash field holds
``b""``, ``<hash key>:parts`` maps the field to its piece count and the pieces are string keys
``<hash key>:<field>:<j>``. Why: the embedded fakeredis server parses a bulk value in time
superlinear in its size (a 24 MB checkpoint took ~9 s to store, in 512 KiB pieces 0.4 s). Its
replies wait for a slow reader (``replay.fake_server``). Values stored before pieces existed (no
``:parts`` entry) read back unchanged.

URLs are never logged with their password (``redact``).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

import redis

from traces.io import _atomic_write as atomic_write

CHUNK_BYTES = 512 << 10  #: largest value sent to or read from the store in one command


class StoreError(RuntimeError):
    """The run store cannot be reached or used."""


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """A client for ``url`` that has answered PING; ``StoreError`` (URL redacted) otherwise."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=max(timeout_s, 60.0))
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise StoreError(f"run store {redact(url)} is unreachable: {exc.__class__.__name__}: {exc}") from None
    return client


class EmbeddedServer:
    """A fakeredis TCP server in a child process on loopback (``replay.fake_server``), stopped at exit."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "replay.fake_server"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline() if self.proc.stdout else b""
        if not line.strip():
            raise StoreError("embedded fakeredis server did not start")
        self.url = f"redis://127.0.0.1:{int(line)}/0"
        atexit.register(self.stop)

    def stop(self) -> None:
        """Terminate the server process we started (by its pid)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_EMBEDDED: Optional[EmbeddedServer] = None


def embedded_url() -> str:
    """URL of this process's embedded server, started on first use (shared by sweep jobs)."""
    global _EMBEDDED
    if _EMBEDDED is None or _EMBEDDED.proc.poll() is not None:
        _EMBEDDED = EmbeddedServer()
    return _EMBEDDED.url


class RunStore:
    """Typed access to the run store for one namespace.

    ``url`` is what shard actors connect to; ``snapshot_path`` (embedded store only) is where
    ``persist()`` writes the namespace so that a later process can ``load()`` it.
    """

    def __init__(self, url: str, namespace: str = "memcg-replay", snapshot_path: Optional[str] = None,
                 timeout_s: float = 5.0) -> None:
        self.url = url
        self.namespace = namespace
        self.snapshot_path = snapshot_path
        self.r = connect(url, timeout_s)
        self._deleted: set[bytes] = set()  # keys this process deleted: a persist must not bring them back

    def _delete(self, *keys: str | bytes) -> None:
        """``DEL keys``, remembered for ``persist``'s merge."""
        if keys:
            self.r.delete(*keys)
            self._deleted.update(k if isinstance(k, bytes) else k.encode() for k in keys)

    def __getstate__(self) -> dict:
        # shards receive a RunStore by value; they reconnect instead of pickling a socket
        return {"url": self.url, "namespace": self.namespace, "snapshot_path": None}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["url"], state["namespace"], None)  # type: ignore[misc]

    def key(self, *parts: object) -> str:
        """``<namespace>:part1:part2...``."""
        return ":".join([self.namespace, *map(str, parts)])

    # -- values of any size (see the module docstring) --------------------------------------
    def _put_blob(self, key: str, field: str, blob: bytes) -> None:
        """``HSET key field blob``, in pieces of ``CHUNK_BYTES`` when larger."""
        if len(blob) <= CHUNK_BYTES:
            self._drop_blobs(key, [field])
            self.r.hset(key, field, blob)
            return
        n = -(-len(blob) // CHUNK_BYTES)
        for j in range(n):  # one command per piece: the fake server's parse cost grows with a command's size
            self.r.set(f"{key}:{field}:{j}", blob[j * CHUNK_BYTES:(j + 1) * CHUNK_BYTES])
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(f"{key}:parts", field, n)
        pipe.hset(key, field, b"")
        pipe.execute()

    def _get_blob(self, key: str, field: str | bytes) -> Optional[bytes]:
        """The value ``_put_blob`` stored (joined from its pieces), or None."""
        field = field.decode() if isinstance(field, bytes) else field
        n = self.r.hget(f"{key}:parts", field)
        if n is None:
            return self.r.hget(key, field)
        pieces = [self.r.get(f"{key}:{field}:{j}") for j in range(int(n))]
        if any(p is None for p in pieces):
            raise StoreError(f"run store: pieces of {key} {field} are missing")
        return b"".join(pieces)  # type: ignore[arg-type]

    def _drop_blobs(self, key: str, fields: list) -> None:
        """Delete the pieces of ``fields`` of ``key`` (not the fields themselves)."""
        names = [f.decode() if isinstance(f, bytes) else str(f) for f in fields]
        counts = self.r.hmget(f"{key}:parts", names) if names else []
        doomed = [f"{key}:{f}:{j}" for f, n in zip(names, counts) if n is not None for j in range(int(n))]
        if doomed:
            self._delete(*doomed)
            self.r.hdel(f"{key}:parts", *[f for f, n in zip(names, counts) if n is not None])

    def _get_all_blobs(self, key: str) -> dict[bytes, bytes]:
        """Every field of ``key`` with its whole value (one reply per field or piece)."""
        out = {}
        for f in self.r.hkeys(key):
            v = self._get_blob(key, f)
            if v is not None:
                out[f] = v
        return out

    # -- result cache -------------------------------------------------------------------
    def get_result(self, run: str) -> Optional[dict[str, bytes]]:
        """Files of a finished run, or None."""
        raw = self._get_all_blobs(self.key("result", run))
        return {k.decode(): v for k, v in raw.items()} if raw else None

    def put_result(self, run: str, files: dict[str, bytes]) -> None:
        """Cache a finished run's files and forget its checkpoints and commits."""
        k = self.key("result", run)
        self._drop_blobs(k, self.r.hkeys(k))
        self._delete(k)
        for name, blob in files.items():
            self._put_blob(k, name, blob)
        self.clear_run(run)

    # -- finished waves of a run -----------------------------------------------------------
    def put_wave(self, run: str, layout: str, blob: bytes) -> None:
        """Keep the results of a finished wave (its plan's ``layout``) until the run is done."""
        self._put_blob(self.key("wave", run, layout), "collected", blob)

    def get_wave(self, run: str, layout: str) -> Optional[bytes]:
        """Results of a finished wave, or None."""
        return self._get_blob(self.key("wave", run, layout), "collected")

    # -- shard checkpoints ----------------------------------------------------------------
    def put_checkpoint(self, run: str, layout: str, shard: int, t_us: int, blob: bytes) -> None:
        """Store shard ``shard``'s state at simulated time ``t_us``."""
        self._put_blob(self.key("ckpt", run, layout, shard), str(t_us), blob)

    def latest_checkpoint(self, run: str, layout: str, shard: int) -> Optional[tuple[int, bytes]]:
        """(time, state) of the newest checkpoint of a shard, or None."""
        k = self.key("ckpt", run, layout, shard)
        times = sorted(int(t) for t in self.r.hkeys(k))
        if not times:
            return None
        blob = self._get_blob(k, str(times[-1]))
        return (times[-1], blob) if blob is not None else None

    def drop_checkpoints(self, run: str, layout: str, shard: int, keep_from: int = 0,
                         keep_until: Optional[int] = None) -> None:
        """Delete checkpoints of a shard older than ``keep_from`` or newer than ``keep_until``."""
        k = self.key("ckpt", run, layout, shard)
        doomed = [t for t in self.r.hkeys(k)
                  if int(t) < keep_from or (keep_until is not None and int(t) > keep_until)]
        if doomed:
            self._drop_blobs(k, doomed)
            self.r.hdel(k, *doomed)

    # -- coordinator commits ----------------------------------------------------------------
    def commit(self, run: str, layout: str, t_us: int, chunk: bytes) -> None:
        """Record that every shard checkpointed at ``t_us`` and the samples since the last commit."""
        k = self.key("commit", run, layout)
        self._put_blob(k, f"chunk:{t_us:020d}", chunk)  # before "t": a commit is never half there
        self.r.hset(k, "t", str(t_us))

    def committed(self, run: str, layout: str) -> tuple[int, list[bytes]]:
        """(last committed time, sample chunks in time order); (-1, []) when nothing was committed."""
        key = self.key("commit", run, layout)
        raw = self.r.hget(key, "t")
        if raw is None:
            return -1, []
        t = int(raw)
        fields = sorted(f for f in self.r.hkeys(key) if f.startswith(b"chunk:") and int(f[6:]) <= t)
        chunks = [self._get_blob(key, f) for f in fields]
        return t, [c for c in chunks if c is not None]

    def set_progress(self, run: str, fields: dict[str, str | int | float]) -> None:
        """Publish progress of a run (for anyone watching the store)."""
        self.r.hset(self.key("progress", run), mapping=fields)

    def clear_run(self, run: str) -> None:
        """Delete checkpoints, commits and progress of ``run`` (any layout)."""
        doomed = []
        for pattern in (f"ckpt:{run}:*", f"commit:{run}:*", f"wave:{run}:*", f"progress:{run}"):
            doomed += list(self.r.scan_iter(match=self.key(pattern), count=1000))
        self._delete(*doomed)

    # -- persistence of the embedded store ---------------------------------------------------
    def persist(self) -> None:
        """Write the namespace to ``snapshot_path`` atomically (embedded store only).

        Several runs started from one folder share the snapshot but each has its own embedded
        server, so the write is a merge under an exclusive lock: the keys of this server, plus
        every key of the snapshot on disk that this process neither has nor deleted (another
        run's cached results, checkpoints and commits stay).
        """
        if not self.snapshot_path:
            return
        os.makedirs(os.path.dirname(self.snapshot_path) or ".", exist_ok=True)
        with open(self.snapshot_path + ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            data = {k: v for k, v in self._read_snapshot().items() if k not in self._deleted}
            data.update({k: self.r.dump(k) for k in self.r.scan_iter(match=self.key("*"), count=1000)})
            payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write(self.snapshot_path, lambda tmp: Path(tmp).write_bytes(payload))

    def _read_snapshot(self) -> dict[bytes, bytes]:
        if not self.snapshot_path or not os.path.exists(self.snapshot_path):
            return {}
        with open(self.snapshot_path, "rb") as f:
            return pickle.load(f)

    def load(self) -> int:
        """Restore a snapshot written by ``persist`` (keys already present win); returns keys loaded."""
        data = self._read_snapshot()
        n = 0
        for k, v in data.items():
            if v is not None and not self.r.exists(k):
                self.r.restore(k, 0, v)
                n += 1
        return n


def open_store(url: Optional[str], namespace: str, embedded_path: str, timeout_s: float = 5.0) -> RunStore:
    """The run store for a config: a real Redis at ``url``, or the embedded one (loaded from disk)."""
    if url:
        return RunStore(url, namespace, None, timeout_s)
    store = RunStore(embedded_url(), namespace, os.path.abspath(embedded_path), timeout_s)
    store.load()
    return store
