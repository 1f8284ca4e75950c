"""InstructPix2Pix conditioning and ComfyUI's DualCFGGuider on a tiny 8-channel UNet built here.

- ``sd.ip2p_conditioning`` crops the image to multiples of 8 around its centre and puts the VAE's
  own (unscaled) latent mean on the conditioning; its latent output is zeros of that size;
- the native sampler gives an IP2P UNet that latent beside the noisy one (zeros without), equal
  to a hand-built run;
- ``sd.dual_guider`` + ``sd.sample_custom`` equal a reference made of three separate UNet calls
  combined by ComfyUI's formulas (regular and nested).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import torch_unet, unet_prompt
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.denoiser import Denoiser
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import prepare_noise
from plugins.sd.ksampling.run import run_sampler

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

one_torch_thread = sd_fixtures.one_torch_thread
SEED = 11


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """tiny-sd with an 8-channel UNet (the InstructPix2Pix layout), and a 70x66 input image."""
    from diffusers import UNet2DConditionModel

    from orchestrator.models.tiny import init_weights

    d = tmp_path_factory.mktemp("ip2p_models")
    sd = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir()).resolve("tiny-sd", build=True).path
    shutil.copytree(sd, d / "tiny-ip2p")
    config = json.loads((sd / "unet" / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["in_channels"] = 8
    unet = UNet2DConditionModel(**config)
    init_weights(unet, "tiny-ip2p.unet")
    shutil.rmtree(d / "tiny-ip2p" / "unet")
    unet.save_pretrained(str(d / "tiny-ip2p" / "unet"), safe_serialization=True)
    rng = np.random.default_rng(2)
    image = (np.kron(rng.random((10, 9, 3)), np.ones((7, 8, 1)))[:70, :66] * 255).astype(np.uint8)
    sd_fixtures.write_png(d / "photo.png", image)
    return d


@pytest.fixture(scope="module")
def models(root):
    return ModelManager(ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), allow_paths=False,
                                      entries=[{"name": "tiny-ip2p", "source": str(root / "tiny-ip2p")}]))


@pytest.fixture(scope="module")
def ex(catalog, models, root):
    return LocalExecutor(catalog, models=models, input_root=root)


def prompt(b: GraphBuilder, id: str, text: str, negative: str = ""):
    return b.add("sd.encode_prompt", id=id, model="tiny-ip2p", prompt=text, negative_prompt=negative).cond


def edit(b: GraphBuilder, cond, id: str = "ip2p"):
    return b.add("sd.ip2p_conditioning", id=id, cond=cond, image=b.add("image.load", path="photo.png").image,
                 model="tiny-ip2p")


def test_ip2p_conditioning_is_the_cropped_images_vae_latent(ex, models, root):
    b = GraphBuilder()
    edit(b, prompt(b, "cond", "make it snowy"))
    out = ex.run(b.build()).outputs["ip2p"]
    pixels = np.asarray(__import__("PIL.Image").Image.open(root / "photo.png"), np.float32)[None] / 255.0
    crop = torch.from_numpy(pixels[:, 3:67, 1:65]).permute(0, 3, 1, 2)  # 70x66 -> 64x64, centred
    vae = models.load("tiny-ip2p", "vae")
    with torch.no_grad():
        raw = vae.encode(crop * 2 - 1).latent_dist.mode()
    torch.testing.assert_close(out["cond"]["concat_latent_image"], raw, atol=1e-5, rtol=1e-5)
    assert out["latent"].shape == (1, 4, 8, 8) and not out["latent"].any()


def _denoiser(models, cond, concat):
    info, unet = models.load("tiny-ip2p", "info"), models.load("tiny-ip2p", "unet")
    ms = ModelSampling.from_config(dict(info.scheduler))
    p = unet_prompt(cond, batch=1, do_cfg=True, pixel_size=(64, 64), device="cpu", dtype=unet.dtype, node="k")
    return ms, Denoiser(torch_unet(unet), ms, p, 6.0, dtype=unet.dtype, do_uncond=True, concat=concat)


def test_ksampler_gives_the_ip2p_unet_the_image_latent(ex, models):
    b = GraphBuilder()
    text = prompt(b, "cond", "make it snowy", "blurry")
    ip = edit(b, text)
    b.add("sd.ksampler", id="k", cond=ip.cond, latent=ip.latent, model="tiny-ip2p", seed=SEED, steps=3,
          cfg=6.0, sampler="euler")
    b.add("sd.ksampler", id="plain", cond=text, latent=ip.latent, model="tiny-ip2p", seed=SEED,
          steps=3, cfg=6.0, sampler="euler")
    out = ex.run(b.build()).outputs
    cond = out["ip2p"]["cond"]
    for key, concat in (("k", cond["concat_latent_image"]), ("plain", torch.zeros(1, 4, 8, 8))):
        ms, den = _denoiser(models, cond, concat)
        sigmas = schedules.calculate_sigmas(ms, "normal", 3)
        with torch.no_grad():
            ref = run_sampler("euler", den, ms, sigmas, prepare_noise((1, 4, 8, 8), SEED),
                              torch.zeros(1, 4, 8, 8), seed=SEED)
        assert float((out[key]["latent"] - ref).abs().max()) <= 1e-5, key
    assert float((out["k"]["latent"] - out["plain"]["latent"]).abs().max()) > 1e-3


@pytest.mark.parametrize("style", ["regular", "nested"])
def test_dual_cfg_guider_is_comfyuis_two_scale_guidance(ex, models, style):
    cfg1, cfg2 = 4.0, 1.5
    b = GraphBuilder()
    ip1 = edit(b, prompt(b, "instruction", "make it snowy", "ugly"), "ip1")
    ip2 = edit(b, prompt(b, "empty", "", "ugly"), "ip2")
    neg = prompt(b, "negative", "ugly")
    guider = b.add("sd.dual_guider", id="g", cond1=ip1.cond, cond2=ip2.cond, negative=neg, model="tiny-ip2p",
                   cfg_conds=cfg1, cfg_cond2_negative=cfg2, style=style)
    b.add("sd.sample_custom", id="s", noise=b.add("sd.noise", seed=SEED).noise, guider=guider.guider,
          sampler=b.add("sd.sampler_select", sampler="euler").sampler,
          sigmas=b.add("sd.sigmas", model="tiny-ip2p", steps=3).sigmas, latent=ip1.latent)
    out = ex.run(b.build()).outputs
    info, unet = models.load("tiny-ip2p", "info"), models.load("tiny-ip2p", "unet")
    ms = ModelSampling.from_config(dict(info.scheduler))
    parts = [(out["negative"]["cond"], torch.zeros(1, 4, 8, 8)),
             (out["ip2"]["cond"], out["ip2"]["cond"]["concat_latent_image"]),
             (out["ip1"]["cond"], out["ip1"]["cond"]["concat_latent_image"])]

    def reference(x, sigma):  # three separate calls, combined as ComfyUI's Guider_DualCFG
        sigma = sigma.reshape(-1).expand(x.shape[0])
        xc, t = ms.calculate_input(sigma, x), ms.timestep(sigma).float()
        preds = []
        for cond, concat in parts:
            p = unet_prompt(cond, batch=1, do_cfg=False, pixel_size=(64, 64), device="cpu", dtype=unet.dtype,
                            node="s")
            eps = unet(torch.cat([xc, concat], 1), t, encoder_hidden_states=p.embeds, return_dict=False)[0]
            preds.append(ms.calculate_denoised(sigma, eps.float(), x))
        n, m, p = preds
        if style == "nested":
            return n + cfg2 * (m + (p - m) * cfg1 - n)
        return n + (m - n) * cfg2 + (p - m) * cfg1

    sigmas = schedules.calculate_sigmas(ms, "normal", 3)
    with torch.no_grad():
        ref = run_sampler("euler", reference, ms, sigmas, prepare_noise((1, 4, 8, 8), SEED),
                          torch.zeros(1, 4, 8, 8), seed=SEED)
    # float32 rounding at latents of ~20 differs between CPUs by ~1e-4 (a wrong guider by ~1e-1)
    assert float((out["s"]["latent"] - ref).abs().max()) <= 1e-4 + 1e-5 * float(ref.abs().max())


def test_ip2p_and_dual_guider_errors_are_structured(ex, root):
    sd_fixtures.write_png(root / "tiny.png", np.zeros((4, 4, 3), np.uint8))  # below the VAE's 8 pixels
    b = GraphBuilder()
    b.add("sd.ip2p_conditioning", id="ip", cond=prompt(b, "c", "x"),
          image=b.add("image.load", path="tiny.png").image, model="tiny-ip2p")
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    d = err.value.to_dict()
    assert (d["node"], d["field"], d["bound"]) == ("ip", "inputs.image", 8), d
    b = GraphBuilder()  # conditionings of two families in one dual guider
    sdxl = b.add("sd.encode_prompt", model="tiny-sdxl", prompt="x").cond
    b.add("sd.dual_guider", id="g", cond1=prompt(b, "c", "x"), cond2=sdxl, negative=prompt(b, "n", ""),
          model="tiny-ip2p")
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    assert (err.value.to_dict()["node"], err.value.to_dict()["field"]) == ("g", "inputs.cond2")


def test_ip2p_concat_resizes_repeats_and_scales_for_cosxl_edit():
    from plugins.sd.ip2p_latent import ip2p_concat

    raw = torch.randn(1, 4, 8, 12, generator=torch.Generator().manual_seed(0))
    cond = {"concat_latent_image": raw, "concat_latent_scale": 0.13025}
    torch.testing.assert_close(ip2p_concat(cond, (2, 4, 8, 12), "cpu"), raw.repeat(2, 1, 1, 1))
    torch.testing.assert_close(ip2p_concat(cond, (1, 4, 8, 12), "cpu", edm=True), raw * 0.13025)
    squared = ip2p_concat(cond, (1, 4, 8, 8), "cpu")  # ComfyUI's common_upscale, 'center': cut, then resize
    expected = torch.nn.functional.interpolate(raw[..., 2:10], size=(8, 8), mode="bilinear")
    torch.testing.assert_close(squared, expected)
    assert not ip2p_concat({}, (1, 4, 8, 8), "cpu").any()


def edit_workflow_api() -> dict:
    """ComfyUI's sdxl_edit_model example (CosXL edit), API format as its PNG's prompt chunk has it."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "cosxl_edit.safetensors"}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "snow at sunset oil painting", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["37:8", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        "13": {"class_type": "LoadImage", "inputs": {"image": "photo.png", "upload": "image"}},
        "37:0": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "37:1": {"class_type": "RandomNoise", "inputs": {"noise_seed": 11652752290163}},
        "37:3": {"class_type": "BasicScheduler", "inputs": {"scheduler": "normal", "steps": 2, "denoise": 1.0,
                                                             "model": ["4", 0]}},
        "37:6": {"class_type": "InstructPixToPixConditioning", "inputs": {
            "positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2], "pixels": ["13", 0]}},
        "37:7": {"class_type": "DualCFGGuider", "inputs": {
            "cfg_conds": 5.0, "cfg_cond2_negative": 1.5, "model": ["4", 0], "cond1": ["37:6", 0],
            "cond2": ["37:6", 1], "negative": ["7", 0]}},
        "37:8": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["37:1", 0], "guider": ["37:7", 0], "sampler": ["37:0", 0], "sigmas": ["37:3", 0],
            "latent_image": ["37:6", 2]}},
    }


def test_comfyui_edit_workflow_imports_clean_and_runs(catalog, models, root, tmp_path):
    from graphs.comfy import import_result
    from orchestrator.plugins import builtin_comfy_mappings

    result = import_result(edit_workflow_api(), catalog=catalog, model_map={"cosxl_edit": "tiny-ip2p"},
                           extra_mappings=builtin_comfy_mappings())
    assert [p.to_dict() for p in result.problems] == []
    graph = result.graph
    [guider] = [n for n in graph.nodes.values() if n.block == "sd.dual_guider"]
    assert (guider.params["cfg_conds"], guider.params["cfg_cond2_negative"], guider.params["style"]) == \
        (5.0, 1.5, "regular")
    edits = sorted(k for k, n in graph.nodes.items() if n.block == "sd.ip2p_conditioning")
    assert len(edits) == 3  # cond1's, cond2's, and the one whose latent is sampled
    run = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path).run(graph)
    out = run.outputs
    prompts = {k: out[graph.nodes[k].inputs["cond"].split(".")[0]]["cond"] for k in edits
               if "cond" in graph.nodes[k].inputs}
    assert len(prompts) == 2 and all("concat_latent_image" in out[k]["cond"] for k in prompts)
    [saved] = run.files
    assert Path(saved["path"]).is_file()


# -- single-file edit checkpoints -----------------------------------------------------------------------


def test_edit_checkpoint_families_are_told_by_their_8_channel_conv_in():
    from orchestrator.models.detect import CONV_IN, V2_ATTN, XL_BASE, Header, checkpoint_family

    def header(width: int, xl: bool = False) -> Header:
        shapes = {CONV_IN: (320, 8, 3, 3), V2_ATTN: (320, width)}
        if xl:
            shapes[XL_BASE] = (1280,)
        return Header({k: ("F32", s, (0, 0)) for k, s in shapes.items()}, {}, 0, 0)

    assert checkpoint_family(header(768))[0] == "sd1-ip2p"
    assert checkpoint_family(header(2048, xl=True))[0] == "sdxl-ip2p"


def test_single_file_edit_checkpoint_with_edm_sigmas_samples_as_continuous_edm(ex, root, tmp_path):
    """An InstructPix2Pix checkpoint in the original layout carrying CosXL's ``edm_vpred`` sigmas converts
    into a folder whose scheduler is ComfyUI's ModelSamplingContinuousEDM (v_prediction, sigma_data 1)."""
    from safetensors.torch import save_file

    from orchestrator.models.single_file import checkpoint_family

    state = sd_fixtures.to_ldm_checkpoint(root / "tiny-ip2p")
    state |= {"edm_vpred.sigma_min": torch.tensor(0.002), "edm_vpred.sigma_max": torch.tensor(120.0)}
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "edit.safetensors"))
    assert checkpoint_family(tmp_path / "edit.safetensors") == "sd1-ip2p"
    models = ModelManager(ModelRegistry(cache_dir=tmp_path / "cache", allow_paths=False, entries=[
        {"name": "edit", "source": str(tmp_path / "edit.safetensors"), "config": str(root / "tiny-ip2p")}]))
    info = models.load("edit", "info")
    ms = ModelSampling.from_config(dict(info.scheduler))
    assert ms.continuous and ms.prediction == "v_prediction"
    assert abs(float(ms.sigma_min) - 0.002) < 1e-6 and abs(float(ms.sigma_max) - 120.0) < 1e-3
    assert int(info.unet["in_channels"]) == 8
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="edit", prompt="make it snowy", negative_prompt="")
    ip = b.add("sd.ip2p_conditioning", cond=c.cond, image=b.add("image.load", path="photo.png").image,
               model="edit")
    b.add("sd.ksampler", id="k", cond=ip.cond, latent=ip.latent, model="edit", seed=SEED, steps=2, cfg=3.0)
    out = LocalExecutor(ex.catalog, models=models, input_root=root).run(b.build()).outputs["k"]["latent"]
    assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all()
