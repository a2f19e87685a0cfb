"""The shape of ``core/`` (issue "Core v2, step 1"): a state struct and kernel-named modules of
functions, importing one another without a cycle, none over 500 lines, and nothing of the
replay stack (Ray, Hydra, pandas, pyarrow, redis).

In: the source files of ``core/``. Out: assertions on their import graph, classes and sizes.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
FORBIDDEN = ("ray", "hydra", "omegaconf", "pandas", "pyarrow", "redis", "fakeredis")


def _modules() -> dict[str, ast.Module]:
    """``core`` module name (``core.vmscan``) -> its parsed source."""
    out = {}
    for f in sorted(CORE.rglob("*.py")):
        rel = f.relative_to(CORE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = ast.parse(f.read_text(), str(f))
    return out


def _imports(tree: ast.Module) -> set[str]:
    """Every module a file imports at run time (imports under ``if TYPE_CHECKING`` excluded)."""
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and ast.unparse(node.test) == "TYPE_CHECKING" for b in node.body for n in ast.walk(b)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_core_has_no_import_cycle() -> None:
    mods = _modules()
    graph = {m: {i for i in _imports(t) if i in mods and i != m} for m, t in mods.items()}
    # a package's __init__ importing its own submodules is not a cycle of the model
    graph = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path[path.index(d):] + [d])
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_core_modules_are_small_and_have_no_mixins() -> None:
    for f in sorted(CORE.rglob("*.py")):
        n = len(f.read_text().splitlines())
        assert n <= 500, f"{f.name}: {n} lines (at most 500)"
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                assert "Mixin" not in node.name, f"{name}: mixin class {node.name}"


def test_core_imports_nothing_of_the_replay_stack() -> None:
    for name, tree in _modules().items():
        bad = sorted(i for i in _imports(tree) if i.split(".")[0] in FORBIDDEN)
        assert not bad, f"{name} imports {bad}"


def test_every_op_has_a_handler_in_the_op_table() -> None:
    from core.machine import OP_TABLE
    from core.ops import Op

    assert sorted(OP_TABLE) == sorted(Op)
