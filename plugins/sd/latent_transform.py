"""Latents cut, flipped and turned as ComfyUI's LatentCrop, LatentFlip and LatentRotate do.

``sd.latent_crop`` takes pixels (cells of 8): a start past the latent is moved back so at least
8 cells (64 pixels) remain, and the cut ends at the latent's edge. ``sd.latent_flip`` mirrors
across the x axis (vertically: rows reversed) or the y axis (horizontally: columns reversed),
``sd.latent_rotate`` turns by quarter turns (``torch.rot90`` over width then height, ComfyUI's
direction: 90 degrees is a clockwise turn). ``sd.noise_mask_batch`` takes a latent's noise mask through
LatentFromBatch / RepeatLatentBatch as ComfyUI does.

>>> import torch
>>> from orchestrator import Context
>>> ctx = Context(node="r", block="sd.latent_rotate", seed=0)
>>> LatentRotate({"rotation": "90 degrees"}).run(ctx, latent=torch.zeros(1, 4, 2, 3))["latent"].shape
torch.Size([1, 4, 3, 2])
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block


def check_latent(x: Any, node: str, field: str = "inputs.latent") -> Any:
    """``x`` when it is a latent tensor [B, C, H, W], else an input error naming ``field``."""
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise BlockError(f"node {node!r}: {field} is not a latent [batch, channels, height, width] ({shape})",
                         type="input", node=node, field=field)
    return x


@block("sd.latent_crop", version="1.0.0")
class LatentCrop(Block):
    """The rectangle at ``x``, ``y`` of ``width`` x ``height`` pixels of a latent (ComfyUI LatentCrop)."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        width: int = Field(512, ge=64, le=16384, description="width in pixels (cells of 8)")
        height: int = Field(512, ge=64, le=16384, description="height in pixels (cells of 8)")
        x: int = Field(0, ge=0, le=16384, description="left edge in pixels (cells of 8)")
        y: int = Field(0, ge=0, le=16384, description="top edge in pixels (cells of 8)")

    def run(self, ctx: Context, latent: Any) -> dict:
        samples = check_latent(latent, ctx.node)
        p = self.params
        x, y = p.x // 8, p.y // 8
        if x > samples.shape[3] - 8:  # ComfyUI keeps at least 8 cells (64 pixels)
            x = samples.shape[3] - 8
        if y > samples.shape[2] - 8:
            y = samples.shape[2] - 8
        x, y = max(0, x), max(0, y)  # a latent under 8 cells: ComfyUI's negative start would wrap around
        return {"latent": samples[:, :, y:y + p.height // 8, x:x + p.width // 8].clone()}


@block("sd.latent_flip", version="1.0.0")
class LatentFlip(Block):
    """Mirror a latent (ComfyUI LatentFlip)."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        flip_method: Literal["x-axis: vertically", "y-axis: horizontally"] = Field(
            "x-axis: vertically", description="vertically: top and bottom swap; horizontally: left and right")

    def run(self, ctx: Context, latent: Any) -> dict:
        import torch

        samples = check_latent(latent, ctx.node)
        dim = 2 if self.params.flip_method.startswith("x") else 3
        return {"latent": torch.flip(samples, dims=[dim])}


@block("sd.latent_rotate", version="1.0.0")
class LatentRotate(Block):
    """Turn a latent by quarter turns (ComfyUI LatentRotate)."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        rotation: Literal["none", "90 degrees", "180 degrees", "270 degrees"] = Field(
            "none", description="clockwise turn")

    def run(self, ctx: Context, latent: Any) -> dict:
        import torch

        samples = check_latent(latent, ctx.node)
        k = {"none": 0, "90 degrees": 1, "180 degrees": 2, "270 degrees": 3}[self.params.rotation]
        return {"latent": torch.rot90(samples, k=k, dims=[3, 2])}


@block("sd.noise_mask_batch", version="1.0.0")
class NoiseMaskBatch(Block):
    """A latent's noise mask through ComfyUI's LatentFromBatch / RepeatLatentBatch: a single mask stays as
    it is (it covers every latent); a batch of masks is sliced as the latents are (``from_batch``: first
    repeated to the latent's batch when shorter, ``start`` and ``length`` clamped to it) or repeated
    ``amount`` times as it is (``repeat``)."""

    inputs = {"mask": In("MASK", "the noise mask [B, H, W]"),
              "latent": In("LATENT", "the latent the mask belongs to, before the batch node")}
    outputs = {"mask": Out("MASK", "the mask for the batch node's latent")}

    class Params(Params):
        mode: Literal["from_batch", "repeat"] = Field("from_batch", description="as the latent's batch node")
        start: int = Field(0, ge=0, le=4095, description="from_batch: the first latent taken")
        length: int = Field(1, ge=1, le=4096, description="from_batch: how many")
        amount: int = Field(1, ge=1, le=64, description="repeat: how many times")

    def run(self, ctx: Context, mask: Any, latent: Any) -> dict:
        import math

        import numpy as np

        samples = check_latent(latent, ctx.node)
        m = np.asarray(mask, dtype=np.float32)
        m = m.reshape((-1, *m.shape[-2:])) if m.ndim >= 2 else m
        if m.ndim != 3 or 0 in m.shape:
            raise BlockError(f"node {ctx.node!r}: inputs.mask is not a mask [batch, height, width]",
                             type="input", node=ctx.node, field="inputs.mask")
        p = self.params
        if m.shape[0] == 1:
            return {"mask": m}
        if p.mode == "repeat":  # ComfyUI's RepeatLatentBatch repeats the masks as they are (its extended
            return {"mask": np.tile(m, (p.amount, 1, 1))}  # copy goes unused)
        batch = samples.shape[0]
        if m.shape[0] < batch:
            m = np.tile(m, (math.ceil(batch / m.shape[0]), 1, 1))[:batch]
        start = min(batch - 1, p.start)
        length = min(batch - start, p.length)
        return {"mask": m[start:start + length].copy()}


BLOCKS = [LatentCrop, LatentFlip, LatentRotate, NoiseMaskBatch]
