"""Latent arithmetic as ComfyUI's ``comfy_extras/nodes_latent.py`` and LatentCompositeMasked do it.

``sd.latent_add`` (LatentAdd / LatentSubtract with ``op``), ``sd.latent_multiply``
(LatentMultiply), ``sd.latent_interpolate`` (LatentInterpolate: directions and lengths of each
cell's channel vector interpolated apart), ``sd.latent_composite_masked``
(LatentCompositeMasked), ``sd.latent_concat`` (LatentBatch), ``sd.latent_seed_behavior``
(LatentBatchSeedBehavior). A second latent of another size is first resized to the first's
(bilinear, middle cut to its aspect) and repeated to its batch, as ComfyUI's
``reshape_latent_to``.

>>> import torch
>>> from orchestrator import Context
>>> ctx = Context(node="a", block="sd.latent_add", seed=0)
>>> LatentAdd({"op": "subtract"}).run(ctx, latent=torch.ones(1, 4, 2, 2), other=torch.ones(1, 4, 4, 4))[
...     "latent"].abs().max().item()
0.0
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.image.regions import composite, repeat_to_batch_size
from plugins.sd.latent_transform import check_latent


def reshape_latent_to(shape: Any, latent: Any) -> Any:
    """ComfyUI's ``reshape_latent_to``: bilinear to ``shape``'s size (centre cut), repeated to its batch."""
    import torch.nn.functional as F

    if tuple(latent.shape[1:]) != tuple(shape[1:]):
        h, w = shape[2], shape[3]
        old_h, old_w = latent.shape[2], latent.shape[3]
        old, new = old_w / old_h, w / h
        dx = round((old_w - old_w * (new / old)) / 2) if old > new else 0
        dy = round((old_h - old_h * (old / new)) / 2) if old < new else 0
        latent = latent.narrow(-2, dy, old_h - dy * 2).narrow(-1, dx, old_w - dx * 2)
        latent = F.interpolate(latent, size=(h, w), mode="bilinear")
    return repeat_to_batch_size(latent, shape[0])


def _pair(ctx: Context, latent: Any, other: Any) -> tuple[Any, Any]:
    a = check_latent(latent, ctx.node, "inputs.latent")
    b = check_latent(other, ctx.node, "inputs.other")
    if a.shape[1] != b.shape[1]:
        raise BlockError(f"node {ctx.node!r}: the latents have {a.shape[1]} and {b.shape[1]} channels (two "
                         f"model families?)", type="input", node=ctx.node, field="inputs.other",
                         value=int(b.shape[1]))
    return a, reshape_latent_to(a.shape, b.to(a.dtype))


@block("sd.latent_add", version="1.0.0")
class LatentAdd(Block):
    """``latent + other`` or ``latent - other`` (ComfyUI LatentAdd / LatentSubtract)."""

    inputs = {"latent": In("LATENT", "the first latent (its size is the result's)"),
              "other": In("LATENT", "the latent added or subtracted (resized to the first)")}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        op: Literal["add", "subtract"] = Field("add", description="add or subtract 'other'")

    def run(self, ctx: Context, latent: Any, other: Any) -> dict:
        a, b = _pair(ctx, latent, other)
        return {"latent": a + b if self.params.op == "add" else a - b}


@block("sd.latent_multiply", version="1.0.0")
class LatentMultiply(Block):
    """``latent * multiplier`` (ComfyUI LatentMultiply)."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        multiplier: float = Field(1.0, ge=-10.0, le=10.0, description="the factor")

    def run(self, ctx: Context, latent: Any) -> dict:
        return {"latent": check_latent(latent, ctx.node) * self.params.multiplier}


@block("sd.latent_interpolate", version="1.0.0")
class LatentInterpolate(Block):
    """Between two latents by ``ratio`` of the first: the direction of each cell's channel vector and
    its length interpolated apart (ComfyUI LatentInterpolate)."""

    inputs = {"latent": In("LATENT", "the first latent (ratio 1)"),
              "other": In("LATENT", "the second latent (ratio 0), resized to the first")}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of the first latent")

    def run(self, ctx: Context, latent: Any, other: Any) -> dict:
        import torch

        s1, s2 = _pair(ctx, latent, other)
        r = self.params.ratio
        # ComfyUI divides by norms of shape [B, H, W], which broadcast right only for a batch of one (a
        # batch of B != channels fails there); keepdim gives each latent its own norms, the same for one
        m1 = torch.linalg.vector_norm(s1, dim=1, keepdim=True)
        m2 = torch.linalg.vector_norm(s2, dim=1, keepdim=True)
        s1 = torch.nan_to_num(s1 / m1)
        s2 = torch.nan_to_num(s2 / m2)
        t = s1 * r + s2 * (1.0 - r)
        mt = torch.linalg.vector_norm(t, dim=1, keepdim=True)
        st = torch.nan_to_num(t / mt)
        return {"latent": st * (m1 * r + m2 * (1.0 - r))}


@block("sd.latent_composite_masked", version="1.0.0")
class LatentCompositeMasked(Block):
    """Paste ``source`` into ``destination`` at ``x``, ``y`` (pixels, cells of 8) through an optional
    mask (ComfyUI LatentCompositeMasked)."""

    inputs = {"destination": In("LATENT", "the latent pasted into (its size is the result's)"),
              "source": In("LATENT", "the latent pasted"),
              "mask": In("MASK", "where the source shows; resized to the source", optional=True)}
    outputs = {"latent": Out("LATENT", "the composite")}

    class Params(Params):
        x: int = Field(0, ge=0, le=16384, description="left edge in pixels (cells of 8)")
        y: int = Field(0, ge=0, le=16384, description="top edge in pixels (cells of 8)")
        resize_source: bool = Field(False, description="resize the source to the destination first")

    def run(self, ctx: Context, destination: Any, source: Any, mask: Any = None) -> dict:
        import numpy as np
        import torch

        dst = check_latent(destination, ctx.node, "inputs.destination")
        src = check_latent(source, ctx.node, "inputs.source")
        if dst.shape[1] != src.shape[1]:
            raise BlockError(f"node {ctx.node!r}: the latents have {dst.shape[1]} and {src.shape[1]} "
                             "channels",
                             type="input", node=ctx.node, field="inputs.source", value=int(src.shape[1]))
        m = None
        if mask is not None:
            m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
            if m.ndim not in (2, 3) or 0 in m.shape:
                raise BlockError(f"node {ctx.node!r}: inputs.mask is not a mask [batch, height, width]",
                                 type="input", node=ctx.node, field="inputs.mask")
        p = self.params
        return {"latent": composite(dst.clone(), src.to(dst.dtype), p.x, p.y, m, 8, p.resize_source)}


@block("sd.latent_concat", version="1.0.0")
class LatentConcat(Block):
    """The latents of ``latent`` then those of ``other`` in one batch (ComfyUI LatentBatch); ``other`` of
    another size is first resized to the first's (bilinear, middle cut to its aspect). The importer
    gives the sampler ComfyUI's noise record of the batch (each part's own indices)."""

    inputs = {"latent": In("LATENT", "the first latents (their size is the batch's)"),
              "other": In("LATENT", "the latents appended")}
    outputs = {"latent": "LATENT"}

    def run(self, ctx: Context, latent: Any, other: Any) -> dict:
        import torch

        a = check_latent(latent, ctx.node, "inputs.latent")
        b = check_latent(other, ctx.node, "inputs.other")
        if a.shape[1] != b.shape[1]:
            raise BlockError(f"node {ctx.node!r}: the latents have {a.shape[1]} and {b.shape[1]} channels "
                             "(two model families?)", type="input", node=ctx.node, field="inputs.other",
                             value=int(b.shape[1]))
        if a.shape[0] + b.shape[0] > 4096:
            raise BlockError(f"node {ctx.node!r}: {a.shape[0]} + {b.shape[0]} latents exceed 4096",
                             type="limit", node=ctx.node, field="inputs.other", value=int(b.shape[0]))
        if tuple(b.shape[2:]) != tuple(a.shape[2:]):
            b = reshape_latent_to((b.shape[0], *a.shape[1:]), b.to(a.dtype))
        return {"latent": torch.cat((a, b.to(a.dtype)), dim=0)}


@block("sd.latent_seed_behavior", version="1.0.0")
class LatentSeedBehavior(Block):
    """Which noise each latent of a batch gets (ComfyUI LatentBatchSeedBehavior): 'fixed' gives every
    latent the noise of the batch's first, 'random' each its own. The latent itself passes unchanged (as
    in ComfyUI, where the node only rewrites the batch's noise record); the importer hands the record
    to the sampler (``sd.ksampler``'s ``batch_index``)."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        seed_behavior: Literal["random", "fixed"] = Field("fixed",
                                                          description="fixed: one noise for the whole batch")

    def run(self, ctx: Context, latent: Any) -> dict:
        return {"latent": check_latent(latent, ctx.node)}




BLOCKS = [LatentAdd, LatentMultiply, LatentInterpolate, LatentCompositeMasked, LatentConcat,
          LatentSeedBehavior]
