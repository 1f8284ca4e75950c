"""Stable Diffusion 1.x blocks: equivalence with diffusers' pipelines, seeds, progress, errors.

The bar: a graph's image equals the image of the diffusers pipeline loaded from the same
folder, with the same seed, steps, scheduler and guidance (max abs pixel difference <= 1/255).
Both are computed here, on this machine, in the same test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from graphs import GraphBuilder, load_template
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
PROMPT = "a red fox in the snow"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    sd_fixtures.write_png(d / "input.png", sd_fixtures.noise_image(64, seed=1))
    sd_fixtures.write_png(d / "mask.png", sd_fixtures.rect_mask(64))
    return d


@pytest.fixture(scope="module")
def run(catalog, models, images):
    ex = LocalExecutor(catalog, models=models, input_root=images)

    def go(graph, **kw):
        return ex.run(graph, **kw)

    return go


def pipeline(models, cls_name: str, model: str, sampler: str):
    import diffusers

    base = models.load(model)
    pipe = getattr(diffusers, cls_name)(**base.components)
    pipe.scheduler = make_scheduler(dict(base.scheduler.config), sampler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def txt2img_graph(model="tiny-sd", sampler="ddim", steps=4, cfg=7.5, seed=7, batch=1, negative="blurry",
                  size=64, **denoise):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model=model, prompt=PROMPT, negative_prompt=negative)
    lat = b.add("sd.empty_latent", id="latent", model=model, width=size, height=size, batch=batch)
    d = b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model=model, steps=steps, cfg=cfg,
              sampler=sampler, seed=seed, **denoise)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model=model)
    return b.build()


# -- equivalence ----------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["ddim", "euler_a", "dpmpp_2m", "lcm"])
def test_txt2img_equals_stable_diffusion_pipeline(run, models, sampler):
    ours = run(txt2img_graph(sampler=sampler, batch=2)).outputs["decode"]["image"]
    pipe = pipeline(models, "StableDiffusionPipeline", "tiny-sd", sampler)
    ref = pipe(PROMPT, negative_prompt="blurry", height=64, width=64, num_inference_steps=4,
               guidance_scale=7.5, num_images_per_prompt=2, generator=torch.Generator().manual_seed(7),
               output_type="np").images
    assert ours.shape == ref.shape == (2, 64, 64, 3)
    diff = float(np.abs(ours - ref).max())
    print(f"txt2img {sampler}: max abs diff {diff:.3g}")
    assert diff <= TOL
    assert ours.std() > 0.02  # an image, not a constant


@pytest.mark.parametrize(("sampler", "strength"), [("ddim", 0.6), ("euler_a", 1.0)])
def test_img2img_equals_img2img_pipeline(run, models, images, sampler, strength):
    b = GraphBuilder()
    img = b.add("image.load", path="input.png")
    c = b.add("sd.encode_prompt", model="tiny-sd", prompt="an oil painting of a harbour")
    enc = b.add("sd.vae_encode", image=img.image, model="tiny-sd", seed=11)
    d = b.add("sd.denoise", cond=c.cond, latent=enc.latent, rng=enc.rng, model="tiny-sd", steps=5, cfg=6.0,
              sampler=sampler, strength=strength)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sd")
    ours = run(b.build()).outputs["decode"]["image"]
    pipe = pipeline(models, "StableDiffusionImg2ImgPipeline", "tiny-sd", sampler)
    ref = pipe("an oil painting of a harbour", image=Image.open(images / "input.png"), strength=strength,
               num_inference_steps=5, guidance_scale=6.0, generator=torch.Generator().manual_seed(11),
               output_type="np").images
    diff = float(np.abs(ours - ref).max())
    print(f"img2img {sampler} strength {strength}: max abs diff {diff:.3g}")
    assert diff <= TOL


@pytest.mark.parametrize(("model", "sampler", "strength"), [
    ("tiny-sd", "ddim", 1.0), ("tiny-sd", "euler_a", 0.75), ("tiny-sd-inpaint", "dpmpp_2m", 0.8)])
def test_inpaint_equals_inpaint_pipeline(run, models, images, model, sampler, strength):
    b = GraphBuilder()
    img = b.add("image.load", path="input.png")
    mask = b.add("image.load_mask", path="mask.png")
    c = b.add("sd.encode_prompt", model=model, prompt="a wooden bench in a park")
    d = b.add("sd.inpaint", cond=c.cond, image=img.image, mask=mask.mask, model=model, steps=5, cfg=7.5,
              sampler=sampler, strength=strength, seed=3)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model=model)
    ours = run(b.build()).outputs["decode"]["image"]
    pipe = pipeline(models, "StableDiffusionInpaintPipeline", model, sampler)
    ref = pipe("a wooden bench in a park", image=Image.open(images / "input.png"),
               mask_image=Image.open(images / "mask.png"), height=64, width=64, strength=strength,
               num_inference_steps=5, guidance_scale=7.5, generator=torch.Generator().manual_seed(3),
               output_type="np").images
    diff = float(np.abs(ours - ref).max())
    print(f"inpaint {model} {sampler} strength {strength}: max abs diff {diff:.3g}")
    assert diff <= TOL


def test_plain_unet_inpaint_keeps_the_unmasked_latents(run):
    b = GraphBuilder()
    img = b.add("image.load", path="input.png")
    mask = b.add("image.load_mask", path="mask.png")
    c = b.add("sd.encode_prompt", prompt="x")
    d = b.add("sd.inpaint", id="inp", cond=c.cond, image=img.image, mask=mask.mask, steps=3, seed=3)
    enc = b.add("sd.vae_encode", id="enc", image=img.image, seed=3)
    del d, enc
    out = run(b.build()).outputs
    # outside the mask (latent pixels whose 8x8 block is fully unmasked) the result is the image latent
    latent, init = out["inp"]["latent"], out["enc"]["latent"]
    keep = torch.ones(8, 8, dtype=torch.bool)
    keep[2:6, 1:5] = False
    assert torch.allclose(latent[..., keep], init[..., keep])
    assert not torch.allclose(latent[..., ~keep], init[..., ~keep])


def test_clip_skip_uses_an_earlier_layer(run, models):
    b = GraphBuilder()
    b.add("sd.encode_prompt", id="c", prompt=PROMPT, clip_skip=1)
    cond = run(b.build()).outputs["c"]["cond"]
    tok, te = models.load("tiny-sd", "tokenizer"), models.load("tiny-sd", "text_encoder")
    ids = tok(PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = te(ids, output_hidden_states=True).hidden_states[-2]
        expected = getattr(te, "text_model", te).final_layer_norm(hidden)
        plain = te(ids)[0]
    torch.testing.assert_close(cond["prompt_embeds"], expected)
    assert not torch.allclose(cond["prompt_embeds"], plain)


def test_textual_inversion_equals_diffusers_loader(run, models, tmp_path):
    vecs = torch.randn(2, 32, generator=torch.Generator().manual_seed(5))
    path = tmp_path / "fox-style.safetensors"
    save_file({"emb_params": vecs}, str(path))
    ref = {"name": "tiny-sd", "embeddings": [{"path": str(path), "token": "<fox-style>"}]}
    b = GraphBuilder()
    b.add("sd.encode_prompt", id="c", model=ref, prompt="a <fox-style> fox", negative_prompt="blurry")
    cond = run(b.build()).outputs["c"]["cond"]
    import diffusers

    base = models.load("tiny-sd")
    import copy

    pipe = diffusers.StableDiffusionPipeline(**{**base.components, "tokenizer": copy.deepcopy(base.tokenizer),
                                                "text_encoder": copy.deepcopy(base.text_encoder)})
    pipe.load_textual_inversion({"<fox-style>": vecs}, token="<fox-style>")
    pos, neg = pipe.encode_prompt("a <fox-style> fox", "cpu", 1, True, "blurry")
    torch.testing.assert_close(cond["prompt_embeds"], pos)
    torch.testing.assert_close(cond["negative_prompt_embeds"], neg)
    plain = run(txt2img_graph()).outputs["cond"]["cond"]  # the base model is untouched
    assert plain["prompt_embeds"].shape == cond["prompt_embeds"].shape


def test_loras_change_the_image_and_weight_zero_does_not(run, tmp_path):
    g = torch.Generator().manual_seed(0)
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.lora_down.weight": torch.randn(4, 32, generator=g),
               f"{key}.lora_up.weight": torch.randn(64, 4, generator=g)}, str(tmp_path / "l.safetensors"))
    base = run(txt2img_graph(steps=2)).outputs["decode"]["image"]

    def with_lora(weight):
        m = {"name": "tiny-sd", "loras": [{"path": str(tmp_path / "l.safetensors"), "weight": weight}]}
        graph = txt2img_graph(steps=2)
        graph.nodes["denoise"].params["model"] = m
        return run(graph).outputs["decode"]["image"]

    assert np.array_equal(with_lora(0.0), base)
    assert np.abs(with_lora(1.0) - base).max() > 0.01


# -- seeds, progress, cancellation ----------------------------------------------------------


def test_same_graph_same_image_and_seed_matters(run):
    a = run(txt2img_graph(sampler="euler_a", steps=2)).outputs["decode"]["image"]
    b = run(txt2img_graph(sampler="euler_a", steps=2)).outputs["decode"]["image"]
    c = run(txt2img_graph(sampler="euler_a", steps=2, seed=8)).outputs["decode"]["image"]
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 0.05


def test_default_seed_comes_from_the_node(run):
    g1 = txt2img_graph(steps=2)
    del g1.nodes["denoise"].params["seed"]
    a = run(g1).outputs["decode"]["image"]
    b = run(g1.model_copy(deep=True)).outputs["decode"]["image"]
    assert np.array_equal(a, b)


def test_progress_every_step_and_cancellation(run):
    events = []
    run(txt2img_graph(steps=3), on_event=events.append)
    steps = [(e["step"], e["total"]) for e in events if e["event"] == "step" and e["node"] == "denoise"]
    assert steps == [(1, 3), (2, 3), (3, 3)]

    seen = []

    def cancel_after_first_step():
        return any(e["event"] == "step" for e in seen)

    with pytest.raises(JobError) as info:
        run(txt2img_graph(steps=10), on_event=seen.append, is_cancelled=cancel_after_first_step)
    assert info.value.type == "cancelled"
    assert max(e["step"] for e in seen if e["event"] == "step") == 1


def test_guidance_off_needs_no_negative(run, models):
    ours = run(txt2img_graph(cfg=1.0, negative=None)).outputs["decode"]["image"]
    pipe = pipeline(models, "StableDiffusionPipeline", "tiny-sd", "ddim")
    ref = pipe(PROMPT, height=64, width=64, num_inference_steps=4, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(7), output_type="np").images
    assert np.abs(ours - ref).max() <= TOL


# -- errors ---------------------------------------------------------------------------------


def test_size_must_be_a_multiple_of_eight(run):
    with pytest.raises(BlockError) as info:
        run(txt2img_graph(size=60))
    assert info.value.node == "latent" and info.value.field == "params.width"


def test_sdxl_conditioning_is_refused_by_an_sd_model(run):
    graph = txt2img_graph()
    graph.nodes["cond"].params["model"] = "tiny-sdxl"
    with pytest.raises(BlockError, match="made for a sdxl model"):
        run(graph)


def test_strength_too_small_for_the_steps(run):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", prompt="x")
    lat = b.add("sd.empty_latent", width=64, height=64)
    b.add("sd.denoise", id="d", cond=c.cond, latent=lat.latent, steps=4, strength=0.1)
    with pytest.raises(BlockError) as info:
        run(b.build())
    assert info.value.field == "params.strength"


def test_unknown_model_names_the_model(run):
    with pytest.raises(BlockError) as info:
        run(txt2img_graph(model="sd15-missing"))
    d = info.value.to_dict()
    assert d["type"] == "model" and d["node"] == "cond" and "sd15-missing" in d["message"]


# -- templates ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["txt2img", "img2img", "inpaint", "hires_fix", "sdxl_txt2img"])
def test_templates_run_and_write_a_png(catalog, models, images, tmp_path, name):
    ex = LocalExecutor(catalog, models=models, input_root=images, outputs_dir=tmp_path)
    result = ex.run(load_template(name))
    assert len(result.files) == 1
    png = Path(result.files[0]["path"])
    assert png.is_file() and Image.open(png).size[0] >= 64
