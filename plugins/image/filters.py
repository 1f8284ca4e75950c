"""Image filters as ComfyUI computes them: ``image.blur`` (ImageBlur), ``image.sharpen``
(ImageSharpen), ``image.invert`` (ImageInvert).

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

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Params, block
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


BLOCKS = [Blur, Sharpen, Invert]
