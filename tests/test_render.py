"""Pictures of graphs: layout, SVG, PNG and the render command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from PIL import Image

from graphs import Graph, GraphBuilder, TileSpec, load_template
from graphs.render import layout, to_png, to_svg
from orchestrator.cli import main


def _graph():
    g = load_template("hires_fix")
    g.nodes["refine"].tile = TileSpec(size=512, overlap=64)
    g.nodes["cond"].meta["group"] = "prompt"
    g.nodes["latent"].meta["group"] = "prompt"
    return g


def test_layout_runs_left_to_right_with_typed_edges(catalog):
    lay = layout(_graph(), catalog)
    xs = {n: b.x for n, b in lay.boxes.items()}
    assert xs["cond"] == xs["latent"] < xs["base"] < xs["upscale"] < xs["refine"] < xs["decode"] < xs["save"]
    assert ("decode", "image", "save", "image", "IMAGE") in lay.edges
    assert lay.boxes["refine"].tiled == "tiled 512px/64"
    x0, y0, x1, y1 = lay.groups["prompt"]
    for n in ("cond", "latent"):
        b = lay.boxes[n]
        assert x0 < b.x and b.x + b.w < x1 and y0 < b.y and b.y + b.h < y1
    for a in lay.boxes.values():  # no two boxes overlap
        for b in lay.boxes.values():
            if a.id < b.id and a.x == b.x:
                assert a.y + a.h <= b.y or b.y + b.h <= a.y


def test_svg_is_well_formed_and_shows_ids_blocks_params(catalog):
    svg = to_svg(_graph(), catalog, title="hires <fix>")
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "refine" in texts and "sd.denoise" in texts and "steps: 4" in texts
    assert "hires <fix>" in texts and "tiled 512px/64" in texts
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert len(nodes) == 7
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
