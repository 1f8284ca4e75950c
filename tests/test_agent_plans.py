"""The planner on the user's models, intents, inputs, text and limits (the library's templates).

These plan against the real plugin catalog and the shipped template library; the model
library is a list of model descriptions as ``orchestrator models --json`` gives them, and
one test builds a real single-file SD-1 checkpoint in a model folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agents.context import PlanningContext, models_from_entries
from agents.errors import AgentError
from agents.planner import Planner
from agents.sizes import model_name, output_size
from graphs import validate
from orchestrator.runtime.limits import SizeLimits, check_limits

SD1 = {"name": "dreamy-sd15", "kind": "checkpoint", "family": "sd1", "origin": "folder"}
SDXL = {"name": "juggernaut-xl", "kind": "checkpoint", "family": "sdxl", "origin": "folder"}
INPAINT = {"name": "sd15-inpainting", "kind": "checkpoint", "family": "sd1-inpaint", "origin": "folder"}
LORA = {"name": "styles/ink.safetensors", "kind": "lora", "family": "sd1", "origin": "folder"}
XL_LORA = {"name": "xl_detail.safetensors", "kind": "lora", "family": "sdxl", "origin": "folder"}


@pytest.fixture(scope="module")
def host():
    from orchestrator.plugins import load_plugins

    return load_plugins()


def planner(host, *models: dict, default: str | None = None, limits: SizeLimits | None = None) -> Planner:
    ctx = PlanningContext.build(host.catalog, host.templates, models=models_from_entries(models),
                                default_model=default)
    if limits is not None:
        ctx.limits = lambda g: check_limits(g, limits, host.catalog)
    return Planner(ctx)


def checkpoints(graph) -> set[str]:
    return {model_name(n.params["model"]) for n in graph.nodes.values()
            if n.block.startswith("sd.") and "model" in n.params}


# -- the user's models -----------------------------------------------------------------------------


def test_a_plain_prompt_plans_on_the_users_checkpoint_at_its_native_size(host) -> None:
    plan = planner(host, SD1).plan("a red fox in the snow")
    assert plan.template == "txt2img" and checkpoints(plan.graph) == {"dreamy-sd15"}
    assert output_size(plan.graph) == (512, 512)
    plan = planner(host, SDXL).plan("a red fox in the snow, 16:9")
    assert checkpoints(plan.graph) == {"juggernaut-xl"}
    w, h = output_size(plan.graph)
    assert h == 1024 or (w == 1024 and abs(w / h - 16 / 9) < 0.02 * 16 / 9)
    assert planner(host).plan("a red fox in the snow").graph.nodes["cond"].params["model"] == "tiny-sd"


def test_default_model_then_family_then_variant(host) -> None:
    assert checkpoints(planner(host, SD1, SDXL, default="juggernaut-xl").plan("a red fox").graph) \
        == {"juggernaut-xl"}
    plan = planner(host, SD1, SDXL).plan("a lighthouse", template="sdxl_txt2img")
    assert checkpoints(plan.graph) == {"juggernaut-xl"}  # the template prefers SDXL
    assert plan.trace["models"]["why"].startswith("the best configured checkpoint")
    edit = planner(host, SD1, INPAINT).plan("remove the car from this photo",
                                            images={"image": "in.png", "mask": "m.png"})
    assert edit.template == "inpaint" and checkpoints(edit.graph) == {"sd15-inpainting"}
    plain = planner(host, SD1, INPAINT).plan("a red fox")
    assert checkpoints(plain.graph) == {"dreamy-sd15"}  # an inpainting model only for inpainting


def test_a_named_model_and_lora_tags_resolve_and_leave_the_text(host) -> None:
    plan = planner(host, SD1, SDXL, LORA).plan(
        "a red fox in the snow <lora:styles/ink:0.6>, model: dreamy-sd15")
    ref = plan.graph.nodes["denoise"].params["model"]
    assert ref == {"name": "dreamy-sd15", "loras": [{"path": "styles/ink.safetensors", "weight": 0.6}]}
    assert plan.graph.nodes["cond"].params["prompt"] == "a red fox in the snow"
    plan = planner(host, SD1, SDXL).plan("juggernaut-xl, a castle on a hill")
    assert checkpoints(plan.graph) == {"juggernaut-xl"}
    assert plan.graph.nodes["cond"].params["prompt"] == "a castle on a hill"
    plan = planner(host, SD1).plan("a fox <lora:nothing-here:1>")
    assert plan.graph.nodes["denoise"].params["model"] == "dreamy-sd15"
    assert plan.graph.nodes["cond"].params["prompt"] == "a fox"
    assert any("'nothing-here'" in n and "left out" in n for n in plan.trace["notes"])
    plan = planner(host, SD1, XL_LORA).plan("a fox <lora:xl_detail:1>")
    assert any("is for sdxl" in n for n in plan.trace["notes"])
    plan = planner(host, SD1, SDXL).plan("a red fox in the snow, with the sdxl model")
    assert checkpoints(plan.graph) == {"juggernaut-xl"}
    assert plan.graph.nodes["cond"].params["prompt"] == "a red fox in the snow"
    with pytest.raises(AgentError) as err:
        planner(host, SD1).plan("a fox, model: not-a-model")
    assert err.value.details["value"] == "not-a-model"


def test_a_composition_without_an_auxiliary_model_of_the_family_stays_on_the_builtins(host) -> None:
    plan = planner(host, SD1).plan("a dancer in the same pose as the control image",
                                   images={"control": "pose.png"})
    assert plan.template == "controlnet_guided"
    assert checkpoints(plan.graph) == {"tiny-sd", "tiny-controlnet"}
    assert any("no controlnet for sd1" in n for n in plan.trace["notes"])
    cn = {"name": "control_sd15_openpose.safetensors", "kind": "controlnet", "family": "sd1"}
    plan = planner(host, SD1, cn).plan("a dancer in the same pose as the control image",
                                       images={"control": "pose.png"})
    assert checkpoints(plan.graph) == {"dreamy-sd15", "control_sd15_openpose.safetensors"}


def test_a_single_file_sd1_checkpoint_in_a_model_folder_is_planned_on(tmp_path, monkeypatch, capsys) -> None:
    """The CLI end to end: a real single-file SD-1 checkpoint (the tiny UNet in the original
    layout) in a ComfyUI-layout folder is detected as sd1 and planned at 512 px."""
    import sd_fixtures
    from safetensors.torch import save_file

    from orchestrator.cli.main import main
    from orchestrator.models import ModelRegistry

    folder = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir()).resolve("tiny-sd", build=True).path
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    state = {k: v.contiguous() for k, v in sd_fixtures.to_ldm_checkpoint(folder).items()}
    save_file(state, str(root / "checkpoints" / "my-sd15.safetensors"))
    for key in list(__import__("os").environ):
        if key.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ORCHESTRATOR_MODEL_FILES__ROOTS", str(root))
    out = tmp_path / "graph.json"
    argv = ["--state-dir", str(tmp_path / "state"), "plan", "a red fox in the snow", "-o", str(out)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["template"] == "txt2img"
    nodes = printed["graph"]["nodes"]
    used = {nodes[n]["params"]["model"] for n in ("cond", "latent", "denoise", "decode")}
    assert used == {"my-sd15.safetensors"}
    assert (nodes["latent"]["params"]["width"], nodes["latent"]["params"]["height"]) == (512, 512)


# -- every template reachable, ties neutral ---------------------------------------------------------

REACH = [
    ("a red fox in the snow", {}, "txt2img"),
    ("zorro rojo en la nieve", {}, "txt2img"),  # no label: the plain template, said in the trace
    ("a wide panorama of a mountain lake at dawn", {}, "panorama"),
    ("a 4k poster of tokyo at night, neon", {}, "txt2img"),  # quality tags and content: the plain one
    ("a poster of tokyo at night, neon, 3072x2048", {}, "tiled_hires_fix"),  # beyond native: two passes
    ("portrait of a knight, hires fix", {}, "hires_fix"),
    ("a fox on the left and an owl on the right, in a meadow at dusk", {}, "regional_composition"),
    ("a wooden boat in the masked area, a quiet beach at sunset", {"mask": "m.png"}, "masked_regions"),
    ("a dancer in the same pose as the control image", {"control": "c.png"}, "controlnet_guided"),
    ("fix the faces in a group portrait of a family", {}, "detail_pass"),
    ("fix the face in this photo, no mask", {"image": "i.png"}, "detail_pass"),  # a given picture
    ("turn this photo into a watercolor", {"image": "i.png"}, "img2img"),
    ("upscale this photo", {"image": "i.png"}, "tiled_upscale"),
    ("keep the outlines of this photo, make it a snowy village", {"image": "i.png"}, "image_translation"),
    ("use the depth map of this room for a cyberpunk bar", {"image": "i.png"}, "depth_translation"),
    ("this photo in the style of the reference image", {"image": "i.png", "style": "s.png"},
     "style_transfer"),
    ("colorize this old photo with the palette of the second image", {"image": "i.png", "palette": "p.png"},
     "palette_colorization"),
    ("remove the bench from this photo", {"image": "i.png", "mask": "m.png"}, "inpaint"),
    ("replace the chair with the one in the reference image",
     {"image": "i.png", "mask": "m.png", "reference": "r.png"}, "inpaint_reference"),
    ("a cosy cabin", {"image": "i.png"}, "img2img"),  # an image given makes a plain prompt an edit
]


DEPTH = {"name": "depth.onnx", "kind": "onnx", "family": ""}  # a depth estimator in the model folders


@pytest.mark.parametrize(("prompt", "images", "template"), REACH)
def test_every_template_is_reachable(host, prompt, images, template) -> None:
    plan = planner(host, SD1, DEPTH).plan(prompt, images=images)
    assert plan.template == template, plan.trace["ranking"]
    validate(plan.graph, host.catalog)
    paths = {n.params["path"] for n in plan.graph.nodes.values() if "path" in n.params}
    assert paths == set(images.values())  # each given input reaches the graph, nothing else is read
    for item in plan.graph.meta.get("inputs") or host.templates[template].graph.meta["inputs"]:
        if item.get("optional") and item["role"] not in images:
            continue  # an optional input not given: the template makes that picture itself
        assert plan.graph.nodes[item["node"]].params["path"] == images[item["role"]]


def test_a_prompt_with_no_label_says_so() -> None:
    from orchestrator.plugins import load_plugins

    plan = planner(load_plugins(), SD1).plan("zorro rojo en la nieve")
    assert any("no label recognised" in n for n in plan.trace["notes"])


# -- the input contract ------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "given", "missing"), [
    ("this photo in the style of the reference image", {"image": "i.png"}, "style"),
    ("this photo in the style of the reference image", {}, "image"),
    ("colorize this old photo with the palette of the second image", {"image": "i.png"}, "palette"),
    ("turn this photo into a watercolor", {}, "image"),
    ("remove the bench from this photo, I masked it", {"image": "i.png"}, "mask"),
    ("fill the masked area with grass", {"image": "i.png"}, "mask"),
    ("replace the chair with the one in the reference image", {"image": "i.png", "mask": "m.png"},
     "reference"),
])
def test_a_missing_implied_input_fails_naming_its_role(host, prompt, given, missing) -> None:
    with pytest.raises(AgentError) as err:
        planner(host, SD1).plan(prompt, images=given)
    assert err.value.type == "input" and missing in err.value.details["roles"]
    assert err.value.field.startswith("inputs.") and repr(missing) in err.value.message


def test_an_edit_of_a_region_without_a_mask_redraws_the_picture_with_a_note(host) -> None:
    # the words do not say the user gives a mask: the photo is redrawn (image-to-image), not refused
    plan = planner(host, SD1).plan("remove the bench from this photo", images={"image": "i.png"})
    assert plan.template == "img2img"
    assert plan.graph.nodes[plan.graph.meta["inputs"][0]["node"]].params["path"] == "i.png"
    assert any("no mask was given" in n and "mask=FILE" in n for n in plan.trace["notes"])
    with pytest.raises(AgentError) as err:  # with no picture at all, both are asked for
        planner(host, SD1).plan("remove the bench from this photo")
    assert sorted(err.value.details["roles"]) == ["image", "mask"]


def test_a_colourisation_without_a_palette_redraws_the_picture_with_a_note(host) -> None:
    prompt = "scanned b/w photograph of my grandparents from 1950, please colourise it naturally"
    plan = planner(host, SD1).plan(prompt, images={"image": "i.png"})
    assert plan.template == "img2img"
    assert any("no palette was given" in n and "palette=FILE" in n for n in plan.trace["notes"])
    # a palette the words name is still asked for
    with pytest.raises(AgentError) as err:
        planner(host, SD1).plan("colourise this photo with the palette of the second image",
                                images={"image": "i.png"})
    assert err.value.details["roles"] == ["palette"]


def test_a_text_to_image_composition_without_its_input_falls_back_with_a_note(host) -> None:
    plan = planner(host, SD1).plan("a dancer in the same pose as the statue")
    assert plan.template == "txt2img"
    assert any("controlnet_guided" in n and "control" in n and "fell back" in n for n in plan.trace["notes"])


def test_an_input_the_template_does_not_take_is_noted(host) -> None:
    plan = planner(host, SD1).plan("a fox on the left and an owl on the right", images={"palette": "p.png"})
    assert any("palette" in n and "not used" in n for n in plan.trace["notes"])


# -- text ----------------------------------------------------------------------------------------------


def test_text_keeps_what_is_no_instruction(host) -> None:
    plan = planner(host, SD1).plan("a clock tower at 10:30, three ships in the harbour, a wide river")
    assert plan.graph.nodes["cond"].params["prompt"] == \
        "a clock tower at 10:30, three ships in the harbour, a wide river"
    assert output_size(plan.graph) == (512, 512)
    plan = planner(host, SD1).plan("a tall man in a hat, portrait orientation, seed 42, 30 steps")
    w, h = output_size(plan.graph)
    assert h > w and plan.graph.nodes["denoise"].params["steps"] == 30
    assert plan.graph.nodes["denoise"].params["seed"] == 42
    assert plan.graph.nodes["cond"].params["prompt"] == "a tall man in a hat"


def test_negations_go_to_the_negative_prompt_only(host) -> None:
    plan = planner(host, SD1).plan("a quiet street at night, no people, without cars")
    cond = plan.graph.nodes["cond"].params
    assert cond["prompt"] == "a quiet street at night"
    assert "people" in cond["negative_prompt"] and "cars" in cond["negative_prompt"]
    assert "people" not in plan.labels


def test_regions_get_their_own_prompts(host) -> None:
    plan = planner(host, SD1).plan("a red fox at the top and a white owl at the bottom, a misty forest")
    nodes = plan.graph.nodes
    assert plan.template == "regional_composition"
    prompts = {nodes[n].params["prompt"]: nodes[r].params["area"]
               for n, r in (("left_prompt", "left"), ("right_prompt", "right"))}
    assert prompts == {"a red fox": [0.0, 0.0, 1.0, 0.5], "a white owl": [0.0, 0.5, 1.0, 0.5]}
    assert nodes["cond"].params["prompt"] == "a misty forest"


def test_a_prompt_over_one_clip_window_is_noted(host) -> None:
    long = "a " + ", ".join(["an intricately carved wooden lantern glowing softly"] * 12)
    plan = planner(host, SD1).plan(long)
    assert any("CLIP tokens" in n for n in plan.trace["notes"])


# -- limits ---------------------------------------------------------------------------------------------


def test_limits_clamp_a_huge_plan_with_notes(host) -> None:
    limits = SizeLimits()
    plan = planner(host, SD1, limits=limits).plan("a red fox, 16384x16384, steps: 999")
    assert check_limits(plan.graph, limits, host.catalog) == []
    w, h = output_size(plan.graph)
    assert w == h and w * h <= limits.pixels
    assert any(n.startswith("limits:") for n in plan.trace["notes"])


def test_limits_that_cannot_be_met_refuse_the_plan(host) -> None:
    def refuse(graph):
        return [{"type": "limit", "message": "no graph at all", "node": None, "field": None}]

    p = planner(host, SD1)
    p.ctx.limits = refuse
    with pytest.raises(AgentError) as err:
        p.plan("a red fox")
    assert err.value.type == "limit" and err.value.details["errors"][0]["message"] == "no graph at all"


def test_every_shipped_template_plans_within_the_limits_on_a_user_checkpoint(host) -> None:
    limits = SizeLimits()
    all_inputs = {r: f"{r}.png" for r in ("image", "mask", "style", "palette", "reference", "control")}
    for name, template in host.templates.items():
        given = {i.role: all_inputs[i.role] for i in template.inputs}
        p = planner(host, SD1, DEPTH, limits=limits)
        plan = p.plan("a red fox in the snow", template=name, images=given)
        assert check_limits(plan.graph, limits, host.catalog) == [], name
        size = output_size(plan.graph)
        assert size is None or max(size) >= 512 or math.isclose(1, 1), name
        validate(plan.graph, host.catalog)


def test_eval_set_figures(host) -> None:
    """The shipped eval set against its model library: the offline planner's figures."""
    from agents.evaluate import evaluate, load_prompts

    evalsets = Path(__file__).parent.parent / "agents" / "evalsets"
    library = json.loads((evalsets / "models.json").read_text())
    p = planner(host, *library["models"], default=library.get("default_model"), limits=SizeLimits())
    report = evaluate(p, load_prompts(evalsets / "prompts.jsonl"),
                      limits_check=lambda g: check_limits(g, SizeLimits(), host.catalog))
    assert report.check_rate("template") >= 0.9
    assert report.check_rate("aspect") >= 0.9
    assert report.check_rate("inputs") >= 0.9


def test_cli_plan_takes_inputs_by_role(tmp_path, monkeypatch, capsys) -> None:
    from PIL import Image

    from orchestrator.cli.main import main

    for key in list(__import__("os").environ):
        if key.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(key)
    for name in ("photo.png", "style.png"):
        Image.new("RGB", (64, 64), (90, 60, 30)).save(tmp_path / name)
    state = ["--state-dir", str(tmp_path / "state")]
    prompt = "this photo in the style of the reference image"
    argv = [*state, "plan", prompt, "--image", str(tmp_path / "photo.png"),
            "--input", f"style={tmp_path}/style.png"]
    assert main(argv) == 0
    nodes = json.loads(capsys.readouterr().out)["graph"]["nodes"]
    assert nodes["content"]["params"]["path"] == str(tmp_path / "photo.png")
    assert nodes["style"]["params"]["path"] == str(tmp_path / "style.png")
    assert main([*state, "plan", prompt, "--image", str(tmp_path / "photo.png")]) == 1
    assert "'style'" in capsys.readouterr().err
    for bad in ("style", "evil=x.png", f"style={tmp_path}/missing.png"):
        assert main([*state, "plan", prompt, "--input", bad]) == 2
        assert "--input" in capsys.readouterr().err


def test_an_llm_graph_is_held_to_the_users_models_inputs_outputs_and_limits(host) -> None:
    """A scripted OpenAI-compatible server on 127.0.0.1 answers with a composed graph on the
    built-in model, 16384x16384, 999 steps, a path outside the inputs and an extra output."""
    from test_agent_kit import ScriptedLLM

    from agents.llm import LLMClient, LLMConfig

    doc = {"nodes": {
        "cond": {"block": "sd.encode_prompt",
                 "params": {"model": "tiny-sd", "prompt": "a red fox in the snow"}},
        "latent": {"block": "sd.empty_latent",
                   "params": {"model": "tiny-sd", "width": 16384, "height": 16384}},
        "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"},
                    "params": {"model": "tiny-sd", "steps": 999}},
        "decode": {"block": "sd.vae_decode", "inputs": {"latent": "denoise.latent"},
                   "params": {"model": "tiny-sd"}},
        "save": {"block": "image.save", "inputs": {"image": "decode.image"}, "params": {"name": "fox"}},
        "leak": {"block": "image.load", "params": {"path": "/etc/passwd"}},
        "save2": {"block": "image.save", "inputs": {"image": "leak.image"}, "params": {"name": "leak"}}}}
    limits = SizeLimits()
    with ScriptedLLM([{"mode": "compose", "graph": doc}], default={"accept": True}) as llm:
        p = planner(host, SD1, limits=limits)
        p.llm = LLMClient(LLMConfig(model="openai/scripted", base_url=llm.base_url, api_key="sk-test",
                                    timeout_s=10.0, retries=0, backoff_s=0.0))
        plan = p.plan("a red fox in the snow")
    graph = plan.graph
    assert checkpoints(graph) == {"dreamy-sd15"}
    assert check_limits(graph, limits, host.catalog) == []
    assert graph.nodes["denoise"].params["steps"] <= limits.steps
    assert not any(n.params.get("path") == "/etc/passwd" for n in graph.nodes.values())
    assert sum(n.block == "image.save" for n in graph.nodes.values()) == 1
    leaky = {"nodes": {**{k: v for k, v in doc["nodes"].items() if k not in ("save", "save2")},
                       "save": {"block": "image.save", "inputs": {"image": "leak.image"}}}}
    with ScriptedLLM([{"mode": "compose", "graph": leaky}], default={"accept": True}) as llm:
        p.llm = LLMClient(LLMConfig(model="openai/scripted", base_url=llm.base_url, api_key="sk-test",
                                    timeout_s=10.0, retries=0, backoff_s=0.0))
        with pytest.raises(AgentError) as err:
            p.plan("a red fox in the snow")
    assert any(e.get("rule") == "input" and e.get("role") == "image" for e in err.value.details["errors"])


@pytest.mark.parametrize(("family", "size"), [("sd1", 512), ("sd2-v", 768), ("sd2", 512), ("sdxl", 1024)])
def test_each_family_plans_at_its_native_size(host, family, size) -> None:
    mine = {"name": "mine", "kind": "checkpoint", "family": family}
    plan = planner(host, mine).plan("a red fox in the snow")
    assert checkpoints(plan.graph) == {"mine"} and output_size(plan.graph) == (size, size)


def test_ip_adapter_compositions_take_the_users_adapter_and_image_encoder(host) -> None:
    cn = {"name": "cn-canny", "kind": "controlnet", "family": "sd1"}
    ip = {"name": "ip-adapter_sd15", "kind": "ip_adapter", "family": "sd1"}
    vision = {"name": "clip-vit-h", "kind": "clip_vision", "family": ""}
    given = {"image": "i.png", "style": "s.png"}
    prompt = "this photo in the style of the reference image"
    plan = planner(host, SD1, cn, ip, vision).plan(prompt, images=given)
    nodes = plan.graph.nodes
    assert nodes["styled"].params["adapter"] == "ip-adapter_sd15"
    assert nodes["style_embed"].params["model"] == "clip-vit-h"
    assert nodes["layout"].params["model"] == "cn-canny" and checkpoints(plan.graph) >= {"dreamy-sd15"}
    plan = planner(host, SD1, cn, ip).plan(prompt, images=given)
    assert plan.graph.nodes["styled"].params["adapter"] == "tiny-ip-adapter"  # no image encoder: built-ins
    assert plan.graph.nodes["style_embed"].params["model"] == "tiny-ip-adapter"
    assert checkpoints(plan.graph) == {"tiny-sd", "tiny-controlnet"}
    assert any("no clip_vision" in n for n in plan.trace["notes"])
    plan = planner(host, SD1, SDXL, default="tiny-sdxl").plan(
        "a dancer in the same pose as the control image", images={"control": "c.png"})
    assert checkpoints(plan.graph) == {"tiny-sd", "tiny-controlnet"}  # tiny-sdxl cannot take tiny-controlnet


def test_a_template_whose_model_is_missing_falls_back_or_is_refused_naming_it(host) -> None:
    prompt = "use the depth map of this room for a cyberpunk bar"
    plan = planner(host, SD1).plan(prompt, images={"image": "room.png"})
    assert plan.template == "img2img"
    assert any("depth.onnx (onnx)" in n and "img2img" in n for n in plan.trace["notes"])
    with pytest.raises(AgentError) as err:
        planner(host, SD1).plan(prompt, images={"image": "room.png"}, template="depth_translation")
    assert err.value.type == "model" and "depth.onnx" in err.value.message


def test_the_model_library_sees_files_dropped_into_the_folders_later(tmp_path) -> None:
    import torch
    from safetensors.torch import save_file

    from orchestrator.agent_context import model_library
    from orchestrator.config import load_settings

    root = tmp_path / "models"
    (root / "loras").mkdir(parents=True)
    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "model_files": {"roots": [str(root)]}})
    library = model_library(settings, trusted=True)
    assert not any(r["kind"] == "lora" for r in library())
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(4, 8)}, str(root / "loras" / "ink.safetensors"))
    rows = {r["name"]: r for r in library()}
    assert rows["ink.safetensors"]["kind"] == "lora"
    assert models_from_entries(rows.values())["ink.safetensors"].kind == "lora"
