"""The package's shape: imports only go down the layers of docs/architecture.md, and no file
grows past what a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rewardforge"
# Higher imports lower, never the reverse; packages of one rank do not import each other.
RANKS = {
    "cli": 10,
    "serving": 9,
    "policy": 9,
    "generation": 9,
    "evaluation": 8,
    "training": 7,
    "scoring": 7,
    "adoption": 6,
    "models": 5,
    "forward": 4,
    "recipe": 3,
    "data": 2,
    "config_fields": 1,
    "api_key": 1,
    "torch_environment": 1,
    "output_paths": 1,
    "errors": 0,
}
MAX_LINES = 350


def unit(module: str) -> str:
    """The layer a module belongs to: `rewardforge.forward.plan` is in `forward`."""
    return module.split(".")[1]


def imports(path: Path, run_time_only: bool = False) -> set[str]:
    """The rewardforge modules a file imports, at module level or inside functions (with
    `run_time_only`, not those under `if TYPE_CHECKING:`, which never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if run_time_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewardforge."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rewardforge."))
    return found


SOURCES = sorted(
    path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts != ("__init__.py",)
)


def test_every_package_has_a_rank():
    units = {
        unit(".".join(("rewardforge", *p.relative_to(PACKAGE).with_suffix("").parts)))
        for p in SOURCES
    }
    assert units == set(RANKS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    source = unit(".".join(("rewardforge", *path.relative_to(PACKAGE).with_suffix("").parts)))
    upward = [
        module
        for module in imports(path)
        if unit(module) != source and RANKS[unit(module)] >= RANKS[source]
    ]
    assert upward == [], f"{path.name} ({source}) imports from its own rank or above: {upward}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_stay_short(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by job"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("rewardforge", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def test_no_module_imports_one_that_imports_it_back():
    """No import circle, not even one hidden by an import inside a function."""
    graph = {module_name(path): imports(path, True) for path in PACKAGE.rglob("*.py")}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo += [m for m in graph.get(module, ()) if m != module]
        return False

    circles = sorted(
        f"{a} <-> {b}"
        for a, targets in graph.items()
        for b in targets
        if b != a and not a.startswith(b + ".") and reaches(b, a)
    )
    assert not circles, circles
