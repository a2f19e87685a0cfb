"""Validator: every rule code is triggered by a crafted row, at the right row and field."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.tracehelp import ev, pod_rows, table
from traces.io import write_trace
from traces.problems import TraceInvalid
from traces.schema import TRACE_SCHEMA, VERSION_KEY
from traces.validate import RULES, ensure_valid, validate_file, validate_table

START = [ev(0, "mkdir", cg="/a"), ev(1, "task_start", cg="/a", task="t1")]

# (code, rows, 1-based row of the problem, field); the offending row is the last one unless noted
CASES = [
    ("E201", START + [ev(2, "frobnicate")], 3, "op"),
    ("E202", START + [ev(2, "anon_alloc", task="t1", obj="h", nb=4096, fl="mayfail|sparkly")], 3, "flags"),
    ("E203", START + [ev(2, "file_create", obj="f", fl="mlock")], 3, "flags"),
    ("E204", START + [ev(2, "anon_alloc", task="t1", obj="h")], 3, "bytes"),
    ("E204", [ev(0, "mkdir")], 1, "cgroup"),
    ("E205", START + [ev(2, "anon_alloc", task="t1", obj="h", nb=-4096)], 3, "bytes"),
    ("E206", START + [ev(2, "file_create", obj="f", nb=10), ev(3, "file_read", task="t1", obj="f", off=-1)],
     4, "offset"),
    ("E207", [ev(-5, "sync")], 1, "time_us"),
    ("E208", START + [ev(0, "sync")], 3, "time_us"),
    ("E209", START + [ev(2, "set_limit", cg="/a", nb=4096)], 3, "flags"),
    ("E210", START + [ev(2, "kmem_alloc", task="t1", obj="k", nb=4096)], 3, "flags"),
    ("E210", START + [ev(2, "kmem_alloc", task="t1", obj="k", nb=4096, fl="slab|page")], 3, "flags"),
    ("C301", [ev(0, "mkdir", cg="a/b")], 1, "cgroup"),
    ("C301", [ev(0, "mkdir", cg="/a//b")], 1, "cgroup"),
    ("C302", [ev(0, "mkdir", cg="/a"), ev(1, "mkdir", cg="/a")], 2, "cgroup"),
    ("C302", [ev(0, "mkdir", cg="/")], 1, "cgroup"),
    ("C303", [ev(0, "mkdir", cg="/a/b")], 1, "cgroup"),
    ("C303", [ev(0, "mkdir", cg="/a"), ev(1, "rmdir", cg="/a"), ev(2, "mkdir", cg="/a/b")], 3, "cgroup"),
    ("C304", [ev(0, "rmdir", cg="/nope")], 1, "cgroup"),
    ("C304", [ev(0, "mkdir", cg="/a"), ev(1, "rmdir", cg="/a"), ev(2, "rmdir", cg="/a")], 3, "cgroup"),
    ("C305", [ev(0, "rmdir", cg="/")], 1, "cgroup"),
    ("C306", START + [ev(2, "rmdir", cg="/a")], 3, "cgroup"),
    ("C307", [ev(0, "mkdir", cg="/a"), ev(1, "mkdir", cg="/a/b"), ev(2, "rmdir", cg="/a")], 3, "cgroup"),
    ("C308", [ev(0, "task_start", cg="/a", task="t1")], 1, "cgroup"),
    ("C308", START + [ev(2, "task_move", cg="/gone", task="t1")], 3, "cgroup"),
    ("C309", [ev(0, "set_limit", cg="/a", nb=4096, fl="max")], 1, "cgroup"),
    ("C309", [ev(0, "set_limit", cg="/", nb=4096, fl="high")], 1, "cgroup"),
    ("C310", [ev(0, "mkdir", cg="/a"), ev(1, "rmdir", cg="/a"), ev(2, "reclaim", cg="/a", nb=4096)],
     3, "cgroup"),
    ("K401", START + [ev(2, "task_start", cg="/a", task="t1")], 3, "task"),
    ("K401", START + [ev(2, "task_exit", task="t1"), ev(3, "task_start", cg="/a", task="t1")], 4, "task"),
    ("K402", START + [ev(2, "anon_alloc", task="t9", obj="h", nb=4096)], 3, "task"),
    ("K403", START + [ev(2, "task_exit", task="t1"), ev(3, "task_exit", task="t1")], 4, "task"),
    ("O501", START + [ev(2, "file_create", obj="f", nb=1), ev(3, "file_create", obj="f", nb=1)], 4, "object"),
    ("O501", START + [ev(2, "kmem_alloc", task="t1", obj="k", nb=1, fl="slab"),
                      ev(3, "kmem_alloc", task="t1", obj="k", nb=1, fl="slab")], 4, "object"),
    ("O502", START + [ev(2, "file_read", task="t1", obj="ghost")], 3, "object"),
    ("O502", START + [ev(2, "anon_free", task="t1", obj="ghost")], 3, "object"),
    ("O503", START + [ev(2, "file_create", obj="f", nb=1), ev(3, "file_delete", obj="f"),
                      ev(4, "file_map", task="t1", obj="f")], 5, "object"),
    ("O504", START + [ev(2, "task_start", cg="/a", task="t2"), ev(3, "anon_alloc", task="t1", obj="h", nb=1),
                      ev(4, "anon_alloc", task="t2", obj="h", nb=1)], 5, "object"),
    ("O505", START + [ev(2, "anon_alloc", task="t1", obj="h", nb=1), ev(3, "file_read", task="t1", obj="h")],
     4, "object"),
    ("O506", START + [ev(2, "anon_alloc", task="t1", obj="h", nb=8192),
                      ev(3, "pin", task="t1", obj="h", off=0, nb=4096, fl="mlock"),
                      ev(4, "unpin", task="t1", obj="h", off=0, nb=4096)], 5, "object"),
    ("O507", START + [ev(2, "kmem_free", obj="k")], 3, "object"),
    ("O507", START + [ev(2, "kmem_alloc", task="t1", obj="k", nb=1, fl="page"), ev(3, "task_exit", task="t1"),
                      ev(4, "kmem_free", obj="k")], 5, "object"),
    ("M601", [ev(0, "swap_off")], 1, "op"),
    ("M602", [ev(0, "memory", nb=100)], 1, "bytes"),
    ("O508", START + [ev(2, "sock_close", obj="s")], 3, "object"),
    ("O508", START + [ev(2, "sock_open", task="t1", obj="s"), ev(3, "task_exit", task="t1"),
                      ev(4, "sock_close", obj="s"), ev(5, "sock_close", obj="s")], 6, "object"),
    ("S104", [ev(None, "sync")], 1, "time_us"),
    ("S104", [ev(0, None)], 1, "op"),
]


def _nullable_schema() -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in TRACE_SCHEMA])


@pytest.mark.parametrize("code,rows,row,field", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_triggered_at_row_and_field(code, rows, row, field):
    problems = validate_table(table(rows, _nullable_schema()), "t.csv")
    hits = [p for p in problems if p.code == code]
    assert hits, f"{code} not reported; got {[str(p) for p in problems]}"
    assert (hits[0].row, hits[0].field) == (row, field)
    assert str(hits[0]).startswith(f"t.csv:{row}: {code} {field}: ")


def test_valid_trace_has_no_problem():
    rows = pod_rows("m1") + pod_rows("m2", t0=5)
    rows.sort(key=lambda r: r[1])  # machines may interleave, but keep each machine's order
    assert validate_table(table(rows), "ok") == []


def test_interleaved_machines_are_checked_separately():
    a, b = pod_rows("m1"), pod_rows("m2")
    rows = [r for pair in zip(a, b) for r in pair]
    assert validate_table(table(rows)) == []


def test_dying_children_do_not_block_rmdir():
    rows = [ev(0, "mkdir", cg="/p"), ev(1, "mkdir", cg="/p/c"), ev(2, "rmdir", cg="/p/c"), ev(3, "rmdir", cg="/p")]
    assert validate_table(table(rows)) == []


def test_mkdir_after_rmdir_creates_a_new_incarnation():
    rows = [ev(0, "mkdir", cg="/p"), ev(1, "rmdir", cg="/p"), ev(2, "mkdir", cg="/p")]
    assert validate_table(table(rows)) == []


def test_unmap_after_delete_is_allowed_but_read_is_not():
    rows = START + [ev(2, "file_create", obj="f", nb=4096), ev(3, "file_map", task="t1", obj="f"),
                    ev(4, "file_delete", obj="f"), ev(5, "file_unmap", task="t1", obj="f"),
                    ev(6, "file_read", task="t1", obj="f")]
    assert [(p.code, p.row) for p in validate_table(table(rows))] == [("O503", 7)]


def test_whole_anon_free_ends_the_region_partial_does_not():
    rows = START + [ev(2, "anon_alloc", task="t1", obj="h", nb=8192),
                    ev(3, "anon_free", task="t1", obj="h", off=0, nb=4096),
                    ev(4, "anon_alloc", task="t1", obj="h", nb=4096),
                    ev(5, "anon_free", task="t1", obj="h"),
                    ev(6, "pin", task="t1", obj="h", off=0, nb=4096),
                    ev(7, "anon_alloc", task="t1", obj="h", nb=4096)]
    assert [(p.code, p.row) for p in validate_table(table(rows))] == [("O503", 7)]


def test_every_problem_is_reported_not_just_the_first():
    rows = START + [ev(2, "bogus"), ev(3, "rmdir", cg="/zz"), ev(1, "kmem_free", obj="k")]
    codes = [p.code for p in validate_table(table(rows))]
    assert codes == ["E201", "C304", "E208", "O507"]


def test_structural_problem_does_not_cascade():
    # a task_start without its cgroup is one E204, not also a later K402 for the same task
    rows = [ev(0, "task_start", task="t1"), ev(1, "task_exit", task="t1")]
    codes = [p.code for p in validate_table(table(rows, _nullable_schema()))]
    assert codes[0] == "E204" and "E204" in codes


def test_schema_level_rules(tmp_path):
    t = table(pod_rows())
    missing = validate_table(t.drop_columns(["flags"]), "x")
    assert [(p.code, p.row, p.field) for p in missing][:1] == [("S101", 0, "flags")]
    extra = validate_table(t.append_column("colour", pa.array(["red"] * t.num_rows)), "x")
    assert [(p.code, p.field) for p in extra] == [("S102", "colour")]
    versioned = t.replace_schema_metadata({VERSION_KEY: b"99"})
    assert [p.code for p in validate_table(versioned, "x")] == ["S105"]


def test_bad_csv_cells_are_reported_with_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    write_trace(table(pod_rows()), path)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(",1073741824,", ",lots,")  # data row 4: set_limit bytes
    lines[5] = "soon" + lines[5][lines[5].index(","):]  # data row 5: time_us of the container mkdir
    path.write_text("\n".join(lines) + "\n")
    found = [(p.code, p.row, p.field) for p in validate_file(path)]
    # exactly the two bad cells: no S104/E204 for the nulled cells, no cascade from the mkdir row
    assert found == [("S103", 4, "bytes"), ("S103", 5, "time_us")]


def test_unreadable_file_is_one_problem(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet")
    assert [p.code for p in validate_file(path)] == ["S106"]


def test_ensure_valid_raises_with_full_report():
    rows = START + [ev(2, "bogus"), ev(3, "rmdir", cg="/zz")]
    with pytest.raises(TraceInvalid) as err:
        ensure_valid(table(rows), "f.parquet")
    assert len(err.value.problems) == 2 and "E201" in str(err.value) and "C304" in str(err.value)
    assert err.value.row == 3 and err.value.field == "op"


def test_every_rule_has_a_test_case():
    covered = {c[0] for c in CASES} | {"S101", "S102", "S103", "S105", "S106", "S107", "S108", "E211"}
    assert covered == set(RULES)


def test_cli_exit_codes_and_output(tmp_path, capsys):
    from traces.cli import main

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    write_trace(table(pod_rows()), good)
    write_trace(table(START + [ev(2, "bogus"), ev(3, "rmdir", cg="/zz"), ev(4, "rmdir", cg="/yy")]), bad)
    assert main(["validate", str(good)]) == 0
    assert "OK: 25 events, 1 machine(s)" in capsys.readouterr().out
    assert main(["validate", str(good), str(bad), "--max-problems", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [f"{bad}:3: E201 op: unknown op 'bogus'",
                       f"{bad}:4: C304 cgroup: rmdir '/zz': cgroup was never created",
                       "... and 1 more problem"]


def test_model_never_rejects_what_the_validator_accepts():
    """Mutate a generated trace (drop, duplicate, move a row): if the validator finds nothing,
    the machine model must replay it without a TraceError."""
    import dataclasses

    import numpy as np

    machine = pytest.importorskip("core.machine")
    from core.errors import TraceError
    from core.policy import make_policy
    from traces.batches import machine_batches
    from traces.generate import PRESETS, generate_machine

    p = dataclasses.replace(PRESETS["tiny"], duration_s=120.0)
    base = generate_machine(p, 0, 0)
    rng = np.random.default_rng(11)
    accepted = 0
    for k in range(45):
        idx, a = np.arange(base.num_rows), int(rng.integers(0, base.num_rows - 1))
        b = int(rng.integers(a + 1, base.num_rows))
        idx = [np.delete(idx, a), np.insert(idx, a, a), np.concatenate([idx[:a], [b], idx[a:b], idx[b + 1:]])][k % 3]
        mutated = base.take(pa.array(idx))
        if validate_table(mutated):
            continue
        accepted += 1
        m = machine.Machine(machine.MachineConfig(mem_bytes=p.mem_bytes, swap_bytes=p.swap_bytes),
                            policy=make_policy("none"), machine_id="m-0000", seed=0)
        try:
            for _, batch in machine_batches(mutated):
                m.apply(batch)
        except TraceError as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"validator accepted, model rejected (mutation {k}): {e}")
    assert accepted > 5


def test_rows_without_machine_are_s104_not_a_crash():
    # found by tests/test_fuzz.py: a null machine and a time going down raised IndexError (E208's message)
    rows = [ev(5, "sync", m=None), ev(1, "sync", m=None), ev(0, "sync"), ev(3, "sync", m=None)]
    schema = pa.schema([f.with_nullable(True) for f in TRACE_SCHEMA])
    found = [(p.code, p.row) for p in validate_table(table(rows, schema))]
    assert found == [("S104", 1), ("S104", 2), ("S104", 4)]
