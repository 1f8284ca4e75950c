"""Pictures of graphs: layout, SVG, PNG and the render command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from PIL import Image

from graphs import Graph, GraphBuilder, TileSpec, load_template
from graphs.render import layout, to_png, to_svg
from orchestrator.cli.main import main


def _graph():
    b = GraphBuilder()
    a = b.add("image.solid", id="a", width=64, height=32, color=[1, 0, 0])
    m = b.add("image.solid", id="m", width=64, height=32)
    blend = b.add("image.blend", id="blend", a=a.image, b=m.image)
    gray = b.add("image.grayscale", id="gray", image=blend.image)
    edges = b.add("image.canny", id="edges", image=gray.image)
    mask = b.add("image.image_to_mask", id="mask", image=edges.image)
    b.add("image.save", id="save", image=edges.image, name="edges")
    g = b.build()
    g.nodes["edges"].tile = TileSpec(size=512, overlap=64)
    g.nodes["a"].meta["group"] = "sources"
    g.nodes["m"].meta["group"] = "sources"
    assert mask.id == "mask"
    return g


def test_layout_runs_left_to_right_with_typed_edges(catalog):
    lay = layout(_graph(), catalog)
    xs = {n: b.x for n, b in lay.boxes.items()}
    assert xs["a"] == xs["m"] < xs["blend"] < xs["gray"] < xs["edges"] < xs["save"] == xs["mask"]
    assert ("gray", "image", "edges", "image", "IMAGE") in lay.edges
    assert lay.boxes["edges"].tiled == "tiled 512px/64"
    x0, y0, x1, y1 = lay.groups["sources"]
    for n in ("a", "m"):
        b = lay.boxes[n]
        assert x0 < b.x and b.x + b.w < x1 and y0 < b.y and b.y + b.h < y1
    for a in lay.boxes.values():  # no two boxes overlap
        for b in lay.boxes.values():
            if a.id < b.id and a.x == b.x:
                assert a.y + a.h <= b.y or b.y + b.h <= a.y


def test_svg_is_well_formed_and_shows_ids_blocks_params(catalog):
    svg = to_svg(_graph(), catalog, title="edges <demo>")
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "blend" in texts and "image.canny" in texts and "width: 64" in texts
    assert "edges <demo>" in texts and "tiled 512px/64" in texts
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert len(nodes) == 7  # a, m, blend, gray, edges, mask, save
    assert 'stroke-dasharray' in svg


def test_broken_graphs_still_draw():
    g = Graph.from_dict({"nodes": {"a": {"block": "x.unknown", "inputs": {"i": "b.o"}},
                                   "b": {"block": "x.unknown", "inputs": {"i": "a.o"}}}})
    assert "<svg" in to_svg(g)


def test_png_and_the_render_command(tmp_path, catalog, capsys):
    img = Image.open(__import__("io").BytesIO(to_png(_graph(), catalog)))
    assert img.width > img.height > 100
    b = GraphBuilder()
    s = b.add("image.solid", width=8, height=8)
    b.add("image.save", image=s.image, name="x")
    path = tmp_path / "g.json"
    b.build().dump(path)
    assert main(["graph", "render", str(path), "-o", str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.svg").read_text().startswith("<svg")
    assert main(["graph", "render", str(path), "-o", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").format == "PNG"
    assert main(["graph", "render", str(path), "-o", str(tmp_path / "g.gif")]) == 2


def test_templates_draw_without_a_catalog():
    svg = to_svg(load_template("hires_fix"))
    assert "sd.denoise" in svg and svg.count('class="node"') == 7
