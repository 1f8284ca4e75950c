"""SDXL through the same blocks: equivalence with diffusers' StableDiffusionXLPipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphs import GraphBuilder
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
PROMPT = "a lighthouse on a cliff at sunset"


@pytest.fixture(scope="module")
def run(catalog, models):
    ex = LocalExecutor(catalog, models=models)
    return lambda graph: ex.run(graph).outputs["decode"]["image"]


def sdxl_graph(sampler="euler", negative=None, width=64, height=64, clip_skip=None, prompt_2=None, batch=1):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sdxl", prompt=PROMPT, negative_prompt=negative,
              clip_skip=clip_skip, prompt_2=prompt_2)
    lat = b.add("sd.empty_latent", model="tiny-sdxl", width=width, height=height, batch=batch)
    d = b.add("sd.denoise", cond=c.cond, latent=lat.latent, model="tiny-sdxl", steps=4, cfg=5.0,
              sampler=sampler, seed=21)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sdxl")
    return b.build()


def reference(models, sampler="euler", negative=None, width=64, height=64, clip_skip=None, prompt_2=None,
              batch=1):
    pipe = models.load("tiny-sdxl")
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    return pipe(PROMPT, prompt_2=prompt_2, negative_prompt=negative, height=height, width=width,
                num_inference_steps=4, guidance_scale=5.0, clip_skip=clip_skip, num_images_per_prompt=batch,
                generator=torch.Generator().manual_seed(21), output_type="np").images


@pytest.mark.parametrize(("sampler", "negative"), [("euler", None), ("euler_a", "blurry"), ("dpmpp_2m", "")])
def test_sdxl_txt2img_equals_sdxl_pipeline(run, models, sampler, negative):
    ours = run(sdxl_graph(sampler, negative, batch=2))
    ref = reference(models, sampler, negative, batch=2)
    diff = float(np.abs(ours - ref).max())
    print(f"sdxl txt2img {sampler} negative={negative!r}: max abs diff {diff:.3g}")
    assert ours.shape == (2, 64, 64, 3) and diff <= TOL


def test_sdxl_wide_image_clip_skip_and_second_prompt(run, models):
    kw = dict(width=128, height=64, clip_skip=1, prompt_2="oil painting", negative="blurry")
    ours = run(sdxl_graph(**kw))
    ref = reference(models, **kw)
    assert ours.shape == (1, 64, 128, 3)
    assert float(np.abs(ours - ref).max()) <= TOL


def test_sdxl_conditioning_carries_pooled_embeddings(catalog, models):
    b = GraphBuilder()
    b.add("sd.encode_prompt", id="c", model="tiny-sdxl", prompt=PROMPT)
    cond = LocalExecutor(catalog, models=models).run(b.build()).outputs["c"]["cond"]
    assert cond["family"] == "sdxl"
    assert cond["prompt_embeds"].shape == (1, 77, 64)  # both encoders' hidden states side by side
    assert cond["pooled_prompt_embeds"].shape == (1, 32)
    assert not cond["negative_prompt_embeds"].any()  # no negative prompt: zeros, as the model asks
