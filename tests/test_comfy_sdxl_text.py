"""ComfyUI's CLIPTextEncodeSDXL: text_l and text_g for SDXL's two text encoders and its size
conditioning (``cond.sdxl_size``), held to diffusers' StableDiffusionXLPipeline with the same
original size, crop and target; imported, exported back and run on tiny-sdxl."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphs import GraphBuilder
from graphs.comfy import export_api, import_result
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
SIZE = {"width": 96, "height": 80, "crop_w": 8, "crop_h": 16, "target_width": 64, "target_height": 48}


def _sized(batch: int):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sdxl", prompt="a red fox", prompt_2="oil painting of a fox",
              negative_prompt="blurry")
    sized = b.add("cond.sdxl_size", cond=c.cond, **SIZE)
    lat = b.add("sd.empty_latent", model="tiny-sdxl", width=64, height=64, batch=batch)
    d = b.add("sd.denoise", cond=sized.cond, latent=lat.latent, model="tiny-sdxl", steps=4, cfg=5.0,
              sampler="euler", seed=21)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sdxl")
    return b.build()


def test_size_conditioning_equals_the_sdxl_pipeline(catalog, models):
    run = LocalExecutor(catalog, models=models).run
    ours = run(_sized(1)).outputs["decode"]["image"]
    pipe = models.load("tiny-sdxl")
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), "euler")
    ref = pipe("a red fox", prompt_2="oil painting of a fox", negative_prompt="blurry", height=64, width=64,
               num_inference_steps=4, guidance_scale=5.0,
               original_size=(80, 96), crops_coords_top_left=(16, 8), target_size=(48, 64),
               negative_original_size=(64, 64), negative_crops_coords_top_left=(0, 0),
               negative_target_size=(64, 64),  # ComfyUI's plain negative: the image's own size
               generator=torch.Generator().manual_seed(21), output_type="np").images
    assert ours.shape == (1, 64, 64, 3)
    assert float(np.abs(ours - ref).max()) <= TOL
    # in a batch each image keeps its own prompt's size conditioning, as ComfyUI's per-prompt
    # conditioning does (diffusers' pipeline repeats [negative, positive] pairs across a batch
    # of 2 and so gives the second negative row the positive's sizes)
    batch = run(_sized(2)).outputs["decode"]["image"]
    assert float(np.abs(batch[:1] - ours).max()) <= TOL


def test_size_conditioning_is_for_sdxl_only(models):
    from plugins.sd.area import SdxlSize
    from plugins.sd.prompt import EncodePrompt

    ctx = Context(node="s", block="cond.sdxl_size", seed=0, models=models)
    sd = EncodePrompt({"prompt": "a fox"}).run(ctx)["cond"]
    with pytest.raises(BlockError, match="for SDXL models"):
        SdxlSize({}).run(ctx, cond=sd)


def sdxl_prompt_workflow() -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "6": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            **SIZE, "text_g": "oil painting of a fox", "text_l": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0, "target_width": 1024,
            "target_height": 1024, "text_g": "blurry, lowres", "text_l": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 4, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sdxl", "images": ["8", 0]}}}


def test_clip_text_encode_sdxl_imports_exports_and_runs(catalog, models, tmp_path):
    model_map = {"sd_xl_base_1.0": "tiny-sdxl"}
    result = import_result(sdxl_prompt_workflow(), catalog=catalog, model_map=model_map,
                           extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    nodes = result.graph.nodes
    encode = nodes["clip_text_encode_sdxl_6"]
    assert (encode.params["prompt"], encode.params["prompt_2"], encode.params["negative_prompt"],
            encode.params["negative_prompt_2"]) == ("a red fox", "oil painting of a fox", "blurry",
                                                    "blurry, lowres")
    sizes = sorted((n.params["side"], n.params["width"]) for n in nodes.values()
                   if n.block == "cond.sdxl_size")
    assert sizes == [("negative", 1024), ("prompt", 96)]
    prompt, problems = export_api(result.graph)
    assert problems == []
    assert {k: v["class_type"] for k, v in prompt.items() if v["class_type"].startswith("CLIP")} == \
        {"6": "CLIPTextEncodeSDXL", "7": "CLIPTextEncodeSDXL"}
    assert import_result(prompt, catalog=catalog, model_map=model_map,
                         extra_mappings=COMFY_MAPPINGS).graph == result.graph
    graph = result.graph
    graph.nodes["empty_latent_image_5"].params.update(width=64, height=64)
    next(n for n in graph.nodes.values() if "steps" in n.params).params["steps"] = 2
    out = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(graph)
    assert len(out.files) == 1
