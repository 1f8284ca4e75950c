"""sd.latent_resize (ComfyUI LatentUpscale/LatentUpscaleBy, bislerp) and sd.outpaint_pad
(ImagePadForOutpaint's feathered mask), and their ComfyUI import and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphs.comfy import export_api, import_result
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.plugins import builtin_comfy_mappings
from plugins.sd.latent_resize import LatentResize, OutpaintPad, bislerp, outpaint_mask, target_size

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

CTX = Context(node="n", block="sd.latent_resize", seed=0)


def comfy_feather(h, w, left, top, right, bottom, feathering):
    """ImagePadForOutpaint's mask inside the image, as its loop computes it (nodes.py)."""
    t = np.zeros((h, w), np.float32)
    if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
        for i in range(h):
            for j in range(w):
                d = min(i if top != 0 else h, h - i if bottom != 0 else h,
                        j if left != 0 else w, w - j if right != 0 else w)
                if d < feathering:
                    v = (feathering - d) / feathering
                    t[i, j] = v * v
    return t


@pytest.mark.parametrize("sides", [(64, 0, 0, 0), (0, 32, 48, 8), (16, 16, 16, 16), (0, 0, 0, 0)])
@pytest.mark.parametrize("feathering", [0, 1, 7, 20, 40])
def test_outpaint_mask_equals_comfyui(sides, feathering):
    left, top, right, bottom = sides
    h, w = 48, 72
    mask = outpaint_mask(h, w, left, top, right, bottom, feathering)
    assert mask.shape == (h + top + bottom, w + left + right)
    inner = mask[top:top + h, left:left + w]
    assert np.array_equal(inner, comfy_feather(h, w, left, top, right, bottom, feathering))
    border = np.ones_like(mask, bool)
    border[top:top + h, left:left + w] = False
    assert (mask[border] == 1).all()


def test_outpaint_pad_block():
    image = np.random.default_rng(0).random((2, 16, 24, 3)).astype(np.float32)
    out = OutpaintPad({"left": 8, "bottom": 4, "feathering": 3}).run(CTX, image=image)
    assert out["image"].shape == (2, 20, 32, 3) and out["mask"].shape == (1, 20, 32)
    assert np.array_equal(out["image"][:, :16, 8:], image) and (out["image"][:, 16:] == 0.5).all()
    with pytest.raises(BlockError, match=r"\[B, H, W, C\]"):
        OutpaintPad({}).run(CTX, image=np.zeros((4, 4)))


@pytest.mark.parametrize(("shape", "width", "height", "scale", "want"), [
    ((64, 96), 1152, 768, None, (96, 144)),  # exact, other aspect: no approximation
    ((64, 64), 0, 768, None, (96, 96)),  # width from the aspect
    ((64, 96), 1000, 0, None, (83, 125)),  # height from the aspect, then // 8
    ((8, 8), 16, 16, None, (8, 8)),  # at least 64 pixels
    ((40, 24), 0, 0, 1.5, (60, 36)),  # LatentUpscaleBy: the sides times the factor, rounded
    ((7, 9), 0, 0, 1.5, (10, 14)),
])
def test_target_sizes_follow_comfyui(shape, width, height, scale, want):
    assert target_size(*shape, width, height, scale) == want
    latent = torch.randn(1, 4, *shape)
    out = LatentResize({"width": width, "height": height, "scale": scale}).run(CTX, latent=latent)["latent"]
    assert tuple(out.shape[-2:]) == want


def test_center_crop_then_resize():
    latent = torch.arange(2 * 8 * 16, dtype=torch.float32).reshape(1, 2, 8, 16)
    out = LatentResize({"width": 64, "height": 64, "crop": "center", "method": "nearest-exact"}).run(
        CTX, latent=latent)["latent"]
    assert torch.equal(out, latent[..., :, 4:12])  # the middle square, same size: unchanged


def test_bislerp():
    x = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(bislerp(x, 5, 7), x)  # same size: the cells themselves
    out = bislerp(x, 11, 3)
    assert out.shape == (2, 4, 11, 3) and out.dtype == x.dtype
    # one channel: every vector points the same way, and ComfyUI keeps the first neighbour then
    pos = x.abs()[:, :1] + 0.1
    lo = F.interpolate(torch.arange(7.0).reshape(1, 1, 1, 7), size=(1, 13), mode="bilinear").floor().long()
    assert torch.equal(bislerp(pos, 5, 13), pos[..., lo[0, 0, 0]])
    # two channels at right angles, halfway: the direction halfway between, the length halfway
    a = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # [1, 2, 1, 2]: (1, 0) then (0, 2)
    mid = bislerp(a, 1, 4)[0, :, 0, 1]  # position 0.25 of the way: ratio 0.25
    angle = torch.atan2(mid[1], mid[0])
    assert float(angle) == pytest.approx(0.25 * np.pi / 2, abs=1e-5)
    assert float(mid.norm()) == pytest.approx(1.25, abs=1e-5)


def _hires(method: str, **upscale) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "10": {"class_type": upscale.pop("class_type", "LatentUpscale"),
               "inputs": {"upscale_method": method, **upscale, "samples": ["5", 0]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["10", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}}}


@pytest.mark.parametrize(("method", "upscale", "params"), [
    ("bislerp", {"width": 768, "height": 512, "crop": "disabled"},
     {"method": "bislerp", "width": 768, "height": 512, "crop": "disabled"}),
    ("bicubic", {"width": 640, "height": 0, "crop": "center"},
     {"method": "bicubic", "width": 640, "height": 0, "crop": "center"}),
    ("bislerp", {"class_type": "LatentUpscaleBy", "scale_by": 1.25}, {"method": "bislerp", "scale": 1.25}),
])
def test_latent_upscale_imports_exactly_and_exports_back(method, upscale, params, catalog):
    result = import_result(_hires(method, **dict(upscale)), catalog=catalog, model_map={"sd15": "tiny-sd"},
                           extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    node = next(n for n in result.graph.nodes.values() if n.block == "sd.latent_resize")
    assert node.params == params
    prompt, problems = export_api(result.graph)
    assert problems == []
    again = import_result(prompt, catalog=catalog, model_map={"sd15": "tiny-sd"},
                          extra_mappings=COMFY_MAPPINGS)
    assert again.graph == result.graph


def test_outpaint_pad_imports_with_its_feathering(catalog):
    prompt = _hires("bislerp", width=512, height=512, crop="disabled")
    prompt["20"] = {"class_type": "LoadImage", "inputs": {"image": "in.png"}}
    prompt["21"] = {"class_type": "ImagePadForOutpaint", "inputs": {
        "left": 128, "top": 0, "right": 64, "bottom": 0, "feathering": 24, "image": ["20", 0]}}
    prompt["22"] = {"class_type": "VAEEncodeForInpaint", "inputs": {
        "grow_mask_by": 8, "pixels": ["21", 0], "vae": ["4", 2], "mask": ["21", 1]}}
    prompt["3"]["inputs"]["latent_image"] = ["22", 0]
    result = import_result(prompt, catalog=catalog, model_map={"sd15": "tiny-sd"},
                           extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    pad = result.graph.nodes["image_pad_for_outpaint_21"]
    assert (pad.block, pad.params) == ("sd.outpaint_pad", {"left": 128, "top": 0, "right": 64, "bottom": 0,
                                                           "feathering": 24})
    prompt_back, problems = export_api(result.graph)
    assert problems == [] and prompt_back["21"]["inputs"]["feathering"] == 24


def comfy_composite(to, src, x, y, feather):
    """LatentComposite's arithmetic as its loop does it (nodes.py), in cells."""
    s = to.clone()
    src = src[:, :, :to.shape[2] - y, :to.shape[3] - x]
    if feather == 0:
        s[:, :, y:y + src.shape[2], x:x + src.shape[3]] = src
        return s
    mask = torch.ones_like(src)
    for t in range(feather):
        if y != 0:
            mask[:, :, t:1 + t, :] *= (1.0 / feather) * (t + 1)
        if y + src.shape[2] < to.shape[2]:
            mask[:, :, mask.shape[2] - 1 - t:mask.shape[2] - t, :] *= (1.0 / feather) * (t + 1)
        if x != 0:
            mask[:, :, :, t:1 + t] *= (1.0 / feather) * (t + 1)
        if x + src.shape[3] < to.shape[3]:
            mask[:, :, :, mask.shape[3] - 1 - t:mask.shape[3] - t] *= (1.0 / feather) * (t + 1)
    region = s[:, :, y:y + src.shape[2], x:x + src.shape[3]]
    s[:, :, y:y + src.shape[2], x:x + src.shape[3]] = src * mask + region * (1 - mask)
    return s


@pytest.mark.parametrize(("x", "y", "feather"),
                         [(0, 0, 0), (64, 32, 0), (32, 16, 16), (0, 48, 24), (120, 0, 8)])
def test_latent_composite_equals_comfyui(x, y, feather):
    from plugins.sd.latent_ops import LatentComposite

    g = torch.Generator().manual_seed(1)
    to, src = torch.randn(1, 4, 12, 16, generator=g), torch.randn(1, 4, 8, 10, generator=g)
    got = LatentComposite({"x": x, "y": y, "feather": feather}).run(CTX, latent=to, source=src)["latent"]
    assert torch.allclose(got, comfy_composite(to, src, x // 8, y // 8, feather // 8))
    assert torch.equal(to, to.clone())  # the input is left alone


def test_latent_blend_and_composite_import_and_export(catalog):
    prompt = _hires("bislerp", width=512, height=512, crop="disabled")
    prompt["30"] = {"class_type": "EmptyLatentImage",
                    "inputs": {"width": 256, "height": 256, "batch_size": 1}}
    prompt["31"] = {"class_type": "LatentComposite", "inputs": {
        "x": 128, "y": 64, "feather": 16, "samples_to": ["10", 0], "samples_from": ["30", 0]}}
    prompt["32"] = {"class_type": "LatentBlend", "inputs": {
        "blend_factor": 0.3, "samples1": ["31", 0], "samples2": ["10", 0]}}
    prompt["3"]["inputs"]["latent_image"] = ["32", 0]
    result = import_result(prompt, catalog=catalog, model_map={"sd15": "tiny-sd"},
                           extra_mappings=COMFY_MAPPINGS)
    assert [p.to_dict() for p in result.problems] == []
    nodes = result.graph.nodes
    assert nodes["latent_composite_31"].params == {"x": 128, "y": 64, "feather": 16}
    assert nodes["latent_blend_32"].params == {"factor": 0.3}
    back, problems = export_api(result.graph)
    assert problems == []
    assert import_result(back, catalog=catalog, model_map={"sd15": "tiny-sd"},
                         extra_mappings=COMFY_MAPPINGS).graph == result.graph
