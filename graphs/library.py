"""The template library: graph JSON files with a description and labels the agent reads.

Each template is a graph whose ``meta`` holds ``name``, ``description`` and ``labels``
(``subjects`` and ``styles``), and the contract the agent plans by:

- ``task``: ``text-to-image``, ``image-to-image`` or ``inpaint`` (what the user gives);
- ``plain``: the plain template of its task (where ties between templates go);
- ``intents``: what the user must ask for to get it (``style``, ``palette``, ``regions``,
  ``pose``, ``depth``, ``edges``, ``upscale``, ``detail``, ``reference``, ...); with
  ``requires_intent: false`` it also competes on labels alone;
- ``inputs``: the named inputs, each ``{"role", "node", "description"}``: the role (``image``,
  ``mask``, ``style``, ``palette``, ``reference``, ``control``) and the loading node whose
  ``path`` it sets; with ``"optional": true`` the template also runs without it, and a given
  file takes the place of ``node`` (which need not load anything: the detail pass fixes a
  given picture in place of the one it generates);
- ``model``: model-slot preferences (``{"family": "sdxl"}``); templates name built-in models,
  which the planner replaces with the user's.

Built-in templates live in ``graphs/library/``; plugins add more through the
``register_templates`` hook.

>>> "txt2img" in template_names()
True
>>> load_template("txt2img").meta["labels"]["styles"][0]
'photo-realistic'
>>> [(i.role, i.node) for i in template("style_transfer").inputs]
[('image', 'content'), ('style', 'style')]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphs.model import Graph

LIBRARY_DIR = Path(__file__).with_name("library")


ROLES = ("image", "mask", "style", "palette", "reference", "control")


@dataclass(frozen=True)
class TemplateInput:
    """One named input of a template: its role and the node that loads it."""

    role: str
    node: str
    description: str = ""
    # an optional input: without it the template makes the picture itself; given, the file takes
    # the place of ``node`` (an ``image.load`` there) and the nodes only it needed are dropped
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "node": self.node, "description": self.description}
        if self.optional:
            out["optional"] = True
        return out


@dataclass(frozen=True)
class Template:
    """A named graph with what the agent reads about it."""

    name: str
    description: str
    labels: dict[str, list[str]]
    graph: Graph
    source: str = ""

    @property
    def task(self) -> str | None:
        task = self.graph.meta.get("task")
        return str(task) if task else None

    @property
    def plain(self) -> bool:
        return bool(self.graph.meta.get("plain"))

    @property
    def intents(self) -> list[str]:
        return [str(i) for i in self.graph.meta.get("intents") or []]

    @property
    def requires_intent(self) -> bool:
        return bool(self.intents) and self.graph.meta.get("requires_intent", True) is not False

    @property
    def inputs(self) -> list[TemplateInput]:
        out = []
        for item in self.graph.meta.get("inputs") or []:
            if isinstance(item, dict) and isinstance(item.get("role"), str) \
                    and isinstance(item.get("node"), str):
                out.append(TemplateInput(item["role"], item["node"], str(item.get("description") or ""),
                                         optional=item.get("optional") is True))
        return out

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "labels": self.labels,
                "task": self.task, "intents": self.intents, "inputs": [i.to_dict() for i in self.inputs]}


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


def template(name: str) -> Template:
    """The built-in template ``name``; ``KeyError`` naming the known ones."""
    for t in builtin_templates():
        if t.name == name:
            return t
    raise KeyError(f"no template {name!r}; templates: {', '.join(template_names())}")


def load_template(name: str) -> Graph:
    """A fresh copy of the built-in template ``name``; ``KeyError`` naming the known ones."""
    for t in builtin_templates():
        if t.name == name:
            return t.graph.model_copy(deep=True)
    raise KeyError(f"no template {name!r}; templates: {', '.join(template_names())}")
