"""An API-format prompt as a UI-format (litegraph) workflow, the ``workflow`` ComfyUI saves.

The reverse of :func:`graphs.comfy.ui.ui_to_api` for the core classes whose declaration
is known (:data:`graphs.comfy.known.KNOWN`: core, conditioning and custom sampling): every
input slot the class declares (unlinked ones with ``link: null``), an input marked
``widget`` for a widget fed by a link, each output with the links leaving it, widget
values in declaration order (a seed followed by its ``control_after_generate`` value,
``"fixed"``), and a layout by depth, so the ComfyUI editor opens it as a readable graph.
Node ids are the prompt's where they are integers. A class it does not know makes the
workflow impossible (``None``, with the reason), since its widget order is unknown.

>>> prompt = {"5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}},
...           "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
...           "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}}}
>>> ui, why = api_to_ui(prompt)
>>> [(n["id"], n["type"], n["widgets_values"]) for n in ui["nodes"]][1:]
[(5, 'EmptyLatentImage', [64, 96, 1]), (8, 'VAEDecode', [])]
>>> ui["links"]
[[1, 5, 0, 8, 0, 'LATENT'], [2, 4, 2, 8, 1, 'VAE']]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphs.comfy.api import is_link
from graphs.comfy.known import KNOWN
from graphs.comfy.nodes import SEED_WIDGETS, NodeInfo


def api_to_ui(prompt: Mapping[str, Mapping[str, Any]],
              known: Mapping[str, NodeInfo] = KNOWN) -> tuple[dict[str, Any] | None, str | None]:
    """``(UI workflow, None)``, or ``(None, why)`` when a class's declaration is not known."""
    for node_id, node in prompt.items():
        if node.get("class_type") not in known:
            return None, f"node {node_id}: class {node.get('class_type')!r} has no known declaration"
    ids = _int_ids(prompt)
    depth = _depths(prompt)
    nodes: dict[str, dict[str, Any]] = {}
    rows: dict[int, int] = {}
    for order, node_id in enumerate(sorted(prompt, key=lambda k: (depth[k], ids[k]))):
        node = prompt[node_id]
        info = known[node["class_type"]]
        row = rows.get(depth[node_id], 0)
        rows[depth[node_id]] = row + 1
        inputs = [{"name": n, "type": t, "link": None} for n, t in info.inputs.items()]
        widgets = set(info.widget_names())
        for name, value in node["inputs"].items():
            if is_link(value) and name in widgets:  # a widget converted to an input
                inputs.append({"name": name, "type": _type_of(prompt, known, value), "widget": {"name": name},
                               "link": None})
        outputs = [{"name": t, "type": t, "links": [], "slot_index": i} for i, t in enumerate(info.outputs)]
        nodes[node_id] = {
            "id": ids[node_id], "type": node["class_type"],
            "pos": [50 + 380 * depth[node_id], 50 + 220 * row],
            "size": [320, 140], "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
            "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": _widget_values(info, node["inputs"])}
        title = (node.get("_meta") or {}).get("title")
        if isinstance(title, str) and title:
            nodes[node_id]["title"] = title
    links: list[list[Any]] = []
    for node_id in sorted(prompt, key=lambda k: ids[k]):
        target = nodes[node_id]
        for name, value in prompt[node_id]["inputs"].items():
            if not is_link(value) or value[0] not in nodes:
                continue
            slot = next((i for i, e in enumerate(target["inputs"]) if e["name"] == name), None)
            source = nodes[value[0]]
            if slot is None or not 0 <= value[1] < len(source["outputs"]):
                continue
            link_id = len(links) + 1
            type_ = source["outputs"][value[1]]["type"]
            links.append([link_id, source["id"], value[1], target["id"], slot, type_])
            target["inputs"][slot]["link"] = link_id
            source["outputs"][value[1]]["links"].append(link_id)
    ordered = sorted(nodes.values(), key=lambda n: n["id"])
    return {"last_node_id": max((n["id"] for n in ordered), default=0), "last_link_id": len(links),
            "nodes": ordered, "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}, None


def _widget_values(info: NodeInfo, inputs: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for name, default in info.widgets:
        value = inputs.get(name, default)
        out.append(default if is_link(value) else value)
        if name in SEED_WIDGETS:
            out.append("fixed")  # control_after_generate: keep the seed as it is
    return out


def _type_of(prompt: Mapping[str, Mapping[str, Any]], known: Mapping[str, NodeInfo], link: list[Any]) -> str:
    source = prompt.get(link[0])
    info = known.get(source["class_type"]) if source else None
    return info.outputs[link[1]] if info is not None and 0 <= link[1] < len(info.outputs) else "*"


def _int_ids(prompt: Mapping[str, Any]) -> dict[str, int]:
    """The prompt's ids as litegraph's integer ids (``"48:3"`` and other strings get fresh ones)."""
    taken = {int(k) for k in prompt if k.isdigit()}
    free = max(taken, default=0) + 1
    out: dict[str, int] = {}
    for k in sorted(prompt, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k)):
        if k.isdigit():
            out[k] = int(k)
        else:
            out[k], free = free, free + 1
    return out


def _depths(prompt: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Each node's column: one more than its deepest source (a cycle is cut)."""
    depth: dict[str, int] = {}

    def visit(node_id: str, stack: frozenset[str]) -> int:
        if node_id in depth:
            return depth[node_id]
        sources = [v[0] for v in prompt[node_id]["inputs"].values()
                   if is_link(v) and v[0] in prompt and v[0] not in stack]
        depth[node_id] = 1 + max((visit(s, stack | {node_id}) for s in sources), default=-1)
        return depth[node_id]

    for node_id in prompt:
        visit(node_id, frozenset())
    return depth
