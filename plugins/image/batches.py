"""Image batches as ComfyUI builds them: ``image.batch`` (ImageBatch), ``image.batch_repeat``
(RepeatImageBatch), ``image.from_batch`` (ImageFromBatch).

``image.batch`` appends the second batch to the first; a second image of another size is first
resized to the first's (bilinear, middle cut to its aspect: ComfyUI's ``common_upscale``), and
when one has an alpha channel the other gets an opaque one.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="b", block="image.batch", seed=0)
>>> a, b = np.zeros((1, 4, 4, 3), np.float32), np.ones((2, 8, 8, 3), np.float32)
>>> Batch().run(ctx, image1=a, image2=b)["image"].shape
(3, 4, 4, 3)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, block
from plugins.image.comfy_scale import common_upscale
from plugins.image.common import check_image, input_error

MAX_BATCH = 4096


@block("image.batch", version="1.0.0")
class Batch(Block):
    """The images of ``image1`` then those of ``image2`` in one batch (ComfyUI ImageBatch)."""

    inputs = {"image1": In("IMAGE", "the first images (their size is the batch's)"),
              "image2": In("IMAGE", "the images appended (resized to the first's size when it differs)")}
    outputs = {"image": "IMAGE"}

    def run(self, ctx: Context, image1: np.ndarray, image2: np.ndarray) -> dict:
        import torch

        a = torch.from_numpy(np.ascontiguousarray(check_image(ctx, image1, "inputs.image1")))
        b = torch.from_numpy(np.ascontiguousarray(check_image(ctx, image2, "inputs.image2")))
        ctx.check_size(a.shape[2], a.shape[1], a.shape[0] + b.shape[0], "inputs.image2")
        if abs(a.shape[-1] - b.shape[-1]) > 1:  # ComfyUI adds one (alpha) channel; more would fail there too
            raise input_error(ctx, "inputs.image2", f"has {b.shape[-1]} channels and image1 {a.shape[-1]}: "
                              "only an alpha channel can be added", int(b.shape[-1]))
        if a.shape[-1] != b.shape[-1]:
            if a.shape[-1] > b.shape[-1]:
                b = torch.nn.functional.pad(b, (0, 1), mode="constant", value=1.0)
            else:
                a = torch.nn.functional.pad(a, (0, 1), mode="constant", value=1.0)
        if a.shape[1:] != b.shape[1:]:
            b = common_upscale(b.movedim(-1, 1), a.shape[2], a.shape[1], "bilinear", "center").movedim(1, -1)
        return {"image": torch.cat((a, b), dim=0).numpy().astype(np.float32)}


@block("image.batch_repeat", version="1.0.0")
class BatchRepeat(Block):
    """The batch repeated ``amount`` times (ComfyUI RepeatImageBatch)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        amount: int = Field(1, ge=1, le=MAX_BATCH, description="how many times")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        ctx.check_size(image.shape[2], image.shape[1], image.shape[0] * self.params.amount, "params.amount")
        return {"image": np.tile(image, (self.params.amount, 1, 1, 1))}


@block("image.from_batch", version="1.0.0")
class FromBatch(Block):
    """``length`` images from ``batch_index`` on, both clamped to the batch (ComfyUI ImageFromBatch)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        batch_index: int = Field(0, ge=0, le=MAX_BATCH - 1, description="the first image taken")
        length: int = Field(1, ge=1, le=MAX_BATCH, description="how many")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        start = min(image.shape[0] - 1, self.params.batch_index)
        length = min(image.shape[0] - start, self.params.length)
        return {"image": image[start:start + length].copy()}


BLOCKS = [Batch, BatchRepeat, FromBatch]
