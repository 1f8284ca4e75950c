"""Converting ComfyUI's UI (litegraph) format to its API format, in Python.

ComfyUI's browser front end does this when it queues a workflow (``graphToPrompt``);
this module follows the same rules:

- nodes muted (``mode`` 2) are left out, and inputs linked to them are removed;
- nodes bypassed (``mode`` 4) are left out, and a consumer's link goes on to the
  bypassed node's input of the same type (the input at the output's slot index first,
  then every input in order), through chains of bypassed nodes;
- virtual nodes are left out: a ``Reroute`` passes its one input through, a
  ``PrimitiveNode`` gives its value to the widgets it is linked to, notes do nothing;
- subgraphs are flattened first (:mod:`graphs.comfy.subgraphs`): inner nodes get
  execution ids such as ``"48:33"``;
- widget values come from ``widgets_values`` in the class's widget order (a list; some
  custom nodes store a dict by name), skipping the UI-only ``control_after_generate``
  value that follows seed widgets; a widget converted to an input takes its link.

>>> ui = {"nodes": [
...   {"id": 5, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [512, 768, 1],
...    "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}]},
...   {"id": 9, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}],
...    "outputs": [{"name": "", "type": "LATENT", "links": [2]}]},
...   {"id": 3, "type": "VAEDecode", "mode": 0,
...    "inputs": [{"name": "samples", "type": "LATENT", "link": 2}]}],
...   "links": [[1, 5, 0, 9, 0, "LATENT"], [2, 9, 0, 3, 0, "LATENT"]]}
>>> names = {"EmptyLatentImage": ("width", "height", "batch_size")}
>>> api, problems = ui_to_api(ui, names.get)
>>> api["3"]["inputs"], api["5"]["inputs"]
({'samples': ['5', 0]}, {'width': 512, 'height': 768, 'batch_size': 1})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphs.comfy.group_nodes import group_nodes_as_subgraphs
from graphs.comfy.nodes import CONTROL_VALUES, SEED_WIDGETS, VIRTUAL_NODES
from graphs.comfy.subgraphs import flatten
from graphs.errors import GraphError

MUTED, BYPASSED = 2, 4
WidgetNames = Callable[[str], Sequence[str] | None]


@dataclass(frozen=True)
class Link:
    """One litegraph link: from an output slot of one node to an input slot of another."""

    id: int
    origin: str
    origin_slot: int
    target: str
    target_slot: int
    type: str


def is_ui_workflow(data: Any) -> bool:
    """Whether decoded JSON looks like a UI-format workflow (``nodes`` is a list)."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def ui_to_api(workflow: dict[str, Any], widget_names: WidgetNames) -> tuple[dict[str, dict[str, Any]],
                                                                           list[GraphError]]:
    """``(API-format prompt, problems)`` for a UI-format workflow.

    ``widget_names(class_type)`` gives a class's widget names in order, or ``None`` when
    the class is unknown (its widgets are then named from its widget inputs, else
    ``widget_0``, ``widget_1``, ...).
    """
    workflow, problems = flatten(group_nodes_as_subgraphs(workflow))  # legacy group nodes: subgraphs
    nodes: dict[str, dict[str, Any]] = {}
    for raw in workflow.get("nodes") or []:
        if isinstance(raw, dict) and "id" in raw and isinstance(raw.get("type"), str):
            nodes[str(raw["id"])] = raw
        else:
            problems.append(GraphError(f"UI workflow: a node entry is not an object with 'id' and 'type': "
                                       f"{str(raw)[:80]}", type="format", field="nodes"))
    links = _links(workflow.get("links") or [], problems)
    resolver = _Resolver(nodes, links)
    out: dict[str, dict[str, Any]] = {}
    for node_id, node in nodes.items():
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        inputs = _widget_values(node, widget_names(node["type"]))
        promoted = node.get("_promoted")
        if isinstance(promoted, dict):  # widgets a subgraph instance promotes (see graphs.comfy.subgraphs)
            inputs.update({k: v for k, v in promoted.items() if isinstance(k, str)})
        for entry in node.get("inputs") or []:
            if not isinstance(entry, dict) or entry.get("link") is None:
                continue
            name = entry.get("name") or (entry.get("widget") or {}).get("name")
            if not name:
                continue
            resolved = resolver.resolve(links.get(entry["link"]), entry.get("type"))
            if isinstance(resolved, Constant):
                inputs[name] = resolved.value
            elif resolved is not None:
                inputs[name] = [resolved.origin, resolved.origin_slot]
            elif entry.get("widget") is None:
                inputs.pop(name, None)
        api: dict[str, Any] = {"inputs": inputs, "class_type": node["type"]}
        if node.get("title"):
            api["_meta"] = {"title": node["title"]}
        out[node_id] = api
    for api in out.values():  # inputs linked to left-out nodes are removed, as the front end does
        for name, value in list(api["inputs"].items()):
            if _is_link(value) and value[0] not in out:
                del api["inputs"][name]
    return out, problems


@dataclass(frozen=True)
class Constant:
    """A value a ``PrimitiveNode`` feeds to a widget input."""

    value: Any


class _Resolver:
    """Follows a link back through reroutes, primitives and bypassed nodes."""

    def __init__(self, nodes: dict[str, dict[str, Any]], links: dict[int, Link]) -> None:
        self.nodes = nodes
        self.links = links

    def _input_link(self, node: dict[str, Any], slot: int) -> Link | None:
        entries = node.get("inputs") or []
        if not 0 <= slot < len(entries) or not isinstance(entries[slot], dict):
            return None
        return self.links.get(entries[slot].get("link"))  # type: ignore[arg-type]

    def resolve(self, link: Link | None, want_type: Any) -> Link | Constant | None:
        for _ in range(10_000):  # a cycle of reroutes ends here rather than hanging
            if link is None:
                return None
            parent = self.nodes.get(link.origin)
            if parent is None:
                return None
            kind = parent["type"]
            if kind == "PrimitiveNode":
                values = parent.get("widgets_values") or []
                return Constant(values[0]) if values else None
            if kind in VIRTUAL_NODES:
                link = self._input_link(parent, 0)
                continue
            if parent.get("mode", 0) != BYPASSED:
                return link
            entries = parent.get("inputs") or []
            order = [link.origin_slot, *range(len(entries))]
            match = next((i for i in order if 0 <= i < len(entries) and isinstance(entries[i], dict)
                          and entries[i].get("type") == want_type), None)
            if match is None:
                return None
            link = self._input_link(parent, match)
        return None


def _links(raw: list[Any], problems: list[GraphError]) -> dict[int, Link]:
    out: dict[int, Link] = {}
    for item in raw:
        try:
            if isinstance(item, dict):
                link = Link(int(item["id"]), str(item["origin_id"]), int(item["origin_slot"]),
                            str(item["target_id"]), int(item["target_slot"]), str(item.get("type", "")))
            else:
                lid, origin, oslot, target, tslot, *rest = item
                link = Link(int(lid), str(origin), int(oslot), str(target), int(tslot),
                            str(rest[0]) if rest else "")
        except (KeyError, TypeError, ValueError):
            problems.append(GraphError(f"UI workflow: a link is not [id, origin, slot, target, slot, type]: "
                                       f"{str(item)[:80]}", type="format", field="links"))
            continue
        out[link.id] = link
    return out


def _widget_values(node: dict[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    """The node's widget values by name, in declaration order."""
    values = node.get("widgets_values")
    if isinstance(values, dict):
        return {k: v for k, v in values.items() if isinstance(k, str)}
    if not isinstance(values, list):
        return {}
    if names is None:
        names = [e["widget"]["name"] for e in node.get("inputs") or []
                 if isinstance(e, dict) and isinstance(e.get("widget"), dict) and "name" in e["widget"]]
    out: dict[str, Any] = {}
    i = 0
    for name in names:
        if i >= len(values):
            break
        value = values[i]
        out[name] = value
        i += 1
        if i < len(values) and _is_control(name, value, values[i]):
            i += 1  # control_after_generate: a UI-only widget, not sent to the server
    if not names:
        out = {f"widget_{j}": v for j, v in enumerate(values)}
    return out


def _is_control(name: str, value: Any, following: Any) -> bool:
    """Whether ``following`` is the ``control_after_generate`` value of integer widget ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if name in SEED_WIDGETS and isinstance(following, bool):
        return True
    return isinstance(following, str) and following in CONTROL_VALUES


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))
