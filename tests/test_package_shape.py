"""The package's shape: no import cycles, every module says what it is, each side imports only what runs where it runs, only hooks/ sends HTTP, the security page names real tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_ordo_hooks"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``path`` imports, wherever in the file (inside functions and TYPE_CHECKING too)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
            # ``from package import submodule`` imports the submodule; any other name comes from the module itself
            names = submodules + ([node.module] if len(submodules) < len(node.names) else [])
        for name in names:
            if name in modules:
                targets.add(name)
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_module_of_the_package_imports_itself_through_others():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert _cycles(graph) == []
    leaves_importing_root = [n for n, targets in graph.items() if "airflow_ordo_hooks" in targets and n != "airflow_ordo_hooks"]
    assert leaves_importing_root == [], "leaves import what they need from its own module, not the package root"


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_says_what_it_is_in_its_first_docstring_line():
    for name, path in _modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, f"{name}: no first docstring line saying what it is"


def test_only_hooks_send_http():
    senders = []
    for name, path in _modules().items():
        text = path.read_text()
        if re.search(r"^\s*(import requests|from requests|import urllib3|from urllib3|import httpx|import http\.client)", text, re.M):
            senders.append(name)
    # _targets reads URLs with urllib3's parser (the one that connects, so that a check and the
    # connection see one URL), and sends nothing
    readers = {"airflow_ordo_hooks.testing.receiver", "airflow_ordo_hooks._targets"}
    assert all(n.startswith("airflow_ordo_hooks.hooks.") or n in readers for n in senders), senders


def test_import_airflow_ordo_hooks_alone_imports_neither_airflow_nor_requests():
    code = "import sys, airflow_ordo_hooks; print(sorted(m for m in ('airflow', 'requests', 'pydantic', 'yaml') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_every_test_the_security_pages_defences_tables_name_exists():
    section = (ROOT / "docs" / "security.md").read_text()
    named, current = [], None
    for token in re.findall(r"`([^`]+)`", section):
        path, _, name = token.partition("::")
        if path.endswith(".py"):
            current = ROOT / "tests" / path
            assert current.is_file(), f"docs/security.md names {token}, which is not a test file"
        if token.startswith("::") or (path.endswith(".py") and name):
            named.append((current, name or path))
    assert len(named) >= 15
    for path, name in named:
        assert re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.M), f"{path.name} has no test {name}"


# What each side of the package must not import: a module's package says where it runs, so an
# import across these lines is a module in the wrong place (imports under TYPE_CHECKING count too).
FORBIDDEN = {
    # parsed constantly, in the DAG processor and in every task's process: no ledger, no commands
    "dag_file": {"server", "cli", "plugins"},
    # a task's process and the DAG processor have no database: the ledger only through the API server
    "callbacks": {"server", "cli", "plugins", "operators"},
    # the API server holds no DAG: it sends and records what callbacks made
    "server": {"dag_file", "callbacks", "operators", "notifications", "cli"},
    # the HTTP layer serves every side and knows none
    "hooks": {"dag_file", "callbacks", "server", "operators", "notifications", "cli", "plugins"},
}


def _side(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FORBIDDEN) else None


def test_each_side_of_the_package_imports_nothing_that_runs_elsewhere():
    modules = _modules()
    crossings = sorted(
        f"{name} imports {target}"
        for name, path in modules.items()
        if _side(name) in FORBIDDEN
        for target in _imports(path, modules)
        if _side(target) in FORBIDDEN[_side(name)]
    )
    assert crossings == []
    assert {_side(n) for n in modules} >= set(FORBIDDEN), "each side is a package of its own"
