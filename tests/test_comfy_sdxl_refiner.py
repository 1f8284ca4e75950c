"""The SDXL refiner as ComfyUI conditions it: its prompt through CLIP-G alone, and its size conditioning
``[height, width, crop_h, crop_w, aesthetic score]`` (CLIPTextEncodeSDXLRefiner's ascore, width and
height; 6 and 2.5 by default, with the image's size), checked against diffusers'
StableDiffusionXLImg2ImgPipeline on a tiny refiner built here; ComfyUI workflows with the refiner's
text encode (API and UI format) import with no problem and run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from graphs.comfy import import_result
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.area import SdxlSize
from plugins.sd.common import unet_prompt

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from comfy_ui_builder import UIGraph
from model_builders import tiny_sdxl_refiner

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
MAPPINGS = builtin_comfy_mappings()
CKPT = "sd_xl_refiner_1.0.safetensors"


@pytest.fixture(scope="module")
def refiner(tmp_path_factory) -> str:
    from orchestrator.models import ModelRegistry

    xl = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir()).resolve("tiny-sdxl", build=True).path
    return str(tiny_sdxl_refiner(tmp_path_factory.mktemp("refiner") / "tiny-sdxl-refiner", xl))


@pytest.fixture(scope="module")
def pipe(refiner):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    p = StableDiffusionXLImg2ImgPipeline.from_pretrained(refiner)
    p.set_progress_bar_config(disable=True)
    return p


def encoded(catalog, models, refiner, prompt="a lighthouse", negative="blurry", size=None):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="enc", model=refiner, prompt=prompt, negative_prompt=negative)
    if size is not None:
        c = b.add("cond.sdxl_size", id="pos", cond=c.cond, **size[0])
        c = b.add("cond.sdxl_size", id="neg", cond=c.cond, side="negative", **size[1])
    return LocalExecutor(catalog, models=models).run(b.build()).outputs


def test_the_refiners_prompt_is_diffusers_clip_g_encoding(catalog, models, refiner, pipe):
    cond = encoded(catalog, models, refiner)["enc"]["cond"]
    with torch.no_grad():
        pos, neg, pooled, neg_pooled = pipe.encode_prompt(
            "a lighthouse", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt="blurry")
    assert cond["family"] == "sdxl" and cond["aesthetic"] is True
    pairs = [(cond["prompt_embeds"], pos), (cond["negative_prompt_embeds"], neg),
             (cond["pooled_prompt_embeds"], pooled), (cond["negative_pooled_prompt_embeds"], neg_pooled)]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-6)


def test_the_refiners_size_conditioning_equals_diffusers_time_ids(catalog, models, refiner, pipe):
    cond = encoded(catalog, models, refiner)["enc"]["cond"]
    got = unet_prompt(cond, batch=1, do_cfg=True, pixel_size=(64, 96), device="cpu", dtype=torch.float32,
                      node="k").added["time_ids"]
    ids, neg_ids = pipe._get_add_time_ids((64, 96), (0, 0), (64, 96), 6.0, 2.5, (64, 96), (0, 0), (64, 96),
                                          torch.float32, text_encoder_projection_dim=32)
    assert torch.equal(got, torch.cat([neg_ids, ids]))  # ComfyUI's defaults: the image's size, 6 and 2.5
    size = ({"width": 1024, "height": 768, "aesthetic_score": 7.5}, {"width": 512, "height": 512,
                                                                     "aesthetic_score": 2.0})
    cond = encoded(catalog, models, refiner, size=size)["neg"]["cond"]
    got = unet_prompt(cond, batch=1, do_cfg=True, pixel_size=(64, 96), device="cpu", dtype=torch.float32,
                      node="k").added["time_ids"]
    ids, neg_ids = pipe._get_add_time_ids((768, 1024), (0, 0), (64, 96), 7.5, 2.0, (512, 512), (0, 0),
                                          (64, 96), torch.float32, text_encoder_projection_dim=32)
    assert torch.equal(got, torch.cat([neg_ids, ids]))


def test_aesthetic_score_on_the_wrong_model_is_a_structured_error(catalog, models, refiner):
    base = encoded(catalog, models, "tiny-sdxl")["enc"]["cond"]
    ref = encoded(catalog, models, refiner)["enc"]["cond"]
    ctx = Context(node="size", block="cond.sdxl_size", seed=0)
    for cond, params in [(base, {"aesthetic_score": 6.0}), (ref, {})]:
        with pytest.raises(BlockError) as info:
            SdxlSize(params).run(ctx, cond=cond)
        err = info.value.to_dict()
        assert (err["type"], err["node"], err["field"]) == ("input", "size", "params.aesthetic_score")


def _api() -> dict:
    sampler = {"add_noise": "enable", "noise_seed": 3, "steps": 25, "cfg": 7.0, "sampler_name": "euler",
               "scheduler": "normal", "start_at_step": 0, "end_at_step": 10000,
               "return_with_leftover_noise": "disable"}
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "6": {"class_type": "CLIPTextEncodeSDXLRefiner", "inputs": {
            "ascore": 6.0, "width": 1024, "height": 1024, "text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncodeSDXLRefiner", "inputs": {
            "ascore": 2.5, "width": 1024, "height": 1024, "text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSamplerAdvanced", "inputs": {**sampler, "model": ["4", 0], "positive": ["6", 0],
                                                           "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "refined", "images": ["8", 0]}},
    }


def _ui() -> dict:
    g = UIGraph()
    g.node(4, "CheckpointLoaderSimple", [CKPT], outputs=["MODEL", "CLIP", "VAE"])
    clip = [("clip", "CLIP")]
    g.node(6, "CLIPTextEncodeSDXLRefiner", [6.5, 1024, 768, "a red fox"], clip, ["CONDITIONING"])
    g.node(7, "CLIPTextEncodeSDXLRefiner", [2.5, 1024, 768, "blurry"], clip, ["CONDITIONING"])
    g.node(5, "EmptyLatentImage", [64, 64, 1], outputs=["LATENT"])
    g.node(3, "KSampler", [3, "fixed", 2, 7.0, "euler", "normal", 1.0],
           [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
            ("latent_image", "LATENT")], ["LATENT"])
    g.node(8, "VAEDecode", None, [("samples", "LATENT"), ("vae", "VAE")], ["IMAGE"])
    g.node(9, "SaveImage", ["refined"], [("images", "IMAGE")])
    for origin, slot, target, name in [(4, 1, 6, "clip"), (4, 1, 7, "clip"), (4, 0, 3, "model"),
                                       (6, 0, 3, "positive"), (7, 0, 3, "negative"),
                                       (5, 0, 3, "latent_image"), (3, 0, 8, "samples"), (4, 2, 8, "vae"),
                                       (8, 0, 9, "images")]:
        g.link(origin, slot, target, name)
    return g.workflow()


@pytest.mark.parametrize(("make", "sizes"), [(_api, (1024, 1024, 6.0, 2.5)), (_ui, (1024, 768, 6.5, 2.5))])
def test_refiner_text_encode_workflows_import_clean_and_run(make, sizes, catalog, models, refiner, tmp_path):
    result = import_result(make(), catalog=catalog, extra_mappings=MAPPINGS,
                           model_map={"sd_xl_refiner_1.0": refiner})
    assert result.problems == []
    by_block = {}
    for node in result.graph.nodes.values():
        by_block.setdefault(node.block, []).append(node)
    width, height, pos, neg = sizes
    size = {n.params["side"]: n.params for n in by_block["cond.sdxl_size"]}
    assert (size["prompt"]["width"], size["prompt"]["height"], size["prompt"]["aesthetic_score"]) == \
        (width, height, pos)
    assert size["negative"]["aesthetic_score"] == neg
    graph = result.graph
    for node in graph.nodes.values():
        if "steps" in node.params:
            node.params["steps"] = 2
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(graph)
    assert len(run.files) == 1 and Path(run.files[0]["path"]).is_file()
