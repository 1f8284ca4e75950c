"""Imported ComfyUI workflows run on tiny-sd with the in-process executor (64x64, 2 steps)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from graphs import check
from graphs.comfy import import_result
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
DATA = Path(__file__).parent / "data" / "comfy"
CHECKPOINTS = ["v1-5-pruned-emaonly-fp16", "dreamshaper_8", "anything-v3-fp16-pruned", "v2-1_768-ema-pruned",
               "realisticVisionV51_v51VAE"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The input images the workflows name, a LoRA and an embedding for tiny-sd."""
    d = tmp_path_factory.mktemp("comfy_inputs")
    sd_fixtures.write_png(d / "example.png", sd_fixtures.noise_image(64, seed=3))
    rgba = np.dstack([sd_fixtures.noise_image(64, seed=4), 255 - sd_fixtures.rect_mask(64)])
    Image.fromarray(rgba, "RGBA").save(d / "yosemite_inpaint_example.png")  # transparent where to inpaint
    g = torch.Generator().manual_seed(0)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.lora_down.weight": torch.randn(4, 32, generator=g),
               f"{key}.lora_up.weight": torch.randn(64, 4, generator=g)}, str(d / "style.safetensors"))
    save_file({"emb_params": torch.randn(1, 32, generator=g)}, str(d / "easyneg.safetensors"))
    return d


def small(graph):
    """64x64 images and 2 sampler steps, so a run takes a moment (latent resizes keep their factor)."""
    base = next((n.params["width"] for n in graph.nodes.values() if n.block == "sd.empty_latent"), 512)
    for node in graph.nodes.values():
        for key in ("width", "height"):
            if key in node.params:
                resize = node.block == "sd.latent_resize" and node.params[key]
                node.params[key] = round(node.params[key] * 64 / base) if resize else 64
        if "steps" in node.params:
            node.params["steps"] = 2
    return graph


@pytest.mark.parametrize(("name", "sizes"), [
    ("txt2img_ui", [(64, 64)]),
    ("img2img_api", [(64, 64)]),
    ("inpaint_ui", [(64, 64)]),
    ("hires_fix_api", [(64, 64), (96, 96)]),
    ("lora_chain_ui", [(64, 64)]),
])
def test_imported_workflow_runs_on_tiny_sd(name, sizes, catalog, models, inputs, tmp_path):
    model_map = {c: "tiny-sd" for c in CHECKPOINTS}
    model_map |= {"ghibli_style_offset": str(inputs / "style.safetensors"),
                  "epi_noiseoffset2": str(inputs / "style.safetensors"),
                  "EasyNegative": str(inputs / "easyneg.safetensors")}
    result = import_result(DATA / f"{name}.json", catalog=catalog, model_map=model_map,
                           extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    graph = small(result.graph)
    assert check(graph, catalog) == []
    run = LocalExecutor(catalog, models=models, input_root=inputs, outputs_dir=tmp_path).run(graph)
    saved = [Image.open(f["path"]) for f in run.files]
    assert sorted(im.size for im in saved) == sizes
    for im in saved:
        assert np.asarray(im).std() > 0  # an image, not a blank
