"""The template library: graph JSON files with a description and labels the agent reads.

Each template is a graph whose ``meta`` holds ``name``, ``description`` and ``labels``
(``subjects`` and ``styles``). Built-in templates live in ``graphs/library/``; plugins add
more through the ``register_templates`` hook.

>>> "txt2img" in template_names()
True
>>> load_template("txt2img").meta["labels"]["styles"][0]
'photo-realistic'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphs.model import Graph

LIBRARY_DIR = Path(__file__).with_name("library")


@dataclass(frozen=True)
class Template:
    """A named graph with what the agent reads about it."""

    name: str
    description: str
    labels: dict[str, list[str]]
    graph: Graph
    source: str = ""

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "labels": self.labels}


def _from_file(path: Path) -> Template:
    graph = Graph.load(path)
    meta = graph.meta
    return Template(
        name=meta.get("name", path.stem),
        description=meta.get("description", ""),
        labels={k: list(v) for k, v in meta.get("labels", {}).items()},
        graph=graph,
        source=str(path),
    )


def builtin_templates() -> list[Template]:
    """The templates shipped in ``graphs/library/``, sorted by name."""
    return sorted((_from_file(p) for p in LIBRARY_DIR.glob("*.json")), key=lambda t: t.name)


def templates_from_dir(path: str | Path) -> list[Template]:
    """Templates from every ``*.json`` graph in ``path`` (a plugin's own library folder)."""
    return sorted((_from_file(p) for p in Path(path).glob("*.json")), key=lambda t: t.name)


def template_names() -> list[str]:
    return [t.name for t in builtin_templates()]


def load_template(name: str) -> Graph:
    """A fresh copy of the built-in template ``name``; ``KeyError`` naming the known ones."""
    for t in builtin_templates():
        if t.name == name:
            return t.graph.model_copy(deep=True)
    raise KeyError(f"no template {name!r}; templates: {', '.join(template_names())}")
