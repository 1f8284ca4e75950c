"""Building UI-format ComfyUI workflows in tests, in the shapes the ComfyUI front end saves.

The root graph is litegraph's ``ISerialisedGraph`` (``links`` as arrays
``[id, origin, slot, target, slot, type]``); a subgraph definition is an
``ExportedSubgraph`` (``links`` as objects, input node ``-10``, output node ``-20``,
``inputs``/``outputs`` with ids and types). See ComfyUI_frontend
``src/lib/litegraph/src/types/serialisation.ts``.
"""

from __future__ import annotations

import uuid
from typing import Any

INPUT_NODE, OUTPUT_NODE = -10, -20


class UIGraph:
    """A graph (the root or a subgraph definition) under construction."""

    def __init__(self, name: str = "", sub_id: str | None = None, inputs: list[tuple[str, str]] = (),
                 outputs: list[tuple[str, str]] = ()) -> None:
        self.name = name
        self.sub_id = sub_id
        self.inputs = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub_id}/in/{n}")), "name": n, "type": t,
                        "linkIds": []} for n, t in inputs]
        self.outputs = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sub_id}/out/{n}")), "name": n, "type": t,
                         "linkIds": []} for n, t in outputs]
        self.nodes: dict[int, dict[str, Any]] = {}
        self.links: list[Any] = []
        self.definitions: list[UIGraph] = []

    def node(self, node_id: int, type: str, widgets: list[Any] | None = None,
             inputs: list[tuple[str, str] | tuple[str, str, bool]] = (), outputs: list[str] = (),
             mode: int = 0, properties: dict[str, Any] | None = None,
             title: str | None = None) -> dict[str, Any]:
        """A node; an input given as ``(name, type, True)`` is a widget converted to an input."""
        entries = []
        for item in inputs:
            entry: dict[str, Any] = {"name": item[0], "type": item[1], "link": None}
            if len(item) > 2 and item[2]:
                entry["widget"] = {"name": item[0]}
            entries.append(entry)
        node: dict[str, Any] = {
            "id": node_id, "type": type, "pos": [100 * len(self.nodes), 100], "size": [300, 100], "flags": {},
            "order": len(self.nodes), "mode": mode, "inputs": entries,
            "outputs": [{"name": o, "type": o, "links": [], "slot_index": i} for i, o in enumerate(outputs)],
            "properties": {"Node name for S&R": type, **(properties or {})}}
        if widgets is not None:
            node["widgets_values"] = widgets
        if title:
            node["title"] = title
        self.nodes[node_id] = node
        return node

    def instance(self, node_id: int, definition: UIGraph, widgets: list[Any] | None = None,
                 mode: int = 0, proxy: list[list[Any]] | None = None,
                 widget_inputs: tuple[str, ...] = ()) -> dict[str, Any]:
        """A node whose type is ``definition``'s id; ``widget_inputs`` are promoted widgets."""
        inputs = [(io["name"], io["type"], io["name"] in widget_inputs) for io in definition.inputs]
        node = self.node(node_id, definition.sub_id or "", widgets, inputs, [], mode,
                         {"proxyWidgets": proxy} if proxy is not None else None)
        node["outputs"] = [{"name": io["name"], "type": io["type"], "links": []} for io in definition.outputs]
        return node

    def link(self, origin: int, slot: int, target: int, name: str | int) -> int:
        """Link output ``slot`` of ``origin`` (or subgraph input ``slot`` of -10) to input ``name`` of
        ``target`` (or subgraph output ``name``, an index, of -20)."""
        link_id = len(self.links) + 1
        if origin == INPUT_NODE:
            type_ = self.inputs[slot]["type"]
            self.inputs[slot]["linkIds"].append(link_id)
        else:
            out = self.nodes[origin]["outputs"][slot]
            type_ = out["type"]
            out["links"].append(link_id)
        if target == OUTPUT_NODE:
            target_slot = int(name)
            self.outputs[target_slot]["linkIds"] = [link_id]
        else:
            entries = self.nodes[target]["inputs"]
            target_slot = next(i for i, e in enumerate(entries) if e["name"] == name)
            entries[target_slot]["link"] = link_id
        if self.sub_id is None:
            self.links.append([link_id, origin, slot, target, target_slot, type_])
        else:
            self.links.append({"id": link_id, "origin_id": origin, "origin_slot": slot, "target_id": target,
                               "target_slot": target_slot, "type": type_})
        return link_id

    def subgraph(self) -> dict[str, Any]:
        """This graph as an ``ExportedSubgraph``."""
        return {"id": self.sub_id, "version": 1, "revision": 0, "name": self.name,
                "state": {"lastNodeId": max(self.nodes, default=0), "lastLinkId": len(self.links)},
                "config": {}, "inputNode": {"id": INPUT_NODE, "bounding": [0, 0, 120, 60]},
                "outputNode": {"id": OUTPUT_NODE, "bounding": [900, 0, 120, 60]},
                "inputs": self.inputs, "outputs": self.outputs, "widgets": [],
                "nodes": list(self.nodes.values()), "links": self.links, "groups": [], "extra": {}}

    def workflow(self) -> dict[str, Any]:
        """The root graph as a saved workflow, with every definition used."""
        out: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "root")), "revision": 0,
            "last_node_id": max(self.nodes, default=0), "last_link_id": len(self.links),
            "nodes": list(self.nodes.values()), "links": self.links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}
        if self.definitions:
            out["definitions"] = {"subgraphs": [d.subgraph() for d in self.definitions]}
        return out


def sub(name: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> UIGraph:
    """A subgraph definition with a stable id made from its name."""
    return UIGraph(name, str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), inputs, outputs)
