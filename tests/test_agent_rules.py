"""Rule checks and fixes: size and aspect, tiling beyond native size, negative prompts, models."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import make_catalog, make_templates, txt2img_doc

from agents.context import ModelInfo, PlanningContext, models_from_entries
from agents.request import parse_request
from agents.rules import check_rules, fix_rules, target_size
from agents.sizes import node_sizes, output_size, set_output_size
from graphs import Graph


def ctx(**models: int) -> PlanningContext:
    known = {n: ModelInfo(n, native) for n, native in models.items()} or None
    return PlanningContext.build(make_catalog(), make_templates(), models=known)


def graph(**changes) -> Graph:
    return Graph.from_dict(txt2img_doc(**changes))


def rules_of(errors) -> set[str]:
    return {e["rule"] for e in errors}


def test_a_fitting_graph_passes() -> None:
    errors, warnings = check_rules(graph(cond={"prompt": "a red fox"}), parse_request("a red fox"), ctx())
    assert errors == [] and warnings == []


def test_aspect_and_explicit_size_are_checked_and_fixed() -> None:
    c = ctx()
    g = graph(cond={"prompt": "a wide lake"})
    req = parse_request("a wide panorama of a lake")
    assert rules_of(check_rules(g, req, c)[0]) >= {"aspect"}
    fixed, fixes = fix_rules(g, req, c)
    assert output_size(fixed) == (256, 64) and {f["rule"] for f in fixes} >= {"size", "tiling"}
    assert check_rules(fixed, req, c)[0] == []
    req = parse_request("a red fox, 96x64")
    fixed, _ = fix_rules(graph(cond={"prompt": "a red fox"}), req, c)
    assert output_size(fixed) == (96, 64)


def test_large_images_need_more_than_native_size() -> None:
    req = parse_request("a huge image of a red fox")
    c = ctx()
    assert "size" in rules_of(check_rules(graph(cond={"prompt": "a red fox poster"}), req, c)[0])
    assert target_size(req, 64) == (128, 128)


def test_tiling_is_required_beyond_native_size_only_where_the_block_tiles() -> None:
    c = ctx()
    g = graph(cond={"prompt": "a red fox"}, latent={"width": 192, "height": 64})
    errors, _ = check_rules(g, parse_request("a red fox"), c)
    tiled = {e["node"] for e in errors if e["rule"] == "tiling"}
    assert tiled == {"denoise", "decode"}  # sd.denoise and sd.vae_decode tile in the test catalog
    fixed, _ = fix_rules(g, parse_request("a red fox"), c)
    assert fixed.nodes["denoise"].tile.size == 64 and fixed.nodes["denoise"].tile.overlap == 16
    assert g.nodes["denoise"].tile is None  # the input is untouched
    # a bigger native size needs no tiles
    assert check_rules(g, parse_request("a red fox"), ctx(**{"tiny-sd": 512}))[0] == []


def test_a_gpu_block_that_cannot_tile_is_a_warning() -> None:
    g = make_templates()["inpaint"].graph.model_copy(deep=True)
    g.nodes["cond"].params["prompt"] = "a bench"
    req = parse_request("a bench")
    req.images = {"image": "input.png", "mask": "mask.png"}
    assert check_rules(g, req, ctx()) == ([], [])  # input size unknown
    g.nodes["resize"] = Graph.from_dict({"nodes": {"r": {
        "block": "image.resize", "inputs": {"image": "load.image"},
        "params": {"width": 128, "height": 128}}}}).nodes["r"]
    g.nodes["denoise"].inputs["image"] = "resize.image"
    errors, warnings = check_rules(g, req, ctx())
    assert [(e["node"], e["rule"]) for e in errors] == [("decode", "tiling")]  # sd.vae_decode tiles
    assert [(w["node"], w["rule"]) for w in warnings] == [("denoise", "tiling")]  # sd.inpaint does not


def test_people_need_a_negative_prompt_and_avoided_things_go_in_it() -> None:
    c = ctx()
    req = parse_request("a portrait of a sailor, without hats")
    g = graph(cond={"prompt": "a portrait of a sailor", "negative_prompt": ""})
    assert rules_of(check_rules(g, req, c)[0]) == {"negative_prompt"}
    fixed, _ = fix_rules(g, req, c)
    negative = fixed.nodes["cond"].params["negative_prompt"]
    assert "anatomy" in negative and "hats" in negative
    assert check_rules(fixed, req, c)[0] == []


def test_model_references_must_name_known_models() -> None:
    c = ctx()
    g = graph(cond={"prompt": "a red fox", "model": {"name": "nope", "loras": [{"path": "x"}]}},
              denoise={"model": "nope"})
    errors, _ = check_rules(g, parse_request("a red fox"), c)
    assert {(e["node"], e["rule"]) for e in errors} == {("cond", "model"), ("denoise", "model")}
    fixed, _ = fix_rules(g, parse_request("a red fox"), c)
    assert fixed.nodes["cond"].params["model"] == {"name": "tiny-sd", "loras": [{"path": "x"}]}
    assert fixed.nodes["denoise"].params["model"] == "tiny-sd"


def test_the_prompt_must_reach_a_prompt_node() -> None:
    c = ctx()
    g = graph()  # the template's own prompt "a red fox"
    req = parse_request("a lighthouse on a cliff")
    assert rules_of(check_rules(g, req, c)[0]) == {"prompt"}
    assert fix_rules(g, req, c)[0].nodes["cond"].params["prompt"] == "a lighthouse on a cliff"


def test_sizes_follow_upscales_and_resizing_keeps_the_factor() -> None:
    hires = make_templates()["hires_fix"].graph
    assert node_sizes(hires)["denoise"] == (128, 128)
    assert output_size(hires) == (128, 128)
    resized = set_output_size(hires, 256, 128)
    assert (resized.nodes["latent"].params["width"], resized.nodes["latent"].params["height"]) == (128, 64)


def test_models_from_config_entries() -> None:
    known = models_from_entries([{"name": "dream", "family": "sdxl"}, {"name": "x", "native_size": 768},
                                 {"source": "nameless"}])
    assert known["dream"].native == 1024 and known["x"].native == 768 and "tiny-sd" in known


def test_an_llm_cannot_read_other_files_or_save_more_images() -> None:
    g = make_templates()["img2img"].graph.model_copy(deep=True)
    g.nodes["cond"].params["prompt"] = "a harbour"
    g.nodes["load"].params["path"] = "/etc/passwd"
    g.nodes["save2"] = Graph.from_dict({"nodes": {"s": {
        "block": "image.save", "inputs": {"image": "decode.image"}, "params": {"name": "x"}}}}).nodes["s"]
    req = parse_request("a harbour")
    errors, _ = check_rules(g, req, ctx())
    assert {(e["rule"], e["node"]) for e in errors} >= {("input", "load"), ("outputs", "save2")}
    assert next(e for e in errors if e["rule"] == "input")["role"] == "image"
    fixed, _ = fix_rules(g, req, ctx())
    assert "save2" not in fixed.nodes  # extra outputs dropped
    assert rules_of(check_rules(fixed, req, ctx())[0]) == {"input"}  # no file given: still an error
    req.images = {"image": "harbour.png"}
    fixed, _ = fix_rules(g, req, ctx())
    assert fixed.nodes["load"].params["path"] == "harbour.png"
    assert check_rules(fixed, req, ctx())[0] == []
