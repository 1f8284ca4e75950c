"""Masks from a colour key, a rectangle, or a threshold of a map (depth, detector heat).

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="m", block="compose.mask_rect", seed=0)
>>> m = MaskRect({"box": [2, 1, 3, 2], "width": 8, "height": 4}).run(ctx)["mask"]
>>> m.shape, int(m.sum()), np.argwhere(m[0]).min(0).tolist()
((1, 4, 8), 6, [1, 2])
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Out, Params, block
from plugins.image.common import check_image, input_error, luma, rgb

Unit = Annotated[float, Field(ge=0.0, le=1.0)]


@block("compose.mask_from_color", version="1.0.0")
class MaskFromColor(Block):
    """A mask of the pixels near a key colour (chroma key): 1 within ``tolerance``, fading to 0
    over ``softness`` beyond it (distances are Euclidean in RGB, 0..1 per channel)."""

    inputs = {"image": "IMAGE"}
    outputs = {"mask": Out("MASK", "1 where the image has the key colour")}

    class Params(Params):
        color: list[Unit] = Field(..., min_length=3, max_length=3, description="the key colour, RGB 0..1")
        tolerance: float = Field(0.1, ge=0.0, le=2.0, description="distance still counted as the colour")
        softness: float = Field(0.0, ge=0.0, le=2.0, description="distance over which the mask fades out")
        invert: bool = Field(False, description="1 - mask: everything but the colour")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        p = self.params
        colour = rgb(check_image(ctx, image))
        dist = np.sqrt(((colour - np.asarray(p.color, np.float32)) ** 2).sum(-1))
        if p.softness > 0:
            mask = np.clip(1.0 - (dist - p.tolerance) / p.softness, 0.0, 1.0)
        else:
            mask = (dist <= p.tolerance).astype(np.float32)
        mask = mask.astype(np.float32)
        return {"mask": 1.0 - mask if p.invert else mask}


@block("compose.mask_rect", version="1.0.0")
class MaskRect(Block):
    """A rectangle mask: ``box`` = ``[x, y, width, height]`` in pixels (or fractions of the size,
    with ``units='fraction'``), on a canvas of ``width`` x ``height`` or of the ``like`` image."""

    inputs = {"like": In("IMAGE", "take the canvas size (and batch) from this image", optional=True)}
    outputs = {"mask": Out("MASK", "1 inside the rectangle")}

    class Params(Params):
        box: list[Annotated[float, Field(ge=0.0)]] = Field(..., min_length=4, max_length=4,
                                                           description="[x, y, width, height]")
        units: Literal["pixel", "fraction"] = Field("pixel", description="units of box")
        width: int | None = Field(None, ge=1, le=16384, description="canvas width, unless 'like' is wired")
        height: int | None = Field(None, ge=1, le=16384, description="canvas height, unless 'like' is wired")
        invert: bool = Field(False, description="1 outside the rectangle instead")

    def run(self, ctx: Context, like: np.ndarray | None = None) -> dict:
        p = self.params
        batch = 1
        if like is not None:
            batch, h, w = check_image(ctx, like, "inputs.like").shape[:3]
        elif p.width is None or p.height is None:
            field = "params.width" if p.width is None else "params.height"
            raise input_error(ctx, field, "is needed when no 'like' image is wired")
        else:
            h, w = p.height, p.width
        x, y, bw, bh = p.box
        if p.units == "fraction":
            x, y, bw, bh = x * w, y * h, bw * w, bh * h
        x0, y0 = round(x), round(y)
        x1, y1 = round(x + bw), round(y + bh)
        if x0 >= w or y0 >= h or x1 <= x0 or y1 <= y0:
            raise input_error(ctx, "params.box", f"{p.box} is empty or outside the {w}x{h} canvas", p.box)
        mask = np.zeros((batch, h, w), np.float32)
        mask[:, y0:y1, x0:x1] = 1.0
        return {"mask": 1.0 - mask if p.invert else mask}


@block("compose.mask_threshold", version="1.0.0")
class MaskThreshold(Block):
    """A mask where an image (a depth map, a detector's heat map; its luminance) is above a
    threshold (``below=True``: below it), optionally soft over ``softness``."""

    inputs = {"image": "IMAGE"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        threshold: float = Field(0.5, ge=0.0, le=1.0, description="the level that separates 0 from 1")
        softness: float = Field(0.0, ge=0.0, le=1.0, description="ramp width around the threshold")
        below: bool = Field(False, description="1 below the threshold instead of above")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        p = self.params
        level = luma(check_image(ctx, image))
        if p.below:
            level = 1.0 - level
            threshold = 1.0 - p.threshold
        else:
            threshold = p.threshold
        if p.softness > 0:
            mask = np.clip((level - threshold) / p.softness + 0.5, 0.0, 1.0)
        else:
            mask = (level > threshold).astype(np.float32)
        return {"mask": mask.astype(np.float32)}


BLOCKS = [MaskFromColor, MaskRect, MaskThreshold]
