"""scripts/dirtied_inodes.py: the bound of a kernel hold the model lacks (docs/kernel-validation.md, kept_zombie)."""

import pandas as pd

import core.machine as machine_mod
from core import syscalls
from core.machine import Machine, MachineConfig
from core.policy import make_policy
from scripts.dirtied_inodes import bound, instrument
from traces.batches import machine_batches
from traces.generate import PRESETS, generate


def test_bound_counts_freed_dirtiers_and_their_extra_zombie_time():
    jobs = pd.DataFrame({
        "machine": ["m0", "m0", "m0", "m1"], "cgroup": ["/a", "/b", "/c", "/a"],
        "born_us": [0, 0, 5, 0],
        # /a freed at 50 s, /b at 95 s (inside the last 30 s), /c never, m1's /a freed at 10 s
        "freed_us": [50_000_000, 95_000_000, -1, 10_000_000],
    })
    seen = {("m0", "/a", 0), ("m0", "/b", 0), ("m0", "/c", 5)}  # m1's /a did not dirty an inode
    f = bound(jobs, seen, end_us=100_000_000, hold_s=30, machines=2)
    assert (f["memcgs"], f["dirtied_inode"], f["dirtied_and_freed"]) == (4, 3, 2)
    assert f["held_avg_rise"] == 2 * 30 / 100 and f["held_avg_rise_per_machine"] == 0.3
    assert f["held_final_rise"] == 1  # only /b was freed in the last 30 s
    assert f["never_freed_final_rise"] == 2 and f["never_freed_avg_rise"] == (50 + 5) / 100


def test_instrument_records_dirtying_memcgs_and_undo_restores_the_model():
    params = PRESETS["tiny"]
    batches = [b for mid, b in machine_batches(generate(params, 0), source="tiny") if mid == "m-0000"]
    touch, handlers = syscalls.touch_atime, list(machine_mod._HANDLERS)
    seen: set = set()
    undo = instrument(seen)
    try:
        m = Machine(MachineConfig(mem_bytes=params.mem_bytes, swap_bytes=params.swap_bytes), make_policy("none"),
                    machine_id="m-0000")
        for b in batches:
            m.apply(b)
    finally:
        undo()
    assert seen and all(k[0] == "m-0000" and k[1].startswith("/") for k in seen)
    assert syscalls.touch_atime is touch and machine_mod._HANDLERS == handlers
