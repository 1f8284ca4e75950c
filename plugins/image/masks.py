"""Mask helpers: grow/shrink and feather a mask, resize it, convert between MASK and IMAGE.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="grow", block="image.mask_grow", seed=0)
>>> mask = np.zeros((1, 9, 9), dtype=np.float32); mask[0, 4, 4] = 1.0
>>> int(MaskGrow({"grow": 2}).run(ctx, mask=mask)["mask"].sum())
17
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, block
from plugins.image.common import check_image, check_mask, input_error, luma, resize_array


@block("image.mask_grow", version="1.0.0")
class MaskGrow(Block):
    """Grow (or, negative, shrink) a mask by some pixels, then feather its edge with a blur."""

    inputs = {"mask": "MASK"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        grow: int = Field(0, ge=-512, le=512,
                          description="pixels to grow the mask by (negative shrinks it), round kernel")
        blur: float = Field(0.0, ge=0.0, le=256.0, description="Gaussian blur sigma in pixels; 0 = none")
        invert: bool = Field(False, description="1 - mask, applied last")

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        mask = check_mask(ctx, mask)
        p = self.params
        out = np.empty_like(mask)
        r = abs(p.grow)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for i, m in enumerate(mask):
            if p.grow > 0:
                m = cv2.dilate(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            elif p.grow < 0:
                m = cv2.erode(m, kernel, borderType=cv2.BORDER_REPLICATE)
            if p.blur > 0:
                m = cv2.GaussianBlur(m, (0, 0), sigmaX=p.blur, borderType=cv2.BORDER_REPLICATE)
            out[i] = m
        np.clip(out, 0.0, 1.0, out=out)
        return {"mask": 1.0 - out if p.invert else out}


@block("image.mask_resize", version="1.0.0")
class MaskResize(Block):
    """Resize a mask to ``width`` x ``height``, or to the size of the ``like`` image."""

    inputs = {"mask": "MASK", "like": In("IMAGE", "take the size of this image", optional=True)}
    outputs = {"mask": "MASK"}

    class Params(Params):
        width: int | None = Field(None, ge=1, le=16384, description="target width (unless 'like' is wired)")
        height: int | None = Field(None, ge=1, le=16384,
                                   description="target height (unless 'like' is wired)")
        method: Literal["nearest", "bilinear", "bicubic", "area"] = Field(
            "bilinear", description="resampling filter; nearest keeps a hard mask hard")

    def run(self, ctx: Context, mask: np.ndarray, like: np.ndarray | None = None) -> dict:
        mask = check_mask(ctx, mask)
        if like is not None:
            h, w = check_image(ctx, like, "inputs.like").shape[1:3]
        elif self.params.width is None or self.params.height is None:
            field = "params.width" if self.params.width is None else "params.height"
            raise input_error(ctx, field, "is needed when no 'like' image is wired")
        else:
            h, w = self.params.height, self.params.width
        out = resize_array(mask[..., None], h, w, self.params.method)[..., 0]
        return {"mask": np.clip(out, 0.0, 1.0)}


@block("image.mask_to_image", version="1.0.0")
class MaskToImage(Block):
    """A mask as a gray image (3 channels), to save or preview it."""

    inputs = {"mask": "MASK"}
    outputs = {"image": "IMAGE"}

    def run(self, ctx: Context, mask: np.ndarray) -> dict:
        mask = check_mask(ctx, mask)
        return {"image": np.repeat(mask[..., None], 3, axis=-1)}


@block("image.image_to_mask", version="1.0.0")
class ImageToMask(Block):
    """One channel of an image (or its luminance) as a mask."""

    inputs = {"image": "IMAGE"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        channel: Literal["luminance", "red", "green", "blue", "alpha"] = Field(
            "luminance", description="which channel becomes the mask")
        invert: bool = Field(False, description="1 - mask")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        ch = self.params.channel
        if ch == "luminance":
            mask = luma(image)
        elif ch == "alpha":
            if image.shape[-1] not in (2, 4):
                raise input_error(ctx, "params.channel", f"'alpha': the image has {image.shape[-1]} "
                                  "channels and no alpha", ch)
            mask = image[..., -1].copy()
        else:
            idx = {"red": 0, "green": 1, "blue": 2}[ch]
            mask = image[..., idx if image.shape[-1] >= 3 else 0].copy()
        return {"mask": 1.0 - mask if self.params.invert else mask}


BLOCKS = [MaskGrow, MaskResize, MaskToImage, ImageToMask]
