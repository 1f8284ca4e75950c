"""The region detail pass (the faces-and-hands recipe) as a block pair.

``compose.region_crop`` finds the region (a mask's bounding box, e.g. from
``compose.mask_rect``, ``compose.mask_threshold`` of a detector run with ``onnx.run``, or
``compose.mask_from_labels``; or a ``box``), grows it by a margin, cuts it out and resizes
it to the model's native size. Re-render the crop with img2img (``sd.vae_encode`` ->
``sd.denoise`` at partial strength -> ``sd.vae_decode``), then ``compose.region_paste``
resizes it back and lays it over the original through a feathered mask. Works after any
generation, tiled ones included; an empty mask passes the image through unchanged.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="crop", block="compose.region_crop", seed=0)
>>> img = np.zeros((1, 100, 200, 3), np.float32); mask = np.zeros((1, 100, 200), np.float32)
>>> mask[0, 40:60, 90:110] = 1
>>> out = RegionCrop({"size": 64, "margin": 0.5}).run(ctx, image=img, mask=mask)
>>> out["image"].shape, out["region"]["box"]
((1, 64, 64, 3), [80, 30, 40, 40])
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Out, Params, block, register_port_type
from plugins.image.common import check_image, check_mask, input_error, resize_array

REGION = register_port_type("REGION", description="where a crop came from: box [x, y, w, h] in the "
                                                  "source image, its size and the paste mask")


def bounding_box(mask: np.ndarray, level: float = 0.5) -> tuple[int, int, int, int] | None:
    """``(x, y, width, height)`` of the pixels above ``level`` in any image of the batch."""
    ys, xs = np.nonzero((mask > level).any(axis=0))
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def grow_box(box: tuple[int, int, int, int], margin: float, size: tuple[int, int],
             square: bool) -> list[int]:
    """``box`` grown by ``margin`` of its size on every side (square first, if asked), kept inside."""
    x, y, w, h = box
    height, width = size
    if square:
        side = max(w, h)
        x, y, w, h = x - (side - w) / 2, y - (side - h) / 2, side, side
    cx, cy = x + w / 2, y + h / 2
    w, h = min(width, w * (1 + 2 * margin)), min(height, h * (1 + 2 * margin))
    x0 = round(min(max(0.0, cx - w / 2), width - w))
    y0 = round(min(max(0.0, cy - h / 2), height - h))
    return [x0, y0, max(1, round(w)), max(1, round(h))]


@block("compose.region_crop", version="1.0.0")
class RegionCrop(Block):
    """Cut a region out (with margin) and resize it to the model's native size for re-rendering."""

    inputs = {"image": In("IMAGE", "the generated image"),
              "mask": In("MASK", "the region (its bounding box is cut out); or give params.box",
                         optional=True)}
    outputs = {"image": Out("IMAGE", "the crop at the render size"),
               "mask": Out("MASK", "the region's mask on the crop (for inpainting it)"),
               "region": Out("REGION", "where the crop goes back (for compose.region_paste)")}

    class Params(Params):
        box: list[int] | None = Field(None, min_length=4, max_length=4,
                                      description="[x, y, width, height] in pixels, instead of a mask")
        margin: float = Field(0.5, ge=0.0, le=8.0, description="context added around the region, as a "
                                                              "share of its size on each side")
        size: int = Field(512, ge=8, le=4096, description="longer side of the crop after resizing (the "
                                                          "model's native size)")
        square: bool = Field(True, description="make the region square before adding the margin")
        multiple_of: int = Field(8, ge=1, le=64, description="round the crop's sides to a multiple of this")

    def run(self, ctx: Context, image: np.ndarray, mask: np.ndarray | None = None) -> dict:
        image = check_image(ctx, image)
        p = self.params
        b, height, width = image.shape[:3]
        full = np.ones((b, height, width), np.float32)
        if mask is not None:
            mask = check_mask(ctx, mask)
            if mask.shape[1:] != (height, width):
                raise input_error(ctx, "inputs.mask", f"is {mask.shape[2]}x{mask.shape[1]}, the image "
                                  f"{width}x{height}; use image.mask_resize", list(mask.shape))
            found = bounding_box(mask)
        elif p.box is not None:
            x, y, w, h = p.box
            if x >= width or y >= height or w < 1 or h < 1:
                raise input_error(ctx, "params.box", f"{p.box} is outside the {width}x{height} image", p.box)
            found = (x, y, min(w, width - x), min(h, height - y))
            mask = np.zeros_like(full)
            mask[:, found[1]:found[1] + found[3], found[0]:found[0] + found[2]] = 1.0
        else:
            raise input_error(ctx, "inputs.mask", "is needed when params.box is not given")
        empty = found is None
        box = [0, 0, width, height] if empty else grow_box(found, p.margin, (height, width), p.square)
        x, y, w, h = box
        scale = p.size / max(w, h)
        m = p.multiple_of
        rh, rw = max(m, round(h * scale / m) * m), max(m, round(w * scale / m) * m)
        crop = resize_array(np.ascontiguousarray(image[:, y:y + h, x:x + w]), rh, rw, "lanczos")
        region_mask = np.ascontiguousarray(mask[:, y:y + h, x:x + w], dtype=np.float32)
        crop_mask = np.clip(resize_array(region_mask[..., None], rh, rw, "bilinear")[..., 0], 0.0, 1.0)
        region = {"box": box, "size": [height, width], "mask": region_mask, "empty": empty}
        return {"image": crop, "mask": crop_mask, "region": region}


@block("compose.region_paste", version="1.0.0")
class RegionPaste(Block):
    """Paste a re-rendered crop back where ``compose.region_crop`` cut it, through a feathered mask.

    ``blend='mask'`` lays it over the region's own mask (grown by ``grow`` and feathered);
    ``'box'`` over the whole crop with feathered edges. An empty region changes nothing.
    """

    inputs = {"image": In("IMAGE", "the image the crop was cut from"),
              "patch": In("IMAGE", "the re-rendered crop (any size: it is resized back)"),
              "region": In("REGION", "from compose.region_crop")}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        blend: Literal["mask", "box"] = Field("mask", description="paste through the region's mask, or "
                                                                 "the whole crop")
        grow: int = Field(8, ge=0, le=512, description="pixels the mask grows by before feathering")
        feather: float = Field(8.0, ge=0.0, le=512.0, description="blur of the paste mask's edge, pixels")

    def run(self, ctx: Context, image: np.ndarray, patch: np.ndarray, region: Any) -> dict:
        image = check_image(ctx, image)
        patch = check_image(ctx, patch, "inputs.patch")
        if not isinstance(region, dict) or "box" not in region:
            raise input_error(ctx, "inputs.region", "is not a REGION from compose.region_crop")
        if list(image.shape[1:3]) != list(region["size"]):
            raise input_error(ctx, "inputs.image", f"is {image.shape[2]}x{image.shape[1]}, the region was "
                              f"cut from a {region['size'][1]}x{region['size'][0]} image")
        out = image.copy()
        if region.get("empty"):
            return {"image": out}
        x, y, w, h = region["box"]
        back = resize_array(np.ascontiguousarray(patch), h, w, "lanczos")
        c = min(back.shape[-1], out.shape[-1])
        alpha = self._alpha(np.asarray(region["mask"], np.float32), h, w)
        if alpha.shape[0] not in (1, out.shape[0]) or back.shape[0] not in (1, out.shape[0]):
            raise input_error(ctx, "inputs.patch", f"has batch {back.shape[0]}, the image {out.shape[0]}")
        window = out[:, y:y + h, x:x + w, :c]
        out[:, y:y + h, x:x + w, :c] = window * (1 - alpha[..., None]) + back[..., :c] * alpha[..., None]
        return {"image": np.clip(out, 0.0, 1.0)}

    def _alpha(self, mask: np.ndarray, h: int, w: int) -> np.ndarray:
        p = self.params
        if p.blend == "box":
            alpha = np.ones((1, h, w), np.float32)
            if p.feather > 0:  # fade to 0 at the crop's edge
                edge = np.minimum.outer(np.minimum(np.arange(h), np.arange(h)[::-1]),
                                        np.minimum(np.arange(w), np.arange(w)[::-1])).astype(np.float32)
                alpha = np.clip(edge / p.feather, 0.0, 1.0)[None]
            return alpha
        out = np.empty_like(mask)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * p.grow + 1, 2 * p.grow + 1))
        for i, m in enumerate(mask):
            if p.grow:
                m = cv2.dilate(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            if p.feather > 0:
                m = cv2.GaussianBlur(m, (0, 0), sigmaX=p.feather / 2, borderType=cv2.BORDER_CONSTANT)
            out[i] = m
        return np.clip(out, 0.0, 1.0)


BLOCKS = [RegionCrop, RegionPaste]
