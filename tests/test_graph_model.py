"""The graph JSON format: load/dump, references, networkx view, builder, content keys."""

from __future__ import annotations

import json

import pytest

from graphs import (
    FORMAT,
    Graph,
    GraphBuilder,
    GraphError,
    GraphValidationError,
    TileSpec,
    content_keys,
    load_template,
    split_reference,
    template_names,
)

DOC = {
    "format": FORMAT,
    "nodes": {
        "cond": {"block": "sd.encode_prompt", "params": {"model": "tiny-sd", "prompt": "a red fox"}},
        "latent": {"block": "sd.empty_latent", "params": {"width": 1024, "height": 512, "seed": 7}},
        "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"},
                    "params": {"model": "tiny-sd", "steps": 20, "sampler": "ddim"},
                    "tile": {"size": 512, "overlap": 64}},
        "image": {"block": "sd.vae_decode", "inputs": {"latent": "denoise.latent"},
                  "params": {"model": "tiny-sd"}},
        "save": {"block": "image.save", "inputs": {"image": "image.image"}, "params": {"name": "fox"}},
    },
}


def test_design_example_round_trips():
    g = Graph.from_dict(DOC)
    assert g.nodes["denoise"].tile == TileSpec(size=512, overlap=64)
    assert g.nodes["denoise"].tile.effective_stride() == 448
    again = Graph.from_json(g.to_json())
    assert again == g
    assert again.to_dict() == DOC


def test_dump_and_load_file(tmp_path):
    g = Graph.from_dict(DOC)
    path = tmp_path / "g.json"
    g.dump(path)
    assert Graph.load(path) == g
    assert json.loads(path.read_text())["format"] == FORMAT


def test_topological_order_and_networkx_view():
    g = Graph.from_dict(DOC)
    order = g.topological_order()
    assert order.index("cond") < order.index("denoise") < order.index("image") < order.index("save")
    nxg = g.to_networkx()
    assert set(nxg.nodes) == set(DOC["nodes"])
    edge = nxg.get_edge_data("latent", "denoise")
    assert list(edge.values()) == [{"src_port": "latent", "dst_input": "latent", "index": None}]
    assert nxg.nodes["denoise"]["block"] == "sd.denoise"
    assert nxg.nodes["denoise"]["tile"]["size"] == 512


def test_list_references_make_indexed_edges():
    g = Graph.from_dict({"nodes": {
        "a": {"block": "x.a"}, "b": {"block": "x.b"},
        "c": {"block": "x.combine", "inputs": {"conds": ["a.out", "b.out"]}},
    }})
    edges = sorted(g.edges())
    assert edges == [("a", "out", "c", "conds", 0), ("b", "out", "c", "conds", 1)]


@pytest.mark.parametrize("ref", ["nodeport", "a.b.c", ".port", "node.", "1node.port", 3])
def test_bad_references_are_refused(ref):
    with pytest.raises(ValueError, match=r"node\.port"):
        split_reference(ref)


def test_shape_errors_are_all_reported_with_node_and_field():
    bad = {"format": FORMAT, "nodes": {
        "a": {"params": {}},
        "b": {"block": "x.y", "tile": {"size": 2}},
        "c": {"block": "x.y", "colour": 1},
    }}
    with pytest.raises(GraphValidationError) as info:
        Graph.from_dict(bad)
    got = {(e["node"], e["field"]) for e in info.value.to_dict()["errors"]}
    assert got == {("a", "block"), ("b", "tile.size"), ("c", "colour")}
    assert all(e["type"] == "format" for e in info.value.to_dict()["errors"])


def test_wrong_format_tag_and_not_json():
    with pytest.raises(GraphValidationError, match="format"):
        Graph.from_dict({"format": "comfy/1", "nodes": {}})
    with pytest.raises(GraphValidationError) as info:
        Graph.from_json("{nope")
    assert info.value.errors[0].type == "format"
    assert "line 1" in info.value.errors[0].message
    with pytest.raises(GraphValidationError, match="JSON object"):
        Graph.from_dict([1, 2])


def test_bad_node_ids_are_refused():
    with pytest.raises(GraphValidationError) as info:
        Graph.from_dict({"nodes": {"has.dot": {"block": "x.y"}, "ok": {"block": "x.y"}}})
    assert [e.node for e in info.value.errors] == ["has.dot"]


def test_duplicate_ids_are_kept_as_load_errors():
    text = '{"nodes": {"a": {"block": "x.y"}, "a": {"block": "x.z"}}}'
    g = Graph.from_json(text)
    assert g.nodes["a"].block == "x.y"  # the first one is kept
    assert [e.to_dict()["type"] for e in g.load_errors] == ["duplicate_node"]


def test_error_to_dict_contract():
    e = GraphError("msg", type="cycle", node="n", field="inputs", nodes=["n", "m"])
    assert e.to_dict() == {"type": "cycle", "message": "msg", "node": "n", "field": "inputs",
                           "nodes": ["n", "m"]}


def test_builder_makes_the_same_graph_as_json():
    b = GraphBuilder()
    cond = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt="a red fox")
    lat = b.add("sd.empty_latent", id="latent", width=1024, height=512, seed=7)
    den = b.add("sd.denoise", id="denoise", cond=cond.cond, latent=lat.latent, model="tiny-sd",
                steps=20, sampler="ddim", tile={"size": 512, "overlap": 64})
    img = b.add("sd.vae_decode", id="image", latent=den["latent"], model="tiny-sd")
    b.add("image.save", id="save", image=img.image, name="fox")
    assert b.build() == Graph.from_dict(DOC)


def test_builder_refuses_duplicate_and_bad_ids():
    b = GraphBuilder()
    b.add("x.y", id="a")
    with pytest.raises(ValueError, match="already"):
        b.add("x.y", id="a")
    with pytest.raises(ValueError, match="not a valid id"):
        b.add("x.y", id="a.b")
    assert b.add("x.y").id == "y" and b.add("x.y").id == "y_2"


def test_content_keys_ignore_ids_and_follow_changes():
    g = Graph.from_dict(DOC)
    versions = {n["block"]: "1.0.0" for n in DOC["nodes"].values()}
    keys = content_keys(g, versions)
    renamed = json.loads(json.dumps(DOC))
    renamed["nodes"]["text"] = renamed["nodes"].pop("cond")
    renamed["nodes"]["denoise"]["inputs"]["cond"] = "text.cond"
    renamed["nodes"]["n9"] = renamed["nodes"].pop("denoise")
    renamed["nodes"]["image"]["inputs"]["latent"] = "n9.latent"
    assert content_keys(Graph.from_dict(renamed), versions)["n9"] == keys["denoise"]
    changed = Graph.from_dict(DOC)
    changed.nodes["save"].params["name"] = "other"
    new = content_keys(changed, versions)
    assert new["save"] != keys["save"] and new["denoise"] == keys["denoise"]
    bumped = content_keys(g, {**versions, "sd.denoise": "1.1.0"})
    assert bumped["denoise"] != keys["denoise"] and bumped["image"] != keys["image"]
    assert bumped["cond"] == keys["cond"]


def test_template_library():
    names = template_names()
    assert {"txt2img", "img2img", "inpaint", "hires_fix"} <= set(names)
    for name in names:
        g = load_template(name)
        assert g.meta["description"]
        assert g.meta["labels"]["subjects"] and g.meta["labels"]["styles"]
        g.topological_order()  # acyclic
    a = load_template("txt2img")
    a.nodes.clear()
    assert load_template("txt2img").nodes  # each load is a fresh copy
