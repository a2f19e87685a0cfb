"""The run table's counts of resident runs charged elsewhere than their origin and of parked ones
(``RunTable.foreign``/``parked``): the compiled build keeps them at every write and a sample scans the
runs only when one is nonzero (``sample_scan.usage_scan``); the pure build scans at every sample."""

from __future__ import annotations

import pickle

import pytest

from core import COMPILED
from core.mm_types import PARKED, Kind, St
from core.pages import RunTable
from tests.simkit import MiB, Sim

compiled_only = pytest.mark.skipif("pages" not in COMPILED, reason="the pure RunTable keeps no counts")


@compiled_only
def test_every_writer_keeps_the_counts():
    R = RunTable()
    a = R.new(0, 0, 4, St.RESIDENT, 3, 3, 0, 0, 0, Kind.FILE)
    b = R.new(0, 4, 4, St.RESIDENT, 3, 2, 0, 0, 0, Kind.FILE)  # charged elsewhere than its origin
    R.link(a)
    R.link(b)
    assert (R.foreign, R.parked) == (1, 0) == R.tallies()
    R.set_owner(b, St.SWAPPED, 3)  # not resident: counts nothing
    assert (R.foreign, R.parked) == (0, 0) == R.tallies()
    R.set_owner(b, St.RESIDENT, 2)  # swapped in, charged to its origin
    R.retag(a, 1, PARKED)  # parked, and charged elsewhere than its (new) origin
    assert (R.foreign, R.parked) == (1, 1) == R.tallies()
    c = R.split(a, 2)  # the upper half: a copy of the fields
    assert (R.foreign, R.parked) == (2, 2) == R.tallies()
    R.drop(c)
    assert (R.foreign, R.parked) == (1, 1) == R.tallies()
    back = pickle.loads(pickle.dumps(R))
    assert (back.foreign, back.parked) == (1, 1)
    R.drop_object(0)
    assert (R.foreign, R.parked) == (0, 0) == R.tallies()


@compiled_only
@pytest.mark.parametrize("policy", ["reparent", "recharge_deferred"])
def test_the_counts_follow_a_replay_that_moves_charges(policy):
    # every step of ``Sim`` checks the invariants, the counts among them
    s = Sim(policy).mkdir("/a", "/b").start("a1", "/a").start("b1", "/b")
    s.create("f").write("a1", "f", 8 * MiB).map("b1", "f")
    assert (s.m.runs.foreign, s.m.runs.parked) == (0, 0)
    s.exit("a1").rmdir("/a").wait(60)  # the file's pages leave their origin: reparented (and parked)
    assert s.m.runs.foreign > 0 and (s.m.runs.parked > 0) == (policy == "recharge_deferred")
    s.read("b1", "f").wait(60)
    s.exit("b1").delete("f")  # unmapped and deleted: freed
    assert (s.m.runs.foreign, s.m.runs.parked) == (0, 0)
