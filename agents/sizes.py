"""Sizes in a graph: which model each node uses, how large each node's image is, resizing.

A node's size comes from its own ``width``/``height`` params, else from its largest
input, scaled by its ``scale`` param when it is an upscale or resize block. These are
estimates from params alone (an input image's size is unknown until it is read).

>>> from graphs import Graph
>>> g = Graph.from_dict({"nodes": {
...     "latent": {"block": "sd.empty_latent", "params": {"width": 64, "height": 64}},
...     "up": {"block": "sd.latent_upscale", "inputs": {"latent": "latent.latent"},
...            "params": {"scale": 2.0}}}})
>>> output_size(g)
(128, 128)
>>> output_size(set_output_size(g, 256, 128))
(256, 128)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphs import BlockSpec, Graph, GraphError, Node
from graphs.model_refs import model_name

Size = tuple[int, int]


def round8(value: float) -> int:
    """``value`` to the nearest multiple of 8, at least 8 (latents are 1/8 of the image)."""
    return max(8, round(value / 8) * 8)


def model_refs(graph: Graph) -> list[tuple[str, Any]]:
    """``(node_id, model reference)`` for every node with a ``model`` param."""
    return [(n, node.params["model"]) for n, node in graph.nodes.items() if "model" in node.params]


def node_model(node: Node, catalog: Mapping[str, BlockSpec] | None = None) -> str | None:
    """The model a node uses: its ``model`` param, else its block's default for that param."""
    if "model" in node.params:
        return model_name(node.params["model"])
    spec = catalog.get(node.block) if catalog is not None else None
    if spec is None:
        return None
    prop = spec.params_schema().get("properties", {}).get("model", {})
    return model_name(prop.get("default"))


def primary_model(graph: Graph, catalog: Mapping[str, BlockSpec] | None = None) -> str | None:
    """The first model the graph uses (in execution order where there is one)."""
    try:
        order = graph.topological_order()
    except GraphError:
        order = list(graph.nodes)
    for node_id in order:
        name = node_model(graph.nodes[node_id], catalog)
        if name:
            return name
    return None


def _own_size(params: dict[str, Any]) -> Size | None:
    w, h = params.get("width"), params.get("height")
    if isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool) and w > 0 and h > 0:
        return w, h
    return None


def _scale(block: str, params: dict[str, Any]) -> float | None:
    scale = params.get("scale")
    if ("upscale" in block or "resize" in block) and isinstance(scale, (int, float)) \
            and not isinstance(scale, bool) and scale > 0:
        return float(scale)
    return None


def _padded(params: dict[str, Any], size: Size) -> Size:
    """``size`` with a pad block's borders (``left``/``right``/``top``/``bottom`` pixels) added."""
    def px(key: str) -> int:
        value = params.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
    return size[0] + px("left") + px("right"), size[1] + px("top") + px("bottom")


def node_sizes(graph: Graph) -> dict[str, Size]:
    """The estimated image size of each node whose size can be told from params."""
    try:
        order = graph.topological_order()
    except GraphError:
        return {}
    sizes: dict[str, Size] = {}
    for node_id in order:
        node = graph.nodes[node_id]
        size = _own_size(node.params)
        if size is None:
            inputs = [sizes[src] for src, *_ in _sources(graph, node_id) if src in sizes]
            if inputs:
                size = max(inputs, key=lambda s: s[0] * s[1])
                scale = _scale(node.block, node.params)
                if scale:
                    size = (round(size[0] * scale), round(size[1] * scale))
                size = _padded(node.params, size) if node.block.endswith(("pad", "outpaint_pad")) else size
        if size is not None:
            sizes[node_id] = size
    return sizes


def _sources(graph: Graph, node_id: str) -> list[tuple[str, str]]:
    return [(src, port) for src, port, dst, *_ in graph.edges() if dst == node_id]


def sinks(graph: Graph) -> list[str]:
    """Nodes whose outputs nothing reads (the graph's results)."""
    used = {src for src, *_ in graph.edges()}
    return [n for n in graph.nodes if n not in used]


def output_size(graph: Graph) -> Size | None:
    """The estimated size of the graph's result (the largest sink with a known size)."""
    sizes = node_sizes(graph)
    found = [sizes[n] for n in sinks(graph) if n in sizes] or list(sizes.values())
    return max(found, key=lambda s: s[0] * s[1]) if found else None


def set_output_size(graph: Graph, width: int, height: int) -> Graph:
    """A copy of ``graph`` whose result is ``width`` x ``height``: every node that sets a size
    is scaled so that, through the upscales after it, the output comes out at that size."""
    out = graph.model_copy(deep=True)
    final = output_size(graph)
    sizes = node_sizes(graph)
    if final is None:
        return out
    for node_id, node in out.nodes.items():
        own = _own_size(node.params)
        if own is None or node_id not in sizes:
            continue
        fx, fy = final[0] / own[0], final[1] / own[1]
        node.params["width"] = round8(width / fx)
        node.params["height"] = round8(height / fy)
    return out
