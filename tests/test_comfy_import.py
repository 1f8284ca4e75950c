"""Importing ComfyUI workflows: formats, node mapping, problems, PNGs, plugin mappings, export.

The fixtures in tests/data/comfy are hand-written in the shapes ComfyUI writes (see the
README there for what each one follows).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from graphs import GraphValidationError, check
from graphs.catalog import BlockSpec, PortSpec
from graphs.comfy import (
    ComfyMapping,
    export_api,
    import_result,
    import_workflow,
    is_error,
    parse_model_map,
    read_workflow,
)
from graphs.comfy.samplers import map_sampler
from orchestrator.catalog import Catalog
from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

DATA = Path(__file__).parent / "data" / "comfy"
MODELS = {"v1-5-pruned-emaonly-fp16": "tiny-sd", "dreamshaper_8": "tiny-sd",
          "anything-v3-fp16-pruned": "tiny-sd", "v2-1_768-ema-pruned": "tiny-sd",
          "realisticVisionV51_v51VAE": "tiny-sd"}
FIXTURES = ["txt2img_api", "txt2img_ui", "img2img_api", "img2img_ui", "inpaint_ui", "hires_fix_api",
            "lora_chain_ui"]


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def imported(name: str, catalog, **kw):
    kw.setdefault("model_map", MODELS)
    kw.setdefault("extra_mappings", COMFY_MAPPINGS)
    return import_result(DATA / f"{name}.json", catalog=catalog, **kw)


def errors(result) -> list[dict]:
    return [p.to_dict() for p in result.problems if is_error(p)]


# -- formats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["txt2img", "img2img"])
def test_api_and_ui_formats_of_one_workflow_import_to_the_same_graph(name, catalog):
    api, ui = imported(f"{name}_api", catalog), imported(f"{name}_ui", catalog)
    assert (api.format, ui.format) == ("api", "ui")
    assert api.graph == ui.graph
    assert errors(api) == errors(ui) == []


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_validates_against_the_real_catalog(name, catalog):
    result = imported(name, catalog)
    assert check(result.graph, catalog) == []
    assert errors(result) == []


def test_default_workflow_maps_to_readable_nodes(catalog):
    graph = imported("txt2img_api", catalog).graph
    assert list(graph.nodes) == ["clip_text_encode_6", "empty_latent_image_5", "ksampler_3", "vae_decode_8",
                                 "save_image_9"]
    encode, sampler = graph.nodes["clip_text_encode_6"], graph.nodes["ksampler_3"]
    assert encode.block == "sd.encode_prompt"
    assert encode.params == {
        "model": "tiny-sd", "negative_prompt": "text, watermark",
        "prompt": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"}
    assert encode.meta["comfy"] == {"id": "6", "class_type": "CLIPTextEncode", "negative_id": "7"}
    assert sampler.block == "sd.ksampler"  # ComfyUI's own sampling, natively
    assert sampler.inputs == {"cond": "clip_text_encode_6.cond", "latent": "empty_latent_image_5.latent"}
    assert sampler.params == {"model": "tiny-sd", "steps": 20, "cfg": 8.0, "sampler": "euler",
                              "scheduler": "normal", "denoise": 1.0, "seed": 156680208700286}
    assert graph.nodes["empty_latent_image_5"].params == {"model": "tiny-sd", "width": 512, "height": 512,
                                                          "batch": 1}
    assert graph.nodes["save_image_9"].params == {"name": "ComfyUI"}
    assert graph.meta["comfy_models"] == {"v1-5-pruned-emaonly-fp16.safetensors": "tiny-sd"}


def test_prompt_request_body_and_json_text_are_read_too():
    prompt = load("txt2img_api")
    graph, _ = import_workflow(prompt, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert import_workflow({"prompt": prompt, "client_id": "abc"}, model_map=MODELS,
                           extra_mappings=COMFY_MAPPINGS)[0] == graph
    assert import_workflow(json.dumps(prompt), model_map=MODELS, extra_mappings=COMFY_MAPPINGS)[0] == graph
    assert import_workflow(json.dumps(prompt).encode(), model_map=MODELS,
                           extra_mappings=COMFY_MAPPINGS)[0] == graph


def test_ui_widgets_follow_class_order_and_skip_control_after_generate():
    ui = load("txt2img_ui")
    sampler = next(n for n in ui["nodes"] if n["type"] == "KSampler")
    sampler["widgets_values"][1] = True  # ComfyUI's own default graph stores the control value as a bool
    nodes, fmt, origin, problems = read_workflow(ui, extra_mappings=COMFY_MAPPINGS)
    assert (fmt, origin, problems) == ("ui", "json", [])
    assert nodes["3"].inputs == {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler",
                                 "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
                                 "negative": ["7", 0], "latent_image": ["5", 0]}


def test_reroutes_primitives_notes_and_muted_nodes_in_the_ui_format():
    nodes, *_ = read_workflow(load("img2img_ui"), extra_mappings=COMFY_MAPPINGS)
    # no Reroute, PrimitiveNode, Note or muted PreviewImage
    assert set(nodes) == {"3", "4", "6", "7", "8", "9", "10", "12", "14"}
    assert nodes["12"].inputs["vae"] == nodes["8"].inputs["vae"] == ["4", 2]  # through the reroute
    assert nodes["3"].inputs["seed"] == 280823642470253  # from the primitive node


def test_bypassed_lora_is_skipped_and_muted_branch_left_out(catalog):
    result = imported("lora_chain_ui", catalog)
    graph = result.graph
    assert [n.block for n in graph.nodes.values()].count("image.save") == 1  # the muted 2x branch is gone
    sampler, encode = graph.nodes["ksampler_3"], graph.nodes["clip_text_encode_6"]
    assert sampler.params["model"] == {"name": "tiny-sd", "loras": [
        {"path": "styles/ghibli_style_offset.safetensors", "weight": 0.8},
        {"path": "epi_noiseoffset2.safetensors", "weight": 0.6}]}  # add_detail (bypassed) is not there
    assert encode.params["model"]["loras"] == [
        {"path": "styles/ghibli_style_offset.safetensors", "weight": 0.8},
        {"path": "epi_noiseoffset2.safetensors", "weight": 0.4}]  # strength_clip for the text encoder
    assert encode.params["model"]["embeddings"] == [{"path": "EasyNegative", "token": "EasyNegative"}]
    assert encode.params["negative_prompt"] == "EasyNegative, lowres, blurry"
    assert graph.nodes["save_image_9"].params["name"] == "lora_test"
    assert (sampler.params["sampler"], sampler.params["scheduler"]) == ("dpmpp_2m", "karras")
    unmapped = sorted(p.details["value"] for p in result.problems if p.type == "unmapped_model")
    assert unmapped == ["EasyNegative", "epi_noiseoffset2.safetensors",
                        "styles/ghibli_style_offset.safetensors"]
    assert all(p.details["severity"] == "warning" for p in result.problems)


def test_inpaint_with_vae_encode_for_inpaint_becomes_the_native_pair(catalog):
    result = imported("inpaint_ui", catalog)
    nodes = result.graph.nodes
    sampler, enc = nodes["ksampler_3"], nodes["vae_encode_for_inpaint_26"]
    assert (sampler.block, enc.block) == ("sd.ksampler", "sd.vae_encode_for_inpaint")
    assert enc.inputs == {"image": "load_image_20.image", "mask": "load_image_20_mask.mask"}
    assert enc.params == {"model": "tiny-sd", "grow_mask_by": 6}
    assert sampler.inputs == {"cond": "clip_text_encode_6.cond", "latent": "vae_encode_for_inpaint_26.latent",
                              "mask": "vae_encode_for_inpaint_26.mask"}
    assert (sampler.params["sampler"], sampler.params["scheduler"]) == ("uni_pc_bh2", "normal")
    assert nodes["load_image_20_mask"].params == {"path": "yosemite_inpaint_example.png", "channel": "alpha",
                                                  "invert": True}
    assert nodes["clip_text_encode_6"].params["clip_skip"] == 1  # CLIPSetLastLayer -2
    assert nodes["save_image_9"].params["name"] == "yosemite"
    # the separate VAE is not in the model map: decoding falls back to the checkpoint's, with a warning
    assert nodes["vae_decode_8"].params["model"] == "tiny-sd"
    assert [(p.type, p.node, p.field) for p in result.problems] == [("approximated", "30", "vae_name")]


def test_hires_fix_shares_one_prompt_encoding_and_scales_the_latent(catalog):
    result = imported("hires_fix_api", catalog)
    nodes = result.graph.nodes
    assert [n.block for n in nodes.values()].count("sd.encode_prompt") == 1
    assert nodes["latent_upscale_10"].params == {"method": "nearest-exact", "width": 1152, "height": 1152,
                                                 "crop": "disabled"}  # the exact size, as ComfyUI
    second = nodes["ksampler_11"]
    assert second.inputs == {"cond": "clip_text_encode_6.cond", "latent": "latent_upscale_10.latent"}
    assert second.params["denoise"] == 0.5 and second.params["sampler"] == "dpmpp_2m"
    assert [nodes[k].params["name"] for k in ("save_image_9", "save_image_12")] == ["ComfyUI", "ComfyUI_2"]
    assert result.problems == []  # dpmpp_sde (node 3) runs as ComfyUI's, no longer approximated


# -- models and samplers -------------------------------------------------------------------------


def test_model_map_matches_full_names_file_names_and_stems():
    prompt = load("txt2img_api")
    for key in ("v1-5-pruned-emaonly-fp16.safetensors", "v1-5-pruned-emaonly-fp16",
                "checkpoints/v1-5-pruned-emaonly-fp16.safetensors"):
        graph, problems = import_workflow(prompt, model_map={key: "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
        assert graph.nodes["ksampler_3"].params["model"] == "tiny-sd", key
        assert problems == []
    graph, problems = import_workflow(prompt, extra_mappings=COMFY_MAPPINGS)
    assert graph.nodes["ksampler_3"].params["model"] == "v1-5-pruned-emaonly-fp16.safetensors"
    [p] = problems
    assert p.to_dict() | {"message": ""} == {
        "type": "unmapped_model", "message": "", "node": "4", "field": "ckpt_name", "severity": "warning",
        "value": "v1-5-pruned-emaonly-fp16.safetensors", "comfy_class": "CheckpointLoaderSimple"}


def test_parse_model_map():
    assert parse_model_map(["a.safetensors=tiny-sd", "b = c"]) == {"a.safetensors": "tiny-sd", "b": "c"}
    with pytest.raises(ValueError, match="COMFY_NAME=OUR_NAME"):
        parse_model_map(["nothing"])


@pytest.mark.parametrize(("sampler", "scheduler", "ours", "exact"), [
    ("euler", "normal", "euler", True),
    ("euler_ancestral", "normal", "euler_a", True),
    ("dpmpp_2m", "karras", "dpmpp_2m_karras", True),
    ("dpmpp_2m", "simple", "dpmpp_2m", True),
    ("ddim", "ddim_uniform", "ddim", True),
    ("uni_pc_bh2", "normal", "unipc", True),
    ("lcm", "sgm_uniform", "lcm", True),
    ("euler", "karras", "euler", False),
    ("dpmpp_2m_sde_gpu", "karras", "dpmpp_2m_karras", False),
    ("dpm_2_ancestral", "normal", "euler_a", False),
    ("a_custom_sampler", "normal", "default", False),
])
def test_sampler_and_scheduler_names_map_to_ours(sampler, scheduler, ours, exact, catalog):
    available = catalog["sd.denoise"].params_schema()["properties"]["sampler"]["enum"]
    got, why = map_sampler(sampler, scheduler, available)
    assert got == ours and (why is None) == exact


def test_ksampler_advanced_maps_its_step_window_and_noise_control():
    prompt = load("txt2img_api")
    prompt["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": 5, "steps": 30, "cfg": 7, "sampler_name": "euler",
        "scheduler": "normal", "start_at_step": 20, "end_at_step": 10000,
        "return_with_leftover_noise": "disable",
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}}
    graph, problems = import_workflow(prompt, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    params = graph.nodes["ksampler_advanced_3"].params
    assert graph.nodes["ksampler_advanced_3"].block == "sd.ksampler"
    assert params["seed"] == 5 and params["steps"] == 30 and params["start_step"] == 20
    assert problems == []
    prompt["3"]["inputs"].update(end_at_step=25, return_with_leftover_noise="enable", add_noise="disable")
    graph, problems = import_workflow(prompt, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    params = graph.nodes["ksampler_advanced_3"].params
    assert (params["end_step"], params["return_with_leftover_noise"], params["add_noise"]) == \
        (25, True, False)
    assert problems == []


# -- problems ----------------------------------------------------------------------------------


def test_unsupported_nodes_are_reported_one_each_and_bypassed(catalog):
    result = imported("custom_nodes_api", catalog)
    unsupported = [(p.node, p.field, p.details["value"]) for p in result.problems
                   if p.type == "unsupported_node"]
    assert unsupported == [
        ("21", "class_type", "FreeU_V2"), ("23", "class_type", "UltimateSDUpscale"),
        ("25", "class_type", "ShowText|pysssss"), ("26", "class_type", "Model Hash Reader")]
    assert all(p.details["severity"] == "error" for p in result.problems if p.type == "unsupported_node")
    graph = result.graph
    # the ControlNet maps to sd.controlnet; FreeU is passed through: the sampler reads the model
    assert graph.nodes["ksampler_3"].inputs["cond"] == "control_net_apply_advanced_20.cond"
    assert graph.nodes["control_net_apply_advanced_20"].block == "sd.controlnet"
    assert graph.nodes["ksampler_3"].params["model"] == "tiny-sd"
    # the upscaler is passed through: the save reads the decoded image
    assert graph.nodes["save_image_24"].inputs == {"image": "vae_decode_8.image"}
    assert "image.canny" in {n.block for n in graph.nodes.values()}
    assert check(graph, catalog) == []


def test_a_node_that_cannot_be_built_is_reported_and_left_out():
    prompt = load("txt2img_api")
    del prompt["3"]["inputs"]["latent_image"]
    graph, problems = import_workflow(prompt, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert [(p.type, p.node, p.field) for p in problems] == [
        ("dropped_node", "3", "latent_image"), ("dropped_node", "8", "samples"),
        ("dropped_node", "9", "images")]
    assert graph.nodes == {}


def test_an_unmapped_output_node_saves_its_image_instead():
    prompt = load("txt2img_api")
    prompt["9"] = {"class_type": "Image Save",
                   "inputs": {"filename_prefix": "out/%date%/fox", "images": ["8", 0]}}
    graph, problems = import_workflow(prompt, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert [(p.type, p.node) for p in problems] == [("unsupported_node", "9"), ("approximated", "9")]
    assert graph.nodes["image_save_9"].params == {"name": "fox"}
    assert graph.nodes["image_save_9"].inputs == {"image": "vae_decode_8.image"}


@pytest.mark.parametrize(("source", "match"), [
    ({"nodes": "nope"}, "not a ComfyUI workflow"),
    ({}, "empty"),
    ({"format": "orchestrator.graph/1", "nodes": {}}, "already an orchestrator graph"),
    ("{not json", "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n", "no ComfyUI workflow"),
])
def test_what_is_not_a_workflow_raises_format_errors(source, match):
    with pytest.raises(GraphValidationError, match=match) as info:
        import_workflow(source, extra_mappings=COMFY_MAPPINGS)
    assert info.value.errors[0].type == "format"


def test_a_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(GraphValidationError, match="cannot read"):
        import_workflow(tmp_path / "nowhere.json", extra_mappings=COMFY_MAPPINGS)


# -- PNGs ----------------------------------------------------------------------------------------


def png_with(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_png_chunks_prompt_wins_over_workflow_and_either_one_is_enough(tmp_path, catalog):
    api, ui = (DATA / "txt2img_api.json").read_text(), (DATA / "txt2img_ui.json").read_text()
    expected = imported("txt2img_api", catalog).graph
    both = tmp_path / "ComfyUI_00001_.png"
    both.write_bytes(png_with(prompt=api, workflow=ui))
    result = import_result(both, catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert (result.origin, result.format, result.graph) == ("png:prompt", "api", expected)
    only_ui = import_result(png_with(workflow=ui), catalog=catalog, model_map=MODELS,
                            extra_mappings=COMFY_MAPPINGS)
    assert (only_ui.origin, only_ui.format, only_ui.graph) == ("png:workflow", "ui", expected)


def test_png_with_utf8_itxt_and_compressed_text():
    ui = load("txt2img_ui")
    next(n for n in ui["nodes"] if n["id"] == 6)["widgets_values"] = ["a fox in the snow, 雪の中の狐"]
    info = PngImagePlugin.PngInfo()
    info.add_itxt("workflow", json.dumps(ui, ensure_ascii=False), zip=True)
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG", pnginfo=info)
    graph, _ = import_workflow(out.getvalue(), model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert graph.nodes["clip_text_encode_6"].params["prompt"] == "a fox in the snow, 雪の中の狐"


def test_an_orchestrator_png_gives_its_own_graph():
    graph_json = '{"format": "orchestrator.graph/1", "nodes": {"s": {"block": "image.solid"}}}'
    result = import_result(png_with(prompt="{}", **{"orchestrator.graph": graph_json}),
                           extra_mappings=COMFY_MAPPINGS)
    assert (result.origin, result.format) == ("png:orchestrator", "orchestrator")
    assert list(result.graph.nodes) == ["s"]
    with pytest.raises(GraphValidationError, match="not valid JSON"):
        import_workflow(png_with(**{"orchestrator.graph": "{nope"}), extra_mappings=COMFY_MAPPINGS)


# -- mappings the catalog or a plugin adds ------------------------------------------------------


def _spec(block_id: str, inputs: list[PortSpec], outputs: list[PortSpec], params: dict) -> BlockSpec:
    from pydantic import create_model

    model = create_model(block_id.replace(".", "_"), **{k: (type(v), v) for k, v in params.items()})
    return BlockSpec(block_id, "0.1.0", inputs=tuple(inputs), outputs=tuple(outputs), params_model=model)


def test_controlnet_and_area_nodes_map_when_the_catalog_has_their_blocks(catalog):
    cond = PortSpec("cond", "CONDITIONING")
    extended = dict(catalog) | {
        "sd.controlnet": _spec("sd.controlnet", [cond, PortSpec("control_image", "IMAGE")],
                                     [cond], {"controlnet": "", "scale": 1.0, "start": 0.0, "end": 1.0}),
        "sd.cond_combine": _spec("sd.cond_combine", [PortSpec("conds", "CONDITIONING", multiple=True)],
                                 [cond], {}),
        "cond.set_area": _spec("cond.set_area", [cond], [cond],
                               {"x": 0, "y": 0, "width": 64, "height": 64, "strength": 1.0}),
    }
    prompt = load("custom_nodes_api")
    prompt["30"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a red leaf", "clip": ["4", 1]}}
    prompt["31"] = {"class_type": "ConditioningSetArea", "inputs": {
        "width": 256, "height": 512, "x": 256, "y": 0, "strength": 0.8, "conditioning": ["30", 0]}}
    prompt["32"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0],
                                                                     "conditioning_2": ["31", 0]}}
    prompt["20"]["inputs"]["positive"] = ["32", 0]
    result = import_result(prompt, catalog=extended, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    unsupported = {p.details["value"] for p in result.problems if p.type == "unsupported_node"}
    assert unsupported == {"FreeU_V2", "UltimateSDUpscale", "ShowText|pysssss", "Model Hash Reader"}
    nodes = result.graph.nodes
    control = nodes["control_net_apply_advanced_20"]
    assert control.block == "sd.controlnet"
    assert control.inputs == {"cond": "conditioning_combine_32.cond", "control_image": "canny_12.image"}
    assert control.params == {"controlnet": "control_v11p_sd15_canny.pth", "scale": 0.9, "start": 0,
                              "end": 0.8}
    assert nodes["conditioning_combine_32"].inputs == {"conds": ["clip_text_encode_6.cond",
                                                                 "conditioning_set_area_31.cond"]}
    assert nodes["conditioning_set_area_31"].params == {"width": 256, "height": 512, "x": 256, "y": 0,
                                                        "strength": 0.8}
    # each text leaf is paired with the sampler's negative
    assert nodes["clip_text_encode_30"].params["negative_prompt"] == "lowres, bad anatomy"
    assert nodes["ksampler_3"].inputs["cond"] == "control_net_apply_advanced_20.cond"
    assert nodes["canny_12"].params == {"low": 102.0, "high": 204.0, "blur": 1.0, "l2_gradient": True}
    assert check(result.graph, extended) == []


def test_extra_mappings_import_custom_nodes(catalog):
    prompt = load("txt2img_api")
    prompt["10"] = {"class_type": "Image Sharpen Plus", "inputs": {"amount": 0.7, "image": ["8", 0]}}
    prompt["9"]["inputs"]["images"] = ["10", 0]
    mapping = {"class_type": "Image Sharpen Plus", "block": "image.blend", "inputs": {"image": "a"},
               "params": {"opacity": "amount", "mode": lambda w: "overlay"}, "outputs": ["image"]}
    graph, problems = import_workflow(prompt, catalog=catalog, model_map=MODELS,
                                      extra_mappings=builtin_comfy_mappings([mapping]))
    sharpen = graph.nodes["image_sharpen_plus_10"]
    assert (sharpen.block, sharpen.inputs, sharpen.params) == (
        "image.blend", {"a": "vae_decode_8.image"}, {"opacity": 0.7, "mode": "overlay"})
    assert [p.type for p in problems] == ["missing_input"]  # the mapping forgot input b: validation says so
    bad = import_workflow(prompt, model_map=MODELS, extra_mappings=builtin_comfy_mappings(
        [{"class_type": "X", "blok": "y"}, mapping, mapping]))[1]
    assert [(p.type, p.details["severity"]) for p in bad] == [("bad_mapping", "error"),
                                                              ("bad_mapping", "warning")]


def test_a_mapping_needs_a_block_or_a_function():
    with pytest.raises(ValueError, match="give a block or a convert function"):
        ComfyMapping("Foo")


# -- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["txt2img_api", "img2img_api", "inpaint_ui", "hires_fix_api",
                                  "lora_chain_ui"])
def test_import_export_import_gives_the_same_graph(name, catalog):
    graph = imported(name, catalog).graph
    prompt, problems = export_api(graph)
    assert problems == []
    again = import_result(prompt, catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    assert again.graph == graph


def _structure(prompt: dict) -> list[tuple]:
    """Each node as (class, its linked inputs as (name, source class, slot)), sorted: ids ignored."""
    rename: dict[str, str] = {}
    return sorted((rename.get(n["class_type"], n["class_type"]),
                   tuple(sorted((k, rename.get(prompt[v[0]]["class_type"], prompt[v[0]]["class_type"]), v[1])
                                for k, v in n["inputs"].items() if isinstance(v, list))))
                  for n in prompt.values())


@pytest.mark.parametrize("name", ["txt2img_api", "img2img_api", "hires_fix_api"])
def test_api_to_ours_to_api_keeps_the_structure_and_the_ids(name, catalog):
    original = load(name)
    prompt, _ = export_api(imported(name, catalog).graph)
    assert _structure(prompt) == _structure(original)
    assert {k for k, n in prompt.items() if n["class_type"] != "CheckpointLoaderSimple"} == \
        {k for k, n in original.items() if n["class_type"] != "CheckpointLoaderSimple"}
    sampler = prompt["3"]["inputs"]
    assert sampler["seed"] == original["3"]["inputs"]["seed"]
    assert prompt[sampler["model"][0]]["inputs"]["ckpt_name"] == \
        original[original["3"]["inputs"]["model"][0]]["inputs"]["ckpt_name"]


def test_blocks_without_a_comfy_equivalent_are_reported_on_export():
    from graphs import GraphBuilder

    b = GraphBuilder()
    img = b.add("image.solid", width=8, height=8)
    b.add("image.save", id="save", image=img.image, name="x")
    prompt, problems = export_api(b.build())
    assert [(p.type, p.node) for p in problems] == [("unexportable_block", "solid"),
                                                     ("unexportable_block", "save")]
    assert prompt == {}


def test_zeroed_negative_tiled_vae_and_classes_without_a_block_yet(catalog):
    prompt = load("txt2img_api")
    prompt["7"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["6", 0]}}
    prompt["8"]["class_type"] = "VAEDecodeTiled"
    prompt["8"]["inputs"].update(tile_size=512, overlap=64)
    prompt["20"] = {"class_type": "LatentFlip", "inputs": {"flip_method": "x-axis: vertically",
                                                           "samples": ["5", 0]}}
    prompt["3"]["inputs"]["latent_image"] = ["20", 0]
    prompt["21"] = {"class_type": "ImageScaleToTotalPixels", "inputs": {
        "upscale_method": "lanczos", "megapixels": 1.0, "image": ["8", 0]}}
    prompt["9"]["inputs"]["images"] = ["21", 0]
    lacking = Catalog()  # a catalog without the blocks of LatentFlip and ImageScaleToTotalPixels
    for block_id in catalog:
        if block_id not in ("sd.latent_flip", "image.scale_total_pixels"):
            lacking.add(catalog.block_class(block_id), catalog[block_id].plugin)
    catalog = lacking
    result = import_result(prompt, catalog=catalog, model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    found = [(p.type, p.node, p.details["severity"]) for p in result.problems]
    assert found == [("unsupported_node", "20", "error"), ("unsupported_node", "21", "error")]
    assert "needs block 'image.scale_total_pixels', which the catalog does not" in result.problems[1].message
    nodes = result.graph.nodes
    assert nodes["clip_text_encode_6"].params["negative_prompt"] is None
    zero = nodes["conditioning_zero_out_7"]  # the negative is zeros, as ComfyUI's
    assert (zero.block, zero.params, zero.inputs) == ("cond.zero_out", {"side": "negative"},
                                                      {"cond": "clip_text_encode_6.cond"})
    assert nodes["ksampler_3"].inputs["cond"] == "conditioning_zero_out_7.cond"
    assert nodes["ksampler_3"].inputs["latent"] == "empty_latent_image_5.latent"  # the flip passed through
    assert nodes["vae_decode_tiled_8"].block == "sd.vae_decode"
    assert nodes["save_image_9"].inputs == {"image": "vae_decode_tiled_8.image"}
    assert check(result.graph, catalog) == []
