"""Mask operations as ComfyUI computes them (``comfy_extras/nodes_mask.py``).

``image.mask_solid`` (SolidMask), ``image.mask_feather`` (FeatherMask), ``image.mask_composite``
(MaskComposite, every operation), ``image.mask_crop`` (CropMask), ``image.mask_threshold``
(ThresholdMask) and ``image.mask_expand`` (GrowMask: a 3x3 grey dilation or erosion repeated
``expand`` times, the corners of the kernel left out when ``tapered_corners``). Masks are
float32 ``[B, H, W]``; each block gives what ComfyUI's node gives, value for value, including
its edge cases (FeatherMask's ``right``/``bottom`` loops start at index ``-0``, the first
column/row, as ComfyUI's do).

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="m", block="image.mask_threshold", seed=0)
>>> MaskThreshold({"value": 0.5}).run(ctx, mask=np.array([[[0.2, 0.5, 0.7]]]))["mask"].tolist()
[[[0.0, 0.0, 1.0]]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Out, Params, block
from plugins.image.common import check_mask, input_error

MAX_SIZE = 16384


@block("image.mask_solid", version="1.0.0")
class MaskSolid(Block):
    """A mask of one value everywhere (ComfyUI SolidMask)."""

    outputs = {"mask": Out("MASK", "[1, height, width], every pixel 'value'")}

    class Params(Params):
        value: float = Field(1.0, ge=0.0, le=1.0, description="the mask's value")
        width: int = Field(512, ge=1, le=MAX_SIZE, description="width in pixels")
        height: int = Field(512, ge=1, le=MAX_SIZE, description="height in pixels")

    def run(self, ctx: Context) -> dict:
        p = self.params
        return {"mask": np.full((1, p.height, p.width), p.value, dtype=np.float32)}


@block("image.mask_feather", version="1.0.0")
class MaskFeather(Block):
    """Fade a mask out towards its edges, linearly over some pixels per side (ComfyUI FeatherMask)."""

    inputs = {"mask": "MASK"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        left: int = Field(0, ge=0, le=MAX_SIZE, description="pixels faded in from the left edge")
        top: int = Field(0, ge=0, le=MAX_SIZE, description="pixels faded in from the top edge")
        right: int = Field(0, ge=0, le=MAX_SIZE, description="pixels faded in from the right edge")
        bottom: int = Field(0, ge=0, le=MAX_SIZE, description="pixels faded in from the bottom edge")

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        out = check_mask(ctx, mask).copy()
        h, w = out.shape[-2:]
        left, right = min(self.params.left, w), min(self.params.right, w)
        top, bottom = min(self.params.top, h), min(self.params.bottom, h)
        for x in range(left):
            out[:, :, x] *= np.float32((x + 1.0) / left)
        for x in range(right):
            out[:, :, -x] *= np.float32((x + 1) / right)  # -0 is column 0, as in ComfyUI
        for y in range(top):
            out[:, y, :] *= np.float32((y + 1) / top)
        for y in range(bottom):
            out[:, -y, :] *= np.float32((y + 1) / bottom)
        return {"mask": out}


@block("image.mask_composite", version="1.0.0")
class MaskComposite(Block):
    """Combine ``source`` into ``destination`` at ``x``, ``y`` (ComfyUI MaskComposite), clamped to 0..1."""

    inputs = {"destination": In("MASK", "the mask combined into (its size is the result's)"),
              "source": In("MASK", "the mask combined, placed at x, y")}
    outputs = {"mask": "MASK"}

    class Params(Params):
        x: int = Field(0, ge=0, le=MAX_SIZE, description="left edge of the source in the destination")
        y: int = Field(0, ge=0, le=MAX_SIZE, description="top edge of the source in the destination")
        operation: Literal["multiply", "add", "subtract", "and", "or", "xor"] = Field(
            "multiply", description="how the overlapping pixels combine (and/or/xor on rounded values)")

    def run(self, ctx: Context, destination: np.ndarray, source: np.ndarray) -> dict:
        dst = check_mask(ctx, destination, "inputs.destination")
        src = check_mask(ctx, source, "inputs.source")
        if dst.shape[0] != src.shape[0] and 1 not in (dst.shape[0], src.shape[0]):
            raise input_error(ctx, "inputs.source", f"has {src.shape[0]} masks and the destination "
                              f"{dst.shape[0]}: give one, or as many", src.shape[0])
        p = self.params
        out = dst.copy()
        if dst.shape[0] == 1 and src.shape[0] > 1:
            out = np.repeat(out, src.shape[0], axis=0)
        right, bottom = min(p.x + src.shape[-1], dst.shape[-1]), min(p.y + src.shape[-2], dst.shape[-2])
        if right > p.x and bottom > p.y:
            s = src[:, :bottom - p.y, :right - p.x]
            d = dst[:, p.y:bottom, p.x:right]
            if p.operation == "multiply":
                r = d * s
            elif p.operation == "add":
                r = d + s
            elif p.operation == "subtract":
                r = d - s
            else:
                a, b = np.round(d) != 0, np.round(s) != 0
                r = {"and": a & b, "or": a | b, "xor": a ^ b}[p.operation].astype(np.float32)
            out[:, p.y:bottom, p.x:right] = r
        return {"mask": np.clip(out, 0.0, 1.0).astype(np.float32)}


@block("image.mask_crop", version="1.0.0")
class MaskCrop(Block):
    """The rectangle at ``x``, ``y`` of a mask, cut to what the mask has (ComfyUI CropMask)."""

    inputs = {"mask": "MASK"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        x: int = Field(0, ge=0, le=MAX_SIZE, description="left edge in pixels")
        y: int = Field(0, ge=0, le=MAX_SIZE, description="top edge in pixels")
        width: int = Field(512, ge=1, le=MAX_SIZE, description="width in pixels (cut at the mask's edge)")
        height: int = Field(512, ge=1, le=MAX_SIZE, description="height in pixels (cut at the mask's edge)")

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        m = check_mask(ctx, mask)
        p = self.params
        h, w = m.shape[-2:]
        if p.x >= w:
            raise input_error(ctx, "params.x", f"{p.x} is outside the mask (width {w}): the crop is empty",
                              p.x)
        if p.y >= h:
            raise input_error(ctx, "params.y", f"{p.y} is outside the mask (height {h}): the crop is empty",
                              p.y)
        return {"mask": m[:, p.y:p.y + p.height, p.x:p.x + p.width].copy()}


@block("image.mask_threshold", version="1.0.0")
class MaskThreshold(Block):
    """1 where the mask is above ``value``, else 0 (ComfyUI ThresholdMask)."""

    inputs = {"mask": "MASK"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        value: float = Field(0.5, ge=0.0, le=1.0, description="pixels above this become 1, the rest 0")

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        m = check_mask(ctx, mask)
        return {"mask": (m > self.params.value).astype(np.float32)}


@block("image.mask_expand", version="1.0.0")
class MaskExpand(Block):
    """Grow (or, negative, shrink) a mask one pixel at a time, ``expand`` times (ComfyUI GrowMask)."""

    inputs = {"mask": "MASK"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        expand: int = Field(0, ge=-MAX_SIZE, le=MAX_SIZE,
                            description="pixels to grow by (negative: shrink), one 3x3 step per pixel")
        tapered_corners: bool = Field(True, description="leave the kernel's corners out (a cross, not a "
                                                        "square: rounder growth)")

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        import scipy.ndimage

        m = check_mask(ctx, mask)
        c = 0 if self.params.tapered_corners else 1
        kernel = np.array([[c, 1, c], [1, 1, 1], [c, 1, c]])
        expand = self.params.expand
        steps = min(abs(expand), sum(m.shape[-2:]))  # past the mask's diameter nothing changes any more
        out = []
        for one in m:
            step = scipy.ndimage.grey_erosion if expand < 0 else scipy.ndimage.grey_dilation
            for _ in range(steps):
                ctx.check_cancelled()
                grown = step(one, footprint=kernel)
                if np.array_equal(grown, one):  # settled: further steps change nothing
                    break
                one = grown
            out.append(one)
        return {"mask": np.stack(out).astype(np.float32)}


BLOCKS = [MaskSolid, MaskFeather, MaskComposite, MaskCrop, MaskThreshold, MaskExpand]
