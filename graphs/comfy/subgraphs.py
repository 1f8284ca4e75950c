"""Flattening the subgraphs of a UI-format ComfyUI workflow into one flat UI workflow.

The ComfyUI front end saves reusable groups of nodes as *subgraphs*: their definitions
live in ``definitions.subgraphs`` (each with its own ``nodes``, ``links``, ``inputs``,
``outputs``, and an input node ``-10`` and output node ``-20`` that links inside the
subgraph start from and end at), and a node whose ``type`` is a definition's id is an
*instance* of it. Definitions may hold instances of other definitions, to any depth.
When the front end queues such a workflow it flattens it the same way this module does:

- every inner node becomes a node of its own, named by its path: node ``33`` inside
  instance ``48`` is ``"48:33"``, node ``7`` inside instance ``33`` inside ``48`` is
  ``"48:33:7"`` (ComfyUI's execution ids, so errors and progress name nodes as ComfyUI does);
- a link from the input node's slot ``i`` takes what the instance's input of the same
  name is linked to outside; a link into an instance's output ``j`` comes from what the
  definition links to its output node's slot ``j``; through any depth;
- an instance input that is not linked outside but is a *promoted widget* gives the
  widget value the instance stores (``widgets_values``, in the order of its widget
  inputs, or as ``properties.proxyWidgets`` lists them); ``proxyWidgets`` entries
  naming an inner node's widget (``[node id, widget name]``) set that widget's value;
  an outer instance's promoted value wins over an inner one's;
- a muted or bypassed instance is not expanded: it stays one node in that mode, which
  the UI -> API conversion then leaves out or passes through by type.

A promoted value reaches its widget as a ``PrimitiveNode`` (the front end's own
constant node), and an inner widget overridden by ``proxyWidgets`` carries it under
``_promoted``; :func:`graphs.comfy.ui.ui_to_api` reads both.

>>> inner = {"id": "sg-1", "name": "latent", "inputNode": {"id": -10}, "outputNode": {"id": -20},
...          "inputs": [{"name": "width", "type": "INT"}], "outputs": [{"name": "LATENT", "type": "LATENT"}],
...          "nodes": [{"id": 5, "type": "EmptyLatentImage", "widgets_values": [512, 512, 1],
...                     "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"},
...                                 "link": 1}]}],
...          "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 0,
...                     "type": "INT"},
...                    {"id": 2, "origin_id": 5, "origin_slot": 0, "target_id": -20, "target_slot": 0,
...                     "type": "LATENT"}]}
>>> ui = {"definitions": {"subgraphs": [inner]}, "links": [[9, 48, 0, 3, 0, "LATENT"]],
...       "nodes": [{"id": 48, "type": "sg-1", "widgets_values": [768],
...                  "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"}, "link": None}]},
...                 {"id": 3, "type": "VAEDecode",
...                  "inputs": [{"name": "samples", "type": "LATENT", "link": 9}]}]}
>>> flat, problems = flatten(ui)
>>> sorted(n["id"] for n in flat["nodes"]), problems
(['3', '48:5', '48:5#width'], [])
>>> [(link["origin_id"], link["target_id"]) for link in flat["links"]]
[('48:5#width', '48:5'), ('48:5', '3')]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from graphs.comfy.nodes import CONTROL_VALUES
from graphs.errors import GraphError

INPUT_NODE, OUTPUT_NODE = "-10", "-20"
MUTED, BYPASSED = 2, 4
MAX_DEPTH = 32  # nesting deeper than this is refused (ComfyUI's editor never gets near it)
MAX_NODES = 10_000  # flattened nodes; a definition used 10 times at 10 levels would be 10**10


@dataclass(frozen=True)
class _Link:
    id: int
    origin: str
    origin_slot: int
    target: str
    target_slot: int
    type: str


@dataclass(frozen=True)
class _Value:
    """A promoted widget value given to an inner input."""

    value: Any


@dataclass
class _Level:
    """One graph being flattened: the root, or one instance of a definition."""

    path: tuple[str, ...]
    nodes: dict[str, dict[str, Any]]
    links: dict[int, _Link]
    definition: dict[str, Any] | None = None  # None for the root
    instance: dict[str, Any] | None = None  # the instance node, in the parent level
    parent: _Level | None = None
    promoted: dict[str, Any] = field(default_factory=dict)  # instance input name -> widget value
    overrides: dict[tuple[str, str], Any] = field(default_factory=dict)  # (inner node, widget) -> value
    children: dict[str, _Level] = field(default_factory=dict)  # expanded instances by node id

    def exec_id(self, node_id: str) -> str:
        return ":".join((*self.path, node_id))


def has_subgraphs(workflow: dict[str, Any]) -> bool:
    """Whether a UI-format workflow defines subgraphs."""
    return bool(definitions(workflow, []))


def definitions(workflow: dict[str, Any], problems: list[GraphError]) -> dict[str, dict[str, Any]]:
    """Every subgraph definition by id: the workflow's, and those nested in a definition's ``definitions``."""
    found: dict[str, dict[str, Any]] = {}
    stack: list[tuple[Any, int]] = [(workflow, 0)]
    while stack:
        holder, depth = stack.pop()
        defs = holder.get("definitions") if isinstance(holder, dict) else None
        items = defs.get("subgraphs") if isinstance(defs, dict) else None
        if not isinstance(items, list):
            continue
        for item in items:
            if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]):
                problems.append(GraphError(f"UI workflow: a subgraph definition has no string 'id': "
                                           f"{str(item)[:80]}", type="format", field="definitions.subgraphs"))
                continue
            found.setdefault(item["id"], item)
            if depth < MAX_DEPTH:
                stack.append((item, depth + 1))
    return found


def flatten(workflow: dict[str, Any]) -> tuple[dict[str, Any], list[GraphError]]:
    """``(flat UI workflow, problems)``; a workflow without subgraphs comes back as it is.

    The flat workflow has ``nodes`` (ids are execution ids, strings) and ``links`` (as
    objects); it does not change ``workflow``.
    """
    problems: list[GraphError] = []
    defs = definitions(workflow, problems)
    if not defs:
        return workflow, problems
    flattener = _Flattener(defs, problems)
    root = _Level((), *_graph(workflow, "the workflow", problems))
    flattener.expand(root)
    flattener.emit(root)
    flat = {k: v for k, v in workflow.items() if k not in ("nodes", "links", "definitions")}
    flat["nodes"], flat["links"] = flattener.nodes, flattener.links
    return flat, problems


def _graph(graph: dict[str, Any], where: str, problems: list[GraphError]) -> tuple[dict[str, dict[str, Any]],
                                                                                 dict[int, _Link]]:
    nodes: dict[str, dict[str, Any]] = {}
    for raw in graph.get("nodes") or []:
        if isinstance(raw, dict) and "id" in raw and isinstance(raw.get("type"), str):
            nodes[str(raw["id"])] = raw
        else:
            problems.append(GraphError(f"UI workflow: a node of {where} is not an object with 'id' and "
                                       f"'type': {str(raw)[:80]}", type="format", field="nodes"))
    raw_links = graph.get("links") or []
    if isinstance(raw_links, dict):  # some savers keep links as {id: link}
        raw_links = list(raw_links.values())
    links: dict[int, _Link] = {}
    for item in raw_links if isinstance(raw_links, list) else []:
        link = _link(item)
        if link is None:
            problems.append(GraphError(f"UI workflow: a link of {where} is not [id, origin, slot, target, "
                                       f"slot, type]: {str(item)[:80]}", type="format", field="links"))
        else:
            links[link.id] = link
    return nodes, links


def _link(item: Any) -> _Link | None:
    try:
        if isinstance(item, dict):
            return _Link(int(item["id"]), str(item["origin_id"]), int(item["origin_slot"]),
                         str(item["target_id"]), int(item["target_slot"]), str(item.get("type", "")))
        lid, origin, oslot, target, tslot, *rest = item
        return _Link(int(lid), str(origin), int(oslot), str(target), int(tslot), str(rest[0]) if rest else "")
    except (KeyError, TypeError, ValueError):
        return None


class _Flattener:
    def __init__(self, defs: dict[str, dict[str, Any]], problems: list[GraphError]) -> None:
        self.defs = defs
        self.problems = problems
        self.nodes: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.count = 0
        self.full = False

    def _problem(self, message: str, node: str, field: str | None = None, **details: Any) -> None:
        self.problems.append(GraphError(message, type="subgraph", node=node, field=field, **details))

    # -- pass 1: the tree of instances ------------------------------------------------------------

    def expand(self, level: _Level) -> None:
        for node_id, node in level.nodes.items():
            self.count += 1
            if self.count > MAX_NODES and not self.full:
                self.full = True
                self._problem(f"UI workflow: subgraphs expand to more than {MAX_NODES} nodes; the rest is "
                              "left out", level.exec_id(node_id), bound=MAX_NODES)
            if self.full or node["type"] not in self.defs or node.get("mode", 0) in (MUTED, BYPASSED):
                continue
            definition = self.defs[node["type"]]
            exec_id = level.exec_id(node_id)
            if len(level.path) >= MAX_DEPTH:
                self._problem(f"UI workflow: subgraph instance {exec_id} is nested more than {MAX_DEPTH} "
                              "deep; it is left out", exec_id, "type", value=node["type"], bound=MAX_DEPTH)
                continue
            if any(up.definition is definition for up in _ancestors(level)):
                self._problem(f"UI workflow: subgraph instance {exec_id} ({_name(definition)}) is inside its "
                              "own definition; it is left out", exec_id, "type", value=node["type"])
                continue
            child = _Level((*level.path, node_id), *_graph(definition, f"subgraph {_name(definition)!r}",
                                                           self.problems),
                           definition=definition, instance=node, parent=level)
            child.promoted, child.overrides = _promoted(node, definition, level.overrides.get)
            level.children[node_id] = child
            self.expand(child)

    # -- pass 2: the flat nodes and links -------------------------------------------------------

    def emit(self, level: _Level) -> None:
        for node_id, node in level.nodes.items():
            if node_id in level.children:
                self.emit(level.children[node_id])
                continue
            if node["type"] in self.defs and node.get("mode", 0) not in (MUTED, BYPASSED):
                continue  # an instance refused in pass 1 (reported there)
            if len(self.nodes) >= MAX_NODES:
                return
            self._emit_node(level, node_id, node)

    def _emit_node(self, level: _Level, node_id: str, node: dict[str, Any]) -> None:
        exec_id = level.exec_id(node_id)
        flat = {k: v for k, v in node.items() if k not in ("id", "inputs")}
        flat["id"] = exec_id
        inputs = []
        for slot, entry in enumerate(node.get("inputs") or []):
            if not isinstance(entry, dict):
                inputs.append(entry)
                continue
            entry = dict(entry)
            link = level.links.get(entry.get("link")) if entry.get("link") is not None else None  # type: ignore[arg-type]
            source = self._source(level, link, set()) if link is not None else None
            entry["link"] = None
            if isinstance(source, _Value):
                name = entry.get("name") or (entry.get("widget") or {}).get("name") or str(slot)
                const_id = f"{exec_id}#{name}"
                self.nodes.append({"id": const_id, "type": "PrimitiveNode", "mode": 0,
                                   "widgets_values": [source.value]})
                entry["link"] = self._new_link(const_id, 0, exec_id, slot, str(entry.get("type", "")))
            elif source is not None:
                origin, origin_slot, type_ = source
                entry["link"] = self._new_link(origin, origin_slot, exec_id, slot, type_)
            inputs.append(entry)
        if "inputs" in node:
            flat["inputs"] = inputs
        promoted = {name: value for (inner, name), value in level.overrides.items() if inner == node_id}
        if promoted:
            flat["_promoted"] = promoted
        self.nodes.append(flat)

    def _new_link(self, origin: str, origin_slot: int, target: str, target_slot: int, type_: str) -> int:
        link_id = len(self.links) + 1
        self.links.append({"id": link_id, "origin_id": origin, "origin_slot": origin_slot,
                           "target_id": target, "target_slot": target_slot, "type": type_})
        return link_id

    def _source(self, level: _Level, link: _Link, seen: set[tuple[int, int]]) -> Any:
        """Where ``link`` of ``level`` starts: ``(exec id, slot, type)``, a :class:`_Value`, or None."""
        key = (id(level), link.id)
        if key in seen:
            return None
        seen.add(key)
        if link.origin == INPUT_NODE:
            return self._from_instance_input(level, link, seen)
        if link.origin in level.children:
            child = level.children[link.origin]
            inner = next((lk for lk in child.links.values()
                          if lk.target == OUTPUT_NODE and lk.target_slot == link.origin_slot), None)
            return self._source(child, inner, seen) if inner is not None else None
        if link.origin not in level.nodes:
            return None
        return level.exec_id(link.origin), link.origin_slot, link.type

    def _from_instance_input(self, level: _Level, link: _Link, seen: set[tuple[int, int]]) -> Any:
        if level.definition is None or level.instance is None or level.parent is None:
            return None
        ios = level.definition.get("inputs") or []
        if not 0 <= link.origin_slot < len(ios) or not isinstance(ios[link.origin_slot], dict):
            return None
        name = ios[link.origin_slot].get("name")
        entries = [e for e in level.instance.get("inputs") or [] if isinstance(e, dict)]
        entry = next((e for e in entries if e.get("name") == name), None)
        if entry is None and link.origin_slot < len(entries):
            entry = entries[link.origin_slot]
        outer = level.parent.links.get(entry.get("link")) if entry and entry.get("link") is not None else None  # type: ignore[arg-type]
        if outer is not None:
            return self._source(level.parent, outer, seen)
        if name in level.promoted and level.promoted[name] is not None:
            return _Value(level.promoted[name])
        return None


def _ancestors(level: _Level) -> Iterable[_Level]:
    current: _Level | None = level
    while current is not None:
        yield current
        current = current.parent


def _name(definition: dict[str, Any]) -> str:
    return str(definition.get("name") or definition.get("id"))


def _promoted(instance: dict[str, Any], definition: dict[str, Any],
              outer: Any) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """``(input name -> value, (inner node, widget) -> value)`` that an instance stores for its widgets.

    ``outer((instance id, widget name))`` is the value an enclosing instance promotes
    for this instance's widget (it wins), or None.
    """
    instance_id = str(instance.get("id"))
    values = instance.get("widgets_values")
    values = values if isinstance(values, list) else []
    by_input: dict[str, Any] = {}
    overrides: dict[tuple[str, str], Any] = {}
    proxies = (instance.get("properties") or {}).get("proxyWidgets")
    if isinstance(proxies, list) and proxies:
        for i, entry in enumerate(proxies):
            if not (isinstance(entry, (list, tuple)) and len(entry) >= 2 and isinstance(entry[1], str)):
                continue
            target, name = str(entry[0]), entry[1]
            if name == "control_after_generate":  # a seed's UI-only companion: never sent to the server
                continue
            value = outer((instance_id, name))
            if value is None and i < len(values):
                value = values[i]
            if value is None:
                continue
            if target == "-1":
                by_input[name] = value
            else:
                overrides[(target, name)] = value
        return by_input, overrides
    names = _widget_inputs(instance, definition)
    i = 0
    for name in names:
        if i >= len(values):
            break
        value = values[i]
        i += 1
        if (isinstance(value, int) and not isinstance(value, bool) and i < len(values)
                and isinstance(values[i], str) and values[i] in CONTROL_VALUES):
            i += 1  # a seed's control_after_generate value, UI only
        by_input[name] = value
    for name in names:
        value = outer((instance_id, name))
        if value is not None:
            by_input[name] = value
    return by_input, overrides


def _widget_inputs(instance: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    """The instance's widget inputs in order: those it marks ``widget``, else the definition's
    inputs linked to an inner widget."""
    marked = [e["name"] for e in instance.get("inputs") or []
              if isinstance(e, dict) and isinstance(e.get("widget"), dict) and isinstance(e.get("name"), str)]
    if marked:
        return marked
    nodes, links = _graph(definition, "", [])
    widget_slots = set()
    for link in links.values():
        if link.origin != INPUT_NODE:
            continue
        target = nodes.get(link.target)
        entries = (target or {}).get("inputs") or []
        if 0 <= link.target_slot < len(entries) and isinstance(entries[link.target_slot], dict) \
                and entries[link.target_slot].get("widget"):
            widget_slots.add(link.origin_slot)
    ios = definition.get("inputs") or []
    return [io["name"] for i, io in enumerate(ios)
            if i in widget_slots and isinstance(io, dict) and isinstance(io.get("name"), str)]
