"""Keyed anonymisation of native traces.

In: a trace table and a secret key (from a file or an environment variable;
the key is never written anywhere). Out: the same events with machine ids,
cgroup path components, task ids and object name components replaced by
HMAC-SHA256 tokens, and optionally coarser times and sizes.

Structure is kept: the same name gives the same token everywhere (a cgroup
path component and an object name component that were equal stay equal),
paths keep their nesting (``/a/b`` -> ``/<t(a)>/<t(b)>``), the root stays
``/``. Without the key a token cannot be linked to a name (HMAC), and the same
key gives the same tokens in every run, so traces anonymised separately can
still be joined. Numbers (times, sizes, offsets) are kept unless coarsened.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traces.schema import TRACE_SCHEMA

DEFAULT_KEY_ENV = "MEMCG_REPLAY_ANON_KEY"
MIN_KEY_BYTES = 16
TOKEN_HEX = 16  #: 64-bit tokens: collisions are negligible below billions of distinct names


def load_key(key_file: str | os.PathLike | None = None, key_env: str | None = DEFAULT_KEY_ENV) -> bytes:
    """The secret key from ``key_file`` (whole file, trailing newline stripped) or ``$key_env``."""
    if key_file:
        key = Path(key_file).read_bytes().rstrip(b"\r\n")
        where = str(key_file)
    else:
        key = os.environ.get(key_env or DEFAULT_KEY_ENV, "").encode()
        where = f"${key_env or DEFAULT_KEY_ENV}"
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"anonymisation key from {where} is missing or shorter than {MIN_KEY_BYTES} bytes")
    return key


class Anonymizer:
    """Name -> token mapping under one key (memoised, so each distinct name is hashed once)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._memo: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:  # never show the key
        return f"Anonymizer(<key>, {len(self._memo)} names)"

    def __getstate__(self) -> dict:
        raise TypeError("an Anonymizer holds a secret key and is not serialisable")

    def token(self, domain: str, name: str) -> str:
        """Token of ``name`` in ``domain`` ('machine', 'task' or 'name')."""
        k = (domain, name)
        tok = self._memo.get(k)
        if tok is None:
            mac = hmac.new(self._key, f"{domain}\x00{name}".encode(), hashlib.sha256).hexdigest()
            tok = self._memo[k] = mac[:TOKEN_HEX]
        return tok

    def path(self, path: str) -> str:
        """Each '/'-separated component tokenised; empty components (root, leading '/') kept."""
        return "/".join(self.token("name", c) if c else c for c in path.split("/"))


def _map_unique(col: pa.ChunkedArray | pa.Array, fn) -> pa.Array:
    # hash each distinct value once, then expand through the dictionary indices
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = arr.dictionary_encode()
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], pa.string())
    return mapped.take(enc.indices)


def anonymize_table(table: pa.Table, anon: Anonymizer, time_quantum_us: int | None = None,
                    bytes_quantum: int | None = None) -> pa.Table:
    """The anonymised trace (see module docstring); schema metadata is reset to the bare schema's."""
    cols = {
        "machine": _map_unique(table.column("machine"), lambda m: anon.token("machine", m)),
        "cgroup": _map_unique(table.column("cgroup"), anon.path),
        "task": _map_unique(table.column("task"), lambda t: anon.token("task", t)),
        "object": _map_unique(table.column("object"), anon.path),
    }
    if time_quantum_us:
        cols["time_us"] = pa.array(_floor(table.column("time_us").to_numpy(), time_quantum_us))
    if bytes_quantum:
        cols["bytes"] = _quantise(table.column("bytes"), bytes_quantum, up=True)
        cols["offset"] = _quantise(table.column("offset"), bytes_quantum, up=False)
    arrays = [cols.get(f.name, table.column(f.name)) for f in TRACE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=TRACE_SCHEMA)


def _floor(v: np.ndarray, q: int) -> np.ndarray:
    return (v // q) * q


def _quantise(col: pa.ChunkedArray, q: int, up: bool) -> pa.Array:
    # sizes round up (a non-zero size never becomes 0, which would mean "whole object"), offsets down
    arr = col.combine_chunks()
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    v = pc.fill_null(arr, 0).to_numpy()
    out = -(-v // q) * q if up else (v // q) * q
    return pa.array(out, mask=~valid, type=pa.int64())


def anonymize_names(values: list[str], anon: Anonymizer, domain: str) -> list[str]:
    """Tokens of plain names (used by the recorder's sample sidecar)."""
    if domain == "path":
        return [anon.path(v) for v in values]
    return [anon.token(domain, v) for v in values]
