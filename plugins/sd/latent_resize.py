"""Latents resized to an exact size or by a factor, as ComfyUI's LatentUpscale(By) does, and
images padded for outpainting with ComfyUI's feathered mask (ImagePadForOutpaint).

``sd.latent_resize`` takes the target in pixels (``width``/``height``; one of them 0 keeps
the aspect ratio, at least 64 pixels, as ComfyUI's ``LatentUpscale``) or a ``scale`` (the
latent's sides times it, rounded, as ``LatentUpscaleBy``); ``crop`` 'center' cuts the
input to the target's aspect first. Methods: torch's interpolation modes, and ``bislerp``:
bilinear interpolation whose two 1-D passes interpolate each cell's channel vector by
spherical linear interpolation (its direction) and linear interpolation of its length,
between the same two neighbours and with the same weights as bilinear.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block

METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")


def target_size(h: int, w: int, width: int, height: int, scale: float | None) -> tuple[int, int]:
    """``(latent height, latent width)`` to resize an ``h`` x ``w`` latent to."""
    if scale is not None:
        return round(h * scale), round(w * scale)
    if width == 0 and height == 0:
        return h, w
    if width == 0:
        height = max(64, height)
        width = max(64, round(w * height / h))
    elif height == 0:
        width = max(64, width)
        height = max(64, round(h * width / w))
    else:
        width, height = max(64, width), max(64, height)
    return height // 8, width // 8


def center_crop(x: Any, height: int, width: int) -> Any:
    """The middle of ``x`` with the aspect ratio of ``width`` x ``height`` (ComfyUI's 'center' crop)."""
    old_h, old_w = x.shape[-2:]
    old, new = old_w / old_h, width / height
    dx = round((old_w - old_w * (new / old)) / 2) if old > new else 0
    dy = round((old_h - old_h * (old / new)) / 2) if old < new else 0
    return x[..., dy:old_h - dy, dx:old_w - dx]


def _neighbours(old: int, new: int) -> tuple[Any, Any, Any]:
    """For each of ``new`` positions along a side of ``old`` cells: the two cells bilinear reads
    (``lo``, ``hi``) and the weight of ``hi`` (half-pixel centres, edges clamped)."""
    import torch

    pos = (torch.arange(new, dtype=torch.float64) + 0.5) * (old / new) - 0.5
    pos = pos.clamp(0, old - 1)
    lo = pos.floor().long()
    return lo, (lo + 1).clamp(max=old - 1), (pos - lo).float()


def _slerp(a: Any, b: Any, r: Any) -> Any:
    """Per row of ``[N, C]``: the direction slerped from ``a`` to ``b`` by ``r`` ``[N, 1]``, its length
    lerped; equal (or zero-length) directions keep ``a``, opposite ones are lerped."""
    import torch

    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua = torch.where(na == 0, torch.zeros_like(a), a / na)
    ub = torch.where(nb == 0, torch.zeros_like(b), b / nb)
    dot = (ua * ub).sum(-1)
    omega = torch.acos(dot.clamp(-1, 1))
    so = torch.sin(omega)
    wa, wb = torch.sin((1 - r[:, 0]) * omega) / so, torch.sin(r[:, 0] * omega) / so
    out = wa[:, None] * ua + wb[:, None] * ub
    out = out * (na * (1 - r) + nb * r)
    same, opposite = dot > 1 - 1e-5, dot < 1e-5 - 1
    out[same] = a[same]
    out[opposite] = (a * (1 - r) + b * r)[opposite]
    return out


def _slerp_axis(x: Any, new: int, axis: int) -> Any:
    """One pass of :func:`bislerp` along ``axis`` (-1: width, -2: height) of ``[N, C, H, W]``."""
    lo, hi, r = _neighbours(x.shape[axis], new)
    a, b = x.index_select(axis, lo), x.index_select(axis, hi)
    c = x.shape[1]
    shape = list(a.shape)
    flat_a, flat_b = a.movedim(1, -1).reshape(-1, c), b.movedim(1, -1).reshape(-1, c)
    ratio = r.view(*([1] * (len(shape) - 1)), -1) if axis == -1 else r.view(1, 1, -1, 1)
    flat_r = ratio.expand(shape[0], 1, *shape[2:]).movedim(1, -1).reshape(-1, 1)
    out = _slerp(flat_a, flat_b, flat_r)
    return out.reshape(shape[0], *shape[2:], c).movedim(-1, 1)


def bislerp(x: Any, height: int, width: int) -> Any:
    """``x`` ``[N, C, H, W]`` resized to ``height`` x ``width`` by spherical-linear interpolation of
    each cell's channel vector (a pass along the width, then one along the height)."""
    dtype = x.dtype
    out = _slerp_axis(x.float(), width, -1)
    return _slerp_axis(out, height, -2).to(dtype)


@block("sd.latent_resize", version="1.0.0")
class LatentResize(Block):
    """Resize a latent to an exact size, or by a factor (ComfyUI's LatentUpscale / LatentUpscaleBy)."""

    inputs = {"latent": In("LATENT", "the latent")}
    outputs = {"latent": Out("LATENT", "the resized latent")}

    class Params(Params):
        width: int = Field(0, ge=0, le=16384, description="target width in pixels; 0: from height, aspect")
        height: int = Field(0, ge=0, le=16384, description="target height in pixels; 0: from width, aspect")
        scale: float | None = Field(None, gt=0.0, le=8.0, description="instead of a size: sides times this")
        method: Literal["nearest-exact", "bilinear", "area", "bicubic", "bislerp"] = Field(
            "nearest-exact", description="interpolation")
        crop: Literal["disabled", "center"] = Field(
            "disabled", description="center: cut the input to the target's aspect ratio first")

    def run(self, ctx: Context, latent: Any) -> dict:
        import torch
        import torch.nn.functional as F

        p = self.params
        if not isinstance(latent, torch.Tensor) or latent.ndim != 4:
            raise BlockError(f"node {ctx.node!r}: inputs.latent is not a latent [B, C, H, W]", type="input",
                             node=ctx.node, field="inputs.latent")
        h, w = latent.shape[-2:]
        th, tw = target_size(h, w, p.width, p.height, p.scale)
        if th < 1 or tw < 1:
            raise BlockError(f"node {ctx.node!r}: the target size {tw * 8}x{th * 8} is empty", type="input",
                             node=ctx.node, field="params.scale" if p.scale else "params.width")
        if (th, tw) == (h, w) and p.scale is None and p.width == 0 and p.height == 0:
            return {"latent": latent}
        x = center_crop(latent, th, tw) if p.crop == "center" and p.scale is None else latent
        if p.method == "bislerp":
            return {"latent": bislerp(x, th, tw)}
        return {"latent": F.interpolate(x.float(), size=(th, tw), mode=p.method).to(latent.dtype)}


def outpaint_mask(h: int, w: int, left: int, top: int, right: int, bottom: int,
                  feathering: int) -> np.ndarray:
    """ImagePadForOutpaint's mask: 1 on the new border; inside, ``((f - d) / f) ** 2`` where ``d`` is the
    distance in pixels to the nearest padded side (sides not padded do not count), 0 beyond ``f``."""
    mask = np.ones((h + top + bottom, w + left + right), np.float32)
    inner = np.zeros((h, w), np.float32)
    if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
        i = np.arange(h, dtype=np.float64)[:, None]
        j = np.arange(w, dtype=np.float64)[None, :]
        far = float(max(h, w))  # a side not padded is never the nearest edge
        d = np.minimum.reduce([np.broadcast_to(i if top else far, (h, w)),
                               np.broadcast_to(h - i if bottom else far, (h, w)),
                               np.broadcast_to(j if left else far, (h, w)),
                               np.broadcast_to(w - j if right else far, (h, w))])
        v = (feathering - d) / feathering
        inner = np.where(d < feathering, v * v, 0.0).astype(np.float32)
    mask[top:top + h, left:left + w] = inner
    return mask


@block("sd.outpaint_pad", version="1.0.0")
class OutpaintPad(Block):
    """Pad an image for outpainting (ComfyUI ImagePadForOutpaint): the new border is gray (0.5), the
    mask is 1 there and fades into the image over ``feathering`` pixels."""

    inputs = {"image": In("IMAGE", "the image [B, H, W, C]")}
    outputs = {"image": Out("IMAGE", "the padded image"), "mask": Out("MASK", "where to paint [1, H, W]")}

    class Params(Params):
        left: int = Field(0, ge=0, le=8192, description="pixels added on the left")
        top: int = Field(0, ge=0, le=8192, description="pixels added on the top")
        right: int = Field(0, ge=0, le=8192, description="pixels added on the right")
        bottom: int = Field(0, ge=0, le=8192, description="pixels added at the bottom")
        feathering: int = Field(40, ge=0, le=8192, description="pixels over which the mask fades in")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        p = self.params
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 4:
            raise BlockError(f"node {ctx.node!r}: inputs.image must be [B, H, W, C], got shape {image.shape}",
                             type="input", node=ctx.node, field="inputs.image")
        b, h, w, c = image.shape
        out = np.full((b, h + p.top + p.bottom, w + p.left + p.right, c), 0.5, np.float32)
        out[:, p.top:p.top + h, p.left:p.left + w] = image
        mask = outpaint_mask(h, w, p.left, p.top, p.right, p.bottom, p.feathering)
        return {"image": out, "mask": mask[None]}


BLOCKS = [LatentResize, OutpaintPad]
