"""The legacy *group nodes* of a UI-format ComfyUI workflow, as subgraphs.

Before subgraphs, the ComfyUI front end (``extensions/core/groupNode.ts``) let users fold
nodes into a *group node*: its definition is kept in ``extra.groupNodes[name]`` (``nodes``
with an ``index``, ``links`` as ``[origin index | null, origin slot, target index, target
slot, outer origin id, type]`` where a null origin is a link from outside, and ``external``:
outputs used outside although linked inside), and a node of type ``workflow/<name>`` (or
``workflow><name>``) is an instance. The front end derives the instance's slots from the
definition, and this module does the same:

- its inputs are the inner inputs not linked inside the group, node by node in index
  order, input by input, named as the instance names them;
- its outputs are the inner outputs not linked inside the group, or listed in ``external``,
  in the same order;
- its ``widgets_values`` are the inner nodes' widget values one after another, each inner
  node taking as many as its own ``widgets_values`` hold (seed widgets' ``control_after_generate``
  values included), so each instance sets its own.

:func:`group_nodes_as_subgraphs` turns each instance into an instance of a subgraph
definition of its own, which :func:`graphs.comfy.subgraphs.flatten` then flattens: inner
node ``6`` of instance ``37`` becomes ``"37:6"``, the id ComfyUI runs it under.

>>> group = {"nodes": [{"index": 0, "type": "EmptyLatentImage", "widgets_values": [512, 512, 1],
...                     "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}]}],
...          "links": [], "external": []}
>>> ui = {"extra": {"groupNodes": {"Size": group}}, "links": [[1, 7, 0, 3, 0, "LATENT"]],
...       "nodes": [{"id": 7, "type": "workflow/Size", "widgets_values": [768, 640, 2], "inputs": [],
...                  "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}]},
...                 {"id": 3, "type": "VAEDecode",
...                  "inputs": [{"name": "samples", "type": "LATENT", "link": 1}]}]}
>>> out = group_nodes_as_subgraphs(ui)
>>> [n["type"] for n in out["nodes"]], out["definitions"]["subgraphs"][0]["nodes"][0]["widgets_values"]
(['workflow/Size#7', 'VAEDecode'], [768, 640, 2])
"""

from __future__ import annotations

import copy
from typing import Any

INPUT_NODE, OUTPUT_NODE = -10, -20
PREFIXES = ("workflow/", "workflow>")


def _groups(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    extra = workflow.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    return {k: v for k, v in groups.items() if isinstance(v, dict)} if isinstance(groups, dict) else {}


def _group_of(node: dict[str, Any], groups: dict[str, dict[str, Any]]) -> str | None:
    kind = node.get("type")
    if not isinstance(kind, str):
        return None
    for prefix in PREFIXES:
        if kind.startswith(prefix) and kind[len(prefix):] in groups:
            return kind[len(prefix):]
    return None


def _index(item: Any) -> int | None:
    """An inner node's ``index`` (from the node, or an ``external`` entry's node), or its plain int."""
    value = item.get("index") if isinstance(item, dict) else item
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def group_nodes_as_subgraphs(workflow: dict[str, Any]) -> dict[str, Any]:
    """``workflow`` with each group-node instance an instance of a subgraph definition of its own
    (a new dict; ``workflow`` is not changed). A workflow without group nodes comes back as it is."""
    groups = _groups(workflow)
    nodes = workflow.get("nodes")
    if not groups or not isinstance(nodes, list):
        return workflow
    out_nodes, definitions = [], []
    for node in nodes:
        name = _group_of(node, groups) if isinstance(node, dict) else None
        if name is None:
            out_nodes.append(node)
            continue
        definition = _definition(f"{node['type']}#{node.get('id')}", name, groups[name], node)
        definitions.append(definition)
        out_nodes.append({**node, "type": definition["id"]})
    if not definitions:
        return workflow
    out = {**workflow, "nodes": out_nodes}
    existing = workflow.get("definitions") if isinstance(workflow.get("definitions"), dict) else {}
    subgraphs = existing.get("subgraphs") if isinstance(existing.get("subgraphs"), list) else []
    out["definitions"] = {**existing, "subgraphs": [*subgraphs, *definitions]}
    return out


def _definition(def_id: str, name: str, group: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """One instance's subgraph definition: the group's nodes and links, inputs/outputs by its rules."""
    inner = [copy.deepcopy(n) for n in _list(group.get("nodes"))
             if isinstance(n, dict) and _index(n) is not None]
    inner.sort(key=lambda n: _index(n) or 0)
    for n in inner:
        n["id"] = _index(n)
        n["inputs"] = [p for p in _list(n.get("inputs")) if isinstance(p, dict)]
        n["outputs"] = [p for p in _list(n.get("outputs")) if isinstance(p, dict)]
        for port in n["inputs"]:
            port["link"] = None
        for port in n["outputs"]:
            port["links"] = []
    by_id = {n["id"]: n for n in inner}
    raw = [lk for lk in _list(group.get("links")) if isinstance(lk, list) and len(lk) >= 4
           and all(isinstance(x, int) or x is None for x in lk[:4])]
    internal_in = {(lk[2], lk[3]) for lk in raw if lk[0] is not None}
    internal_out = {(lk[0], lk[1]) for lk in raw if lk[0] is not None}
    external = {(_index(e[0]), e[1]) for e in _list(group.get("external"))
                if isinstance(e, list) and len(e) >= 2}
    links: list[dict[str, Any]] = []

    def link(origin: int, slot: int, target: int, target_slot: int, type_: Any) -> None:
        link_id = len(links) + 1
        links.append({"id": link_id, "origin_id": origin, "origin_slot": slot, "target_id": target,
                      "target_slot": target_slot, "type": type_})
        if target in by_id and 0 <= target_slot < len(by_id[target]["inputs"]):
            by_id[target]["inputs"][target_slot]["link"] = link_id
        if origin in by_id and 0 <= slot < len(by_id[origin]["outputs"]):
            by_id[origin]["outputs"][slot]["links"].append(link_id)

    for lk in raw:
        if lk[0] is not None and lk[0] in by_id and lk[2] in by_id:
            link(lk[0], lk[1], lk[2], lk[3], lk[5] if len(lk) > 5 else "*")
    # the instance's inputs: inner inputs not linked inside, in node then input order
    names = [p.get("name") for p in _list(instance.get("inputs")) if isinstance(p, dict)]
    inputs: list[dict[str, Any]] = []
    for n in inner:
        for slot, port in enumerate(n.get("inputs") or []):
            if (n["id"], slot) in internal_in:
                continue
            label = names[len(inputs)] if len(inputs) < len(names) else port.get("name")
            inputs.append({"id": f"{def_id}/in/{len(inputs)}", "name": label, "type": port.get("type"),
                           "linkIds": []})
            link(INPUT_NODE, len(inputs) - 1, n["id"], slot, port.get("type"))
    # its outputs: inner outputs not linked inside, or used outside although linked inside
    outputs: list[dict[str, Any]] = []
    for n in inner:
        for slot, port in enumerate(n.get("outputs") or []):
            if (n["id"], slot) in internal_out and (n["id"], slot) not in external:
                continue
            outputs.append({"id": f"{def_id}/out/{len(outputs)}", "name": port.get("name"),
                            "type": port.get("type"), "linkIds": []})
            link(n["id"], slot, OUTPUT_NODE, len(outputs) - 1, port.get("type"))
    # its widget values: each inner node takes as many as its own widgets_values hold
    values = instance.get("widgets_values")
    if isinstance(values, list):
        at = 0
        for n in inner:
            own = n.get("widgets_values")
            if isinstance(own, list) and own:
                n["widgets_values"] = list(values[at:at + len(own)]) + own[len(values[at:at + len(own)]):]
                at += len(own)
    return {"id": def_id, "name": name, "version": 1, "inputNode": {"id": INPUT_NODE},
            "outputNode": {"id": OUTPUT_NODE}, "inputs": inputs, "outputs": outputs, "nodes": inner,
            "links": links, "widgets": []}
