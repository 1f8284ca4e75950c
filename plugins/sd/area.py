"""Area, mask, strength and timestep conditioning, composed as ComfyUI composes it.

ComfyUI's positive conditioning is a *list* of entries, each a prompt with optional
attributes: an ``area`` (a window of the latent), a ``mask``, a ``strength`` and a
timestep range; ``ConditioningCombine`` concatenates lists. At every model call
ComfyUI (``comfy/samplers.py``: ``get_area_and_mult``, ``calc_cond_batch``) predicts each
active entry on its window alone and averages the predictions by weight:

    cond = sum_e(mult_e * pred_e) / (1e-37 + sum_e mult_e)

where ``mult_e`` is ``strength`` times the entry's mask over its window, or, for an area
without a mask, ``strength`` with the window's inner edges feathered over
``min(8, side // 4)`` latent cells. The negative is predicted on the whole latent, and
guidance is ``uncond + cfg * (cond - uncond)``. An entry is active while the noise level
``sigma`` lies between the sigmas of its ``start``/``end`` percentages
(``percent_to_sigma``).

Here a conditioning carries the list under ``entries`` (each with its own prompt
tensors); a conditioning without it is one entry, its prompt. The blocks below set the
attributes on every entry, as ComfyUI's nodes do, and ``sd.cond_combine`` with
``prompts='list'`` concatenates lists. The sampling loops compose them through the UNet
they call (:meth:`plugins.sd.conditioning.StepConditioning.unet`, see :class:`Areas`), so
``sd.denoise`` and ComfyUI's samplers both do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.common import crop, unet_prompt
from plugins.sd.cond_types import check_conditioning

if TYPE_CHECKING:
    from collections.abc import Callable

    from plugins.sd.common import Sampling, UNetPrompt, Window

FUZZ = 8  # latent cells feathered at an area's inner edges (ComfyUI's get_area_and_mult)
PROMPT_KEYS = ("prompt_embeds", "pooled_prompt_embeds")
ENTRY_KEYS = (*PROMPT_KEYS, "time_ids")  # what an entry takes from a conditioning without entries


def entries_of(cond: dict[str, Any]) -> list[dict[str, Any]]:
    """The conditioning's list of entries: ``cond['entries']``, or its own prompt as the one entry."""
    if cond.get("entries"):
        return [dict(e) for e in cond["entries"]]
    return [{k: cond.get(k) for k in ENTRY_KEYS if k in PROMPT_KEYS or cond.get(k) is not None}]


def with_entries(cond: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``cond`` whose positive side is ``entries`` (the first entry's prompt stays its prompt)."""
    out = dict(cond)
    out["entries"] = entries
    return out


def _set(ctx: Context, cond: Any, **values: Any) -> dict:
    cond = check_conditioning(cond, ctx.node)
    return {"cond": with_entries(cond, [{**e, **values} for e in entries_of(cond)])}


@block("cond.set_area", version="1.0.0")
class SetArea(Block):
    """Where a conditioning applies: a rectangle of the image (ComfyUI ConditioningSetArea and
    ConditioningSetAreaPercentage), with a strength. Applies to every entry of the conditioning."""

    inputs = {"cond": In("CONDITIONING", "the conditioning")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with the area set")}

    class Params(Params):
        unit: Literal["pixels", "fraction"] = Field(
            "pixels", description="pixels: x/y/width/height in pixels (rounded down to latent cells of 8); "
                                  "fraction: of the image's width and height")
        x: float = Field(0, ge=0, le=16384, description="left edge")
        y: float = Field(0, ge=0, le=16384, description="top edge")
        width: float = Field(64, gt=0, le=16384, description="width")
        height: float = Field(64, gt=0, le=16384, description="height")
        strength: float = Field(1.0, ge=0.0, le=10.0, description="weight of this conditioning in its area")

    def run(self, ctx: Context, cond: Any) -> dict:
        p = self.params
        if p.unit == "fraction":
            if max(p.x, p.y, p.width, p.height) > 1.0:
                raise BlockError(f"node {ctx.node!r}: with unit 'fraction' x, y, width and height are at "
                                 "most 1", type="input", node=ctx.node, field="params.width",
                                 value=[p.x, p.y, p.width, p.height], bound=1.0)
            area: Any = ("percentage", p.height, p.width, p.y, p.x)
        else:
            area = (int(p.height) // 8, int(p.width) // 8, int(p.y) // 8, int(p.x) // 8)
            if area[0] < 1 or area[1] < 1:
                raise BlockError(f"node {ctx.node!r}: the area is under 8 pixels on a side", type="input",
                                 node=ctx.node, field="params.width", value=[p.width, p.height], bound=8)
        return _set(ctx, cond, area=area, strength=p.strength, set_area_to_bounds=False)


@block("cond.set_strength", version="1.0.0")
class SetStrength(Block):
    """The weight of a conditioning where it applies (ComfyUI ConditioningSetAreaStrength)."""

    inputs = {"cond": In("CONDITIONING", "the conditioning")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with its strength set")}

    class Params(Params):
        strength: float = Field(1.0, ge=0.0, le=10.0, description="weight of this conditioning")

    def run(self, ctx: Context, cond: Any) -> dict:
        return _set(ctx, cond, strength=self.params.strength)


@block("cond.set_mask", version="1.0.0")
class SetMask(Block):
    """Where a conditioning applies, by a mask (ComfyUI ConditioningSetMask): its weight there is
    ``mask * strength``; ``bounds`` 'mask' also predicts it only on the mask's bounding box."""

    inputs = {"cond": In("CONDITIONING", "the conditioning"),
              "mask": In("MASK", "where it applies, [B, H, W] or [H, W], any size (resized to the latent)")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with the mask set")}

    class Params(Params):
        strength: float = Field(1.0, ge=0.0, le=10.0, description="weight of the conditioning under the mask")
        bounds: Literal["default", "mask"] = Field(
            "default", description="default: predict on the whole latent; mask: on the mask's bounding "
                                   "box only")

    def run(self, ctx: Context, cond: Any, mask: Any) -> dict:
        mask = np.asarray(mask, dtype=np.float32)
        mask = mask[None] if mask.ndim == 2 else mask
        if mask.ndim != 3 or min(mask.shape) < 1:
            raise BlockError(f"node {ctx.node!r}: mask must be [B, H, W], got shape {mask.shape}",
                             type="input", node=ctx.node, field="inputs.mask")
        return _set(ctx, cond, mask=mask, mask_strength=self.params.strength,
                    set_area_to_bounds=self.params.bounds == "mask")


@block("cond.timestep_range", version="1.0.0")
class TimestepRange(Block):
    """When a conditioning applies: from ``start`` to ``end`` of the noise schedule, as fractions
    (ComfyUI ConditioningSetTimestepRange; 0 is pure noise, 1 the end)."""

    inputs = {"cond": In("CONDITIONING", "the conditioning")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with its range set")}

    class Params(Params):
        start: float = Field(0.0, ge=0.0, le=1.0, description="from this share of the schedule")
        end: float = Field(1.0, ge=0.0, le=1.0, description="to this share of the schedule")

    def run(self, ctx: Context, cond: Any) -> dict:
        return _set(ctx, cond, start_percent=self.params.start, end_percent=self.params.end)


@block("cond.sdxl_size", version="1.1.0")
class SdxlSize(Block):
    """SDXL's size conditioning of a prompt (ComfyUI CLIPTextEncodeSDXL's width, height, crop and
    target): the UNet gets ``[height, width, crop_h, crop_w, target_height, target_width]`` with it
    instead of the image's own size; the SDXL refiner's (CLIPTextEncodeSDXLRefiner) is
    ``[height, width, crop_h, crop_w, aesthetic_score]``. ``side`` 'negative' sets the negative prompt's."""

    inputs = {"cond": In("CONDITIONING", "an SDXL conditioning")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with its size conditioning set")}

    class Params(Params):
        width: int = Field(1024, ge=0, le=16384, description="original width the prompt describes")
        height: int = Field(1024, ge=0, le=16384, description="original height")
        crop_w: int = Field(0, ge=0, le=16384, description="crop left, pixels")
        crop_h: int = Field(0, ge=0, le=16384, description="crop top, pixels")
        target_width: int = Field(1024, ge=0, le=16384, description="target width")
        target_height: int = Field(1024, ge=0, le=16384, description="target height")
        side: Literal["prompt", "negative"] = Field("prompt", description="whose size conditioning")
        aesthetic_score: float | None = Field(None, ge=0.0, le=1000.0,
                                              description="the SDXL refiner's aesthetic score (its "
                                                          "conditioning has no target size)")

    def run(self, ctx: Context, cond: Any) -> dict:
        cond = check_conditioning(cond, ctx.node)
        if cond.get("family") != "sdxl":
            raise BlockError(f"node {ctx.node!r}: size conditioning is for SDXL models, this conditioning is "
                             f"for {cond.get('family')}", type="input", node=ctx.node, field="inputs.cond")
        p = self.params
        refiner = bool(cond.get("aesthetic"))
        if refiner != (p.aesthetic_score is not None):
            raise BlockError(f"node {ctx.node!r}: " + (
                "the conditioning is the SDXL refiner's, whose size conditioning takes an aesthetic_score"
                if refiner else "aesthetic_score is for the SDXL refiner; this conditioning is an SDXL base "
                "model's"), type="input", node=ctx.node, field="params.aesthetic_score",
                value=p.aesthetic_score)
        ids = [p.height, p.width, p.crop_h, p.crop_w, p.target_height, p.target_width]
        if p.aesthetic_score is not None:
            ids = [p.height, p.width, p.crop_h, p.crop_w, p.aesthetic_score]
        out = dict(cond)
        if p.side == "negative":
            out["negative_time_ids"] = ids
            return {"cond": out}
        out["time_ids"] = ids
        if out.get("entries"):
            out["entries"] = [{**e, "time_ids": ids} for e in out["entries"]]
        return {"cond": out}


@block("cond.zero_out", version="1.0.0")
class ZeroOut(Block):
    """Zeros for the prompt's tensors, pooled included (ComfyUI ConditioningZeroOut); ``side``
    'negative' zeroes the negative prompt's instead (a ConditioningZeroOut on a sampler's negative)."""

    inputs = {"cond": In("CONDITIONING", "the conditioning")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with zero prompt tensors")}

    class Params(Params):
        side: Literal["prompt", "negative"] = Field("prompt", description="which prompt's tensors to zero")

    def run(self, ctx: Context, cond: Any) -> dict:
        import torch

        cond = dict(check_conditioning(cond, ctx.node))
        if self.params.side == "negative":
            for k in ("negative_prompt_embeds", "negative_pooled_prompt_embeds"):
                if cond.get(k) is not None:
                    cond[k] = torch.zeros_like(cond[k])
            return {"cond": cond}
        for k in PROMPT_KEYS:
            if cond.get(k) is not None:
                cond[k] = torch.zeros_like(cond[k])
        if cond.get("entries"):
            cond["entries"] = [{**e, **{k: torch.zeros_like(e[k]) for k in PROMPT_KEYS
                                        if e.get(k) is not None}} for e in cond["entries"]]
        return {"cond": cond}


def _pair(ctx: Context, to: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    to = check_conditioning(to, ctx.node, "inputs.to")
    source = check_conditioning(source, ctx.node, "inputs.source")
    if to.get("family") != source.get("family"):
        raise BlockError(f"node {ctx.node!r}: conditionings for {to.get('family')} and "
                         f"{source.get('family')} models cannot be mixed", type="input", node=ctx.node,
                         field="inputs.source")
    return to, entries_of(source)[0]


@block("cond.average", version="1.0.0")
class Average(Block):
    """``to * weight + source * (1 - weight)`` on the prompt tensors (ComfyUI ConditioningAverage):
    the source's tokens are cut or zero-padded to the length of each entry of ``to``."""

    inputs = {"to": In("CONDITIONING", "the conditioning kept"), "source": In("CONDITIONING", "mixed in")}
    outputs = {"cond": Out("CONDITIONING", "the average")}

    class Params(Params):
        weight: float = Field(1.0, ge=0.0, le=1.0, description="share of 'to' (1: 'to' only)")

    def run(self, ctx: Context, to: Any, source: Any) -> dict:
        import torch

        to, src = _pair(ctx, to, source)
        w = self.params.weight
        out = []
        for e in entries_of(to):
            t1 = e["prompt_embeds"]
            t0 = src["prompt_embeds"][:, :t1.shape[1]]
            if t0.shape[1] < t1.shape[1]:
                t0 = torch.cat([t0, torch.zeros(t0.shape[0], t1.shape[1] - t0.shape[1], t1.shape[2],
                                                 dtype=t0.dtype)], dim=1)
            e = {**e, "prompt_embeds": t1 * w + t0 * (1.0 - w)}
            p_to, p_from = e.get("pooled_prompt_embeds"), src.get("pooled_prompt_embeds")
            if p_to is not None and p_from is not None:
                e["pooled_prompt_embeds"] = p_to * w + p_from * (1.0 - w)
            elif p_from is not None:
                e["pooled_prompt_embeds"] = p_from
            out.append(e)
        return {"cond": _as_entries(to, out)}


@block("cond.concat", version="1.0.0")
class Concat(Block):
    """The source's tokens appended to each entry's (ComfyUI ConditioningConcat)."""

    inputs = {"to": In("CONDITIONING", "the conditioning first"), "source": In("CONDITIONING", "appended")}
    outputs = {"cond": Out("CONDITIONING", "the concatenation")}

    def run(self, ctx: Context, to: Any, source: Any) -> dict:
        import torch

        to, src = _pair(ctx, to, source)
        out = [{**e, "prompt_embeds": torch.cat([e["prompt_embeds"], src["prompt_embeds"].to(
            e["prompt_embeds"].dtype)], dim=1)} for e in entries_of(to)]
        return {"cond": _as_entries(to, out)}


def _as_entries(cond: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``cond`` with these entries: as plain prompt tensors when it had no list (so every block reads
    them), with token counts of prompt and negative made equal (see :func:`same_length`)."""
    if cond.get("entries") or len(entries) != 1:
        return with_entries(cond, entries)
    out = dict(cond)
    out.update({k: v for k, v in entries[0].items() if k in PROMPT_KEYS})
    if out.get("negative_prompt_embeds") is not None:
        out["prompt_embeds"], out["negative_prompt_embeds"] = same_length(out["prompt_embeds"],
                                                                          out["negative_prompt_embeds"])
    return out


def same_length(a: Any, b: Any) -> tuple[Any, Any]:
    """Two token sequences ``[B, N, D]`` repeated to the least common multiple of their lengths.

    Cross-attention over a sequence repeated ``k`` times equals attention over it once (each key's
    weight is shared by its ``k`` copies), so this changes no prediction; ComfyUI batches prompts of
    different lengths the same way.
    """
    n, m = a.shape[1], b.shape[1]
    if n == m:
        return a, b
    lcm = n * m // math.gcd(n, m)
    return a.repeat(1, lcm // n, 1), b.repeat(1, lcm // m, 1)


# -- sampling ----------------------------------------------------------------------------------------


def percent_to_sigma(sigmas: Any, percent: float) -> float:
    """ComfyUI's ``ModelSamplingDiscrete.percent_to_sigma`` over a table of training sigmas."""
    import torch

    if percent <= 0.0:
        return 999999999.9
    if percent >= 1.0:
        return 0.0
    return float(sigma_at(sigmas, torch.tensor((1.0 - percent) * (len(sigmas) - 1))))


def sigma_at(sigmas: Any, timestep: Any) -> Any:
    """The sigma of a (fractional) training timestep: log-linear between the table's neighbours."""
    import torch

    log_sigmas = sigmas.log()
    t = torch.as_tensor(timestep, dtype=torch.float32).clamp(0, len(sigmas) - 1)
    low, high = t.floor().long(), t.ceil().long()
    w = t.frac()
    return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()


def training_sigmas(scheduler: Any) -> Any:
    """The schedule's sigmas by training timestep, from its ``alphas_cumprod``."""
    import torch

    acp = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32)
    return ((1 - acp) / acp) ** 0.5


def active(t: float, start: float, end: float, last: float = 999.0) -> bool:
    """Whether an entry with ComfyUI's ``start_percent``/``end_percent`` applies at training timestep ``t``.

    ComfyUI skips it when ``sigma > percent_to_sigma(start)`` or ``sigma < percent_to_sigma(end)``;
    sigma grows with the timestep (log-linearly between training steps, both ways), so that is
    ``t > (1 - start) * last`` or ``t < (1 - end) * last``, for any noise schedule.
    """
    if start >= 1.0 or end <= 0.0:
        return False  # percent_to_sigma is 0 (start) or 1e9 (end): every sigma is outside
    if start > 0.0 and t > (1.0 - start) * last:
        return False
    return not (end < 1.0 and t < (1.0 - end) * last)


def resolve_area(area: Any, latent: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(h, w, y, x)`` latent cells of an entry's area (a percentage area resolved on this latent)."""
    lh, lw = latent
    if area[0] == "percentage":
        a = area[1:]
        return max(1, round(a[0] * lh)), max(1, round(a[1] * lw)), round(a[2] * lh), round(a[3] * lw)
    return tuple(int(v) for v in area)  # type: ignore[return-value]


def mask_bounds(mask: Any) -> tuple[int, int, int, int]:
    """ComfyUI's ``set_area_to_bounds``: ``(h, w, y, x)`` of the mask's non-zero box, at least 8 cells."""
    import torch

    bounds = mask.abs().amax(dim=0)
    nz = torch.nonzero(bounds > 0)
    if nz.shape[0] == 0:
        return 8, 8, 0, 0
    y0, x0 = (int(v) for v in nz.min(dim=0).values)
    y1, x1 = (int(v) for v in nz.max(dim=0).values)
    return max(8, y1 - y0 + 1), max(8, x1 - x0 + 1), y0, x0


class _Entry:
    """One entry ready for a run: its prompt, window and weight (``mult``)."""

    def __init__(self, entry: dict[str, Any], run: Sampling, prompt: UNetPrompt) -> None:
        import torch
        import torch.nn.functional as F

        lh, lw = run.latent_size
        self.prompt = prompt
        area = entry.get("area")
        mask = entry.get("mask")
        if mask is not None:
            mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
            if tuple(mask.shape[-2:]) != (lh, lw):
                mask = F.interpolate(mask[:, None], size=(lh, lw), mode="bilinear", align_corners=False)[:, 0]
            if entry.get("set_area_to_bounds"):
                area = mask_bounds(mask)
        window: Window | None = None
        if area is not None:
            h, w, y, x = resolve_area(area, (lh, lw))
            y, x = min(max(0, y), lh - 1), min(max(0, x), lw - 1)
            h, w = max(1, min(lh - y, h)), max(1, min(lw - x, w))
            window = None if (y, x, h, w) == (0, 0, lh, lw) else (y, x, h, w)
        self.window = window
        y, x, h, w = window if window is not None else (0, 0, lh, lw)
        strength = float(entry.get("strength", 1.0))
        if mask is not None:
            m = mask[:, y:y + h, x:x + w] * float(entry.get("mask_strength", 1.0))
            if m.shape[0] not in (1, run.batch):
                raise BlockError(f"node {run.ctx.node!r}: a conditioning mask has batch {m.shape[0]}, the "
                                 f"latent {run.batch}", type="input", node=run.ctx.node, field="inputs.cond")
            mult = m[:, None] * strength
        else:
            mult = torch.full((1, 1, h, w), strength)
            if area is not None:  # feather the inner edges, as get_area_and_mult does
                for dim, (start, size, full) in enumerate(((y, h, lh), (x, w, lw))):
                    rr = min(FUZZ, size // 4)
                    for t in range(rr):
                        fade = (t + 1) / rr
                        if start != 0:
                            mult.narrow(dim + 2, t, 1).mul_(fade)
                        if start + size < full:
                            mult.narrow(dim + 2, size - 1 - t, 1).mul_(fade)
        self.mult = mult.to(device=run.device, dtype=torch.float32)
        self.time_ids = entry.get("time_ids")
        self.start = float(entry.get("start_percent", 0.0))
        self.end = float(entry.get("end_percent", 1.0))


class Areas:
    """The entries of one sampling run, composed at every UNet call as ComfyUI does (module doc).

    :meth:`wrap` wraps the UNet the loop calls: the loop goes on calling it with its own
    batch (the negative half first under guidance, as both ``sd.denoise``'s loop and the
    ComfyUI sampler's denoiser do), and the wrapper answers the positive half with the
    composed prediction of the entries, each predicted on its window. Composing the UNet's
    output (noise or velocity) equals composing the denoised latents as ComfyUI does: the
    map from one to the other is the same affine map at every pixel of a step, and the
    weights are normalised.
    """

    def __init__(self, cond: dict[str, Any], run: Sampling) -> None:
        self.run = run
        if cond.get("controlnets") or cond.get("image_prompts"):
            raise BlockError(f"node {run.ctx.node!r}: ControlNets and image prompts cannot yet be combined "
                             "with area, mask or combined (list) conditioning", type="input",
                             node=run.ctx.node, field="inputs.cond")
        config = getattr(getattr(run.scheduler, "config", None), "num_train_timesteps", None)
        self.last = float((config or 1000) - 1)
        family = cond.get("family")

        def prompt(e: dict[str, Any]) -> UNetPrompt:
            c = {"prompt_embeds": e["prompt_embeds"], "pooled_prompt_embeds": e.get("pooled_prompt_embeds"),
                 "family": family, "time_ids": e.get("time_ids")}
            return unet_prompt(c, batch=run.batch, do_cfg=False, pixel_size=run.pixel_size, device=run.device,
                               dtype=run.dtype, node=run.ctx.node)

        self.entries = [_Entry(e, run, prompt(e)) for e in cond["entries"]]

    def wrap(self, unet: Callable[..., Any]) -> Callable[..., Any]:
        def call(sample_in: Any, t: Any, *, encoder_hidden_states: Any = None, added_cond_kwargs: Any = None,
                 **kwargs: Any) -> Any:
            return self.forward(unet, sample_in, t, encoder_hidden_states, added_cond_kwargs, kwargs)

        call.module = getattr(unet, "module", None)  # type: ignore[attr-defined]
        return call

    def forward(self, unet: Callable[..., Any], x: Any, t: Any, hidden: Any, added: Any,
                kwargs: dict[str, Any]) -> Any:
        import torch

        n = self.run.batch
        halves = x.shape[0] == 2 * n
        t_all = torch.as_tensor(t)
        t_one = t_all.reshape(-1)[-1]  # one timestep for the whole call (the loops give one)
        t_cond = t_all[n:] if t_all.ndim > 0 and t_all.shape[0] == x.shape[0] and halves else t_all
        x_cond = x[n:] if halves else x
        out = torch.zeros(x_cond.shape[0], *_out_shape(x_cond), dtype=torch.float32, device=x.device)
        counts = torch.full_like(out, 1e-37)
        for e in self.entries:
            if not active(float(t_one), e.start, e.end, self.last):
                continue
            # the entry's own size conditioning, else the loop's (the image's size)
            extra = e.prompt.added
            if e.time_ids is None:
                extra = _with_time_ids(extra, added, n, halves)
            pred = unet(crop(x_cond, e.window), t_cond, encoder_hidden_states=e.prompt.embeds,
                        added_cond_kwargs=extra, **kwargs).float()
            crop(out, e.window).add_(pred * e.mult)
            crop(counts, e.window).add_(e.mult.expand_as(pred))
        cond = (out / counts).to(x.dtype)
        if not halves:
            return cond
        t_neg = t_all[:n] if t_all.ndim > 0 and t_all.shape[0] == x.shape[0] else t_all
        neg_added = None if added is None else {k: v[:n] for k, v in added.items()}
        uncond = unet(x[:n], t_neg, encoder_hidden_states=hidden[:n], added_cond_kwargs=neg_added, **kwargs)
        return torch.cat([uncond.to(cond.dtype), cond])


def _out_shape(x: Any) -> tuple[int, ...]:
    """The UNet output's shape per sample: 4 latent channels (an inpainting UNet takes 9 in)."""
    return (4 if x.shape[1] == 9 else x.shape[1], *x.shape[2:])


def _with_time_ids(mine: Any, given: Any, n: int, halves: bool) -> Any:
    """An entry's SDXL added conditioning, with the loop's time ids (the image size) for the positive half."""
    if mine is None:
        return None
    if given is None or "time_ids" not in given:
        return mine
    return {**mine, "time_ids": given["time_ids"][n:] if halves else given["time_ids"]}


BLOCKS = [SetArea, SetStrength, SetMask, TimestepRange, SdxlSize, ZeroOut, Average, Concat]
