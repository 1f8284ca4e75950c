"""Image filters as ComfyUI computes them: ``image.blur`` (ImageBlur), ``image.sharpen``
(ImageSharpen), ``image.invert`` (ImageInvert), ``image.mix`` (ImageBlend).

Blur and sharpen are ComfyUI's (``comfy_extras/nodes_post_processing.py``): a
``(2 * radius + 1)``-square Gaussian kernel sampled on ``linspace(-1, 1)`` (so ``sigma`` is in
units of the radius, not of pixels), the image padded by reflection and convolved channel by
channel in float32; sharpen is ``-(alpha * 10)`` times that kernel with its centre raised so the
kernel sums to 1, clamped to 0..1 (blur is not clamped, as ComfyUI's is not).

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="b", block="image.blur", seed=0)
>>> flat = np.full((1, 8, 8, 3), 0.25, dtype=np.float32)
>>> bool(np.allclose(Blur({"blur_radius": 2, "sigma": 1.0}).run(ctx, image=flat)["image"], 0.25))
True
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, block
from plugins.image.comfy_scale import common_upscale
from plugins.image.common import check_image, input_error


def gaussian_kernel(kernel_size: int, sigma: float) -> Any:
    """ComfyUI's ``gaussian_kernel``: ``exp(-d^2 / 2 sigma^2)`` on a ``linspace(-1, 1)`` grid, sum 1."""
    import torch

    axis = torch.linspace(-1, 1, kernel_size)
    x, y = torch.meshgrid(axis, axis, indexing="ij")
    d = torch.sqrt(x * x + y * y)
    g = torch.exp(-(d * d) / (2.0 * sigma * sigma))
    return g / g.sum()


def _convolve(ctx: Context, image: np.ndarray, kernel: Any, radius: int, field: str) -> Any:
    """``image`` [B, H, W, C] reflect-padded by ``radius`` and convolved with ``kernel`` per channel."""
    import torch
    import torch.nn.functional as F

    _, h, w, c = image.shape
    if radius >= h or radius >= w:
        raise input_error(ctx, field, f"{radius} is too large for a {w}x{h} image (reflection padding needs "
                          f"a radius smaller than both sides)", radius)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(0, 3, 1, 2)
    weights = kernel.repeat(c, 1, 1).unsqueeze(1)
    padded = F.pad(x, (radius, radius, radius, radius), "reflect")
    size = kernel.shape[-1]
    out = F.conv2d(padded, weights, padding=size // 2, groups=c)[:, :, radius:-radius, radius:-radius]
    return out.permute(0, 2, 3, 1)


@block("image.blur", version="1.0.0")
class Blur(Block):
    """Gaussian blur (ComfyUI ImageBlur): radius in pixels, sigma relative to the radius."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        blur_radius: int = Field(1, ge=1, le=31, description="kernel radius in pixels (size 2 * radius + 1)")
        sigma: float = Field(1.0, ge=0.1, le=10.0, description="spread, in units of the radius")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        p = self.params
        out = _convolve(ctx, image, gaussian_kernel(2 * p.blur_radius + 1, p.sigma), p.blur_radius,
                        "params.blur_radius")
        return {"image": out.numpy().astype(np.float32)}


@block("image.sharpen", version="1.0.0")
class Sharpen(Block):
    """Unsharp-style sharpening with a Gaussian kernel (ComfyUI ImageSharpen), clamped to 0..1."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        sharpen_radius: int = Field(1, ge=1, le=31, description="kernel radius in pixels")
        sigma: float = Field(1.0, ge=0.1, le=10.0, description="spread, in units of the radius")
        alpha: float = Field(1.0, ge=0.0, le=5.0, description="strength")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        image = check_image(ctx, image)
        p = self.params
        size = 2 * p.sharpen_radius + 1
        kernel = gaussian_kernel(size, p.sigma) * -(p.alpha * 10)
        center = size // 2
        kernel[center, center] = kernel[center, center] - kernel.sum() + 1.0
        out = _convolve(ctx, image, kernel, p.sharpen_radius, "params.sharpen_radius")
        return {"image": torch.clamp(out, 0, 1).numpy().astype(np.float32)}


@block("image.invert", version="1.0.0")
class Invert(Block):
    """``1 - image``, every channel (ComfyUI ImageInvert)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        return {"image": (np.float32(1.0) - image).astype(np.float32)}


MIX_MODES = ("normal", "multiply", "screen", "overlay", "soft_light", "difference")


def mix_mode(mode: str, a: Any, b: Any) -> Any:
    """ComfyUI ImageBlend's ``blend_mode`` of ``a`` (image1) and ``b`` (image2)."""
    import torch

    if mode == "normal":
        return b
    if mode == "multiply":
        return a * b
    if mode == "screen":
        return 1 - (1 - a) * (1 - b)
    if mode == "overlay":
        return torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))
    if mode == "soft_light":
        g = torch.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, torch.sqrt(a))
        return torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (g - a))
    return a - b  # difference


@block("image.mix", version="1.0.0")
class Mix(Block):
    """ComfyUI's ImageBlend: ``image1 * (1 - blend_factor) + mode(image1, image2) * blend_factor``, clamped
    to 0..1, every channel alike; ``image2`` of another shape is first resized to ``image1``'s (bicubic,
    middle cut to its aspect). Its ``difference`` is ``image1 - image2`` (signed, then clamped), as
    ComfyUI's is. (``image.blend`` composites with alpha and masks instead.)"""

    inputs = {"image1": In("IMAGE", "the base image (its size is the result's)"),
              "image2": In("IMAGE", "the image blended in")}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        blend_factor: float = Field(0.5, ge=0.0, le=1.0, description="how much of the blend shows")
        blend_mode: Literal["normal", "multiply", "screen", "overlay", "soft_light", "difference"] = Field(
            "normal", description="the blend")

    def run(self, ctx: Context, image1: np.ndarray, image2: np.ndarray) -> dict:
        import torch

        a = torch.from_numpy(np.ascontiguousarray(check_image(ctx, image1, "inputs.image1")))
        b = torch.from_numpy(np.ascontiguousarray(check_image(ctx, image2, "inputs.image2")))
        if a.shape[-1] != b.shape[-1]:
            raise input_error(ctx, "inputs.image2", f"has {b.shape[-1]} channels and image1 {a.shape[-1]}",
                              int(b.shape[-1]))
        if a.shape != b.shape:
            if b.shape[0] not in (1, a.shape[0]):
                raise input_error(ctx, "inputs.image2", f"is a batch of {b.shape[0]}, image1 of {a.shape[0]}",
                                  int(b.shape[0]))
            b = common_upscale(b.permute(0, 3, 1, 2), a.shape[2], a.shape[1], "bicubic", "center")
            b = b.permute(0, 2, 3, 1)
        f = self.params.blend_factor
        out = a * (1 - f) + mix_mode(self.params.blend_mode, a, b) * f
        return {"image": torch.clamp(out, 0, 1).numpy().astype(np.float32)}


BLOCKS = [Blur, Sharpen, Invert, Mix]
