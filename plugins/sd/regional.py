"""Regional prompts: several text conditions in one denoise, each with an area or a mask.

``sd.regional_prompt`` adds a region to a conditioning: the prompt of another
conditioning, where it applies (an ``area`` of the image, a ``mask``, or both), a
``strength`` and a ``method``. At every step the sampling loop (:class:`Regions`) predicts
the noise of the base prompt and of every region, and composes them: with region weights
``w_r = strength * mask`` and ``W = sum(w_r)``,

    eps = (1 - min(W, 1)) * eps_base + min(W, 1) * sum(w_r * eps_r) / W

so a region of strength 1 replaces the base prompt where it is, overlapping regions share,
and the base prompt keeps the rest. The two recipes:

- ``area`` (area composition): a region with an area is predicted on that window of the
  latent only, so the UNet draws the subject at the window's own composition.
- ``latent`` (noisy-latent composition): for the first ``until`` share of the steps the
  region denoises a latent of its own (its own noise, ``seed``) of the window's size with
  its prompt alone; then that noisy latent is pasted into the main one (feathered by its
  weight) and the region goes on as in ``area``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.common import crop, randn
from plugins.sd.cond_types import check_conditioning, with_extra

if TYPE_CHECKING:
    from collections.abc import Callable

    from plugins.sd.common import Sampling, Window

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


@block("sd.regional_prompt", version="1.0.0")
class RegionalPrompt(Block):
    """Add a regional prompt to a conditioning: another prompt for an area or a mask.

    ``area`` is ``[x, y, width, height]`` as fractions of the image (``[0, 0, 0.5, 1]``: the
    left half); ``mask`` (white where the region is) may come with or without it. Chain
    several blocks for several regions. See :mod:`plugins.sd.regional` for how they combine.
    """

    inputs = {"cond": In("CONDITIONING", "the base conditioning (the prompt for everything else)"),
              "region": In("CONDITIONING", "the region's prompt, from sd.encode_prompt"),
              "mask": In("MASK", "where the region is (1), any size; default: the area, or everywhere",
                         optional=True)}
    outputs = {"cond": Out("CONDITIONING", "the base conditioning with this region added")}

    class Params(Params):
        area: list[Fraction] | None = Field(None, min_length=4, max_length=4,
                                            description="[x, y, width, height] as fractions of the image")
        strength: float = Field(1.0, ge=0.0, le=10.0, description="weight of the region's prompt there")
        method: Literal["area", "latent"] = Field(
            "area", description="area: compose predictions (area composition); latent: the region first "
                                "denoises its own latent, pasted in after 'until' (noisy-latent composition)")
        until: float = Field(0.4, ge=0.0, le=1.0,
                             description="method latent: share of the steps the region runs on its own")
        feather: float = Field(0.0, ge=0.0, le=512.0, description="soften the region's edge, in pixels")
        seed: int = Field(0, ge=0, le=2**63 - 1, description="method latent: noise of stochastic samplers")

    def run(self, ctx: Context, cond: Any, region: Any, mask: np.ndarray | None = None) -> dict:
        cond = check_conditioning(cond, ctx.node)
        region = check_conditioning(region, ctx.node, "inputs.region")
        if region.get("family") != cond.get("family"):
            raise BlockError(f"node {ctx.node!r}: the region's conditioning is for a {region.get('family')} "
                             f"model, the base for {cond.get('family')}", type="input", node=ctx.node,
                             field="inputs.region")
        p = self.params
        if p.area is not None and (p.area[2] <= 0 or p.area[3] <= 0 or p.area[0] >= 1 or p.area[1] >= 1):
            raise BlockError(f"node {ctx.node!r}: area {p.area} is empty or outside the image", type="input",
                             node=ctx.node, field="params.area", value=p.area)
        if mask is not None:
            mask = np.asarray(mask, dtype=np.float32)
            mask = mask[None] if mask.ndim == 2 else mask
            if mask.ndim != 3:
                raise BlockError(f"node {ctx.node!r}: mask must be [B, H, W], got shape {mask.shape}",
                                 type="input", node=ctx.node, field="inputs.mask")
        item = {"prompt_embeds": region["prompt_embeds"],
                "pooled_prompt_embeds": region.get("pooled_prompt_embeds"), "family": region.get("family"),
                "mask": mask, "area": list(p.area) if p.area is not None else None, "strength": p.strength,
                "method": p.method, "until": p.until, "feather": p.feather, "seed": p.seed}
        return {"cond": with_extra(cond, "regions", item)}


def area_window(area: list[float] | None, latent_size: tuple[int, int], multiple: int) -> Window | None:
    """The latent window of an ``[x, y, w, h]`` area, grown to sides the UNet can take."""
    if area is None:
        return None
    lh, lw = latent_size
    x, y, w, h = area

    def span(start: float, size: float, full: int) -> tuple[int, int]:
        lo, hi = _span(start, size, full)
        length = min(full, -(-(hi - lo) // multiple) * multiple)  # up to a multiple
        lo = max(0, min(lo - (length - (hi - lo)) // 2, full - length))
        return lo, length

    top, height = span(y, h, lh)
    left, width = span(x, w, lw)
    if (height, width) == (lh, lw):
        return None
    return top, left, height, width


def _span(start: float, size: float, full: int) -> tuple[int, int]:
    """``[lo, hi)`` cells of a fractional ``start`` and ``size`` along a side of ``full`` cells."""
    lo = min(full - 1, round(start * full))
    return lo, min(full, max(lo + 1, round((start + size) * full)))


def weight_map(item: dict[str, Any], window: Window | None, run: Sampling) -> Any:
    """The region's weight ``strength * mask`` over the latent (0 outside its window), ``[1|B, 1, h, w]``."""
    import torch
    import torch.nn.functional as F

    lh, lw = run.latent_size
    w = torch.zeros(1, 1, lh, lw)
    if item.get("area") is None:
        w[:] = 1.0
    else:
        x, y, aw, ah = item["area"]
        (t0, t1), (l0, l1) = _span(y, ah, lh), _span(x, aw, lw)
        w[..., t0:t1, l0:l1] = 1.0
    if item.get("mask") is not None:
        mask = torch.as_tensor(np.asarray(item["mask"], dtype=np.float32))[:, None]
        w = w * F.interpolate(mask.clamp(0, 1), size=(lh, lw), mode="area")
    if item.get("feather", 0) > 0:
        w = _blur(w, item["feather"] / run.scale_factor)
        if window is not None:
            box = torch.zeros_like(w)
            top, left, h, wd = window
            box[..., top:top + h, left:left + wd] = 1.0
            w = w * box
    return (w * float(item["strength"])).to(device=run.device, dtype=run.dtype)


def _blur(w: Any, sigma: float) -> Any:
    import torch
    import torch.nn.functional as F

    radius = max(1, int(3 * sigma + 0.5))
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (xs / max(sigma, 1e-3)) ** 2)
    k = k / k.sum()
    pad = F.pad(w, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(pad.reshape(-1, 1, *pad.shape[-2:]), k.view(1, 1, 1, -1))
    out = F.conv2d(out, k.view(1, 1, -1, 1))
    return out.reshape(w.shape)


class _Region:
    def __init__(self, item: dict[str, Any], run: Sampling, index: int) -> None:
        import torch

        self.item = item
        self.prompt = run.make_prompt({"prompt_embeds": item["prompt_embeds"], "family": item.get("family"),
                                       "pooled_prompt_embeds": item.get("pooled_prompt_embeds")})
        self.window = area_window(item.get("area"), run.latent_size, run.latent_multiple)
        self.weight = weight_map(item, self.window, run)
        if self.weight.shape[0] not in (1, run.batch):
            raise BlockError(f"node {run.ctx.node!r}: region {index}'s mask has batch "
                             f"{self.weight.shape[0]}, the latent {run.batch}", type="input",
                             node=run.ctx.node, field="inputs.cond")
        self.switch = 0
        if item["method"] == "latent":
            self.switch = min(round(item["until"] * run.total), run.total - 1)
        self.latents: Any = None
        if self.switch > 0:  # its own trajectory: a copy of the scheduler, its own noise
            self.scheduler = copy.deepcopy(run.scheduler)
            self.gen = torch.Generator("cpu")
            self.gen.manual_seed(int(item["seed"]))
            self.step_kwargs = dict(run.step_kwargs)
            if "generator" in self.step_kwargs:
                self.step_kwargs["generator"] = self.gen

    def start(self, like: Any, t: Any) -> Any:
        """The region's own latent at the first step: its own noise, at the first step's noise level."""
        import torch

        noise = randn(tuple(like.shape), self.gen, str(like.device), like.dtype)
        return self.scheduler.add_noise(torch.zeros_like(like), noise, torch.as_tensor(t).reshape(1))


class Regions:
    """The regional prompts of one sampling run (see the module doc)."""

    def __init__(self, items: list[dict[str, Any]], run: Sampling) -> None:
        self.run = run
        self.regions = [_Region(item, run, k) for k, item in enumerate(items)]

    def predict(self, predict: Callable[..., Any], latents: Any, t: Any, i: int) -> tuple[Any, Any]:
        import torch

        for r in self.regions:
            if r.switch == 0:
                continue
            if i == 0:
                r.latents = r.start(crop(latents, r.window), t)
            if i == r.switch:  # paste the region's own noisy latent in
                part = r.weight.clamp(0, 1)
                full = latents.clone()
                win = crop(full, r.window)
                win.copy_(win * (1 - crop(part, r.window)) + r.latents * crop(part, r.window))
                latents = full
            elif i < r.switch:
                eps = predict(r.latents, t, i, r.prompt, r.window)  # scaled by the main scheduler,
                if hasattr(r.scheduler, "is_scale_input_called"):  # in step with this copy
                    r.scheduler.is_scale_input_called = True
                r.latents = r.scheduler.step(eps, t, r.latents, **r.step_kwargs, return_dict=False)[0]
        eps_base = predict(latents, t, i)
        acc = torch.zeros_like(eps_base)
        total = torch.zeros_like(self.regions[0].weight)
        for r in self.regions:
            if i < r.switch:
                continue
            eps = predict(crop(latents, r.window), t, i, r.prompt, r.window)
            w = crop(r.weight, r.window)
            crop(acc, r.window).add_(w * eps)
            total = total + r.weight
        if not bool(torch.any(total > 0)):
            return latents, eps_base
        share = total.clamp(max=1.0)
        eps = eps_base * (1 - share) + acc * (share / total.clamp(min=1e-8))
        return latents, eps


BLOCKS = [RegionalPrompt]
