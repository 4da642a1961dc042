"""No import cycle anywhere in factcli/.

Every module imports in a fresh interpreter, all of them in sorted and in reverse order; the graph of
module-level imports has no cycle; and an import inside a function (for startup speed: torch, pandas,
Hydra load only when a command needs them) never reaches a module that imports its importer, i.e. it
never hides a cycle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "factcli"


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


MODULES = module_files()


def imports_of(name: str) -> tuple[set[str], set[str]]:
    """(module-level, function-level) factcli modules that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top, lazy = set(), set()

    def targets(node) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name for alias in node.names}
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        return {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found = {t for t in targets(child) if t in MODULES}
                (lazy if in_function else top).update(found)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse(path.read_text()), False)
    return top - {name}, lazy - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def reachable(start: str) -> set[str]:
    """Every module that importing ``start`` imports at module level (transitively)."""
    seen, stack = set(), [start]
    while stack:
        for nxt in GRAPH[stack.pop()][0]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_the_inventory_sees_the_package():
    assert {"factcli.cli", "factcli.commands", "factcli.experiments.rfm.fit", "factcli.data.tabular"} <= set(
        MODULES
    )
    assert "factcli.commands" in GRAPH["factcli.launch"][0]  # an edge the parser must find


def test_module_level_imports_have_no_cycle():
    cycles = sorted(name for name in MODULES if name in reachable(name))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_no_function_level_import_hides_a_cycle():
    hiding = sorted(
        f"{name} → {target}"
        for name, (_, lazy) in GRAPH.items()
        for target in lazy
        if name in reachable(target)
    )
    assert hiding == [], f"imports inside functions that would close a cycle at module level: {hiding}"


@pytest.mark.parametrize("order", ["sorted", "reverse"])
def test_every_module_imports_in_a_fresh_interpreter(order):
    names = sorted(MODULES, reverse=order == "reverse")
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", script, *names], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]
