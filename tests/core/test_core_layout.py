"""The core crate's layout as `rust/ferroscore-core/src/parse/mod.rs` states it: the parser's
modules import only those before them, no model module imports the parser, and no two
modules of the crate import each other, directly or around a circle."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "rust" / "ferroscore-core" / "src"
#: The parser's modules, each importing only those before it.
PARSE_ORDER = ["json", "rows", "ctx", "value", "record", "request"]
_USE = re.compile(r"\bcrate::([a-z_]+)(?:::([a-z_]+))?")


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return "::".join(parts[:-1] if parts[-1] == "mod" else parts)


def _imports(path: Path) -> set[str]:
    """The crate modules `path` names (`crate::parse::ctx` as `parse::ctx`), tests aside."""
    text = path.read_text().split("#[cfg(test)]")[0]
    found = set()
    for top, sub in _USE.findall(text):
        nested = SRC / top / f"{sub}.rs"
        found.add(f"{top}::{sub}" if sub and nested.exists() else top)
    return found - {_module(path)}


def test_the_parser_imports_only_downward() -> None:
    for i, name in enumerate(PARSE_ORDER):
        later = {f"parse::{n}" for n in PARSE_ORDER[i + 1 :]}
        wrong = _imports(SRC / "parse" / f"{name}.rs") & later
        assert not wrong, f"parse::{name} imports {sorted(wrong)}, which come after it"


def test_no_model_module_imports_the_parser() -> None:
    for path in (SRC / "model").rglob("*.rs"):
        assert not any(m.startswith("parse") for m in _imports(path)), path


def test_no_import_cycle_in_the_core() -> None:
    graph = {_module(p): _imports(p) for p in SRC.rglob("*.rs")}
    # A module importing its own submodules (`parse` re-exporting `parse::rows`) is its
    # front door, not a cycle.
    graph = {m: {d for d in deps if not d.startswith(m + "::")} for m, deps in graph.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for dep in graph.get(start, ()):
            if dep == goal or (dep not in seen and (seen.add(dep) or reaches(dep, goal, seen))):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, set()))
    assert not cycles, f"modules on an import cycle: {cycles}"
