"""SDXL base + refiner on sd.denoise: denoising_end / denoising_start equal diffusers' pipeline pair."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
PROMPT = "a lighthouse on a cliff at sunset"


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m", "heun"])
def test_base_then_refiner_equals_diffusers_denoising_end_and_start(catalog, models, sampler):
    """tiny-sdxl as base and refiner, 25 steps handed over at 0.8 (step 20 of 25):
    StableDiffusionXLPipeline(denoising_end=0.8), then
    StableDiffusionXLImg2ImgPipeline(denoising_start=0.8) on its latent."""
    import diffusers

    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sdxl", prompt=PROMPT, negative_prompt="blurry")
    lat = b.add("sd.empty_latent", model="tiny-sdxl", width=64, height=64)
    common = dict(model="tiny-sdxl", steps=25, cfg=5.0, sampler=sampler, seed=21)
    base = b.add("sd.denoise", id="base", cond=c.cond, latent=lat.latent, denoising_end=0.8, **common)
    b.add("sd.denoise", id="refiner", cond=c.cond, latent=base.latent, denoising_start=0.8, **common)
    out = LocalExecutor(catalog, models=models).run(b.build()).outputs

    pipe = models.load("tiny-sdxl")
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    kw = dict(prompt=PROMPT, negative_prompt="blurry", num_inference_steps=25, guidance_scale=5.0)
    handed = pipe(**kw, height=64, width=64, denoising_end=0.8, output_type="latent",
                  generator=torch.Generator().manual_seed(21)).images
    refiner = diffusers.StableDiffusionXLImg2ImgPipeline.from_pipe(pipe)
    refiner.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    final = refiner(**kw, image=handed, denoising_start=0.8, output_type="latent",
                    generator=torch.Generator().manual_seed(21)).images
    pairs = ((out["base"]["latent"], handed, "base"), (out["refiner"]["latent"], final, "refiner"))
    for ours, ref, what in pairs:
        diff = float((ours - ref.float()).abs().max())
        print(f"{sampler} {what}: max abs diff {diff:.3g}")
        assert ours.shape == ref.shape and diff <= 1e-4 * max(1.0, float(ref.abs().max()))


def test_denoising_window_errors_name_the_param(catalog, models):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sdxl", prompt=PROMPT)
    lat = b.add("sd.empty_latent", model="tiny-sdxl", width=64, height=64)
    b.add("sd.denoise", id="d", cond=c.cond, latent=lat.latent, model="tiny-sdxl", steps=4,
          denoising_start=0.6, denoising_end=0.5)
    with pytest.raises(BlockError) as err:
        LocalExecutor(catalog, models=models).run(b.build())
    d = err.value.to_dict()
    assert (d["node"], d["field"], d["value"]) == ("d", "params.denoising_start", 0.6)
