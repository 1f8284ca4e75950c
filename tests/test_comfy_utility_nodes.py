"""ComfyUI's image, mask and latent utility nodes: each block against what ComfyUI's node computes
(worked by hand, or by an independent route: scipy's correlation for the filters, Pillow for lanczos),
bad input as structured errors, and workflows using the nodes (API and UI format) importing with no
problem and running on tiny-sd. VAEEncodeForInpaint read by a non-sampler, and its noise mask carried
through latent nodes to the sampler, exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graphs import check
from graphs.comfy import import_result
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.executor import LocalExecutor
from plugins.image.batches import Batch, BatchRepeat, FromBatch
from plugins.image.comfy_scale import Scale, ScaleTotalPixels, total_pixels_size
from plugins.image.filters import Blur, Invert, Mix, Sharpen, gaussian_kernel
from plugins.image.mask_ops import MaskComposite, MaskCrop, MaskExpand, MaskFeather, MaskSolid, MaskThreshold
from plugins.image.regions import CompositeMasked, CropClamped
from plugins.sd.inpaint_encode import inpaint_pixels
from plugins.sd.latent_math import (
    LatentAdd,
    LatentCompositeMasked,
    LatentConcat,
    LatentInterpolate,
    LatentMultiply,
    LatentSeedBehavior,
)
from plugins.sd.latent_transform import LatentCrop, LatentFlip, LatentRotate, NoiseMaskBatch

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures
from comfy_ui_builder import UIGraph

models = sd_fixtures.models
model_registry = sd_fixtures.model_registry
one_torch_thread = sd_fixtures.one_torch_thread
MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings
MODELS = {"v1-5-pruned-emaonly": "tiny-sd"}
CKPT = "v1-5-pruned-emaonly.safetensors"


def ctx(block: str = "test") -> Context:
    return Context(node="n", block=block, seed=0)


def rng_image(b: int, h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((b, h, w, c)).astype(np.float32)


# -- masks ---------------------------------------------------------------------------------------


def test_solid_threshold_and_crop_masks():
    solid = MaskSolid({"value": 0.25, "width": 5, "height": 3}).run(ctx())["mask"]
    assert solid.shape == (1, 3, 5) and solid.dtype == np.float32 and np.all(solid == 0.25)
    m = np.array([[[0.1, 0.5, 0.51, 0.9]]], np.float32)
    assert MaskThreshold({"value": 0.5}).run(ctx(), mask=m)["mask"].tolist() == [[[0.0, 0.0, 1.0, 1.0]]]
    big = np.arange(30, dtype=np.float32).reshape(1, 5, 6)
    cut = MaskCrop({"x": 4, "y": 3, "width": 10, "height": 1}).run(ctx(), mask=big)["mask"]
    assert cut.tolist() == [[[22.0, 23.0]]]  # cut at the mask's edge, as mask[:, y:y+h, x:x+w]


def test_feather_mask_is_comfyuis_including_its_minus_zero_index():
    out = MaskFeather({"left": 2, "right": 2}).run(ctx(), mask=np.ones((1, 1, 6), np.float32))["mask"]
    # left: columns 0, 1 times 1/2, 2/2; right: columns -0 (= 0!), -1 times 1/2, 2/2 (ComfyUI's loop)
    assert out[0, 0].tolist() == [0.25, 1.0, 1.0, 1.0, 1.0, 1.0]
    out = MaskFeather({"top": 4, "bottom": 0}).run(ctx(), mask=np.ones((2, 5, 1), np.float32))["mask"]
    assert out[1, :, 0].tolist() == [0.25, 0.5, 0.75, 1.0, 1.0]
    wide = MaskFeather({"left": 100}).run(ctx(), mask=np.ones((1, 1, 4), np.float32))["mask"]  # clamped to 4
    assert wide[0, 0].tolist() == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(("op", "expected"), [
    ("multiply", [0.0, 0.5 * 0.25, 0.5 * 0.75]),
    ("add", [0.0, 0.75, 1.0]),  # 0.5 + 0.75 clamped to 1
    ("subtract", [0.0, 0.25, 0.0]),  # 0.5 - 0.75 clamped to 0
    ("and", [0.0, 0.0, 0.0]),  # round(0.5) = 0 (half to even), round(0.25) = 0, round(0.75) = 1
    ("or", [0.0, 0.0, 1.0]),
    ("xor", [0.0, 0.0, 1.0]),
])
def test_mask_composite_every_operation(op, expected):
    dst = np.array([[[0.0, 0.5, 0.5]]], np.float32)
    src = np.array([[[0.25, 0.75, 0.9, 0.9]]], np.float32)  # placed at x=1: two columns visible
    out = MaskComposite({"x": 1, "y": 0, "operation": op}).run(ctx(), destination=dst, source=src)["mask"]
    assert out[0, 0].tolist() == pytest.approx(expected)


def test_mask_composite_of_and_or_with_ones():
    dst = np.array([[[1.0, 0.0, 0.6]]], np.float32)
    src = np.array([[[1.0, 1.0, 0.0]]], np.float32)

    def run(op: str) -> list[float]:
        return MaskComposite({"operation": op}).run(ctx(), destination=dst, source=src)["mask"][0, 0].tolist()

    assert (run("and"), run("or"), run("xor")) == ([1, 0, 0], [1, 1, 1], [0, 1, 1])


def test_grow_mask_steps_a_3x3_kernel_like_comfyui():
    dot = np.zeros((1, 9, 9), np.float32)
    dot[0, 4, 4] = 1.0
    diamond = MaskExpand({"expand": 2, "tapered_corners": True}).run(ctx(), mask=dot)["mask"]
    assert int(diamond.sum()) == 13  # |dx| + |dy| <= 2: a cross kernel twice
    square = MaskExpand({"expand": 2, "tapered_corners": False}).run(ctx(), mask=dot)["mask"]
    assert int(square.sum()) == 25 and square[0, 2:7, 2:7].min() == 1.0
    shrunk = MaskExpand({"expand": -1, "tapered_corners": False}).run(ctx(), mask=square)["mask"]
    assert int(shrunk.sum()) == 9
    soft = np.zeros((1, 3, 3), np.float32)
    soft[0, 1, 1] = 0.4  # grey dilation keeps values (no thresholding)
    assert MaskExpand({"expand": 1}).run(ctx(), mask=soft)["mask"][0].tolist() == \
        [[0.0, pytest.approx(0.4), 0.0], [pytest.approx(0.4)] * 3, [0.0, pytest.approx(0.4), 0.0]]
    huge = MaskExpand({"expand": 16384}).run(ctx(), mask=dot)["mask"]  # stops once nothing changes
    assert huge.min() == 1.0


# -- images ---------------------------------------------------------------------------------------


def _correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Per-channel correlation with reflection at the edges (scipy's 'mirror' = torch's 'reflect')."""
    import scipy.ndimage

    out = np.empty_like(image)
    for b in range(image.shape[0]):
        for c in range(image.shape[-1]):
            channel = image[b, ..., c].astype(np.float64)
            out[b, ..., c] = scipy.ndimage.correlate(channel, kernel, mode="mirror")
    return out


def test_blur_and_sharpen_equal_scipy_with_comfyuis_kernels():
    image = rng_image(2, 12, 10)
    blurred = Blur({"blur_radius": 3, "sigma": 0.7}).run(ctx(), image=image)["image"]
    kernel = gaussian_kernel(7, 0.7).double().numpy()
    x = np.linspace(-1, 1, 7)
    by_hand = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 0.7 ** 2))
    assert np.allclose(kernel, by_hand / by_hand.sum())
    assert np.abs(blurred - _correlate(image, kernel)).max() < 1e-5
    sharp = Sharpen({"sharpen_radius": 2, "sigma": 1.5, "alpha": 0.8}).run(ctx(), image=image)["image"]
    k = gaussian_kernel(5, 1.5).double().numpy() * -(0.8 * 10)
    k[2, 2] = k[2, 2] - k.sum() + 1.0
    assert np.abs(sharp - np.clip(_correlate(image, k), 0, 1)).max() < 1e-5
    assert Invert().run(ctx(), image=image)["image"] == pytest.approx(1.0 - image)


def test_scale_to_total_pixels_sizes_and_methods():
    assert total_pixels_size(512, 768, 1.0, 1) == (836, 1254)  # sqrt(2**20 / (512 * 768)) = 1.633
    assert total_pixels_size(512, 768, 1.0, 64) == (832, 1280)
    image = rng_image(1, 40, 60)
    scale = ScaleTotalPixels({"megapixels": 0.01, "upscale_method": "bilinear"})
    out = scale.run(ctx(), image=image)["image"]
    h, w = total_pixels_size(40, 60, 0.01, 1)
    assert (h, w) == (84, 125)
    assert out.shape == (1, h, w, 3)
    nchw = torch.from_numpy(image).movedim(-1, 1)
    ref = torch.nn.functional.interpolate(nchw, size=(h, w), mode="bilinear")
    assert np.abs(out - ref.movedim(1, -1).numpy()).max() < 1e-6
    lz = ScaleTotalPixels({"megapixels": 0.01, "upscale_method": "lanczos"}).run(ctx(), image=image)["image"]
    pil = Image.fromarray(np.clip(255.0 * image[0], 0, 255).astype(np.uint8)).resize((w, h), Image.LANCZOS)
    assert np.array_equal(np.round(lz[0] * 255).astype(np.uint8), np.asarray(pil))  # 8-bit, as ComfyUI's


def test_image_scale_is_comfyuis_common_upscale_not_an_antialiased_resize():
    image = rng_image(2, 30, 40)
    nchw = torch.from_numpy(image).movedim(-1, 1)
    out = Scale({"width": 20, "height": 0, "upscale_method": "bilinear"}).run(ctx(), image=image)["image"]
    ref = torch.nn.functional.interpolate(nchw, size=(15, 20), mode="bilinear").movedim(1, -1).numpy()
    assert out.shape == (2, 15, 20, 3) and np.abs(out - ref).max() < 1e-6  # no antialiasing: every 2nd pixel
    square = Scale({"width": 16, "height": 16, "crop": "center", "upscale_method": "area"})
    out = square.run(ctx(), image=image)
    ref = torch.nn.functional.interpolate(nchw[..., 5:35], size=(16, 16), mode="area").movedim(1, -1).numpy()
    assert np.abs(out["image"] - ref).max() < 1e-6  # 40 wide cut to 30 in the middle, then area
    out = Scale({"scale_by": 1.5, "upscale_method": "lanczos"}).run(ctx(), image=image)["image"]
    pil = Image.fromarray(np.clip(255.0 * image[1], 0, 255).astype(np.uint8)).resize((60, 45), Image.LANCZOS)
    assert np.array_equal(np.round(out[1] * 255).astype(np.uint8), np.asarray(pil))
    same = Scale({"width": 0, "height": 0}).run(ctx(), image=image)["image"]
    assert np.array_equal(same, image)


@pytest.mark.parametrize(("mode", "formula"), [
    ("normal", lambda a, b: b), ("multiply", lambda a, b: a * b),
    ("screen", lambda a, b: 1 - (1 - a) * (1 - b)),
    ("overlay", lambda a, b: np.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))),
    ("soft_light", lambda a, b: np.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (
        np.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, np.sqrt(a)) - a))),
    ("difference", lambda a, b: a - b),  # signed, as ComfyUI's (then clamped)
])
def test_image_blend_is_comfyuis(mode, formula):
    a, b = rng_image(2, 8, 8, seed=3), rng_image(2, 8, 8, seed=4)
    out = Mix({"blend_factor": 0.7, "blend_mode": mode}).run(ctx(), image1=a, image2=b)["image"]
    assert np.abs(out - np.clip(a * 0.3 + formula(a, b) * 0.7, 0, 1)).max() < 1e-5
    wide = rng_image(1, 8, 12, seed=5)  # another size: bicubic to image1's, its middle 8x8 first
    out = Mix({"blend_factor": 1.0, "blend_mode": "normal"}).run(ctx(), image1=a, image2=wide)["image"]
    assert out.shape == a.shape and np.abs(out - np.clip(wide[:, :, 2:10], 0, 1)).max() < 1e-5


def test_image_batches():
    a, b = rng_image(1, 8, 8, seed=1), rng_image(2, 8, 12, 4, seed=2)
    out = Batch().run(ctx(), image1=a, image2=b)["image"]
    assert out.shape == (3, 8, 8, 4)  # a gets an opaque alpha; b cut to 8x8 in its middle and resized
    assert np.all(out[0, ..., 3] == 1.0) and np.array_equal(out[0, ..., :3], a[0])
    assert np.allclose(out[1:], b[:, :, 2:10])  # a centre cut of the same size: interpolation is identity
    rep = BatchRepeat({"amount": 3}).run(ctx(), image=b)["image"]
    assert rep.shape == (6, 8, 12, 4) and np.array_equal(rep[2], b[0]) and np.array_equal(rep[5], b[1])
    take = FromBatch({"batch_index": 5, "length": 3}).run(ctx(), image=rep)["image"]
    assert take.shape[0] == 1 and np.array_equal(take[0], rep[5])  # both clamped to the batch


def test_crop_clamped_and_composite_masked():
    image = rng_image(1, 10, 10)
    cut = CropClamped({"x": 50, "y": 7, "width": 4, "height": 4}).run(ctx(), image=image)["image"]
    assert cut.shape == (1, 3, 1, 3) and np.array_equal(cut[0], image[0, 7:10, 9:10])
    dst, src = np.zeros((2, 6, 6, 3), np.float32), np.ones((1, 4, 4, 3), np.float32)
    out = CompositeMasked({"x": 4, "y": 3}).run(ctx(), destination=dst, source=src)["image"]
    expected = np.zeros((6, 6))
    expected[3:6, 4:6] = 1.0  # rows 3..6 and columns 4..7 of the destination, cut to it
    assert out.shape == (2, 6, 6, 3) and np.array_equal(out[1, ..., 0], expected)
    half = np.full((1, 2, 2), 0.5, np.float32)  # resized (bilinear) to the source: 0.5 everywhere
    out = CompositeMasked({"x": 0, "y": 0}).run(ctx(), destination=dst, source=src, mask=half)["image"]
    assert out[0, :4, :4].min() == 0.5 and out[0, 4:, 4:].max() == 0.0
    rgba = np.zeros((1, 6, 6, 4), np.float32)
    out = CompositeMasked({"x": 1, "y": 1}).run(ctx(), destination=rgba, source=src)["image"]
    assert out[0, 1, 1].tolist() == [1.0, 1.0, 1.0, 1.0]  # the RGB source got an opaque alpha


# -- latents --------------------------------------------------------------------------------------


def test_latent_crop_flip_rotate():
    lat = torch.arange(2 * 4 * 10 * 12, dtype=torch.float32).reshape(2, 4, 10, 12)
    cut = LatentCrop({"width": 64, "height": 64, "x": 80, "y": 16}).run(ctx(), latent=lat)["latent"]
    assert torch.equal(cut, lat[:, :, 2:10, 4:12])  # x=10 cells moved back to 12 - 8 = 4
    flipped = LatentFlip({"flip_method": "x-axis: vertically"}).run(ctx(), latent=lat)["latent"]
    assert torch.equal(flipped[:, :, 0], lat[:, :, -1])
    flipped = LatentFlip({"flip_method": "y-axis: horizontally"}).run(ctx(), latent=lat)["latent"]
    assert torch.equal(flipped[..., 0], lat[..., -1])
    turned = LatentRotate({"rotation": "90 degrees"}).run(ctx(), latent=lat)["latent"]
    assert turned.shape == (2, 4, 12, 10)
    assert turned[0, 0, 0, -1] == lat[0, 0, 0, 0]  # clockwise: the top-left corner goes to the top right
    back = LatentRotate({"rotation": "270 degrees"}).run(ctx(), latent=turned)["latent"]
    assert torch.equal(back, lat)


def test_latent_arithmetic():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 6, 6, generator=g), torch.randn(1, 4, 6, 6, generator=g)
    assert torch.allclose(LatentAdd({"op": "add"}).run(ctx(), latent=a, other=b)["latent"], a + b)
    assert torch.allclose(LatentAdd({"op": "subtract"}).run(ctx(), latent=a, other=b)["latent"], a - b)
    assert torch.allclose(LatentMultiply({"multiplier": -2.5}).run(ctx(), latent=a)["latent"], a * -2.5)
    one = LatentInterpolate({"ratio": 1.0}).run(ctx(), latent=a, other=b)["latent"]
    assert torch.allclose(one, a, atol=1e-5)
    half = LatentInterpolate({"ratio": 0.5}).run(ctx(), latent=a, other=b)["latent"]
    norms = torch.linalg.vector_norm(half, dim=1)  # each cell's length is the mean of the two lengths
    mean = (torch.linalg.vector_norm(a, dim=1) + torch.linalg.vector_norm(b, dim=1)) / 2
    assert torch.allclose(norms, mean, atol=1e-5)
    dst, src = torch.zeros(1, 4, 8, 8), torch.ones(1, 4, 4, 4)
    out = LatentCompositeMasked({"x": 48, "y": 8}).run(ctx(), destination=dst, source=src)["latent"]
    assert out[0, 0, 1:5, 6:8].min() == 1.0 and out.sum() == 4 * 4 * 2


def test_a_noise_mask_through_the_batch_nodes_is_comfyuis():
    lat = torch.zeros(3, 4, 2, 2)
    masks = np.stack([np.full((4, 4), v, np.float32) for v in (0.1, 0.2)])  # 2 masks for 3 latents
    take = NoiseMaskBatch({"mode": "from_batch", "start": 1, "length": 5}).run(ctx(), mask=masks, latent=lat)
    assert take["mask"][:, 0, 0].tolist() == pytest.approx([0.2, 0.1])  # repeated to 3 (.1 .2 .1), then 1:3
    rep = NoiseMaskBatch({"mode": "repeat", "amount": 2}).run(ctx(), mask=masks, latent=lat)["mask"]
    assert rep[:, 0, 0].tolist() == pytest.approx([0.1, 0.2, 0.1, 0.2])  # the masks as they are, repeated
    one = NoiseMaskBatch({"mode": "from_batch", "start": 2}).run(ctx(), mask=masks[:1], latent=lat)["mask"]
    assert one.shape == (1, 4, 4)  # a single mask covers every latent


def test_latent_concat_and_seed_behavior():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 6, 6, generator=g), torch.randn(1, 4, 6, 10, generator=g)
    out = LatentConcat().run(ctx(), latent=a, other=b)["latent"]
    assert out.shape == (3, 4, 6, 6) and torch.equal(out[:2], a)
    assert torch.allclose(out[2:], b[..., 2:8])  # cut to 6 wide in the middle, then (identity) bilinear
    assert LatentSeedBehavior({"seed_behavior": "random"}).run(ctx(), latent=a)["latent"] is a


def _seeded(extra: dict, latent: list) -> dict:
    prompt = {k: v for k, v in _inpaint_api("3").items() if k in ("4", "6", "7", "8", "9")}
    prompt["8"]["inputs"]["samples"] = ["3", 0]
    prompt["5"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}}
    prompt["15"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}
    prompt["3"] = {"class_type": "KSampler", "inputs": {
        "seed": 5, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": latent}}
    return {**prompt, **extra}


@pytest.mark.parametrize(("extra", "record"), [
    ({"10": {"class_type": "LatentBatchSeedBehavior", "inputs": {"seed_behavior": "fixed",
                                                                 "samples": ["5", 0]}}}, [0, 0]),
    ({"10": {"class_type": "LatentBatchSeedBehavior", "inputs": {"seed_behavior": "random",
                                                                 "samples": ["5", 0]}}}, None),
    ({"10": {"class_type": "LatentBatch", "inputs": {"samples1": ["5", 0], "samples2": ["15", 0]}}},
     [0, 1, 0]),  # each part keeps its own indices: the appended latent gets noise 0 again
    ({"11": {"class_type": "LatentFromBatch", "inputs": {"batch_index": 1, "length": 1,
                                                         "samples": ["5", 0]}},
      "10": {"class_type": "LatentFlip", "inputs": {"flip_method": "x-axis: vertically",
                                                    "samples": ["11", 0]}}},
     [1]),  # the record rides through other latent nodes, as ComfyUI's copied dict does
])
def test_batch_noise_records_reach_the_sampler_as_comfyui_keeps_them(extra, record, catalog, models,
                                                                     tmp_path):
    result = import_result(_seeded(extra, ["10", 0]), catalog=catalog, extra_mappings=MAPPINGS,
                           model_map=MODELS)
    assert result.problems == []
    assert result.graph.nodes["ksampler_3"].params.get("batch_index") == record
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(result.graph)
    size = {None: 2, 2: 2, 3: 3, 1: 1}[None if record is None else len(record)]
    assert len(run.files) == size


def test_a_noise_mask_set_on_a_generated_latent_reaches_the_next_sampler(catalog, models, tmp_path):
    """SetLatentNoiseMask on a sampler's output (not a VAEEncode's): the second pass denoises under it."""
    extra = {"20": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 32}},
             "21": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["3", 0], "mask": ["20", 0]}},
             "22": {"class_type": "KSampler", "inputs": {
                 "seed": 6, "steps": 2, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
                 "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                 "latent_image": ["21", 0]}}}
    prompt = _seeded(extra, ["15", 0])
    prompt["8"]["inputs"]["samples"] = ["22", 0]
    result = import_result(prompt, catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert result.problems == []
    second = result.graph.nodes["ksampler_22"]
    assert second.inputs["mask"] == "solid_mask_20.mask" and second.inputs["latent"] == "ksampler_3.latent"
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(result.graph)
    assert len(run.files) == 1


# -- bad input: structured errors ------------------------------------------------------------------


@pytest.mark.parametrize(("run", "field", "value"), [
    (lambda: MaskCrop({"x": 9}).run(ctx(), mask=np.ones((1, 4, 4), np.float32)), "params.x", 9),
    (lambda: Blur({"blur_radius": 5}).run(ctx(), image=rng_image(1, 4, 40)), "params.blur_radius", 5),
    (lambda: Sharpen({"sharpen_radius": 8}).run(ctx(), image=rng_image(1, 40, 8)),
     "params.sharpen_radius", 8),
    (lambda: LatentAdd().run(ctx(), latent=torch.zeros(1, 4, 8, 8), other=torch.zeros(1, 16, 8, 8)),
     "inputs.other", 16),
    (lambda: MaskComposite().run(ctx(), destination=np.ones((2, 4, 4)), source=np.ones((3, 4, 4))),
     "inputs.source", 3),
    (lambda: CompositeMasked().run(ctx(), destination=rng_image(1, 4, 4, 4), source=rng_image(1, 4, 4, 2)),
     "inputs.source", 2),
    (lambda: LatentFlip().run(ctx(), latent=np.zeros((4, 8, 8))), "inputs.latent", None),
    (lambda: Batch().run(ctx(), image1=rng_image(1, 4, 4, 1), image2=rng_image(1, 4, 4, 3)),
     "inputs.image2", 3),
    (lambda: Invert().run(ctx(), image=np.zeros((8, 8))), "inputs.image", None),
])
def test_bad_input_is_a_structured_error(run, field, value):
    with pytest.raises(BlockError) as info:
        run()
    err = info.value.to_dict()
    assert (err["type"], err["node"], err["field"]) == ("input", "n", field)
    if value is not None:
        assert err["value"] == value


# -- workflows --------------------------------------------------------------------------------------


def _api_utilities() -> dict:
    """An API-format workflow through every utility node, as ComfyUI's "Save (API)" writes it."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "10": {"class_type": "LatentFlip", "inputs": {"flip_method": "y-axis: horizontally",
                                                      "samples": ["5", 0]}},
        "11": {"class_type": "LatentRotate", "inputs": {"rotation": "180 degrees", "samples": ["10", 0]}},
        "12": {"class_type": "LatentCrop", "inputs": {"width": 512, "height": 512, "x": 0, "y": 0,
                                                      "samples": ["11", 0]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["12", 0]}},
        "13": {"class_type": "LatentMultiply", "inputs": {"multiplier": 0.9, "samples": ["3", 0]}},
        "14": {"class_type": "LatentInterpolate", "inputs": {"ratio": 0.5, "samples1": ["13", 0],
                                                             "samples2": ["3", 0]}},
        "15": {"class_type": "LatentAdd", "inputs": {"samples1": ["14", 0], "samples2": ["3", 0]}},
        "16": {"class_type": "LatentSubtract", "inputs": {"samples1": ["15", 0], "samples2": ["3", 0]}},
        "17": {"class_type": "LatentCompositeMasked", "inputs": {
            "x": 64, "y": 64, "resize_source": False, "destination": ["16", 0], "source": ["3", 0],
            "mask": ["31", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["17", 0], "vae": ["4", 2]}},
        "20": {"class_type": "ImageBlur", "inputs": {"blur_radius": 2, "sigma": 1.0, "image": ["8", 0]}},
        "21": {"class_type": "ImageSharpen", "inputs": {"sharpen_radius": 1, "sigma": 1.0, "alpha": 0.5,
                                                        "image": ["20", 0]}},
        "22": {"class_type": "ImageInvert", "inputs": {"image": ["21", 0]}},
        "23": {"class_type": "ImageScaleToTotalPixels", "inputs": {
            "upscale_method": "bicubic", "megapixels": 0.01, "resolution_steps": 8, "image": ["22", 0]}},
        "24": {"class_type": "ImageBatch", "inputs": {"image1": ["8", 0], "image2": ["23", 0]}},
        "25": {"class_type": "RepeatImageBatch", "inputs": {"amount": 2, "image": ["24", 0]}},
        "26": {"class_type": "ImageFromBatch", "inputs": {"batch_index": 1, "length": 2, "image": ["25", 0]}},
        "27": {"class_type": "ImageCrop", "inputs": {"width": 32, "height": 32, "x": 16, "y": 16,
                                                     "image": ["26", 0]}},
        "28": {"class_type": "ImageCompositeMasked", "inputs": {
            "x": 8, "y": 8, "resize_source": False, "destination": ["8", 0], "source": ["27", 0],
            "mask": ["33", 0]}},
        "30": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}},
        "31": {"class_type": "FeatherMask", "inputs": {"left": 8, "top": 8, "right": 8, "bottom": 8,
                                                       "mask": ["30", 0]}},
        "32": {"class_type": "MaskComposite", "inputs": {"x": 16, "y": 16, "operation": "multiply",
                                                         "destination": ["31", 0], "source": ["31", 0]}},
        "33": {"class_type": "GrowMask", "inputs": {"expand": -2, "tapered_corners": True,
                                                    "mask": ["32", 0]}},
        "34": {"class_type": "ThresholdMask", "inputs": {"value": 0.3, "mask": ["33", 0]}},
        "35": {"class_type": "CropMask", "inputs": {"x": 0, "y": 0, "width": 32, "height": 48,
                                                    "mask": ["34", 0]}},
        "36": {"class_type": "MaskToImage", "inputs": {"mask": ["35", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "composite", "images": ["28", 0]}},
        "40": {"class_type": "SaveImage", "inputs": {"filename_prefix": "batch", "images": ["26", 0]}},
        "41": {"class_type": "SaveImage", "inputs": {"filename_prefix": "mask", "images": ["36", 0]}},
    }


def _small(graph):
    for node in graph.nodes.values():
        if node.block in ("sd.empty_latent", "sd.latent_crop"):
            node.params.update(width=64, height=64)
        if "steps" in node.params:
            node.params["steps"] = 2
    return graph


def test_api_workflow_of_every_utility_node_imports_clean_and_runs(catalog, models, tmp_path):
    result = import_result(_api_utilities(), catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert result.problems == []
    nodes = result.graph.nodes
    blocks = {n.meta["comfy"]["class_type"]: n.block for n in nodes.values()}
    assert blocks["GrowMask"] == "image.mask_expand" and blocks["ImageCrop"] == "image.crop_clamped"
    assert blocks["LatentSubtract"] == "sd.latent_add"
    assert nodes["latent_subtract_16"].params == {"op": "subtract"}
    assert nodes["image_sharpen_21"].params == {"sharpen_radius": 1, "sigma": 1.0, "alpha": 0.5}
    graph = _small(result.graph)
    assert check(graph, catalog) == []
    run = LocalExecutor(catalog, models=models, outputs_dir=tmp_path).run(graph)
    sizes = sorted((f["name"], Image.open(f["path"]).size) for f in run.files)
    # the batch: 64x64 decode + the inverted image scaled to 0.01 MP (104x104, multiples of 8) cut back to
    # 64x64 by ImageBatch; repeated to 4; images 1 and 2 taken
    assert [s for n, s in sizes if n.startswith("batch")] == [(64, 64), (64, 64)]
    assert [s for n, s in sizes if n.startswith("composite")] == [(64, 64)]
    assert [s for n, s in sizes if n.startswith("mask")] == [(32, 48)]
    mask = np.asarray(Image.open(next(f["path"] for f in run.files if f["name"].startswith("mask"))))
    assert mask.min() == 0 and mask.max() == 255  # thresholded: the feathered edge is 0, the inside 1


def test_every_utility_node_exports_back_to_itself_and_reimports_to_the_same_graph(catalog):
    from graphs.comfy import export_api

    original = _api_utilities()
    original["50"] = {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "area", "scale_by": 0.5,
                                                               "image": ["28", 0]}}
    original["51"] = {"class_type": "ImageScale", "inputs": {
        "upscale_method": "lanczos", "width": 48, "height": 0, "crop": "center", "image": ["50", 0]}}
    original["52"] = {"class_type": "ImageBlend", "inputs": {"blend_factor": 0.25, "blend_mode": "overlay",
                                                             "image1": ["51", 0], "image2": ["51", 0]}}
    original["9"]["inputs"]["images"] = ["52", 0]
    graph = import_result(original, catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS).graph
    prompt, problems = export_api(graph)
    assert problems == []
    for node_id, node in original.items():  # each node back as itself, its links and widgets
        if node["class_type"] in ("CheckpointLoaderSimple", "CLIPTextEncode", "KSampler"):
            continue
        assert prompt[node_id]["class_type"] == node["class_type"]
        widgets = {k: v for k, v in node["inputs"].items() if not isinstance(v, list)}
        assert {k: v for k, v in prompt[node_id]["inputs"].items() if not isinstance(v, list)} == widgets
    again = import_result(prompt, catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert again.problems == [] and again.graph == graph


def _ui_utilities() -> dict:
    """The UI format (widget values as lists, in ComfyUI's declaration order) of a mask and image chain."""
    g = UIGraph()
    g.node(1, "LoadImage", ["fox.png", "image"], outputs=["IMAGE", "MASK"])
    g.node(2, "ImageBlur", [2, 0.5], [("image", "IMAGE")], ["IMAGE"])
    g.node(3, "ImageSharpen", [1, 1.0, 0.25], [("image", "IMAGE")], ["IMAGE"])
    g.node(4, "ImageScaleToTotalPixels", ["area", 0.01, 1], [("image", "IMAGE")], ["IMAGE"])
    g.node(5, "GrowMask", [3, False], [("mask", "MASK")], ["MASK"])
    g.node(6, "FeatherMask", [4, 0, 4, 0], [("mask", "MASK")], ["MASK"])
    g.node(7, "ImageCompositeMasked", [0, 0, True], [("destination", "IMAGE"), ("source", "IMAGE"),
                                                     ("mask", "MASK")], ["IMAGE"])
    g.node(8, "ImageCrop", [48, 40, 8, 4], [("image", "IMAGE")], ["IMAGE"])
    g.node(9, "SaveImage", ["ComfyUI"], [("images", "IMAGE")])
    g.link(1, 0, 2, "image")
    g.link(2, 0, 3, "image")
    g.link(3, 0, 4, "image")
    g.link(1, 1, 5, "mask")
    g.link(5, 0, 6, "mask")
    g.link(1, 0, 7, "destination")
    g.link(4, 0, 7, "source")
    g.link(6, 0, 7, "mask")
    g.link(7, 0, 8, "image")
    g.link(8, 0, 9, "images")
    return g.workflow()


def test_ui_workflow_widgets_in_comfyuis_order_import_clean_and_run(catalog, tmp_path):
    image = Image.fromarray(np.dstack([sd_fixtures.noise_image(64, seed=5), 255 - sd_fixtures.rect_mask(64)]),
                            "RGBA")
    image.save(tmp_path / "fox.png")
    result = import_result(_ui_utilities(), catalog=catalog, extra_mappings=MAPPINGS)
    assert result.format == "ui" and result.problems == []
    by_class = {n.meta["comfy"]["class_type"]: n for n in result.graph.nodes.values()}
    assert by_class["ImageBlur"].params == {"blur_radius": 2, "sigma": 0.5}
    assert by_class["ImageSharpen"].params == {"sharpen_radius": 1, "sigma": 1.0, "alpha": 0.25}
    assert by_class["ImageScaleToTotalPixels"].params == {"upscale_method": "area", "megapixels": 0.01,
                                                          "resolution_steps": 1}
    assert by_class["GrowMask"].params == {"expand": 3, "tapered_corners": False}
    assert by_class["FeatherMask"].params == {"left": 4, "top": 0, "right": 4, "bottom": 0}
    assert by_class["ImageCompositeMasked"].params == {"x": 0, "y": 0, "resize_source": True}
    assert by_class["ImageCrop"].params == {"width": 48, "height": 40, "x": 8, "y": 4}
    run = LocalExecutor(catalog, input_root=tmp_path, outputs_dir=tmp_path / "out").run(result.graph)
    assert [Image.open(f["path"]).size for f in run.files] == [(48, 40)]


def test_a_utility_widget_out_of_comfyuis_range_is_an_error_naming_node_and_field(catalog):
    prompt = _api_utilities()
    prompt["20"]["inputs"]["blur_radius"] = 0  # ComfyUI's minimum is 1
    prompt["32"]["inputs"]["operation"] = "divide"  # not one of ComfyUI's operations
    result = import_result(prompt, catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    found = {(e.to_dict()["node"], e.to_dict()["field"]) for e in result.errors}
    assert ("image_blur_20", "params.blur_radius") in found
    assert ("mask_composite_32", "params.operation") in found


# -- VAEEncodeForInpaint and the noise mask ------------------------------------------------------------


def _inpaint_api(reader: str) -> dict:
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "1": {"class_type": "LoadImage", "inputs": {"image": "room.png", "upload": "image"}},
        "2": {"class_type": "VAEEncodeForInpaint", "inputs": {"grow_mask_by": 6, "pixels": ["1", 0],
                                                              "vae": ["4", 2], "mask": ["1", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": [reader, 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "out", "images": ["8", 0]}},
    }
    sampler = {"seed": 3, "steps": 20, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
               "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0]}
    prompt["10"] = {"class_type": "RepeatLatentBatch", "inputs": {"amount": 2, "samples": ["2", 0]}}
    prompt["11"] = {"class_type": "LatentFlip", "inputs": {"flip_method": "x-axis: vertically",
                                                           "samples": ["10", 0]}}
    prompt["3"] = {"class_type": "KSampler", "inputs": {**sampler, "latent_image": ["11", 0]}}
    prompt["12"] = {"class_type": "LatentUpscaleBy", "inputs": {"upscale_method": "bilinear",
                                                                "scale_by": 1.5, "samples": ["3", 0]}}
    prompt["13"] = {"class_type": "KSampler", "inputs": {**sampler, "denoise": 0.5,
                                                         "latent_image": ["12", 0]}}
    return prompt


def _room(tmp_path: Path) -> Path:
    rgba = np.dstack([sd_fixtures.noise_image(64, seed=6), 255 - sd_fixtures.rect_mask(64)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "room.png")  # transparent (to repaint) in the rectangle
    return tmp_path


def test_vae_encode_for_inpaint_read_by_a_decoder_is_the_greyed_encoding_exactly(catalog, models, tmp_path):
    result = import_result(_inpaint_api("2"), catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert result.problems == []  # no approximation
    decode = next(n for n in result.graph.nodes.values() if n.block == "sd.vae_decode")
    encoder = result.graph.nodes[decode.inputs["latent"].split(".")[0]]
    assert encoder.block == "sd.vae_encode_for_inpaint" and encoder.params["grow_mask_by"] == 6
    root = _room(tmp_path)
    executor = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path / "out")
    run = executor.run(result.graph)
    got = np.asarray(Image.open(run.files[0]["path"])).astype(np.float32) / 255.0

    # the same by another route: ComfyUI's greying (1 - round(mask) keeps a pixel) by hand, then sd.vae_encode
    pixels = sd_fixtures.noise_image(64, seed=6).astype(np.float32) / 255.0
    mask = (sd_fixtures.rect_mask(64) > 0).astype(np.float32)  # alpha 0 -> LoadImage's mask 1
    greyed = (pixels - 0.5) * (1.0 - np.round(mask))[..., None] + 0.5
    ref_px, _ = inpaint_pixels(torch.from_numpy(pixels[None]), torch.from_numpy(mask[None]), 8, 6)
    assert np.allclose(ref_px[0].numpy(), greyed)
    vae = models.load("tiny-sd", "vae")
    with torch.no_grad():
        lat = vae.encode(torch.from_numpy(greyed).permute(2, 0, 1)[None] * 2 - 1).latent_dist.mean
        ref = (vae.decode(lat).sample[0].permute(1, 2, 0).numpy() + 1) / 2
    ref8 = np.round(np.clip(ref, 0, 1) * 255) / 255
    assert np.abs(got - ref8).max() <= 1 / 255 + 1e-6


def test_the_noise_mask_rides_through_latent_nodes_and_samplers_to_the_next_one(catalog, models, tmp_path):
    result = import_result(_inpaint_api("13"), catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert result.problems == []
    nodes = result.graph.nodes
    encoder = next(k for k, n in nodes.items() if n.block == "sd.vae_encode_for_inpaint")
    first, second = nodes["ksampler_3"], nodes["ksampler_13"]
    assert first.inputs["mask"] == second.inputs["mask"] == "repeat_latent_batch_10_mask.mask"
    mask_node = nodes["repeat_latent_batch_10_mask"]  # the mask through the batch node, as ComfyUI's
    assert (mask_node.block, mask_node.params) == ("sd.noise_mask_batch", {"mode": "repeat", "amount": 2})
    assert mask_node.inputs == {"mask": f"{encoder}.mask", "latent": f"{encoder}.latent"}
    assert first.inputs["latent"] == "latent_flip_11.latent"
    assert nodes["latent_flip_11"].inputs["latent"] == "repeat_latent_batch_10.latent"
    assert nodes["repeat_latent_batch_10"].inputs["latent"] == f"{encoder}.latent"
    assert second.inputs["latent"] == "latent_upscale_by_12.latent"
    assert nodes["latent_upscale_by_12"].inputs["latent"] == "ksampler_3.latent"
    graph = _small(result.graph)
    assert check(graph, catalog) == []
    root = _room(tmp_path)
    run = LocalExecutor(catalog, models=models, input_root=root, outputs_dir=tmp_path / "out").run(graph)
    assert sorted(Image.open(f["path"]).size for f in run.files) == [(96, 96), (96, 96)]


def test_a_set_latent_noise_mask_after_other_nodes_still_wins(catalog):
    prompt = _inpaint_api("3")
    prompt["14"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
    prompt["15"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["11", 0], "mask": ["14", 0]}}
    prompt["3"]["inputs"]["latent_image"] = ["15", 0]
    result = import_result(prompt, catalog=catalog, extra_mappings=MAPPINGS, model_map=MODELS)
    assert result.problems == []
    sampler = result.graph.nodes["ksampler_3"]
    assert sampler.inputs["mask"] == "solid_mask_14.mask"
    assert sampler.inputs["latent"] == "latent_flip_11.latent"
