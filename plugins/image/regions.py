"""Rectangles of images as ComfyUI cuts and pastes them: ``image.crop_clamped`` (ImageCrop) and
``image.composite_masked`` (ImageCompositeMasked).

ComfyUI's ImageCrop moves a start past the image back to its last pixel and cuts the rectangle
to what the image has (``image.crop`` refuses such a crop instead). ImageCompositeMasked pastes
``source`` into ``destination`` at ``x``, ``y`` (cut where it passes the edge), through
``mask`` (resized bilinearly to the source) when one is given, the source first resized to the
destination with ``resize_source``; a batch of one is repeated to the destination's batch.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="c", block="image.crop_clamped", seed=0)
>>> crop = CropClamped({"x": 50, "y": 0, "width": 8, "height": 8})
>>> crop.run(ctx, image=np.zeros((1, 4, 6, 3)))["image"].shape
(1, 4, 1, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, block
from plugins.image.common import check_image, check_mask, input_error

MAX_SIZE = 16384


def repeat_to_batch_size(tensor: Any, batch_size: int) -> Any:
    """ComfyUI's ``comfy.utils.repeat_to_batch_size``: cut, or tile and cut, to ``batch_size``."""
    import math

    if tensor.shape[0] > batch_size:
        return tensor[:batch_size]
    if tensor.shape[0] < batch_size:
        return tensor.repeat([math.ceil(batch_size / tensor.shape[0])] + [1] * (tensor.ndim - 1))[:batch_size]
    return tensor


def composite(destination: Any, source: Any, x: int, y: int, mask: Any = None, multiplier: int = 8,
              resize_source: bool = False) -> Any:
    """ComfyUI's ``nodes_mask.composite`` on [B, C, H, W] tensors; ``destination`` is written in place."""
    import torch
    import torch.nn.functional as F

    source = source.to(destination.device)
    if resize_source:
        source = F.interpolate(source, size=(destination.shape[2], destination.shape[3]), mode="bilinear")
    source = repeat_to_batch_size(source, destination.shape[0])
    x = max(-source.shape[3] * multiplier, min(x, destination.shape[3] * multiplier))
    y = max(-source.shape[2] * multiplier, min(y, destination.shape[2] * multiplier))
    left, top = x // multiplier, y // multiplier
    right, bottom = left + source.shape[3], top + source.shape[2]
    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = mask.to(destination.device, copy=True)
        mask = F.interpolate(mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])),
                             size=(source.shape[2], source.shape[3]), mode="bilinear")
        mask = repeat_to_batch_size(mask, source.shape[0])
    visible_width = destination.shape[3] - left + min(0, x)
    visible_height = destination.shape[2] - top + min(0, y)
    mask = mask[:, :, :visible_height, :visible_width]
    inverse_mask = torch.ones_like(mask) - mask
    source_portion = mask * source[:, :, :visible_height, :visible_width]
    destination_portion = inverse_mask * destination[:, :, top:bottom, left:right]
    destination[:, :, top:bottom, left:right] = source_portion + destination_portion
    return destination


@block("image.crop_clamped", version="1.0.0")
class CropClamped(Block):
    """The rectangle at ``x``, ``y``, cut to the image; a start past the image moves to its last pixel
    (ComfyUI ImageCrop)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        width: int = Field(512, ge=1, le=MAX_SIZE, description="width of the cut in pixels")
        height: int = Field(512, ge=1, le=MAX_SIZE, description="height of the cut in pixels")
        x: int = Field(0, ge=0, le=MAX_SIZE, description="left edge in pixels")
        y: int = Field(0, ge=0, le=MAX_SIZE, description="top edge in pixels")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        p = self.params
        x, y = min(p.x, image.shape[2] - 1), min(p.y, image.shape[1] - 1)
        return {"image": image[:, y:y + p.height, x:x + p.width].copy()}


@block("image.composite_masked", version="1.0.0")
class CompositeMasked(Block):
    """Paste ``source`` into ``destination`` at ``x``, ``y`` through an optional mask (ComfyUI
    ImageCompositeMasked)."""

    inputs = {"destination": In("IMAGE", "the image pasted into (its size is the result's)"),
              "source": In("IMAGE", "the image pasted"),
              "mask": In("MASK", "where the source shows (1) or not (0); resized to the source",
                         optional=True)}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        x: int = Field(0, ge=0, le=MAX_SIZE, description="left edge of the paste in pixels")
        y: int = Field(0, ge=0, le=MAX_SIZE, description="top edge of the paste in pixels")
        resize_source: bool = Field(False, description="resize the source to the destination first")

    def run(self, ctx: Context, destination: np.ndarray, source: np.ndarray,
            mask: np.ndarray | None = None) -> dict:
        import torch

        dst = torch.from_numpy(np.ascontiguousarray(check_image(ctx, destination, "inputs.destination")))
        src = torch.from_numpy(np.ascontiguousarray(check_image(ctx, source, "inputs.source")))
        if dst.shape[-1] < src.shape[-1]:  # ComfyUI's node_helpers.image_alpha_fix
            src = src[..., :dst.shape[-1]]
        elif dst.shape[-1] > src.shape[-1]:
            if src.shape[-1] + 1 != dst.shape[-1]:
                raise input_error(ctx, "inputs.source", f"has {src.shape[-1]} channels and the destination "
                                  f"{dst.shape[-1]}", src.shape[-1])
            src = torch.nn.functional.pad(src, (0, 1))
            src[..., -1] = 1.0
        m = None if mask is None else torch.from_numpy(np.ascontiguousarray(check_mask(ctx, mask)))
        p = self.params
        out = composite(dst.clone().movedim(-1, 1), src.movedim(-1, 1), p.x, p.y, m, 1, p.resize_source)
        return {"image": out.movedim(1, -1).numpy().astype(np.float32)}


BLOCKS = [CropClamped, CompositeMasked]
