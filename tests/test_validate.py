"""Validation against a catalog: every kind of problem, all reported at once."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from graphs import (
    BlockSpec,
    Graph,
    GraphValidationError,
    PortSpec,
    check,
    check_document,
    is_compatible,
    register_port_type,
    validate,
)


class SrcParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(64, ge=8, le=4096)
    mode: str = Field("a", pattern="^(a|b)$")
    name: str


CATALOG = {
    "t.src": BlockSpec("t.src", "1.0.0", outputs=(PortSpec("image", "IMAGE"), PortSpec("n", "INT")),
                       params_model=SrcParams),
    "t.mask": BlockSpec("t.mask", "1.0.0", outputs=(PortSpec("mask", "MASK"),)),
    "t.filter": BlockSpec("t.filter", "1.0.0", inputs=(PortSpec("image", "IMAGE"),
                                                        PortSpec("mask", "MASK", optional=True)),
                          outputs=(PortSpec("image", "IMAGE"),), tiling="split"),
    "t.num": BlockSpec("t.num", "1.0.0", inputs=(PortSpec("x", "FLOAT"),),
                       outputs=(PortSpec("y", "FLOAT"),)),
    "t.many": BlockSpec("t.many", "1.0.0", inputs=(PortSpec("images", "IMAGE", multiple=True),),
                        outputs=(PortSpec("image", "IMAGE"),)),
}


def graph(nodes):
    return Graph.from_dict({"nodes": nodes})


def kinds(g):
    return [(e.type, e.node, e.field) for e in check(g, CATALOG)]


SRC = {"block": "t.src", "params": {"name": "s"}}


def test_valid_graph_passes():
    g = graph({"s": SRC, "f": {"block": "t.filter", "inputs": {"image": "s.image"}}})
    assert check(g, CATALOG) == []
    validate(g, CATALOG)


def test_unknown_block_names_family_members():
    [err] = check(graph({"x": {"block": "t.nope"}}), CATALOG)
    assert (err.type, err.node, err.field) == ("unknown_block", "x", "block")
    assert "t.filter" in err.message and err.to_dict()["value"] == "t.nope"


def test_unknown_and_missing_inputs():
    g = graph({"s": SRC, "f": {"block": "t.filter", "inputs": {"img": "s.image"}}})
    assert kinds(g) == [("unknown_input", "f", "inputs.img"), ("missing_input", "f", "inputs.image")]


def test_optional_input_may_be_unwired_and_wired():
    g = graph({"s": SRC, "m": {"block": "t.mask"},
               "f": {"block": "t.filter", "inputs": {"image": "s.image", "mask": "m.mask"}}})
    assert kinds(g) == []


def test_dangling_references_to_node_and_port():
    g = graph({"s": SRC, "f": {"block": "t.filter", "inputs": {"image": "ghost.image"}},
               "g": {"block": "t.filter", "inputs": {"image": "s.picture"}}})
    errs = check(g, CATALOG)
    assert [(e.type, e.node) for e in errs] == [("dangling_reference", "f"), ("dangling_reference", "g")]
    assert "no output 'picture'" in errs[1].message and "image, n" in errs[1].message


def test_bad_reference_syntax():
    g = graph({"f": {"block": "t.filter", "inputs": {"image": "no-dot"}}})
    assert kinds(g) == [("bad_reference", "f", "inputs.image")]


def test_type_mismatch_names_both_types():
    g = graph({"m": {"block": "t.mask"}, "f": {"block": "t.filter", "inputs": {"image": "m.mask"}}})
    [err] = check(g, CATALOG)
    assert err.type == "type_mismatch" and err.to_dict()["expected"] == "IMAGE"
    assert err.to_dict()["got"] == "MASK" and "wants IMAGE" in err.message


def test_int_widens_to_float_and_subtypes_are_accepted():
    register_port_type("DEPTHMAP", parent="IMAGE")
    assert is_compatible("DEPTHMAP", "IMAGE") and not is_compatible("IMAGE", "DEPTHMAP")
    g = graph({"s": SRC, "n": {"block": "t.num", "inputs": {"x": "s.n"}}})
    assert kinds(g) == []


def test_multiple_inputs_take_lists_and_singles_do_not():
    ok = graph({"s": SRC, "m": {"block": "t.many", "inputs": {"images": ["s.image", "s.image"]}}})
    assert kinds(ok) == []
    bad = graph({"s": SRC, "f": {"block": "t.filter", "inputs": {"image": ["s.image"]}}})
    assert kinds(bad) == [("bad_reference", "f", "inputs.image")]
    mixed = graph({"s": SRC, "m": {"block": "t.many", "inputs": {"images": ["s.image", "s.n"]}}})
    assert kinds(mixed) == [("type_mismatch", "m", "inputs.images[1]")]


def test_cycles_are_reported_once_per_cycle():
    g = graph({
        "a": {"block": "t.filter", "inputs": {"image": "b.image"}},
        "b": {"block": "t.filter", "inputs": {"image": "a.image"}},
        "c": {"block": "t.filter", "inputs": {"image": "c.image"}},
    })
    errs = [e for e in check(g, CATALOG) if e.type == "cycle"]
    assert sorted(e.to_dict()["nodes"] for e in errs) == [["a", "b"], ["c"]]
    assert "a -> b -> a" in next(e.message for e in errs if e.node == "a")


def test_param_errors_carry_value_and_bound():
    g = graph({"s": {"block": "t.src", "params": {"width": 5000, "mode": "z", "extra": 1}}})
    errs = {e.field: e.to_dict() for e in check(g, CATALOG)}
    assert set(errs) == {"params.width", "params.mode", "params.extra", "params.name"}
    assert errs["params.width"]["value"] == 5000 and errs["params.width"]["bound"] == {"le": 4096}
    assert "5000" in errs["params.width"]["message"] and "le=4096" in errs["params.width"]["message"]
    assert errs["params.mode"]["bound"] == {"pattern": "^(a|b)$"}
    assert "unknown param" in errs["params.extra"]["message"]
    assert "missing" in errs["params.name"]["message"]
    assert all(e["type"] == "invalid_param" and e["node"] == "s" for e in errs.values())


def test_params_on_a_block_without_params():
    g = graph({"m": {"block": "t.mask", "params": {"x": 1}}})
    assert kinds(g) == [("invalid_param", "m", "params.x")]


def test_tile_annotations():
    g = graph({
        "s": SRC,
        "f": {"block": "t.filter", "inputs": {"image": "s.image"},
              "tile": {"size": 64, "overlap": 64, "strategy": "multidiffusion"}},
        "n": {"block": "t.mask", "tile": {"size": 64}},
    })
    assert kinds(g) == [("invalid_tile", "f", "tile.overlap"), ("invalid_tile", "f", "tile.strategy"),
                        ("invalid_tile", "n", "tile")]


def test_duplicate_ids_come_out_of_validation():
    g = Graph.from_json('{"nodes": {"m": {"block": "t.mask"}, "m": {"block": "t.mask"}}}')
    assert kinds(g) == [("duplicate_node", "m", "id")]


def test_everything_at_once():
    text = """{"nodes": {
      "s": {"block": "t.src", "params": {"width": 1}},
      "s": {"block": "t.src", "params": {"name": "dup"}},
      "u": {"block": "t.unknown"},
      "f": {"block": "t.filter", "inputs": {"image": "gone.image", "bogus": "s.image"}},
      "m": {"block": "t.mask"},
      "t": {"block": "t.filter", "inputs": {"image": "m.mask"}},
      "c1": {"block": "t.filter", "inputs": {"image": "c2.image"}},
      "c2": {"block": "t.filter", "inputs": {"image": "c1.image"}}
    }}"""
    with pytest.raises(GraphValidationError) as info:
        validate(Graph.from_json(text), CATALOG)
    types = {e["type"] for e in info.value.to_dict()["errors"]}
    assert types == {"duplicate_node", "invalid_param", "unknown_block", "dangling_reference",
                     "unknown_input", "type_mismatch", "cycle"}
    assert len(info.value.errors) == 8  # width bound and name missing, plus one per other problem
    assert "8 problems" in str(info.value)


def test_check_document_reports_shape_errors_without_a_graph():
    graph_, errors = check_document('{"nodes": {"a": {}}}', CATALOG)
    assert graph_ is None and errors[0].to_dict()["node"] == "a"
    graph_, errors = check_document({"nodes": {"m": {"block": "t.mask"}}}, CATALOG)
    assert graph_ is not None and errors == []


def test_catalog_json_description():
    d = CATALOG["t.src"].to_dict()
    assert d["params"]["properties"]["width"]["maximum"] == 4096
    assert d["outputs"] == [{"name": "image", "type": "IMAGE"}, {"name": "n", "type": "INT"}]
    assert CATALOG["t.filter"].to_dict()["inputs"][1]["optional"] is True
