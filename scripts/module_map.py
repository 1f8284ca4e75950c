"""The module map of ``orchestrator/`` and ``plugins/sd`` at one or two commits (issue 19's note).

For each package (folder): its modules, their lines, the largest module and the largest class
(by lines, from the AST), read from git objects, so any commit can be measured without a
checkout::

    python scripts/module_map.py 0275a79 HEAD          # a Markdown table, before -> after
    python scripts/module_map.py HEAD --modules        # every module's lines too
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

ROOTS = ("orchestrator", "plugins/sd")


@dataclass
class Package:
    name: str
    modules: dict[str, int] = field(default_factory=dict)  # path -> lines
    largest_class: tuple[str, int] = ("", 0)  # "module:Class", lines

    @property
    def lines(self) -> int:
        return sum(self.modules.values())

    @property
    def largest_module(self) -> tuple[str, int]:
        path, n = max(self.modules.items(), key=lambda kv: kv[1])
        return PurePosixPath(path).name, n


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def measure(commit: str, roots: tuple[str, ...] = ROOTS) -> dict[str, Package]:
    """Packages (by folder) of the Python modules under ``roots`` at ``commit``."""
    packages: dict[str, Package] = {}
    paths = [p for p in git("ls-tree", "-r", "--name-only", commit, "--", *roots).splitlines()
             if p.endswith(".py")]
    for path in paths:
        text = git("show", f"{commit}:{path}")
        folder = str(PurePosixPath(path).parent)
        pkg = packages.setdefault(folder, Package(folder))
        pkg.modules[path] = len(text.splitlines())
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > pkg.largest_class[1]:
                    pkg.largest_class = (f"{PurePosixPath(path).stem}.{node.name}", n)
    return packages


def row(pkg: Package | None) -> tuple[str, str, str, str]:
    if pkg is None:
        return ("-", "-", "-", "-")
    mod, n = pkg.largest_module
    cls, c = pkg.largest_class
    return (str(len(pkg.modules)), str(pkg.lines), f"{mod} ({n})", f"{cls} ({c})" if cls else "-")


def table(commits: list[str]) -> str:
    maps = [measure(c) for c in commits]
    names = sorted(set().union(*maps))
    head = ["package"]
    for c in commits:
        head += [f"modules@{c}", f"lines@{c}", f"largest module@{c}", f"largest class@{c}"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name]
        for m in maps:
            cells += row(m.get(name))
        out.append("| " + " | ".join(cells) + " |")
    totals = ["**total**"]
    for m in maps:
        modules, lines = sum(len(p.modules) for p in m.values()), sum(p.lines for p in m.values())
        totals += [str(modules), str(lines), "", ""]
    out.append("| " + " | ".join(totals) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("commits", nargs="+", help="one or more commits (e.g. 0275a79 HEAD)")
    ap.add_argument("--modules", action="store_true", help="also list every module's lines")
    args = ap.parse_args(argv)
    print(table(args.commits))
    if args.modules:
        for c in args.commits:
            print(f"\n## {c}")
            by_pkg: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for pkg in measure(c).values():
                by_pkg[pkg.name] = sorted(pkg.modules.items(), key=lambda kv: -kv[1])
            for name in sorted(by_pkg):
                print(f"{name}: " + ", ".join(f"{PurePosixPath(p).name} {n}" for p, n in by_pkg[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
