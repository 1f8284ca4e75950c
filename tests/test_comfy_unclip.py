"""CLIP vision, unCLIP and SDXL revision, as ComfyUI computes them, on tiny models built here.

- a CLIP vision file in ComfyUI's layouts (transformers' and open_clip's) loads by name with its
  config read off the weights, and encodes as the model it was saved from;
- the unCLIP adm (noise augmentation, level embedding, strength, stacking) equals diffusers'
  ``StableUnCLIPImg2ImgPipeline.noise_image_embeddings`` math (DDPM cosine schedule, sinusoidal
  embedding) with ComfyUI's seed (the sampler's minus 10);
- an unCLIP UNet (``class_embed_type='projection'``) samples with that adm as class labels (zeros
  for the negative), SDXL with it in the pooled slot; equal to a hand-built run of the sampler;
- ComfyUI's unCLIP and revision workflows (API and UI format, in ComfyUI's shapes) import with no
  problem and run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from graphs import GraphBuilder, check
from graphs.comfy import import_result
from orchestrator.errors import BlockError
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.models.folders import ModelFolders
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.clip_vision import clip_preprocess
from plugins.sd.common import torch_unet, unet_prompt
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.denoiser import Denoiser
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import prepare_noise
from plugins.sd.ksampling.run import run_sampler
from plugins.sd.unclip import level_embedding, unclip_adm

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

one_torch_thread = sd_fixtures.one_torch_thread
PROMPT = "a lighthouse on a cliff at sunset"


# -- models built here ----------------------------------------------------------------------------


def vision_model(projection: int = 32, seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(hidden_size=128, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, projection_dim=projection, hidden_act="gelu",
                           layer_norm_eps=1e-5)
    return CLIPVisionModelWithProjection(cfg).eval()


def open_clip_layout(model) -> dict:
    """The model's weights as open_clip's ``visual.*`` (in_proj fused, proj transposed)."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    out = {"visual.class_embedding": sd["vision_model.embeddings.class_embedding"],
           "visual.conv1.weight": sd["vision_model.embeddings.patch_embedding.weight"],
           "visual.positional_embedding": sd["vision_model.embeddings.position_embedding.weight"],
           "visual.ln_pre.weight": sd["vision_model.pre_layrnorm.weight"],
           "visual.ln_pre.bias": sd["vision_model.pre_layrnorm.bias"],
           "visual.ln_post.weight": sd["vision_model.post_layernorm.weight"],
           "visual.ln_post.bias": sd["vision_model.post_layernorm.bias"],
           "visual.proj": sd["visual_projection.weight"].t().contiguous()}
    for i in range(model.config.num_hidden_layers):
        a, b = f"vision_model.encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{b}attn.in_proj_{kind}"] = torch.cat([sd[f"{a}self_attn.{p}_proj.{kind}"] for p in "qkv"])
            for theirs, ours in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"),
                                 ("mlp.c_proj", "mlp.fc2"), ("attn.out_proj", "self_attn.out_proj")):
                out[f"{b}{theirs}.{kind}"] = sd[f"{a}{ours}.{kind}"]
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A ComfyUI models folder: clip_vision/ in both layouts, and a tiny SD unCLIP model (diffusers
    folder: tiny-sd with a class-label UNet and tiny-clip-vision as its image encoder)."""
    from diffusers import UNet2DConditionModel

    from orchestrator.models.tiny import init_weights

    d = tmp_path_factory.mktemp("unclip_models")
    (d / "clip_vision").mkdir()
    model = vision_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")},
              str(d / "clip_vision" / "vit-tiny.safetensors"))
    save_file(open_clip_layout(model), str(d / "clip_vision" / "vit-tiny-openclip.safetensors"))
    wide = vision_model(projection=48)
    save_file({k: v.contiguous() for k, v in wide.state_dict().items() if not k.endswith("position_ids")},
              str(d / "clip_vision" / "vit-wide.safetensors"))
    base = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir())
    sd, vision = base.resolve("tiny-sd", build=True).path, base.resolve("tiny-clip-vision", build=True).path
    unclip = d / "tiny-unclip"
    shutil.copytree(sd, unclip)
    config = json.loads((sd / "unet" / "config.json").read_text())
    config.update(class_embed_type="projection", projection_class_embeddings_input_dim=64)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**config)
    init_weights(unet, "tiny-unclip.unet")
    shutil.rmtree(unclip / "unet")
    unet.save_pretrained(str(unclip / "unet"), safe_serialization=True)
    shutil.copytree(vision / "image_encoder", unclip / "image_encoder")
    index = json.loads((unclip / "model_index.json").read_text())
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    (unclip / "model_index.json").write_text(json.dumps(index))
    sd_fixtures.write_png(d / "mountains.png", sd_fixtures.noise_image(64, seed=5))
    sd_fixtures.write_png(d / "sunset.png", sd_fixtures.noise_image(64, seed=6))
    return d


@pytest.fixture(scope="module")
def models(root):
    registry = ModelRegistry(cache_dir=sd_fixtures.tiny_cache_dir(), folders=ModelFolders([root]),
                             entries=[{"name": "tiny-unclip", "source": str(root / "tiny-unclip")}],
                             allow_paths=False)
    return ModelManager(registry)


@pytest.fixture(scope="module")
def ex(catalog, models, root):
    return LocalExecutor(catalog, models=models, input_root=root)


# -- CLIP vision ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vit-tiny.safetensors", "vit-tiny-openclip"])
def test_comfyui_clip_vision_file_loads_by_name_and_encodes_as_its_model(ex, name):
    """Both layouts, no config beside the file: the encoder is the saved one, ComfyUI's outputs."""
    image = sd_fixtures.noise_image(48, seed=1)[None].astype(np.float32) / 255.0
    b = GraphBuilder()
    b.add("sd.clip_vision_encode", id="enc", image=b.add("image.load", path="mountains.png").image,
          model=name, crop="center")
    out = ex.run(b.build()).outputs["enc"]["clip_vision_output"]
    model = vision_model()
    pixels = clip_preprocess(torch.from_numpy(sd_fixtures.noise_image(64, seed=5)[None] / 255.0).float(), 32)
    with torch.no_grad():
        ref = model(pixel_values=pixels, output_hidden_states=True)
    assert out.image_embeds.shape == (1, 32)
    torch.testing.assert_close(out.image_embeds, ref.image_embeds, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.penultimate_hidden_states, ref.hidden_states[-2], atol=1e-5, rtol=1e-5)
    assert image.shape[1] == 48  # (the preprocessing of any size: next test)


def test_clip_preprocess_is_comfyuis():
    """Shorter side to the size (bicubic, antialiased), centre cut, 8-bit quantised, CLIP-normalised;
    crop=False squeezes the whole image."""
    img = torch.rand(2, 40, 64, 3, generator=torch.Generator().manual_seed(0))
    out = clip_preprocess(img, 32)
    scaled = torch.nn.functional.interpolate(img.movedim(-1, 1), size=(32, 51), mode="bicubic",
                                             antialias=True)
    cut = (torch.clip(255 * scaled[:, :, :, 9:41], 0, 255).round() / 255)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    torch.testing.assert_close(out, (cut - mean) / std)
    assert clip_preprocess(img, 32, crop=False).shape == (2, 3, 32, 32)


def test_clip_vision_errors_are_structured(ex, root):
    (root / "clip_vision" / "headless.safetensors").parent.mkdir(exist_ok=True)
    save_file({"vision_model.embeddings.class_embedding": torch.zeros(8)},
              str(root / "clip_vision" / "headless.safetensors"))
    for model, reason in (("headless", "format"), ("../../etc/passwd", None), ("nope", "unknown")):
        b = GraphBuilder()
        b.add("sd.clip_vision_encode", id="enc", image=b.add("image.load", path="mountains.png").image,
              model=model)
        with pytest.raises(BlockError) as err:
            ex.run(b.build())
        d = err.value.to_dict()
        assert d["node"] == "enc" and d["field"] == "params.model", d
        if reason:
            assert d.get("reason") == reason, d
        assert "/etc" not in d["message"] or "never paths" in d["message"]


# -- the adm -----------------------------------------------------------------------------------------


def diffusers_adm(embeds: torch.Tensor, strength: float, augmentation: float, seed: int) -> torch.Tensor:
    """``StableUnCLIPImg2ImgPipeline.noise_image_embeddings``'s math (mean 0, std 1), ComfyUI's seed."""
    from diffusers import DDPMScheduler
    from diffusers.models.embeddings import get_timestep_embedding

    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    level = torch.tensor([round(999 * augmentation)])
    noise = torch.randn(embeds.shape, generator=torch.Generator().manual_seed(seed - 10))
    noised = sched.add_noise(embeds, noise, level)
    emb = get_timestep_embedding(level, embeds.shape[-1], flip_sin_to_cos=True, downscale_freq_shift=0)
    return torch.cat([noised, emb], 1) * strength


def test_unclip_adm_is_comfyuis_noise_augmentation():
    x = torch.randn(1, 32, generator=torch.Generator().manual_seed(3))
    for strength, aug in ((1.0, 0.0), (0.5, 0.4), (2.0, 1.0)):
        one = {"image_embeds": x, "strength": strength, "noise_augmentation": aug}
        got = unclip_adm([one], 123 - 10, 0.05)
        torch.testing.assert_close(got, diffusers_adm(x, strength, aug, 123), atol=2e-5, rtol=1e-4)
    y = torch.randn(1, 32, generator=torch.Generator().manual_seed(4))
    two = unclip_adm([{"image_embeds": x, "strength": 0.5, "noise_augmentation": 0.4},
                      {"image_embeds": y, "strength": 0.5, "noise_augmentation": 0.4}], 113, 0.05)
    total = diffusers_adm(x, 0.5, 0.4, 123) + diffusers_adm(y, 0.5, 0.4, 123)
    torch.testing.assert_close(two, diffusers_adm(total[:, :32], 1.0, 0.05, 123), atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(level_embedding(0, 6), torch.tensor([[1.0, 1, 1, 0, 0, 0]]))


# -- sampling ----------------------------------------------------------------------------------------


def sampled(models, model: str, cond: dict, pick, seed: int, steps: int = 3, cfg: float = 5.0):
    """A hand-built run of the native sampler whose prompt ``pick`` adjusts (the reference)."""
    info, unet = models.load(model, "info"), models.load(model, "unet")
    ms = ModelSampling.from_config(dict(info.scheduler))
    sigmas = schedules.calculate_sigmas(ms, "normal", steps)
    prompt = pick(unet_prompt(cond, batch=1, do_cfg=True, pixel_size=(64, 64), device="cpu", dtype=unet.dtype,
                              node="k"))
    den = Denoiser(torch_unet(unet), ms, prompt, cfg, dtype=unet.dtype, do_uncond=True)
    with torch.no_grad():
        noise = prepare_noise((1, 4, 8, 8), seed)
        return run_sampler("euler", den, ms, sigmas, noise, torch.zeros(1, 4, 8, 8), seed=seed)


def unclip_graph(model: str, strengths: list[float], aug: float, seed: int, zero: bool = False):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model=model, prompt=PROMPT, negative_prompt="blurry")
    cond = c.cond
    if zero:
        cond = b.add("cond.zero_out", id="zero", cond=cond).cond
    for i, s in enumerate(strengths):
        img = b.add("image.load", id=f"img{i}", path=["mountains.png", "sunset.png"][i]).image
        enc = b.add("sd.clip_vision_encode", id=f"enc{i}", image=img,
                    model="tiny-unclip" if model == "tiny-unclip" else "tiny-clip-vision")
        cond = b.add("sd.unclip_conditioning", id=f"un{i}", cond=cond,
                     clip_vision_output=enc.clip_vision_output, strength=s, noise_augmentation=aug).cond
    lat = b.add("sd.empty_latent", id="empty", model=model, width=64, height=64)
    b.add("sd.ksampler", id="k", cond=cond, latent=lat.latent, model=model, seed=seed, steps=3, cfg=5.0,
          sampler="euler")
    return b.build()


@pytest.mark.parametrize("strengths", [[1.0], [0.5, 0.5]])
def test_unclip_model_samples_with_the_image_as_class_labels(ex, models, strengths):
    seed = 77
    out = ex.run(unclip_graph("tiny-unclip", strengths, 0.4, seed)).outputs
    embeds = [out[f"enc{i}"]["clip_vision_output"].image_embeds for i in range(len(strengths))]
    adm = sum(diffusers_adm(e, s, 0.4, seed) for e, s in zip(embeds, strengths, strict=True))
    if len(strengths) > 1:
        adm = diffusers_adm(adm[:, :32], 1.0, 0.05, seed)

    def with_labels(p):
        p.added = {"class_labels": torch.cat([torch.zeros(1, 64), adm])}
        return p

    ref = sampled(models, "tiny-unclip", out["cond"]["cond"], with_labels, seed)
    assert float((out["k"]["latent"] - ref).abs().max()) <= 1e-4
    plain = ex.run(unclip_graph("tiny-unclip", [0.0], 0.4, seed)).outputs["k"]["latent"]  # strength 0: zeros
    zeros = sampled(models, "tiny-unclip", out["cond"]["cond"],
                    lambda p: setattr(p, "added", {"class_labels": torch.zeros(2, 64)}) or p, seed)
    assert float((plain - zeros).abs().max()) <= 1e-4
    assert float((plain - out["k"]["latent"]).abs().max()) > 1e-3


def test_sdxl_revision_puts_the_image_in_the_pooled_slot(ex, models):
    seed = 5
    out = ex.run(unclip_graph("tiny-sdxl", [0.75, 0.75], 0.0, seed, zero=True)).outputs
    e0, e1 = (out[f"enc{i}"]["clip_vision_output"].image_embeds for i in range(2))
    total = diffusers_adm(e0, 0.75, 0.0, seed) + diffusers_adm(e1, 0.75, 0.0, seed)
    pooled = diffusers_adm(total[:, :32], 1.0, 0.0, seed)[:, :32]

    def revision(p):
        p.added = {**p.added, "text_embeds": torch.cat([p.added["text_embeds"][:1], pooled])}
        return p

    ref = sampled(models, "tiny-sdxl", out["zero"]["cond"], revision, seed)
    assert float((out["k"]["latent"] - ref).abs().max()) <= 1e-4


def test_unclip_errors_are_structured(ex, root):
    b = GraphBuilder()  # an image embedding on a plain SD 1.x model: neither unCLIP nor SDXL
    c = b.add("sd.encode_prompt", model="tiny-sd", prompt=PROMPT, negative_prompt="")
    enc = b.add("sd.clip_vision_encode", image=b.add("image.load", path="mountains.png").image)
    un = b.add("sd.unclip_conditioning", cond=c.cond, clip_vision_output=enc.clip_vision_output)
    lat = b.add("sd.empty_latent", model="tiny-sd", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=un.cond, latent=lat.latent, model="tiny-sd", steps=1)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    assert err.value.to_dict()["node"] == "k" and err.value.to_dict()["field"] == "inputs.cond"
    b = GraphBuilder()  # a CLIP vision model of another width than the unCLIP model's (48, not 32)
    c = b.add("sd.encode_prompt", model="tiny-unclip", prompt=PROMPT, negative_prompt="")
    enc = b.add("sd.clip_vision_encode", image=b.add("image.load", path="mountains.png").image,
                model="vit-wide")
    un = b.add("sd.unclip_conditioning", cond=c.cond, clip_vision_output=enc.clip_vision_output)
    lat = b.add("sd.empty_latent", model="tiny-unclip", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=un.cond, latent=lat.latent, model="tiny-unclip", steps=1)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    d = err.value.to_dict()
    assert (d["node"], d["field"], d["value"], d["bound"]) == ("k", "inputs.cond", 48, 32), d
    b = GraphBuilder()  # unCLIP with area conditioning: not composed yet, refused rather than ignored
    c = b.add("sd.encode_prompt", model="tiny-unclip", prompt=PROMPT, negative_prompt="")
    area = b.add("cond.set_area", cond=c.cond, width=32, height=32)
    lat = b.add("sd.empty_latent", model="tiny-unclip", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=area.cond, latent=lat.latent, model="tiny-unclip", steps=1)
    with pytest.raises(BlockError) as err:
        ex.run(b.build())
    assert (err.value.to_dict()["node"], err.value.to_dict()["field"]) == ("k", "inputs.cond")
    b = GraphBuilder()  # a conditioning where the CLIP vision output goes: refused before any work
    c = b.add("sd.encode_prompt", model="tiny-unclip", prompt=PROMPT, negative_prompt="")
    b.add("sd.unclip_conditioning", id="un", cond=c.cond, clip_vision_output=c.cond)
    [problem] = check(b.build(), ex.catalog)
    assert (problem.node, problem.field) == ("un", "inputs.clip_vision_output")


# -- ComfyUI workflows -------------------------------------------------------------------------------


def revision_api() -> dict:
    """ComfyUI's sdxl_revision_zero_positive example, API format (two images, zeroed text)."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 133632471276133, "steps": 2, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["40", 0], "positive": ["37", 0], "negative": ["6", 0],
            "latent_image": ["5", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["40", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["40", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        "13": {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["39", 0], "image": ["34", 0]}},
        "19": {"class_type": "unCLIPConditioning", "inputs": {
            "strength": 0.75, "noise_augmentation": 0.0, "conditioning": ["42", 0],
            "clip_vision_output": ["13", 0]}},
        "34": {"class_type": "LoadImage", "inputs": {"image": "mountains.png", "upload": "image"}},
        "36": {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["39", 0], "image": ["38", 0],
                                                            "crop": "none"}},
        "37": {"class_type": "unCLIPConditioning", "inputs": {
            "strength": 0.75, "noise_augmentation": 0.0, "conditioning": ["19", 0],
            "clip_vision_output": ["36", 0]}},
        "38": {"class_type": "LoadImage", "inputs": {"image": "sunset.png", "upload": "image"}},
        "39": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "clip_vision_g.safetensors"}},
        "40": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "42": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["6", 0]}},
    }


def unclip_ui() -> dict:
    """ComfyUI's unclip_example_multiple, UI format (unCLIPCheckpointLoader's CLIP_VISION output)."""
    def node(id, type, inputs, outputs, widgets):
        return {"id": id, "type": type, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": id,
                "mode": 0,
                "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
                "outputs": [{"name": t, "type": t, "links": links, "slot_index": i}
                            for i, (t, links) in enumerate(outputs)],
                "properties": {"Node name for S&R": type}, "widgets_values": widgets}

    nodes = [
        node(32, "unCLIPCheckpointLoader", [], [("MODEL", [1]), ("CLIP", [2, 3]), ("VAE", [4]),
                                                 ("CLIP_VISION", [5, 6])], ["sd21-unclip-h.ckpt"]),
        node(6, "CLIPTextEncode", [("clip", "CLIP", 2)], [("CONDITIONING", [7])], ["beautiful photograph"]),
        node(7, "CLIPTextEncode", [("clip", "CLIP", 3)], [("CONDITIONING", [8])], ["bad hands"]),
        node(34, "LoadImage", [], [("IMAGE", [9]), ("MASK", None)], ["mountains.png", "image"]),
        node(38, "LoadImage", [], [("IMAGE", [10]), ("MASK", None)], ["sunset.png", "image"]),
        node(13, "CLIPVisionEncode", [("clip_vision", "CLIP_VISION", 5), ("image", "IMAGE", 9)],
             [("CLIP_VISION_OUTPUT", [11])], ["center"]),
        node(36, "CLIPVisionEncode", [("clip_vision", "CLIP_VISION", 6), ("image", "IMAGE", 10)],
             [("CLIP_VISION_OUTPUT", [12])], ["center"]),
        node(19, "unCLIPConditioning", [("conditioning", "CONDITIONING", 7),
                                        ("clip_vision_output", "CLIP_VISION_OUTPUT", 11)],
             [("CONDITIONING", [13])], [0.5, 0.4]),
        node(37, "unCLIPConditioning", [("conditioning", "CONDITIONING", 13),
                                        ("clip_vision_output", "CLIP_VISION_OUTPUT", 12)],
             [("CONDITIONING", [14])], [0.5, 0.4]),
        node(5, "EmptyLatentImage", [], [("LATENT", [15])], [64, 64, 1]),
        node(3, "KSampler", [("model", "MODEL", 1), ("positive", "CONDITIONING", 14),
                             ("negative", "CONDITIONING", 8), ("latent_image", "LATENT", 15)],
             [("LATENT", [16])], [363144844778993, "fixed", 2, 8.0, "uni_pc_bh2", "normal", 1.0]),
        node(8, "VAEDecode", [("samples", "LATENT", 16), ("vae", "VAE", 4)], [("IMAGE", [17])], []),
        node(9, "SaveImage", [("images", "IMAGE", 17)], [], ["ComfyUI"]),
    ]
    links = [[1, 32, 0, 3, 0, "MODEL"], [2, 32, 1, 6, 0, "CLIP"], [3, 32, 1, 7, 0, "CLIP"],
             [4, 32, 2, 8, 1, "VAE"], [5, 32, 3, 13, 0, "CLIP_VISION"], [6, 32, 3, 36, 0, "CLIP_VISION"],
             [7, 6, 0, 19, 0, "CONDITIONING"], [8, 7, 0, 3, 2, "CONDITIONING"], [9, 34, 0, 13, 1, "IMAGE"],
             [10, 38, 0, 36, 1, "IMAGE"], [11, 13, 0, 19, 1, "CLIP_VISION_OUTPUT"],
             [12, 36, 0, 37, 1, "CLIP_VISION_OUTPUT"], [13, 19, 0, 37, 0, "CONDITIONING"],
             [14, 37, 0, 3, 1, "CONDITIONING"], [15, 5, 0, 3, 3, "LATENT"], [16, 3, 0, 8, 0, "LATENT"],
             [17, 8, 0, 9, 0, "IMAGE"]]
    return {"last_node_id": 38, "last_link_id": 17, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


@pytest.mark.parametrize("which", ["revision_api", "unclip_ui"])
def test_comfyui_unclip_workflows_import_clean_and_run(which, catalog, models, root, tmp_path):
    source = revision_api() if which == "revision_api" else unclip_ui()
    model_map = {"sd_xl_base_1.0.safetensors": "tiny-sdxl", "clip_vision_g.safetensors": "vit-tiny",
                 "sd21-unclip-h.ckpt": "tiny-unclip"}
    result = import_result(json.dumps(source).encode(), catalog=catalog, model_map=model_map,
                           extra_mappings=COMFY_MAPPINGS)
    assert [e.to_dict() for e in result.errors] == []
    assert [p.to_dict() for p in result.problems] == []
    graph = result.graph
    assert check(graph, catalog) == []
    blocks = sorted(n.block for n in graph.nodes.values())
    assert blocks.count("sd.unclip_conditioning") == 2 and blocks.count("sd.clip_vision_encode") == 2
    run = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path).run(graph)
    [saved] = run.files
    assert Path(saved["path"]).is_file()
    unclips = [k for k, n in graph.nodes.items() if n.block == "sd.unclip_conditioning"]
    assert all("unclip" in run.outputs[k]["cond"] for k in unclips)


# -- single-file unCLIP checkpoints -------------------------------------------------------------------


def test_unclip_checkpoint_families_are_told_by_their_adm_width():
    from orchestrator.models.detect import UNET, V2_ATTN, Header, checkpoint_family

    def header(adm: int | None) -> Header:
        shapes = {V2_ATTN: (320, 1024), f"{UNET}input_blocks.0.0.weight": (320, 4, 3, 3), "v_pred": ()}
        if adm is not None:
            shapes[f"{UNET}label_emb.0.0.weight"] = (1280, adm)
        return Header({k: ("F32", s, (0, 0)) for k, s in shapes.items()}, {}, 0, 0)

    assert checkpoint_family(header(2048))[0] == "sd2-unclip-h"
    assert checkpoint_family(header(1536))[0] == "sd2-unclip-l"
    assert checkpoint_family(header(None))[0] == "sd2-v"


def test_single_file_unclip_checkpoint_converts_with_its_clip_vision(ex, root, tmp_path):
    """An unCLIP checkpoint in the original layout (UNet label_emb, open_clip vision tower under
    embedder.model.visual.) converts into a folder whose image encoder is that tower, as ComfyUI's
    unCLIPCheckpointLoader gives it, and samples."""
    config = tmp_path / "config"
    shutil.copytree(root / "tiny-unclip", config, ignore=shutil.ignore_patterns("image_encoder"))
    index = json.loads((config / "model_index.json").read_text())
    index.pop("image_encoder")
    (config / "model_index.json").write_text(json.dumps(index))
    vision = vision_model(seed=3)
    state = sd_fixtures.to_ldm_checkpoint(root / "tiny-unclip")
    state |= {f"embedder.model.{k}": v for k, v in open_clip_layout(vision).items()}
    assert "model.diffusion_model.label_emb.0.0.weight" in state
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "unclip.safetensors"))
    registry = ModelRegistry(cache_dir=tmp_path / "cache", allow_paths=False, entries=[
        {"name": "unclip-file", "source": str(tmp_path / "unclip.safetensors"), "config": str(config)}])
    models = ModelManager(registry)
    encoder = models.load("unclip-file", "image_encoder")
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = encoder(pixel_values=pixels).image_embeds, vision(pixel_values=pixels).image_embeds
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    unet, folder_unet = models.load("unclip-file", "unet"), ex.models.load("tiny-unclip", "unet")
    for layer in ("linear_1", "linear_2"):
        torch.testing.assert_close(getattr(unet.class_embedding, layer).weight,
                                   getattr(folder_unet.class_embedding, layer).weight)
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="unclip-file", prompt=PROMPT, negative_prompt="")
    enc = b.add("sd.clip_vision_encode", image=b.add("image.load", path="mountains.png").image,
                model="unclip-file")
    un = b.add("sd.unclip_conditioning", cond=c.cond, clip_vision_output=enc.clip_vision_output,
               noise_augmentation=0.1)
    lat = b.add("sd.empty_latent", model="unclip-file", width=64, height=64)
    b.add("sd.ksampler", id="k", cond=un.cond, latent=lat.latent, model="unclip-file", steps=2)
    out = LocalExecutor(ex.catalog, models=models, input_root=root).run(b.build()).outputs
    assert out["k"]["latent"].shape == (1, 4, 8, 8) and torch.isfinite(out["k"]["latent"]).all()


def test_comfyui_unclip_workflow_on_a_checkpoint_file_in_a_models_folder(catalog, root, tmp_path):
    """ComfyUI's unCLIP example on an unCLIP checkpoint that is only a file in checkpoints/ (its configs
    in the ``.config`` sidecar, as tiny models need): MODEL, CLIP, VAE and CLIP_VISION all from it."""
    folder = tmp_path / "ComfyUI" / "models"
    ckpts = folder / "checkpoints"
    ckpts.mkdir(parents=True)
    shutil.copytree(root / "tiny-unclip", ckpts / "sd21-unclip-h.config",
                    ignore=shutil.ignore_patterns("image_encoder", "*.safetensors"))
    index = json.loads((ckpts / "sd21-unclip-h.config" / "model_index.json").read_text())
    index.pop("image_encoder")
    (ckpts / "sd21-unclip-h.config" / "model_index.json").write_text(json.dumps(index))
    state = sd_fixtures.to_ldm_checkpoint(root / "tiny-unclip")
    state |= {f"embedder.model.{k}": v for k, v in open_clip_layout(vision_model(seed=4)).items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(ckpts / "sd21-unclip-h.safetensors"))
    models = ModelManager(ModelRegistry(cache_dir=tmp_path / "cache", folders=ModelFolders([folder]),
                                        allow_paths=False))
    result = import_result(json.dumps(unclip_ui()).encode(), catalog=catalog,
                           model_map={"sd21-unclip-h.ckpt": "sd21-unclip-h"}, extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    ex = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path / "out")
    run = ex.run(result.graph)
    [saved] = run.files
    assert Path(saved["path"]).is_file()
    b = GraphBuilder()  # a checkpoint without a vision tower named as a CLIP vision model: a structured error
    b.add("sd.clip_vision_encode", id="enc", image=b.add("image.load", path="mountains.png").image,
          model="tiny-sd")
    with pytest.raises(BlockError) as err:
        LocalExecutor(catalog, models=models, input_root=root).run(b.build())
    assert (err.value.to_dict()["node"], err.value.to_dict()["field"]) == ("enc", "params.model")
