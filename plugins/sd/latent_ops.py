"""Latents combined without a model, as ComfyUI's LatentComposite and LatentBlend do.

``sd.latent_composite`` pastes ``source`` into ``latent`` at ``x``, ``y`` (pixels, in
latent cells of 8), cut to what fits; with ``feather`` (pixels, in cells) the pasted
block fades in linearly over that many cells from each of its edges that lies inside the
latent (``(t + 1) / feather`` for cell ``t``, multiplied where edges meet), as ComfyUI's.
``sd.latent_blend`` is ``latent * factor + source * (1 - factor)``, the source first
resized (bicubic, centre crop) when its size differs.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.latent_resize import center_crop


def _latent(x: Any, node: str, field: str) -> Any:
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise BlockError(f"node {node!r}: {field} is not a latent [B, C, H, W]", type="input", node=node,
                         field=field)
    return x


def composite(to: Any, source: Any, x: int, y: int, feather: int) -> Any:
    """``source`` pasted into a copy of ``to`` at cell ``(x, y)``, inner edges feathered over ``feather``."""
    out = to.clone()
    h, w = to.shape[-2:]
    if y >= h or x >= w:
        return out
    src = source[..., :h - y, :w - x].to(out.dtype)
    sh, sw = src.shape[-2:]
    if sh == 0 or sw == 0:
        return out
    region = out[..., y:y + sh, x:x + sw]
    if feather <= 0:
        region.copy_(src)
        return out
    mask = src.new_ones((1, 1, sh, sw))
    for t in range(feather):
        fade = (t + 1) / feather
        if y != 0:
            mask[..., t:t + 1, :] *= fade
        if y + sh < h:
            mask[..., sh - 1 - t:sh - t, :] *= fade
        if x != 0:
            mask[..., :, t:t + 1] *= fade
        if x + sw < w:
            mask[..., :, sw - 1 - t:sw - t] *= fade
    region.copy_(src * mask + region * (1 - mask))
    return out


@block("sd.latent_composite", version="1.0.0")
class LatentComposite(Block):
    """Paste one latent into another at a position (ComfyUI LatentComposite)."""

    inputs = {"latent": In("LATENT", "the latent pasted into"), "source": In("LATENT", "the latent pasted")}
    outputs = {"latent": Out("LATENT", "the composite, the size of 'latent'")}

    class Params(Params):
        x: int = Field(0, ge=0, le=16384, description="left edge of the paste, pixels (cells of 8)")
        y: int = Field(0, ge=0, le=16384, description="top edge of the paste, pixels (cells of 8)")
        feather: int = Field(0, ge=0, le=16384, description="pixels (cells of 8) the paste fades in over")

    def run(self, ctx: Context, latent: Any, source: Any) -> dict:
        to = _latent(latent, ctx.node, "inputs.latent")
        src = _latent(source, ctx.node, "inputs.source")
        if src.shape[1] != to.shape[1] or src.shape[0] not in (1, to.shape[0]):
            raise BlockError(f"node {ctx.node!r}: the source latent {tuple(src.shape)} does not fit the "
                             f"latent {tuple(to.shape)} (channels, batch)", type="input", node=ctx.node,
                             field="inputs.source")
        p = self.params
        return {"latent": composite(to, src, p.x // 8, p.y // 8, p.feather // 8)}


@block("sd.latent_blend", version="1.0.0")
class LatentBlend(Block):
    """``latent * factor + source * (1 - factor)`` (ComfyUI LatentBlend, mode normal)."""

    inputs = {"latent": In("LATENT", "the first latent"), "source": In("LATENT", "the second latent")}
    outputs = {"latent": Out("LATENT", "the blend, the size of 'latent'")}

    class Params(Params):
        factor: float = Field(0.5, ge=0.0, le=1.0, description="share of the first latent")

    def run(self, ctx: Context, latent: Any, source: Any) -> dict:
        import torch.nn.functional as F

        a = _latent(latent, ctx.node, "inputs.latent")
        b = _latent(source, ctx.node, "inputs.source")
        if b.shape[1] != a.shape[1]:
            raise BlockError(f"node {ctx.node!r}: the latents have {a.shape[1]} and {b.shape[1]} channels",
                             type="input", node=ctx.node, field="inputs.source")
        if b.shape[-2:] != a.shape[-2:]:
            b = F.interpolate(center_crop(b, *a.shape[-2:]).float(), size=tuple(a.shape[-2:]), mode="bicubic")
        f = self.params.factor
        return {"latent": a * f + b.to(a.dtype) * (1 - f)}


BLOCKS = [LatentComposite, LatentBlend]
