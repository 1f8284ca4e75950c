"""Pictures of graphs: a left-to-right layout drawn as SVG (text) or PNG (Pillow).

Each node is a box with its id, its block id and its key params; typed input ports on the
left, output ports on the right; edges run from output to input in the colour of their
type. Tiled nodes have a dashed border and a ``tiled`` badge; nodes that share a
``meta.group`` (spliced sub-graphs) are drawn inside one labelled frame.

>>> from graphs import load_template
>>> svg = to_svg(load_template("txt2img"))
>>> svg.startswith("<svg") and "sd.denoise" in svg
True
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from graphs.catalog import BlockSpec
from graphs.model import Graph

NODE_W = 210
HEADER_H = 40
ROW_H = 16
COL_GAP = 90
ROW_GAP = 28
MARGIN = 24
GROUP_PAD = 12
MAX_PARAMS = 4

TYPE_COLOURS = {
    "IMAGE": "#4c9be8", "MASK": "#9a9a9a", "LATENT": "#e86b9b", "CONDITIONING": "#e8a33d",
    "TILES": "#45b39d", "PALETTE": "#b58de0", "TEXT": "#7f8c8d", "INT": "#5d6d7e",
    "FLOAT": "#5d6d7e", "BOOL": "#5d6d7e",
}
DEFAULT_COLOUR = "#888888"
KEY_PARAMS = ("model", "prompt", "width", "height", "steps", "sampler", "strength", "seed", "name",
              "path", "scale")


@dataclass
class NodeBox:
    """Where one node is drawn and what it shows."""

    id: str
    block: str
    x: float
    y: float
    w: float
    h: float
    params: list[str]
    inputs: list[tuple[str, str]]  # (name, type)
    outputs: list[tuple[str, str]]
    tiled: str | None = None
    group: str | None = None

    def in_port(self, name: str) -> tuple[float, float]:
        names = [n for n, _ in self.inputs]
        i = names.index(name) if name in names else 0
        return self.x, self.y + HEADER_H + len(self.params) * ROW_H + (i + 0.5) * ROW_H + 4

    def out_port(self, name: str) -> tuple[float, float]:
        names = [n for n, _ in self.outputs]
        i = names.index(name) if name in names else 0
        return self.x + self.w, self.y + HEADER_H + len(self.params) * ROW_H + (i + 0.5) * ROW_H + 4


@dataclass
class Layout:
    """Boxes, edges and group frames of one graph picture."""

    width: float
    height: float
    boxes: dict[str, NodeBox]
    edges: list[tuple[str, str, str, str, str]]  # (src, port, dst, input, type)
    groups: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


def _short(value: Any, limit: int = 26) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _port_types(graph: Graph, catalog: Mapping[str, BlockSpec] | None) -> tuple[dict, dict]:
    ins: dict[str, list[tuple[str, str]]] = {}
    outs: dict[str, list[tuple[str, str]]] = {}
    for node_id, node in graph.nodes.items():
        spec = catalog.get(node.block) if catalog else None
        if spec is not None:
            ins[node_id] = [(p.name, p.type) for p in spec.inputs]
            outs[node_id] = [(p.name, p.type) for p in spec.outputs]
        else:
            ins[node_id] = [(name, "?") for name in node.inputs]
            outs[node_id] = []
    for src, port, _dst, _name, _i in graph.edges():
        if src in outs and port not in [n for n, _ in outs[src]]:
            outs[src].append((port, "?"))
    return ins, outs


def layout(graph: Graph, catalog: Mapping[str, BlockSpec] | None = None) -> Layout:
    """Place every node: columns by dependency depth, rows ordered to reduce crossings."""
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((s, d) for s, _p, d, _n, _i in graph.edges() if s in graph.nodes)
    if nx.is_directed_acyclic_graph(g):
        depth: dict[str, int] = {}
        for n in nx.topological_sort(g):
            depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    else:  # draw broken graphs too, in file order
        depth = {n: i for i, n in enumerate(graph.nodes)}
    columns: dict[int, list[str]] = {}
    for n in graph.nodes:
        columns.setdefault(depth[n], []).append(n)
    ins, outs = _port_types(graph, catalog)
    boxes: dict[str, NodeBox] = {}
    rank: dict[str, float] = {}
    col_heights = []
    for col in sorted(columns):
        members = columns[col]
        members.sort(key=lambda n: (
            sum(rank[p] for p in g.predecessors(n)) / max(1, g.in_degree(n)) if col else 0,
            graph.nodes[n].meta.get("group") or "", n))
        y = MARGIN + GROUP_PAD + 14
        for i, n in enumerate(members):
            node = graph.nodes[n]
            params = [f"{k}: {_short(node.params[k])}" for k in KEY_PARAMS if k in node.params]
            params += [f"{k}: {_short(v)}" for k, v in node.params.items() if k not in KEY_PARAMS]
            params = params[:MAX_PARAMS]
            rows = len(params) + max(len(ins[n]), len(outs[n]), 1)
            h = HEADER_H + rows * ROW_H + 10
            tiled = None
            if node.tile is not None:
                tiled = f"tiled {node.tile.size}px/{node.tile.overlap}"
            boxes[n] = NodeBox(n, node.block, MARGIN + GROUP_PAD + col * (NODE_W + COL_GAP), y,
                               NODE_W, h, params, ins[n], outs[n], tiled, node.meta.get("group"))
            rank[n] = i
            y += h + ROW_GAP
        col_heights.append(y)
    edges = []
    for src, port, dst, name, _i in graph.edges():
        if src in boxes:
            typ = dict(outs[src]).get(port, "?")
            edges.append((src, port, dst, name, typ))
    groups: dict[str, tuple[float, float, float, float]] = {}
    for box in boxes.values():
        if box.group:
            x0, y0, x1, y1 = groups.get(box.group, (1e9, 1e9, -1e9, -1e9))
            groups[box.group] = (min(x0, box.x - GROUP_PAD), min(y0, box.y - GROUP_PAD - 14),
                                 max(x1, box.x + box.w + GROUP_PAD), max(y1, box.y + box.h + GROUP_PAD))
    width = MARGIN * 2 + GROUP_PAD * 2 + max(1, len(columns)) * (NODE_W + COL_GAP) - COL_GAP
    height = max(col_heights or [MARGIN * 2]) + MARGIN
    return Layout(width, height, boxes, edges, groups)


def to_svg(graph: Graph, catalog: Mapping[str, BlockSpec] | None = None, title: str | None = None) -> str:
    """The graph as a standalone SVG document."""
    lay = layout(graph, catalog)
    top = 30 if title else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
           f'height="{lay.height + top:.0f}" viewBox="0 {-top} {lay.width:.0f} {lay.height + top:.0f}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
           f'<rect x="0" y="{-top}" width="100%" height="100%" fill="#fbfbfc"/>']
    if title:
        out.append(f'<text x="{MARGIN}" y="-10" font-size="15" font-weight="bold">'
                   f'{html.escape(title)}</text>')
    for name, (x0, y0, x1, y1) in lay.groups.items():
        out.append(f'<g class="group"><rect x="{x0:.0f}" y="{y0:.0f}" width="{x1 - x0:.0f}" '
                   f'height="{y1 - y0:.0f}" rx="10" fill="#eef3f8" stroke="#9fb3c8"/>'
                   f'<text x="{x0 + 8:.0f}" y="{y0 + 13:.0f}" fill="#52667a">{html.escape(name)}</text></g>')
    for src, port, dst, name, typ in lay.edges:
        (x0, y0), (x1, y1) = lay.boxes[src].out_port(port), lay.boxes[dst].in_port(name)
        dx = max(40.0, (x1 - x0) / 2)
        colour = TYPE_COLOURS.get(typ, DEFAULT_COLOUR)
        out.append(f'<path class="edge" d="M{x0:.0f},{y0:.0f} C{x0 + dx:.0f},{y0:.0f} {x1 - dx:.0f},'
                   f'{y1:.0f} {x1:.0f},{y1:.0f}" fill="none" stroke="{colour}" stroke-width="2">'
                   f'<title>{html.escape(f"{src}.{port} -> {dst}.{name} ({typ})")}</title></path>')
    for box in lay.boxes.values():
        dash = ' stroke-dasharray="6 3"' if box.tiled else ""
        out.append(f'<g class="node" data-node="{html.escape(box.id)}">'
                   f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" height="{box.h:.0f}" '
                   f'rx="6" fill="#ffffff" stroke="#34495e" stroke-width="1.5"{dash}/>'
                   f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" height="{HEADER_H - 4}" '
                   'rx="6" fill="#34495e"/>'
                   f'<text x="{box.x + 8:.0f}" y="{box.y + 15:.0f}" fill="#ffffff" font-weight="bold">'
                   f'{html.escape(box.id)}</text>'
                   f'<text x="{box.x + 8:.0f}" y="{box.y + 30:.0f}" fill="#d6e0ea">'
                   f'{html.escape(box.block)}</text>')
        if box.tiled:
            out.append(f'<text x="{box.x + box.w - 8:.0f}" y="{box.y + 15:.0f}" fill="#f5cba7" '
                       f'text-anchor="end">{html.escape(box.tiled)}</text>')
        y = box.y + HEADER_H + 8
        for line in box.params:
            out.append(f'<text x="{box.x + 8:.0f}" y="{y + 4:.0f}" fill="#555">{html.escape(line)}</text>')
            y += ROW_H
        for name, typ in box.inputs:
            px, py = box.in_port(name)
            c = TYPE_COLOURS.get(typ, DEFAULT_COLOUR)
            out.append(f'<circle cx="{px:.0f}" cy="{py:.0f}" r="4" fill="{c}"/>'
                       f'<text x="{px + 8:.0f}" y="{py + 4:.0f}">{html.escape(name)}'
                       f'<tspan fill="#999"> {html.escape(typ)}</tspan></text>')
        for name, typ in box.outputs:
            px, py = box.out_port(name)
            c = TYPE_COLOURS.get(typ, DEFAULT_COLOUR)
            out.append(f'<circle cx="{px:.0f}" cy="{py:.0f}" r="4" fill="{c}"/>'
                       f'<text x="{px - 8:.0f}" y="{py + 4:.0f}" text-anchor="end">'
                       f'<tspan fill="#999">{html.escape(typ)} </tspan>{html.escape(name)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def to_png(graph: Graph, catalog: Mapping[str, BlockSpec] | None = None, title: str | None = None,
           scale: float = 1.5) -> bytes:
    """The same picture drawn with Pillow, as PNG bytes (no SVG renderer needed)."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    lay = layout(graph, catalog)
    top = 30 if title else 0
    img = Image.new("RGB", (int(lay.width * scale), int((lay.height + top) * scale)), "#fbfbfc")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=int(11 * scale))
        bold = ImageFont.load_default(size=int(12 * scale))
    except TypeError:  # pragma: no cover - very old Pillow
        font = bold = ImageFont.load_default()

    def s(x: float, y: float) -> tuple[float, float]:
        return x * scale, (y + top) * scale

    def hex_rgb(c: str) -> tuple[int, int, int]:
        return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)

    if title:
        d.text(s(MARGIN, -22), title, fill="#000000", font=bold)
    for name, (x0, y0, x1, y1) in lay.groups.items():
        d.rounded_rectangle([*s(x0, y0), *s(x1, y1)], radius=10 * scale, fill="#eef3f8",
                            outline="#9fb3c8")
        d.text(s(x0 + 8, y0 + 3), name, fill="#52667a", font=font)
    for src, port, dst, name, typ in lay.edges:
        (x0, y0), (x1, y1) = lay.boxes[src].out_port(port), lay.boxes[dst].in_port(name)
        dx = max(40.0, (x1 - x0) / 2)
        pts = []
        for i in range(25):
            t = i / 24
            a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
            bx = a * x0 + b * (x0 + dx) + c * (x1 - dx) + e * x1
            by = a * y0 + b * y0 + c * y1 + e * y1
            pts.append(s(bx, by))
        d.line(pts, fill=hex_rgb(TYPE_COLOURS.get(typ, DEFAULT_COLOUR)), width=max(1, int(2 * scale)))
    for box in lay.boxes.values():
        outline = "#c0392b" if box.tiled else "#34495e"
        d.rounded_rectangle([*s(box.x, box.y), *s(box.x + box.w, box.y + box.h)], radius=6 * scale,
                            fill="#ffffff", outline=outline, width=max(1, int(2 * scale)))
        d.rounded_rectangle([*s(box.x, box.y), *s(box.x + box.w, box.y + HEADER_H - 4)],
                            radius=6 * scale, fill="#34495e")
        d.text(s(box.x + 8, box.y + 4), box.id, fill="#ffffff", font=bold)
        d.text(s(box.x + 8, box.y + 20), box.block, fill="#d6e0ea", font=font)
        if box.tiled:
            d.text(s(box.x + box.w - 90, box.y + 4), box.tiled, fill="#f5cba7", font=font)
        y = box.y + HEADER_H + 2
        for line in box.params:
            d.text(s(box.x + 8, y), line, fill="#555555", font=font)
            y += ROW_H
        for name, typ in box.inputs:
            px, py = box.in_port(name)
            c = hex_rgb(TYPE_COLOURS.get(typ, DEFAULT_COLOUR))
            d.ellipse([*s(px - 4, py - 4), *s(px + 4, py + 4)], fill=c)
            d.text(s(px + 8, py - 7), f"{name} {typ}", fill="#333333", font=font)
        for name, typ in box.outputs:
            px, py = box.out_port(name)
            c = hex_rgb(TYPE_COLOURS.get(typ, DEFAULT_COLOUR))
            d.ellipse([*s(px - 4, py - 4), *s(px + 4, py + 4)], fill=c)
            label = f"{typ} {name}"
            width = d.textlength(label, font=font) / scale
            d.text(s(px - 8 - width, py - 7), label, fill="#333333", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
