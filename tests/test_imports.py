"""The layout's promise: data flows one way (sources → encodings → server ← viewer), no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ngshow"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists() or name == "ngshow._native"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, *, typing_too: bool = False) -> set[str]:
    """ngshow modules ``path`` imports when it runs (anywhere in it; ``typing_too``: also those under
    ``if TYPE_CHECKING:``)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not typing_too:
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("ngshow"):
                    for alias in child.names:  # "from . import runtime" imports a module, not the package
                        candidate = f"{target}.{alias.name}"
                        found.add(candidate if _is_module(candidate) else target)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("ngshow"))
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    return {_module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def test_the_server_imports_no_module_that_imports_it_back() -> None:
    edges = graph()
    below = reachable("ngshow.server", edges)
    assert "ngshow.server" not in below, sorted(below)
    viewer_side = {"ngshow.viewer", "ngshow.layers", "ngshow.actions", "ngshow.screenshots", "ngshow.runtime"}
    typing_imports = imports_of(PACKAGE / "server.py", typing_too=True)
    assert not (below | typing_imports) & viewer_side, sorted((below | typing_imports) & viewer_side)


def test_the_lower_layers_never_import_the_viewer() -> None:
    edges = graph()
    for lower in ("ngshow.sources", "ngshow.encodings", "ngshow.coords", "ngshow.mesh", "ngshow.live", "ngshow.served"):
        assert "ngshow.viewer" not in reachable(lower, edges), lower
