"""Benchmark: a replay shard's synthetic setup, generated machines -> EventBatches, in CPU seconds.

In: a generator preset (``google2011_cell`` by default), a machine count and seed, and the path:
``direct`` (``traces.generate.generated_batches``, what ``ShardHost._synthetic_batches`` runs) or
``table`` (``generate_machine`` per machine, ``pa.concat_tables``, ``machine_batches``: the shard's
path before, still what a trace file's replay reads through). Both go 64 machines at a time, as
the shard does. Out: printed events, CPU seconds (``time.process_time``, the first chunk included)
and CPU seconds per million events. Nothing is asserted; the two paths give the same batches
(``tests/test_generated_batches.py``).

    python scripts/bench_setup.py 256 direct
    python scripts/bench_setup.py 256 table --preset google2011_cell --seed 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pyarrow as pa

from traces.batches import machine_batches
from traces.generate import PRESETS, generate_machine, generated_batches

CHUNK = 64  #: machines at a time, as ShardHost._synthetic_batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("machines", type=int)
    ap.add_argument("path", choices=("direct", "table"))
    ap.add_argument("--preset", default="google2011_cell", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    params, seed = PRESETS[args.preset], args.seed
    source = f"synthetic seed {seed}"
    events = 0
    c0 = time.process_time()
    for lo in range(0, args.machines, CHUNK):
        machines = range(lo, min(lo + CHUNK, args.machines))
        if args.path == "direct":
            got = generated_batches(params, seed, machines, source)
        else:
            got = list(machine_batches(pa.concat_tables([generate_machine(params, seed, i) for i in machines]),
                                       source))
        events += sum(len(batch) for _, batch in got)
        del got
    cpu = time.process_time() - c0
    print(f"{args.path}: {args.machines} machines of {args.preset}, {events:,} events, {cpu:.2f} CPU-s, "
          f"{cpu / max(events, 1) * 1e6:.3f} CPU-s per million events")


if __name__ == "__main__":
    main()
