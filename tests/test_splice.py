"""Splicing graphs: insert under a prefix, bind open inputs, replace a node, take a piece out again."""

from __future__ import annotations

import pytest

from graphs import Graph, GraphValidationError, load_template, validate
from graphs.splice import extract, insert, open_inputs, replace_node
from graphs.splice_conditions import combine_conditions, condition_branch, find_sampler


def _detail_piece() -> Graph:
    """A piece with one open input (``src.image``): grayscale + resize, then save."""
    return Graph.from_dict({"nodes": {
        "gray": {"block": "image.grayscale", "inputs": {"image": "src.image"}},
        "small": {"block": "image.resize", "inputs": {"image": "gray.image"},
                  "params": {"width": 32, "height": 32}},
        "save": {"block": "image.save", "inputs": {"image": "small.image"}, "params": {"name": "gray"}},
    }})


def _errors(exc: pytest.ExceptionInfo) -> list[tuple[str, str | None, str | None]]:
    return [(e["type"], e["node"], e["field"]) for e in exc.value.to_dict()["errors"]]


def test_insert_binds_open_inputs_prefixes_and_groups(catalog) -> None:
    host = load_template("txt2img")
    piece = _detail_piece()
    before = (host.to_dict(), piece.to_dict())
    assert open_inputs(piece) == ["src.image"]
    out = insert(host, piece, prefix="gray", bind={"src.image": "decode.image"})
    assert (host.to_dict(), piece.to_dict()) == before  # inputs untouched
    assert set(out.nodes) == set(host.nodes) | {"gray_gray", "gray_small", "gray_save"}
    assert out.nodes["gray_gray"].inputs == {"image": "decode.image"}
    assert out.nodes["gray_save"].inputs == {"image": "gray_small.image"}
    assert {out.nodes[n].meta["group"] for n in ("gray_gray", "gray_small", "gray_save")} == {"gray"}
    assert all("group" not in out.nodes[n].meta for n in host.nodes)
    validate(out, catalog)


def test_binding_a_piece_output_leaves_the_unread_node_out(catalog) -> None:
    host, piece = load_template("txt2img"), load_template("img2img")
    out = insert(host, piece, prefix="refine", bind={"load.image": "decode.image"}, drop=["save"])
    assert "refine_load" not in out.nodes and "refine_save" not in out.nodes
    assert out.nodes["refine_resize"].inputs == {"image": "decode.image"}
    validate(out, catalog)


def test_binding_a_generator_output_leaves_out_what_only_fed_it() -> None:
    host = load_template("txt2img")
    piece = load_template("hires_fix")  # its upscale/refine/decode/save read base.latent
    out = insert(host, piece, prefix="hr", bind={"base.latent": "denoise.latent"})
    assert {"hr_base", "hr_latent"}.isdisjoint(out.nodes)  # only fed the bound-away sampler
    assert "hr_cond" in out.nodes  # still read by hr_refine
    assert out.nodes["hr_upscale"].inputs == {"latent": "denoise.latent"}


def test_id_clashes_are_structured_errors() -> None:
    host = load_template("txt2img")
    once = insert(host, host, prefix="a")
    with pytest.raises(GraphValidationError) as exc:
        insert(once, host, prefix="a")
    errors = _errors(exc)
    assert len(errors) == len(host.nodes)  # every clash reported, once
    assert ("id_clash", "a_denoise", "id") in errors
    assert "already in the host" in exc.value.errors[0].message
    with pytest.raises(GraphValidationError) as exc:
        insert(host, host, prefix="9lives")
    assert _errors(exc) == [("bad_prefix", None, "prefix")]


def test_binding_errors_are_collected_and_name_the_field() -> None:
    host, piece = load_template("txt2img"), _detail_piece()
    with pytest.raises(GraphValidationError) as exc:
        insert(host, piece, prefix="p", bind={"src.image": "nowhere.image", "ghost.image": "decode.image",
                                              "bad": "decode.image"})
    errors = exc.value.to_dict()["errors"]
    assert [(e["type"], e["field"]) for e in errors] == [
        ("binding", "bind.src.image"), ("binding", "bind.ghost.image"), ("binding", "bind.bad")]
    assert "names no node 'nowhere'" in errors[0]["message"] and errors[0]["value"] == "nowhere.image"
    assert "open inputs (src.image)" in errors[1]["message"]
    with pytest.raises(GraphValidationError) as exc:
        insert(host, piece, prefix="p")  # the open input is neither bound nor a host node
    assert _errors(exc) == [("binding", None, "bind.src.image")]
    with pytest.raises(GraphValidationError) as exc:
        insert(host, piece, prefix="p", bind={"src.image": "decode.image"}, drop=["gray", "ghost"])
    assert [e.message for e in exc.value.errors] == [
        "drop names no piece node 'ghost'",
        "cannot drop 'gray': small still read it (bind its outputs, or drop them too)"]


def test_replace_node_rewires_readers_and_checks_outputs(catalog) -> None:
    host = load_template("txt2img")
    piece = Graph.from_dict({"nodes": {
        "small": {"block": "sd.empty_latent", "params": {"width": 32, "height": 32}},
        "up": {"block": "sd.latent_upscale", "inputs": {"latent": "small.latent"},
               "params": {"scale": 2.0}}}})
    out = replace_node(host, "latent", piece, prefix="big", outputs={"latent": "up.latent"})
    assert "latent" not in out.nodes and out.nodes["denoise"].inputs["latent"] == "big_up.latent"
    validate(out, catalog)
    with pytest.raises(GraphValidationError) as exc:
        replace_node(host, "latent", piece, prefix="big", outputs={})
    assert _errors(exc) == [("binding", "latent", "outputs.latent")]
    with pytest.raises(GraphValidationError) as exc:
        replace_node(host, "ghost", piece, prefix="big")
    assert _errors(exc) == [("binding", None, "node")]
    with pytest.raises(GraphValidationError) as exc:
        replace_node(host, "latent", piece, prefix="big", outputs={"latent": "nope.latent"},
                     bind={"small.latent": "latent.latent"})
    assert {e[2] for e in _errors(exc)} == {"outputs.latent", "bind.small.latent"}


def test_round_trips() -> None:
    host, piece = load_template("txt2img"), _detail_piece()
    out = insert(host, piece, prefix="g", bind={"src.image": "decode.image"})
    back, again = extract(out, "g")
    assert back == host
    assert again.nodes["gray"].inputs == {"image": "decode.image"}  # the bound input, now open
    assert insert(back, again, prefix="g") == out
    assert Graph.from_json(out.to_json()) == out  # groups survive JSON
    # nested: a spliced graph spliced again keeps the inner groups under the outer prefix
    twice = insert(Graph(), out, prefix="outer")
    assert twice.nodes["outer_g_gray"].meta["group"] == "outer_g"
    host2, inner = extract(twice, "outer")
    assert host2 == Graph() and inner == Graph(nodes=out.nodes)  # graph meta stays with the host
    with pytest.raises(GraphValidationError) as exc:
        extract(insert(out, Graph.from_dict({"nodes": {"x": {"block": "image.grayscale",
                                                               "inputs": {"image": "g_gray.image"}}}}),
                       prefix="h"), "g")
    assert _errors(exc) == [("binding", "h_x", "inputs")]


def test_combine_conditions_joins_two_branches_in_one_sampler(catalog) -> None:
    a = load_template("txt2img")
    b = load_template("txt2img")
    b.nodes["cond"].params["prompt"] = "snow"
    assert find_sampler(a) == "denoise" and set(condition_branch(a, "denoise").nodes) == {"cond"}
    out = combine_conditions(a, b, prefix="b", params={"prompts": "average"})
    assert set(out.nodes) == set(a.nodes) | {"b_cond", "b_combine"}
    assert out.nodes["b_combine"].inputs == {"conds": ["cond.cond", "b_cond.cond"]}
    assert out.nodes["b_combine"].params == {"prompts": "average"}
    assert out.nodes["denoise"].inputs["cond"] == "b_combine.cond"
    assert a == load_template("txt2img")
    validate(out, catalog)
    with pytest.raises(GraphValidationError) as exc:
        combine_conditions(a, Graph(), prefix="b")
    assert _errors(exc) == [("binding", None, "inputs.cond")]
    with pytest.raises(GraphValidationError) as exc:
        combine_conditions(out, b, prefix="b")
    assert ("id_clash", "b_cond", "id") in _errors(exc)
