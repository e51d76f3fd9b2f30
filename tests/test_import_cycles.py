"""The package's modules import each other without a cycle (imports for type checking aside)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_provider_mps"
ROOT = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported: module level, ``if TYPE_CHECKING`` left out."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            pending.extend(statement for handler in node.handlers for statement in handler.body)
    return found


def _with_parents(name: str) -> set[str]:
    """``name`` and the packages importing it runs first (the root package aside: it imports none)."""
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(2, len(parts) + 1)} & set(MODULES)


def _imported(module: str) -> set[str]:
    """The package's modules that importing ``module`` imports at once."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _top_level_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            if target.split(".")[0] == ROOT:
                names |= _with_parents(target)
    return names - {module}


def _cycle() -> list[str] | None:
    """One import cycle among the package's modules, as the modules along it, or ``None``."""
    graph = {module: _imported(module) for module in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    assert len(MODULES) > 50  # the walk found the package
    assert _cycle() is None


def test_the_check_finds_a_cycle_when_there_is_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # a and b import each other, one through a relative import; c imports a for type checking only.
    type_checking = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    "
    files = {
        "__init__.py": "",
        "sub/__init__.py": "",
        "sub/a.py": "from . import b\n",
        "sub/b.py": f"{type_checking}import os\nfrom airflow_provider_mps.sub import a\n",
        "sub/c.py": f"{type_checking}from . import a\n",
    }
    package = tmp_path / ROOT
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    monkeypatch.setattr(f"{__name__}.PACKAGE", package)
    monkeypatch.setattr(f"{__name__}.MODULES", {_module_name(p): p for p in sorted(package.rglob("*.py"))})

    assert _cycle() == [f"{ROOT}.sub.a", f"{ROOT}.sub.b", f"{ROOT}.sub.a"]
