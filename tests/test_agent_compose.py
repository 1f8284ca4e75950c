"""Splicing graphs: pure, prefixed, bound; composition steps report what fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import make_catalog, make_templates

from agents.compose import apply_ops, insert, replace_node
from agents.errors import AgentError
from graphs import Graph, validate


@pytest.fixture()
def templates():
    return make_templates()


def test_insert_prefixes_binds_and_leaves_its_inputs_alone(templates) -> None:
    host = templates["txt2img"].graph
    piece = templates["img2img"].graph
    host_before, piece_before = host.to_dict(), piece.to_dict()
    out = insert(host, piece, prefix="refine", bind={"load.image": "decode.image"}, drop=["save"])
    assert host.to_dict() == host_before and piece.to_dict() == piece_before
    assert {"refine_resize", "refine_encode", "refine_denoise", "refine_decode"} <= set(out.nodes)
    assert "refine_load" not in out.nodes and "refine_save" not in out.nodes
    assert out.nodes["refine_resize"].inputs == {"image": "decode.image"}
    assert out.nodes["refine_denoise"].inputs["rng"] == "refine_encode.rng"
    validate(out, make_catalog())


def test_insert_refuses_clashes_and_bad_bindings(templates) -> None:
    host = templates["txt2img"].graph
    once = insert(host, host, prefix="a")
    with pytest.raises(AgentError, match="already in the host"):
        insert(once, host, prefix="a")
    with pytest.raises(AgentError, match="names no node"):
        insert(host, templates["img2img"].graph, prefix="p", bind={"load.image": "nowhere.image"})
    with pytest.raises(AgentError, match="still read"):
        insert(host, templates["img2img"].graph, prefix="p", drop=["load"])


def test_replace_node_rewires_its_consumers(templates) -> None:
    host = templates["txt2img"].graph
    piece = Graph.from_dict({"nodes": {"up": {"block": "sd.latent_upscale", "params": {"scale": 2.0},
                                              "inputs": {"latent": "in.latent"}},
                                       "in": {"block": "sd.empty_latent", "params": {"width": 32,
                                                                                    "height": 32}}}})
    out = replace_node(host, "latent", piece, prefix="big", bind={}, outputs={"latent": "up.latent"})
    assert "latent" not in out.nodes
    assert out.nodes["denoise"].inputs["latent"] == "big_up.latent"
    validate(out, make_catalog())
    with pytest.raises(AgentError, match="not mapped"):
        replace_node(host, "latent", piece, prefix="big", outputs={})


def test_apply_ops_reports_each_failed_step_and_keeps_going(templates) -> None:
    ops = [
        {"op": "template", "name": "txt2img"},
        {"op": "set", "node": "denoise", "params": {"steps": 12}},
        {"op": "add", "id": "gray", "block": "image.resize", "inputs": {"image": "decode.image"},
         "params": {"width": 32, "height": 32}},
        {"op": "wire", "node": "save", "input": "image", "from": "gray.image"},
        {"op": "remove", "node": "ghost"},
        {"op": "fly"},
        "not a step",
    ]
    graph, errors = apply_ops(None, ops, templates)
    assert graph.nodes["denoise"].params["steps"] == 12
    assert graph.nodes["save"].inputs["image"] == "gray.image"
    assert [e["step"] for e in errors] == [4, 5, 6]
    assert all(e["type"] == "compose" for e in errors)
    validate(graph, make_catalog())
