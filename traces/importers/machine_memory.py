"""Per-machine RAM in an imported trace: one ``memory`` row before each machine's first event.

In: a native trace table (machines contiguous, time-sorted within each, as every importer
writes it) and the machines' memory sizes in bytes (``ImportReport.machines``: the trace's
capacity column times ``machine_bytes``). Out: the same table with a ``memory`` row inserted
at the start of every machine that has a size, at that machine's first time, so a replay
sizes each machine as the trace says (``core.ops.Op.MEMORY``) instead of using one configured
size for the whole fleet. Machines without a known size get no row and keep the replay's size.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.ops import Op

_MEMORY = Op.MEMORY.name.lower()


def with_machine_memory(table: pa.Table, mem_bytes: dict[str, int]) -> pa.Table:
    """``table`` with a ``memory`` row (bytes = ``mem_bytes[machine]``) before each machine's first row."""
    if table.num_rows == 0 or not mem_bytes:
        return table
    enc = pc.dictionary_encode(table.column("machine")).combine_chunks()
    _, first = np.unique(enc.indices.to_numpy(zero_copy_only=False), return_index=True)
    first = np.sort(first)  # first row of each machine, in table order
    machines = table.column("machine").take(pa.array(first)).to_pylist()
    keep = [k for k, m in enumerate(machines) if m in mem_bytes and mem_bytes[m] > 0]
    if not keep:
        return table
    at = first[keep]
    rows = _memory_rows(table.schema, table.column("time_us").take(pa.array(at)),
                        [machines[k] for k in keep], [mem_bytes[machines[k]] for k in keep])
    # original row i sorts at 2i+1, the memory row of a machine starting at row s at 2s
    keys = np.concatenate([2 * np.arange(table.num_rows, dtype=np.int64) + 1, 2 * at.astype(np.int64)])
    both = pa.concat_tables([table, rows.cast(table.schema)])
    return both.take(pa.array(np.argsort(keys, kind="stable")))


def _memory_rows(schema: pa.Schema, times: pa.Array, machines: list[str], sizes: list[int]) -> pa.Table:
    """``memory`` rows with every column the op does not use left null."""
    n = len(machines)
    cols = {"time_us": times, "machine": pa.array(machines), "op": pa.array([_MEMORY] * n),
            "bytes": pa.array(sizes, type=pa.int64())}
    arrays = [cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
