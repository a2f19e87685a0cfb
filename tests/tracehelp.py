"""Tiny trace builders shared by the trace tests (rows as tuples -> Arrow tables)."""

from __future__ import annotations

import pyarrow as pa

from traces.schema import COLUMN_NAMES, TRACE_SCHEMA


def ev(t, op, cg=None, task=None, obj=None, off=None, nb=None, fl=None, m="m1") -> tuple:
    """One row in schema column order."""
    return (t, m, op, cg, task, obj, off, nb, fl)


def table(rows: list[tuple], schema: pa.Schema = TRACE_SCHEMA) -> pa.Table:
    """Rows (from ``ev``) -> a table with the trace schema."""
    cols = list(zip(*rows)) if rows else [[] for _ in COLUMN_NAMES]
    return pa.table({n: pa.array(list(c), type=f.type) for n, c, f in zip(COLUMN_NAMES, cols, schema)},
                    schema=schema)


def pod_rows(m: str = "m1", t0: int = 0) -> list[tuple]:
    """A small valid lifecycle: pod + container, a task using anon, a shared file, tmpfs, kmem, pins."""
    return [
        ev(t0 + 0, "swap_on", nb=1 << 30, m=m),
        ev(t0 + 0, "file_create", obj="/lib.so", nb=1 << 20, m=m),
        ev(t0 + 1, "mkdir", cg="/pod", m=m),
        ev(t0 + 1, "set_limit", cg="/pod", nb=1 << 30, fl="max", m=m),
        ev(t0 + 2, "mkdir", cg="/pod/c1", m=m),
        ev(t0 + 3, "task_start", cg="/pod/c1", task="t1", m=m),
        ev(t0 + 4, "kmem_alloc", task="t1", obj="k-stack", nb=16384, fl="page", m=m),
        ev(t0 + 4, "kmem_alloc", task="t1", obj="k-slab", nb=4096, fl="slab", m=m),
        ev(t0 + 5, "anon_alloc", task="t1", obj="heap", nb=1 << 20, m=m),
        ev(t0 + 6, "pin", task="t1", obj="heap", off=0, nb=4096, fl="mlock", m=m),
        ev(t0 + 7, "file_map", task="t1", obj="/lib.so", m=m),
        ev(t0 + 8, "file_create", obj="/shm/v", fl="shmem", m=m),
        ev(t0 + 9, "file_write", task="t1", obj="/shm/v", nb=8192, m=m),
        ev(t0 + 10, "reclaim", cg="/pod", nb=4096, m=m),
        ev(t0 + 11, "unpin", task="t1", obj="heap", off=0, nb=4096, fl="mlock", m=m),
        ev(t0 + 12, "anon_free", task="t1", obj="heap", m=m),
        ev(t0 + 13, "file_unmap", task="t1", obj="/lib.so", m=m),
        ev(t0 + 14, "task_exit", task="t1", m=m),
        ev(t0 + 15, "rmdir", cg="/pod/c1", m=m),
        ev(t0 + 16, "rmdir", cg="/pod", m=m),
        ev(t0 + 17, "file_delete", obj="/shm/v", m=m),
        ev(t0 + 18, "kmem_free", obj="k-slab", m=m),
        ev(t0 + 19, "drop_caches", m=m),
        ev(t0 + 20, "sync", m=m),
        ev(t0 + 21, "swap_off", m=m),
    ]
