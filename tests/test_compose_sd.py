"""Conditioning that combines: ControlNets, regional prompts, IP-Adapter image prompts, combining.

ControlNet and IP-Adapter graphs are held to diffusers' own pipelines (max abs pixel
difference <= 1/255, as in test_sd_blocks.py); regional prompts to where their effect lands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graphs import GraphBuilder
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler
from plugins.sd.ip_adapter import shared_weights_copy

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
TOL = 1 / 255
PROMPT = "a red fox in the snow"


def square(size: int = 64, box: tuple[int, int, int, int] = (16, 16, 48, 48)) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 255
    return img


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("controls")
    sd_fixtures.write_png(d / "square.png", square())
    sd_fixtures.write_png(d / "bar.png", square(box=(0, 24, 64, 40)))
    return d


@pytest.fixture(scope="module")
def run(catalog, models, images):
    ex = LocalExecutor(catalog, models=models, input_root=images)
    return ex.run


def controlnet_graph(nets, sampler="ddim", steps=4, batch=1):
    """txt2img with a chain of ``sd.controlnet`` blocks: ``nets`` = [(image, params), ...]."""
    b = GraphBuilder()
    cur = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt=PROMPT, negative_prompt="blurry").cond
    for k, (image, params) in enumerate(nets):
        img = b.add("image.load", id=f"control{k}", path=image)
        cur = b.add("sd.controlnet", id=f"cn{k}", cond=cur, image=img.image, **params).cond
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=64, height=64, batch=batch)
    d = b.add("sd.denoise", id="denoise", cond=cur, latent=lat.latent, model="tiny-sd", steps=steps, cfg=7.5,
              sampler=sampler, seed=7)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sd")
    return b.build()


def controlnet_pipeline(models, nets: int, sampler: str):
    import diffusers

    base = models.load("tiny-sd")
    cn = models.load("tiny-controlnet", "controlnet")
    controlnet = [cn] * nets if nets > 1 else cn
    pipe = diffusers.StableDiffusionControlNetPipeline(**base.components, controlnet=controlnet)
    pipe.scheduler = make_scheduler(dict(base.scheduler.config), sampler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- ControlNet --------------------------------------------------------------------------------


def test_controlnet_equals_the_controlnet_pipeline(run, models, images):
    ours = run(controlnet_graph([("square.png", {"scale": 0.8})], batch=2)).outputs["decode"]["image"]
    ref = controlnet_pipeline(models, 1, "ddim")(
        PROMPT, negative_prompt="blurry", image=Image.open(images / "square.png"), height=64, width=64,
        num_inference_steps=4, guidance_scale=7.5, num_images_per_prompt=2, controlnet_conditioning_scale=0.8,
        generator=torch.Generator().manual_seed(7), output_type="np").images
    assert np.abs(ours - ref).max() <= TOL
    plain = run(controlnet_graph([])).outputs["decode"]["image"]
    assert np.abs(ours[:1] - plain).mean() > 5 * TOL  # the ControlNet did something


def test_several_controlnets_with_step_ranges_equal_the_multi_controlnet_pipeline(run, models, images):
    nets = [("square.png", {"scale": 0.7, "start": 0.0, "end": 0.5}),
            ("bar.png", {"scale": 1.2, "start": 0.25, "end": 1.0})]
    ours = run(controlnet_graph(nets, sampler="euler_a")).outputs["decode"]["image"]
    ref = controlnet_pipeline(models, 2, "euler_a")(
        PROMPT, negative_prompt="blurry", image=[Image.open(images / n) for n in ("square.png", "bar.png")],
        height=64, width=64, num_inference_steps=4, guidance_scale=7.5,
        controlnet_conditioning_scale=[0.7, 1.2],
        control_guidance_start=[0.0, 0.25], control_guidance_end=[0.5, 1.0],
        generator=torch.Generator().manual_seed(7), output_type="np").images
    assert np.abs(ours - ref).max() <= TOL


def test_guess_mode_equals_the_pipeline(run, models, images):
    ours = run(controlnet_graph([("bar.png", {"guess_mode": True})])).outputs["decode"]["image"]
    ref = controlnet_pipeline(models, 1, "ddim")(
        PROMPT, negative_prompt="blurry", image=Image.open(images / "bar.png"), height=64, width=64,
        num_inference_steps=4, guidance_scale=7.5, guess_mode=True,
        generator=torch.Generator().manual_seed(7), output_type="np").images
    assert np.abs(ours - ref).max() <= TOL


def test_controlnet_params_and_inputs_are_checked(catalog, run):
    spec = catalog["sd.controlnet"]
    problems = spec.check_params({"start": 0.8, "end": 0.2})
    assert [p.field for p in problems] == ["end"] and "before start" in problems[0].message
    bad = controlnet_graph([("square.png", {})])
    bad.nodes["denoise"].params["model"] = "tiny-sdxl"
    bad.nodes["latent"].params["model"] = "tiny-sdxl"
    bad.nodes["cond"].params["model"] = "tiny-sdxl"
    with pytest.raises(BlockError) as exc:
        run(bad)
    assert exc.value.node == "denoise" and "text embeddings of width 32" in exc.value.message


# -- regional prompts ----------------------------------------------------------------------------


def regional_graph(region: str | None = None, size: int = 64, sampler: str = "ddim", mask: str | None = None,
                   **params):
    b = GraphBuilder()
    cur = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt="a mountain lake",
                negative_prompt="").cond
    if region is not None:
        r = b.add("sd.encode_prompt", id="rcond", model="tiny-sd", prompt=region, negative_prompt="")
        extra = {}
        if mask is not None:
            extra["mask"] = b.add("image.load_mask", id="mask", path=mask).mask
        cur = b.add("sd.regional_prompt", id="region", cond=cur, region=r.cond, **extra, **params).cond
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=size, height=size)
    b.add("sd.denoise", id="denoise", cond=cur, latent=lat.latent, model="tiny-sd", steps=4, cfg=7.5,
          sampler=sampler, seed=7)
    return b.build()


def concentration(run, inside: np.ndarray, **kw) -> float:
    """How many times larger the region's change to the latent is inside it than outside."""
    size = inside.shape[0] * 8
    base = run(regional_graph(size=size, sampler=kw.get("sampler", "ddim"))).outputs["denoise"]["latent"]
    out = run(regional_graph("a red dragon breathing fire", size=size, **kw)).outputs["denoise"]["latent"]
    change = (out - base).abs().mean(1)[0].numpy()
    return float(change[inside].mean() / change[~inside].mean())


@pytest.mark.parametrize("method", ["area", "latent"])
def test_a_regional_prompt_changes_mostly_its_region(run, method):
    inside = np.zeros((8, 8), bool)
    inside[:, :4] = True  # the left half
    ratio = concentration(run, inside, area=[0.0, 0.0, 0.5, 1.0], method=method, until=0.5)
    assert ratio > 5, ratio


def test_a_masked_regional_prompt_changes_mostly_its_mask(run, images):
    sd_fixtures.write_png(images / "region.png", sd_fixtures.rect_mask(64, (16, 16, 48, 48)))
    inside = np.zeros((8, 8), bool)
    inside[2:6, 2:6] = True
    ratio = concentration(run, inside, mask="region.png", sampler="euler_a", feather=4)
    assert ratio > 3, ratio


def test_regional_strength_zero_changes_nothing(run):
    base = run(regional_graph()).outputs["denoise"]["latent"]
    out = run(regional_graph("a red dragon", area=[0.0, 0.0, 0.5, 1.0], strength=0.0))
    assert torch.equal(base, out.outputs["denoise"]["latent"])


def test_regional_prompt_checks_its_inputs(catalog, models):
    from plugins.sd.prompt import EncodePrompt
    from plugins.sd.regional import RegionalPrompt, area_window

    ctx = Context(node="region", block="sd.regional_prompt", seed=0, models=models)
    sd = EncodePrompt({"prompt": "a"}).run(ctx)["cond"]
    xl = EncodePrompt({"model": "tiny-sdxl", "prompt": "a"}).run(ctx)["cond"]
    with pytest.raises(BlockError) as exc:
        RegionalPrompt({}).run(ctx, cond=sd, region=xl)
    assert exc.value.field == "inputs.region"
    with pytest.raises(BlockError) as exc:
        RegionalPrompt({}).run(ctx, cond={"nothing": 1}, region=sd)
    assert exc.value.field == "inputs.cond"
    assert [p.field for p in catalog["sd.regional_prompt"].check_params({"area": [0, 0, 2, 1]})] == ["area.2"]
    # windows grow to what the UNet takes (multiples of its downsampling) and stay inside the latent
    assert area_window([0.0, 0.0, 0.5, 1.0], (8, 8), 2) == (0, 0, 8, 4)
    assert area_window([0.9, 0.0, 0.05, 0.5], (8, 8), 4) == (0, 4, 4, 4)
    assert area_window([0.0, 0.0, 1.0, 1.0], (8, 8), 2) is None


# -- image prompts (IP-Adapter) -------------------------------------------------------------------


def test_ip_adapter_equals_the_pipeline_and_leaves_the_resident_unet_alone(models):
    import diffusers

    from plugins.sd.denoise import Denoise
    from plugins.sd.ip_adapter import IPAdapter
    from plugins.sd.prompt import EncodePrompt

    ctx = Context(node="n", block="sd.denoise", seed=0, models=models)
    cond = EncodePrompt({"prompt": PROMPT, "negative_prompt": ""}).run(ctx)["cond"]
    emb = torch.randn(1, 32, generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros(1, 4, 8, 8)

    def denoise(c):
        return Denoise({"steps": 4, "sampler": "ddim", "seed": 7}).run(ctx, cond=c, latent=zeros)["latent"]

    plain = denoise(cond)
    off = denoise(IPAdapter({"scale": 0.0}).run(ctx, cond=cond, embedding=emb)["cond"])
    assert torch.equal(off, plain)
    ours = denoise(IPAdapter({"scale": 0.6}).run(ctx, cond=cond, embedding=emb)["cond"])
    assert (ours - plain).abs().mean() > 0.05
    base = models.load("tiny-sd")
    assert base.unet.encoder_hid_proj is None  # the resident UNet never carries the adapter
    pipe = diffusers.StableDiffusionPipeline(**{**base.components, "unet": shared_weights_copy(base.unet)})
    pipe.scheduler = make_scheduler(dict(base.scheduler.config), "ddim")
    pipe.set_progress_bar_config(disable=True)
    pipe.load_ip_adapter(str(models.info("tiny-ip-adapter").folder), subfolder="",
                         weight_name="ip_adapter.safetensors", image_encoder_folder=None)
    pipe.set_ip_adapter_scale(0.6)
    ref = pipe(PROMPT, negative_prompt="", num_inference_steps=4, guidance_scale=7.5, height=64, width=64,
               generator=torch.Generator().manual_seed(7), output_type="latent",
               ip_adapter_image_embeds=[torch.cat([torch.zeros_like(emb), emb])[:, None]]).images
    assert (ref - ours).abs().max() <= 1e-4


# -- combining conditionings ----------------------------------------------------------------------


def test_cond_combine_merges_extras_and_averages_prompts(run, images, models):
    from plugins.sd.conditioning import CondCombine
    from plugins.sd.prompt import EncodePrompt

    chained = run(controlnet_graph([("square.png", {"scale": 0.8}), ("bar.png", {"scale": 0.5})]))
    g = controlnet_graph([("square.png", {"scale": 0.8})])
    g.nodes["control1"] = g.nodes["control0"].model_copy(update={"params": {"path": "bar.png"}})
    g.nodes["cn1"] = g.nodes["cn0"].model_copy(update={
        "inputs": {"cond": "cond.cond", "image": "control1.image"}, "params": {"scale": 0.5}})
    g.nodes["both"] = g.nodes["cn0"].model_copy(update={"block": "sd.cond_combine", "params": {},
                                                        "inputs": {"conds": ["cn0.cond", "cn1.cond"]}})
    g.nodes["denoise"].inputs["cond"] = "both.cond"
    combined = run(g)
    assert np.abs(combined.outputs["decode"]["image"] - chained.outputs["decode"]["image"]).max() <= TOL
    ctx = Context(node="c", block="sd.cond_combine", seed=0, models=models)
    a = EncodePrompt({"prompt": "a"}).run(ctx)["cond"]
    b = EncodePrompt({"prompt": "b"}).run(ctx)["cond"]
    avg = CondCombine({"prompts": "average"}).run(ctx, conds=[a, b, b])["cond"]
    assert [r["strength"] for r in avg["regions"]] == pytest.approx([1 / 3, 1 / 3])
    assert "regions" not in a  # inputs untouched
    xl = EncodePrompt({"model": "tiny-sdxl", "prompt": "a"}).run(ctx)["cond"]
    with pytest.raises(BlockError, match="different model families"):
        CondCombine({}).run(ctx, conds=[a, xl])


# -- SDXL and other UNets ---------------------------------------------------------------------------


def test_regions_and_image_prompts_work_on_sdxl(models, tmp_path):
    from safetensors.torch import save_file

    from orchestrator.models.tiny import ip_adapter_state_dict
    from plugins.sd.denoise import Denoise
    from plugins.sd.ip_adapter import IPAdapter
    from plugins.sd.prompt import EncodePrompt
    from plugins.sd.regional import RegionalPrompt

    ctx = Context(node="n", block="sd.denoise", seed=0, models=models, input_root=tmp_path)
    base = EncodePrompt({"model": "tiny-sdxl", "prompt": "a lighthouse"}).run(ctx)["cond"]
    other = EncodePrompt({"model": "tiny-sdxl", "prompt": "a red dragon"}).run(ctx)["cond"]
    zeros = torch.zeros(1, 4, 8, 16)

    def denoise(c):
        params = {"model": "tiny-sdxl", "steps": 3, "sampler": "euler", "seed": 7, "cfg": 5.0}
        return Denoise(params).run(ctx, cond=c, latent=zeros)["latent"]

    plain = denoise(base)
    region = RegionalPrompt({"area": [0.5, 0.0, 0.5, 1.0]}).run(ctx, cond=base, region=other)["cond"]
    change = (denoise(region) - plain).abs().mean((0, 1, 2))
    assert change[8:].mean() > 3 * change[:8].mean()  # the right half, where the region is
    # an SDXL IP-Adapter (here made for the tiny SDXL UNet) from a file in the input folder
    unet = models.load("tiny-sdxl", "unet")
    save_file({k: v.contiguous() for k, v in ip_adapter_state_dict(unet, 32, "xl").items()},
              str(tmp_path / "xl-adapter.safetensors"))
    emb = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))
    off = IPAdapter({"adapter": "xl-adapter.safetensors", "scale": 0.0}).run(ctx, cond=base, embedding=emb)
    on = IPAdapter({"adapter": "xl-adapter.safetensors", "scale": 1.0}).run(ctx, cond=base, embedding=emb)
    assert torch.equal(denoise(off["cond"]), plain)
    assert (denoise(on["cond"]) - plain).abs().mean() > 0.05


def test_controlnets_and_image_prompts_need_the_torch_unet(models):
    from plugins.sd.common import Sampling, UNetPrompt
    from plugins.sd.conditioning import StepConditioning

    run = Sampling(ctx=Context(node="onnx", block="onnx.denoise", seed=0, models=models), device="cpu",
                   dtype=torch.float32, do_cfg=False, batch=1, timesteps=torch.arange(2), pixel_size=(64, 64),
                   latent_size=(8, 8), unet_config={}, scheduler=None, step_kwargs={},
                   base=UNetPrompt(torch.zeros(1, 77, 32)),
                   make_prompt=lambda c: UNetPrompt(c["prompt_embeds"]))
    cond = {"prompt_embeds": torch.zeros(1, 77, 32),
            "controlnets": [{"model": "tiny-controlnet", "image": np.zeros((1, 64, 64, 3), np.float32),
                             "scale": 1.0, "start": 0.0, "end": 1.0, "guess_mode": False}]}
    with pytest.raises(BlockError, match="need the torch UNet") as exc:
        StepConditioning.build(cond, run).unet(lambda *a, **k: None, "onnx")
    assert exc.value.node == "onnx"
    plain = StepConditioning.build({"prompt_embeds": cond["prompt_embeds"]}, run)
    fn = object()
    assert plain.unet(fn) is fn and plain.unet_kwargs(None, 0, 0, run.base, None) == {}
