"""Image resizing exactly as ComfyUI's ``comfy.utils.common_upscale``: ``image.scale`` (ComfyUI
ImageScale and ImageScaleBy) and ``image.scale_total_pixels`` (ImageScaleToTotalPixels).

``common_upscale`` cuts the middle to the target's aspect first when ``crop`` is 'center', then
resizes with torch's ``interpolate`` (``nearest-exact``, ``bilinear``, ``area``, ``bicubic``: no
antialiasing, ``align_corners`` False) or, for ``lanczos``, with Pillow on 8-bit images, as
ComfyUI does. (``image.resize`` is Pillow's antialiased resampling in float: a different image.)

>>> import torch
>>> common_upscale(torch.zeros(1, 3, 10, 20), 8, 8, "bilinear", "center").shape
torch.Size([1, 3, 8, 8])
>>> total_pixels_size(100, 200, 0.01, 1)
(72, 145)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Params, block
from plugins.image.common import check_image, input_error

METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def _lanczos(samples: Any, width: int, height: int) -> Any:
    """ComfyUI's ``comfy.utils.lanczos``: each image through Pillow as 8-bit, back as float."""
    import torch
    from PIL import Image

    images = [Image.fromarray(np.clip(255.0 * im.movedim(0, -1).cpu().numpy(), 0, 255).astype(np.uint8))
              for im in samples]
    images = [im.resize((width, height), resample=Image.Resampling.LANCZOS) for im in images]
    tensors = [torch.from_numpy(np.array(im).astype(np.float32) / 255.0) for im in images]
    tensors = [t[..., None] if t.ndim == 2 else t for t in tensors]
    return torch.stack([t.movedim(-1, 0) for t in tensors]).to(samples.device, samples.dtype)


def common_upscale(samples: Any, width: int, height: int, method: str, crop: str) -> Any:
    """``samples`` [B, C, H, W] resized to ``height`` x ``width`` as ComfyUI's ``common_upscale``."""
    import torch

    if crop == "center":
        old_w, old_h = samples.shape[-1], samples.shape[-2]
        old, new = old_w / old_h, width / height
        x = round((old_w - old_w * (new / old)) / 2) if old > new else 0
        y = round((old_h - old_h * (old / new)) / 2) if old < new else 0
        samples = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    if method == "lanczos":
        return _lanczos(samples, width, height)
    return torch.nn.functional.interpolate(samples, size=(height, width), mode=method)


def total_pixels_size(height: int, width: int, megapixels: float, steps: int) -> tuple[int, int]:
    """``(height, width)`` of ImageScaleToTotalPixels: ``megapixels`` * 2**20 pixels, sides rounded to
    multiples of ``steps``."""
    scale_by = math.sqrt(megapixels * 1024 * 1024 / (width * height))
    return (round(height * scale_by / steps) * steps, round(width * scale_by / steps) * steps)


@block("image.scale_total_pixels", version="1.0.0")
class ScaleTotalPixels(Block):
    """Resize to about ``megapixels`` (of 1024 x 1024 pixels) keeping the aspect ratio
    (ComfyUI ImageScaleToTotalPixels), sides rounded to a multiple of ``resolution_steps``."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        megapixels: float = Field(1.0, ge=0.01, le=16.0, description="target size in units of 1024 x 1024 "
                                                                     "pixels")
        upscale_method: Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"] = Field(
            "nearest-exact", description="interpolation (torch's, no antialiasing; lanczos: Pillow, 8-bit)")
        resolution_steps: int = Field(1, ge=1, le=256, description="round each side to a multiple of this")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        image = check_image(ctx, image)
        p = self.params
        h, w = total_pixels_size(image.shape[1], image.shape[2], p.megapixels, p.resolution_steps)
        if h < 1 or w < 1:
            raise input_error(ctx, "params.resolution_steps", f"{p.resolution_steps} rounds the "
                              f"{image.shape[2]}x{image.shape[1]} image to {w}x{h}: nothing is left",
                              p.resolution_steps)
        ctx.check_size(w, h, image.shape[0], "params.megapixels")
        x = torch.from_numpy(np.ascontiguousarray(image)).movedim(-1, 1)
        out = common_upscale(x, w, h, p.upscale_method, "disabled").movedim(1, -1)
        return {"image": out.numpy().astype(np.float32)}


def scale_size(height: int, width: int, p: Scale.Params) -> tuple[int, int] | None:
    """``(height, width)`` ImageScale / ImageScaleBy give an ``height`` x ``width`` image; None: unchanged."""
    if p.scale_by is not None:
        return round(height * p.scale_by), round(width * p.scale_by)
    w, h = p.width, p.height
    if w == 0 and h == 0:
        return None
    if w == 0:
        w = max(1, round(width * h / height))
    elif h == 0:
        h = max(1, round(height * w / width))
    return h, w


@block("image.scale", version="1.0.0")
class Scale(Block):
    """Resize as ComfyUI's ImageScale (``width``/``height``, one of them 0 keeps the aspect ratio, both 0
    leave the image as it is; ``crop`` 'center' cuts to the target's aspect first) or ImageScaleBy
    (``scale_by``), with torch's interpolation as ComfyUI's ``common_upscale`` (no antialiasing; lanczos
    through Pillow on 8-bit images)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        upscale_method: Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"] = Field(
            "nearest-exact", description="interpolation")
        width: int = Field(512, ge=0, le=16384, description="target width; 0: from height, same aspect")
        height: int = Field(512, ge=0, le=16384, description="target height; 0: from width, same aspect")
        crop: Literal["disabled", "center"] = Field("disabled", description="center: cut to the target's "
                                                                            "aspect ratio first")
        scale_by: float | None = Field(None, ge=0.01, le=8.0, description="instead of a size: sides times "
                                                                           "this (ImageScaleBy)")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        image = check_image(ctx, image)
        p = self.params
        size = scale_size(image.shape[1], image.shape[2], p)
        if size is None:
            return {"image": image}
        h, w = size
        if h < 1 or w < 1:
            field = "params.scale_by" if p.scale_by is not None else "params.width"
            raise input_error(ctx, field, f"scales the {image.shape[2]}x{image.shape[1]} image to {w}x{h}: "
                              "nothing is left", p.scale_by if p.scale_by is not None else p.width)
        ctx.check_size(w, h, image.shape[0], "params.scale_by" if p.scale_by is not None else "params.width")
        x = torch.from_numpy(np.ascontiguousarray(image)).movedim(-1, 1)
        crop = "disabled" if p.scale_by is not None else p.crop
        out = common_upscale(x, w, h, p.upscale_method, crop).movedim(1, -1)
        return {"image": out.numpy().astype(np.float32)}


BLOCKS = [ScaleTotalPixels, Scale]
