"""The package's layout is its architecture (docs/README: layout): the core (settings, app, stacks, constructs,
terraform, target, review, ...) and the local AWS (deepsentinel/local/) never import a command
(deepsentinel/commands/, deepsentinel/cli.py), and no modules import each other in a circle, at module level or
inside a function. Read from the source with `ast`, so an import nobody executes in a test still counts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "deepsentinel"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules `path` imports (`import a.b`, `from a import b`, `from a.b import c`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: imports_of(path, known) - {name} for name, path in paths.items()}


def is_command(name: str) -> bool:
    return name == "deepsentinel.cli" or name.startswith("deepsentinel.commands")


def command_imports(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules outside the commands that import one."""
    return {name: sorted(filter(is_command, imported)) for name, imported in graph.items()
            if not is_command(name) and any(map(is_command, imported))}


def circles(graph: dict[str, set[str]]) -> list[str]:
    """Every path from a module back to itself through the modules it imports (one per start)."""
    found = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_the_core_and_the_local_aws_import_no_command():
    assert command_imports(import_graph()) == {}


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph()) == []


def test_the_checks_see_a_circle_and_a_command_import(tmp_path, monkeypatch):
    """The two checks above on a planted package: a core module importing a command inside a function, which
    imports it back."""
    import sys

    package = tmp_path / "deepsentinel"
    (package / "commands").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "commands" / "__init__.py").write_text("")
    (package / "commands" / "deploy.py").write_text("from deepsentinel.target import f\n")
    (package / "target.py").write_text("def f():\n    from deepsentinel.commands import deploy\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    graph = import_graph()
    assert command_imports(graph) == {"deepsentinel.target": ["deepsentinel.commands", "deepsentinel.commands.deploy"]}
    assert "deepsentinel.target -> deepsentinel.commands.deploy -> deepsentinel.target" in circles(graph)


def test_paths_the_modules_derive_from_their_own_location_exist():
    """A module that moved between packages finds the repository's other trees from its new place (the local stand-in
    once looked for the worker under deepsentinel/ after its move, and every worker run failed)."""
    from deepsentinel.commands.redrive import SUBMITTER_HANDLER
    from deepsentinel.local.stand_in import WORKER_SRC
    from deepsentinel.review.policy import REPO_ROOT

    assert (WORKER_SRC / "video_worker" / "__main__.py").is_file()
    assert SUBMITTER_HANDLER.is_file()
    assert (REPO_ROOT / "pyproject.toml").is_file()
