"""The package's layout holds: `python/ferroscore` is layered, every import points down a
layer (peers in one layer never import each other), no module imports another in a circle,
and each subpackage's `__init__` only says, in its docstring, what lives there and what it may
import. Imports under `if TYPE_CHECKING:` are annotations, not dependencies, and are left out;
imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "ferroscore"

#: Top to bottom. A unit is a subpackage or a top-level module of `ferroscore`.
LAYERS: list[set[str]] = [
    {"__main__"},  # `python -m ferroscore`
    {"__init__", "cli", "scorer"},  # the public faces: the package, the command, `Scorer`
    {"serving"},
    {"hooks", "offline"},
    {"access", "decisionlog"},
    {"models"},
    {"processes", "observability"},
    {"pipeline", "config", "migrations", "demo"},
    {"_core"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The ferroscore modules `path` imports when it runs (a `from pkg import name` of a
    submodule counts as that submodule)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ferroscore"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source.split(".")[0] == "ferroscore":
                for a in node.names:  # a submodule by name, else a name of `source`
                    sub = f"{source}.{a.name}"
                    found.add(sub if sub in modules else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != me}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths) | {"ferroscore._core"}
    return {name: runtime_imports(path, modules) for name, path in paths.items()}


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in graph()} | {"_core"}
    assert units == set(RANK), f"not layered: {units - set(RANK)}; gone: {set(RANK) - units}"


def test_imports_point_down() -> None:
    upward = [
        f"{module} imports {target} ({unit(module)} is not above {unit(target)})"
        for module, targets in graph().items()
        for target in targets
        if unit(target) != unit(module) and RANK[unit(target)] <= RANK[unit(module)]
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in g:
        if v not in index:
            visit(v)
    assert cycles == []


def test_each_subpackage_says_what_it_holds_and_may_import() -> None:
    subpackages = [p for p in PACKAGE.glob("*/__init__.py") if p.parent.name not in
                   ("cli", "migrations", "demo")]  # fmt: skip
    assert len(subpackages) >= 6
    for init in subpackages:
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree)
        assert "may import" in (doc or ""), f"{init}: no docstring saying what it may import"
        # An __init__ that imported its modules would load them all for any one of them.
        assert len(tree.body) == 1, f"{init}: only the docstring"


def test_the_graph_is_read_from_the_sources() -> None:
    # The graph is read from the sources: a known downward import is in it.
    g = graph()
    assert "ferroscore.models.registry" in g["ferroscore.serving.service"]
    assert "ferroscore.serving.loop_pools" not in g["ferroscore.hooks"]  # TYPE_CHECKING only
