"""No module of ours imports another inside a function to dodge an import cycle (issue 19).

Two checks, both on the source (AST), so they hold without importing anything:

- Across ``orchestrator``, ``plugins``, ``graphs`` and ``agents``: an import of ours made in a
  function must not be one that would close a cycle at module level, i.e. the module it
  imports must not reach back to the importing module through module-level imports (package
  ``__init__`` files included, ``if TYPE_CHECKING:`` blocks not). Lazy imports of ours that
  close no cycle are allowed there (an optional part, an import that pulls in torch or ray).
- In the runtime core and ``plugins/sd``, stricter: no import of ours in a function at all,
  beyond the few listed with why (optional heavy dependencies such as torch, diffusers and
  ray may stay lazy).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("orchestrator", "plugins", "graphs", "agents")
CHECKED = ["orchestrator/context.py", "orchestrator/model_access.py", "orchestrator/blocks.py",
           "orchestrator/plugins.py", "orchestrator/errors.py", "orchestrator/runtime/*.py",
           "plugins/sd/*.py", "plugins/sd/ksampling/*.py"]
# (path, imported module) still imported in a function in CHECKED, and why
REMAINING = {
    # the model package is optional for the engines (engine.model_provider imports it by name
    # too): the Ray engine lists models when it is there
    ("orchestrator/runtime/ray_engine.py", "orchestrator.models"),
}
# (path, imported module): an import in a function that dodges a cycle, and why it must
CYCLES_LEFT: set[tuple[str, str]] = set()


# -- the module graph of our packages -------------------------------------------------------------


class Modules:
    """Our modules (``root``'s packages ``packages``), their module-level imports of each other
    and the imports of ours they make inside functions."""

    def __init__(self, root: Path, packages: tuple[str, ...] = OURS) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        for pkg in packages:
            for path in sorted((root / pkg).rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                self.paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
        self.top: dict[str, set[str]] = {}
        self.lazy: dict[str, set[str]] = {}
        for name, path in self.paths.items():
            tree = ast.parse(path.read_text(encoding="utf-8"))
            self.top[name] = self._module_level(tree.body, name)
            functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            self.lazy[name] = {t for f in functions for n in ast.walk(f) for t in self._targets(n, name)}

    def _targets(self, node: ast.AST, current: str) -> set[str]:
        """Our modules that ``node`` imports (``from a import b`` imports ``a``, and ``a.b``
        when that is a module)."""
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = current.split(".") if self.paths[current].name == "__init__.py" else \
                    current.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            return set()
        return {n for n in names if n in self.paths}

    def _module_level(self, body: list[ast.stmt], current: str) -> set[str]:
        out: set[str] = set()
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                out |= self._targets(stmt, current)
            elif isinstance(stmt, ast.If):
                if not (isinstance(stmt.test, (ast.Name, ast.Attribute))
                        and getattr(stmt.test, "id", getattr(stmt.test, "attr", "")) == "TYPE_CHECKING"):
                    out |= self._module_level(stmt.body, current)
                out |= self._module_level(stmt.orelse, current)
            elif isinstance(stmt, ast.Try):
                for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                    out |= self._module_level(block, current)
            elif isinstance(stmt, ast.With):
                out |= self._module_level(stmt.body, current)
        return out

    @staticmethod
    def _packages(name: str) -> list[str]:
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts))]

    def reaches(self, start: str, goal: str) -> bool:
        """Whether importing ``start`` at module level imports ``goal`` (through package
        ``__init__`` files too). ``goal``'s own packages are imported before ``goal`` and
        cannot close a cycle, so they are not followed."""
        skip, seen, todo = set(self._packages(goal)), set(), [start]
        while todo:
            name = todo.pop()
            if name in seen or name in skip:
                continue
            if name == goal:
                return True
            seen.add(name)
            todo += [*self.top.get(name, ()), *(p for p in self._packages(name) if p in self.paths)]
        return False

    def cycle_dodges(self) -> set[tuple[str, str]]:
        """(path, module) of every import in a function that would close a cycle at module level."""
        return {(self.paths[name].relative_to(self.root).as_posix(), target)
                for name, targets in self.lazy.items() for target in targets
                if target != name and target not in self._packages(name) and self.reaches(target, name)}


def test_no_import_in_a_function_dodges_a_cycle_among_our_modules():
    found = Modules(ROOT).cycle_dodges()
    assert found - CYCLES_LEFT == set(), "a cycle hidden by an import in a function: break the cycle"
    assert CYCLES_LEFT - found == set(), "no longer a hidden cycle: drop it from CYCLES_LEFT"


def test_no_cycle_among_our_modules_at_module_level():
    """Beyond hidden cycles: the module-level imports of our packages form no cycle at all (an
    import of a module's own package is no edge: the package is imported first)."""
    import networkx as nx

    mods = Modules(ROOT)
    graph = nx.DiGraph((name, target) for name, targets in mods.top.items() for target in targets
                       if target != name and target not in mods._packages(name))
    assert [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1] == []


def test_the_cycle_check_sees_a_hidden_cycle_and_passes_a_lazy_import(tmp_path):
    """The checker on a package built here: a <-> b hidden in a function is found; c's lazy
    import of a (no cycle), a TYPE_CHECKING import and an import of the package itself are not."""
    pkg = tmp_path / "orchestrator"
    pkg.mkdir()
    files = {
        "__init__.py": "from orchestrator.b import thing\n",
        "a.py": "from orchestrator.b import thing\n",
        "b.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from orchestrator.c import other
            thing = 1
            def late():
                from orchestrator.a import thing as t
                return t
        """,
        "c.py": """
            def lazy():
                import orchestrator.a
                from orchestrator import b
                return orchestrator.a, b
            other = 2
        """,
    }
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text), encoding="utf-8")
    assert Modules(tmp_path, ("orchestrator",)).cycle_dodges() == {("orchestrator/b.py", "orchestrator.a")}


def imports_in_functions(path: Path) -> set[tuple[str, str]]:
    found = set()
    rel = path.relative_to(ROOT).as_posix()
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {(rel, name) for name in names if name.split(".")[0] in OURS}
    return found


def test_no_import_of_ours_inside_a_function_of_the_core_beyond_the_listed_ones():
    found: set[tuple[str, str]] = set()
    for pattern in CHECKED:
        paths = sorted(ROOT.glob(pattern))
        assert paths, pattern
        for path in paths:
            found |= imports_in_functions(path)
    assert found - REMAINING == set(), "import it at module top, or say here why it cannot be"
    assert REMAINING - found == set(), "no longer imported in a function: drop it from REMAINING"
