"""Per-pixel and geometric transforms: grayscale, resize, crop, pad.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="resize", block="image.resize", seed=0)
>>> img = np.zeros((1, 100, 200, 3), dtype=np.float32)
>>> Resize({"width": 64, "height": 64, "aspect": "fit"}).run(ctx, image=img)["image"].shape
(1, 32, 64, 3)
>>> Resize({"width": 64, "height": 64, "aspect": "crop"}).run(ctx, image=img)["image"].shape
(1, 64, 64, 3)
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from orchestrator import Block, Context, Out, Params, block
from plugins.image.common import LUMA, check_image, input_error, resize_array


@block("image.grayscale", version="1.0.0")
class Grayscale(Block):
    """Convert to grayscale (ITU-R 601 luma); keeps 3 channels unless ``channels=1``."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        channels: int = Field(3, ge=1, le=3, description="1 for a single-channel result, else 3")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
        y = (rgb @ LUMA)[..., None].astype(np.float32)
        return {"image": y if self.params.channels == 1 else np.repeat(y, 3, axis=-1)}


def _round_to(value: float, multiple: int) -> int:
    """``value`` rounded (halves up) to a multiple of ``multiple``, at least ``multiple``."""
    return max(multiple, math.floor(value / multiple + 0.5) * multiple)


def resize_plan(h: int, w: int, p: Resize.Params) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """``((height, width) to resize to, (height, width) of a centred crop or None)``.

    >>> resize_plan(100, 200, Resize.Params(width=50))
    ((25, 50), None)
    >>> resize_plan(100, 200, Resize.Params(width=64, height=64, aspect="fill"))
    ((64, 128), None)
    """
    m = p.multiple_of
    if p.scale is not None:
        return (_round_to(h * p.scale, m), _round_to(w * p.scale, m)), None
    if p.width is None or p.height is None:
        s = p.width / w if p.width is not None else p.height / h  # type: ignore[operator]
        return (_round_to(h * s, m), _round_to(w * s, m)), None
    if p.aspect == "stretch":
        return (_round_to(p.height, m), _round_to(p.width, m)), None
    if p.aspect == "crop":
        box = (_round_to(p.height, m), _round_to(p.width, m))
        s = max(box[0] / h, box[1] / w)
        return (max(box[0], math.ceil(h * s - 1e-9)), max(box[1], math.ceil(w * s - 1e-9))), box
    s = (min if p.aspect == "fit" else max)(p.height / h, p.width / w)
    return (_round_to(h * s, m), _round_to(w * s, m)), None


@block("image.resize", version="1.0.0")
class Resize(Block):
    """Resize to a width and/or height, or by a scale factor.

    Give ``scale``, or ``width`` and/or ``height`` (one of them keeps the aspect ratio).
    With both, ``aspect`` says what happens to the aspect ratio: ``stretch`` ignores it,
    ``fit`` fits inside the box, ``fill`` covers the box, ``crop`` covers it and cuts
    the overflow off centred, so the result is exactly ``width`` x ``height``.
    """

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        width: int | None = Field(None, ge=1, le=16384, description="target width in pixels")
        height: int | None = Field(None, ge=1, le=16384, description="target height in pixels")
        scale: float | None = Field(None, gt=0.0, le=16.0, validate_default=True,
                                    description="scale factor instead of width/height")
        method: Literal["nearest", "bilinear", "bicubic", "lanczos", "area"] = Field(
            "bicubic", description="resampling filter (Pillow; antialiased when shrinking)")
        aspect: Literal["stretch", "fit", "fill", "crop"] = Field(
            "stretch", description="with both width and height: stretch, or keep the aspect "
            "ratio and fit inside / fill / fill and crop to the box")
        multiple_of: int = Field(1, ge=1, le=256,
                                 description="round the result size to a multiple of this (8 for latents)")

        @field_validator("scale")
        @classmethod
        def _one_way_to_size(cls, scale: float | None, info: ValidationInfo) -> float | None:
            sized = info.data.get("width") is not None or info.data.get("height") is not None
            if scale is not None and sized:
                raise ValueError("give either scale or width/height, not both")
            if scale is None and not sized:
                raise ValueError("give scale, or width and/or height")
            return scale

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        (h, w), box = resize_plan(image.shape[1], image.shape[2], self.params)
        out = resize_array(image, h, w, self.params.method)
        if box is not None:
            top, left = (h - box[0]) // 2, (w - box[1]) // 2
            out = out[:, top:top + box[0], left:left + box[1]].copy()
        return {"image": out}


@block("image.crop", version="1.0.0")
class Crop(Block):
    """Cut out the rectangle at ``x``, ``y`` of ``width`` x ``height`` pixels."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        x: int = Field(0, ge=0, le=65535, description="left edge in pixels")
        y: int = Field(0, ge=0, le=65535, description="top edge in pixels")
        width: int = Field(..., ge=1, le=65536, description="width of the cut in pixels")
        height: int = Field(..., ge=1, le=65536, description="height of the cut in pixels")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        p, (h, w) = self.params, image.shape[1:3]
        if p.x >= w:
            raise input_error(ctx, "params.x", f"{p.x} is outside the image (width {w})", p.x)
        if p.y >= h:
            raise input_error(ctx, "params.y", f"{p.y} is outside the image (height {h})", p.y)
        if p.x + p.width > w:
            raise input_error(ctx, "params.width", f"{p.width}: x + width = {p.x + p.width} "
                              f"is past the image width {w}", p.width)
        if p.y + p.height > h:
            raise input_error(ctx, "params.height", f"{p.height}: y + height = {p.y + p.height} "
                              f"is past the image height {h}", p.height)
        return {"image": image[:, p.y:p.y + p.height, p.x:p.x + p.width].copy()}


@block("image.pad", version="1.0.0")
class Pad(Block):
    """Add borders; the mask is 1 on the added border (what an outpaint should fill)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE", "mask": Out("MASK", "1 where pixels were added, 0 on the original")}

    class Params(Params):
        left: int = Field(0, ge=0, le=8192, description="pixels added on the left")
        top: int = Field(0, ge=0, le=8192, description="pixels added on the top")
        right: int = Field(0, ge=0, le=8192, description="pixels added on the right")
        bottom: int = Field(0, ge=0, le=8192, description="pixels added at the bottom")
        mode: Literal["constant", "edge", "reflect"] = Field(
            "constant", description="fill with color, repeat the edge pixels, or mirror the image")
        color: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
            [0.0, 0.0, 0.0], min_length=1, max_length=4,
            description="fill for mode 'constant': one value, or one per channel "
            "(an RGBA image padded with 3 values gets alpha 1)")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        p = self.params
        b, h, w, c = image.shape
        widths = ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))
        if p.mode == "constant":
            out = np.empty((b, h + p.top + p.bottom, w + p.left + p.right, c), dtype=np.float32)
            out[...] = self._fill(ctx, c)
            out[:, p.top:p.top + h, p.left:p.left + w] = image
        else:
            out = np.pad(image, widths, mode=p.mode)
        mask = np.ones(out.shape[:3], dtype=np.float32)
        mask[:, p.top:p.top + h, p.left:p.left + w] = 0.0
        return {"image": out, "mask": mask}

    def _fill(self, ctx: Context, channels: int) -> np.ndarray:
        color = np.clip(np.asarray(self.params.color, dtype=np.float32), 0.0, 1.0)
        if color.size == 1 or color.size == channels:
            return np.broadcast_to(color, (channels,))
        if color.size == 3 and channels == 4:
            return np.append(color, np.float32(1.0))
        raise input_error(ctx, "params.color", f"has {color.size} values for an image with "
                          f"{channels} channels; give 1 or {channels}", self.params.color)


BLOCKS = [Grayscale, Resize, Crop, Pad]
