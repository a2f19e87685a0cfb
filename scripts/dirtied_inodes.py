"""Bound a kernel hold the model lacks: how many of a run's memcgs dirtied a disk inode, and when freed.

The random kernel checks found a removed cgroup that the kernel keeps dying after one of its tasks
dirtied an ext4 inode (a relatime atime update on read or mmap, or a write's mtime), where the model
frees it (docs/kernel-validation.md, ``kept_zombie``). The holder is not known; this measures how
much it could matter. It runs the replay (``replay.app.run_command``, Hydra overrides as on the
command line, ``executor=local``) with the model's ``touch_atime`` and its file-write handler
wrapped to record the memcg of every task that dirtied an inode, then reads the run's job table.

In: Hydra overrides (default ``policy.names=[none] executor=local``; the run never uses or fills
the result cache) and ``--hold S``, the seconds
the kernel is assumed to hold each such memcg past the model's free. Out: printed figures: memcgs,
those that dirtied an inode, those of them freed before the end, and the rise in the fleet's
time-averaged and final zombie counts if each were held ``--hold`` seconds longer, or never freed.

    python scripts/dirtied_inodes.py [--hold 30] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
from collections.abc import Callable

import pyarrow.parquet as pq

import core.machine as machine_mod
from core import syscalls
from core.fs_writeback import inode_times
from core.ops import Op
from core.pages import Kind

Key = tuple[str, str, int]  #: (machine, cgroup path, born_us): one memcg of the run, as the job table names it


def _key(machine, m: int) -> Key:
    return machine.machine_id, machine.mem.path[m], int(machine.mem.born_us[m])


def instrument(seen: set[Key]) -> Callable[[], None]:
    """Wrap the model's inode-dirtying paths to add the dirtying task's memcg to ``seen``; returns undo."""
    touch, write_code = syscalls.touch_atime, int(Op.FILE_WRITE)
    write = machine_mod._HANDLERS[write_code]

    def touch_atime(machine, t: int, o: int) -> None:
        before = inode_times(machine, o)
        touch(machine, t, o)
        if inode_times(machine, o) != before:  # relatime updated atime: the inode is dirty
            seen.add(_key(machine, machine.t_cg[t]))

    def file_write(machine, ev) -> None:
        t, o = machine.task_by_name.get(ev.task, -1), machine.obj_by_name.get(ev.obj, -1)
        if t >= 0 and o >= 0 and machine.t_alive[t] and machine.o_kind[o] == int(Kind.FILE):
            seen.add(_key(machine, machine.t_cg[t]))  # a write to a disk file sets mtime
        write(machine, ev)

    syscalls.touch_atime, machine_mod._HANDLERS[write_code] = touch_atime, file_write

    def undo() -> None:
        syscalls.touch_atime, machine_mod._HANDLERS[write_code] = touch, write
    return undo


def bound(jobs, seen: set[Key], end_us: int, hold_s: float, machines: int) -> dict:
    """The figures from a job table (pandas) and the memcgs that dirtied an inode (module docstring)."""
    dirtied = [(m, c, int(b)) in seen for m, c, b in zip(jobs.machine, jobs.cgroup, jobs.born_us)]
    jobs = jobs.assign(dirtied=dirtied)
    freed = jobs[(jobs.freed_us >= 0) & jobs.dirtied]
    hold_us, span_s = hold_s * 1e6, end_us / 1e6
    return {
        "memcgs": len(jobs), "dirtied_inode": int(jobs.dirtied.sum()), "dirtied_and_freed": len(freed),
        "held_avg_rise": len(freed) * min(hold_s, span_s) / span_s,
        "held_avg_rise_per_machine": len(freed) * min(hold_s, span_s) / span_s / machines,
        "held_final_rise": int((freed.freed_us >= end_us - hold_us).sum()),
        "never_freed_avg_rise": float(((end_us - freed.freed_us) / 1e6).sum() / span_s),
        "never_freed_final_rise": len(freed),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the replay instrumented and print the figures; the replay's exit status if it failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hold", type=float, default=30.0, help="seconds each such memcg is held (default 30)")
    ap.add_argument("overrides", nargs="*", default=["policy.names=[none]", "executor=local"])
    args = ap.parse_args(argv)
    from hydra import compose, initialize_config_dir

    from replay.__main__ import conf_dir
    from replay.app import run_command

    seen: set[Key] = set()
    undo = instrument(seen)
    try:
        with tempfile.TemporaryDirectory() as out:
            with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
                # store.cache=false: a cached result would skip the replay, and with it the recording
                cfg = compose("config", overrides=[*args.overrides, f"output_dir={out}", "store.cache=false"])
            rc = run_command(cfg)
            if rc:
                return rc
            def table(name: str):
                return pq.read_table(glob.glob(os.path.join(out, name, "**", "*.parquet"), recursive=True))

            jobs = table("jobs").to_pandas()
            end_us = int(max(table("fleet").column("time_us").to_pylist()))  # the last sample: the run's end
            figures = bound(jobs, seen, end_us, args.hold, jobs.machine.nunique())
    finally:
        undo()
    for k, v in figures.items():
        print(f"{k:28s} {v:,.1f}" if isinstance(v, float) else f"{k:28s} {v:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
