"""MultiDiffusion: denoise a latent larger than one UNet window, every view at every step.

``sd.denoise`` with a ``tile`` annotation (strategy ``multidiffusion``) runs here. The
latent is covered by *views*, windows of ``tile.size`` pixels placed every ``tile.stride``
pixels (``size / 8`` and ``stride / 8`` latent cells). At every sampler step each view is
denoised on its own, and the denoised views are averaged where they overlap into the next
latent (MultiDiffusion, Bar-Tal et al. 2023, arXiv:2302.08113, eq. 5). With
``tile.circular`` the views also wrap around the right edge, so the left and right edges
meet: a 360-degree panorama (decode it with ``sd.vae_decode``'s ``wrap``).

The block is the *coordinator*: it runs the sampler loop (noise, scheduler steps, the
average) and hands the UNet work to ``ctx.tiles``: each step, the views in batches of
``view_batch``, one UNet call per batch (:func:`unet_views`), spread over every worker in
the Ray scheduler. A batch's result does not depend on where it runs or how many workers
there are, so neither does the image.

It follows diffusers' ``StableDiffusionPanoramaPipeline`` step for step (the same views,
the same per-batch scheduler states, noise drawn in the same order, the same sums): with
the same prompt, seed, scheduler, steps, window, stride and ``view_batch`` equal to the
pipeline's ``view_batch_size``, the latent equals the pipeline's. On purpose it differs
where the pipeline falls short:

- where the stride does not reach the right or bottom edge, a last view flush with the edge
  covers it (the pipeline leaves that strip out: zeros);
- circular views on several rows of views are added at their own rows (the pipeline adds
  them to the first ones);
- image-to-image (``strength`` < 1, ``rng``), SDXL, and several images per latent (each
  image gets its own negative and positive prompt rows) work too.

ControlNets, regional prompts and image prompts do not tile yet: a conditioning with them
is refused with an error that says so.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from orchestrator import BlockError, Context
from plugins.sd.common import (
    device_of,
    generator,
    lcm_timestep_cond,
    randn,
    rescale_noise_cfg,
    schedule,
    step_kwargs,
    unet_prompt,
)
from plugins.sd.conditioning import EXTRA_KEYS
from plugins.sd.sampling import latent_preview

if TYPE_CHECKING:
    from plugins.sd.denoise import SamplerSetup

View = tuple[int, int, int, int]  # h_start, h_end, w_start, w_end in latent cells


# Adapted from diffusers' StableDiffusionPanoramaPipeline.get_views (latent units; the edge views
# added): the relation is checked in tests/test_deliberate_copies.py
def get_views(height: int, width: int, window: int, stride: int, circular: bool = False) -> list[View]:
    """The views over a ``height`` x ``width`` latent, row by row, as the panorama pipeline
    places them, plus a last row or column flush with the edge where the stride misses it.

    >>> get_views(8, 32, 8, 6)
    [(0, 8, 0, 8), (0, 8, 6, 14), (0, 8, 12, 20), (0, 8, 18, 26), (0, 8, 24, 32)]
    >>> get_views(8, 16, 8, 6)  # the pipeline stops at column 14; a last view ends at 16
    [(0, 8, 0, 8), (0, 8, 6, 14), (0, 8, 8, 16)]
    >>> get_views(8, 16, 8, 4, circular=True)[-1]  # wraps around: columns 12..16 then 0..4
    (0, 8, 12, 20)
    """
    def starts(length: int, wrap: bool) -> list[int]:
        if length <= window:
            return [0]
        if wrap:
            return [i * stride for i in range(length // stride)]
        n = (length - window) // stride + 1
        out = [i * stride for i in range(n)]
        if out[-1] + window < length:
            out.append(length - window)
        return out

    return [(h, h + window, w, w + window) for h in starts(height, False) for w in starts(width, circular)]


def crop_view(latents: Any, view: View, circular: bool) -> Any:
    """The latent under ``view`` (wrapping around the right edge when ``circular``)."""
    import torch

    h0, h1, w0, w1 = view
    width = latents.shape[-1]
    if circular and w1 > width:
        return torch.cat((latents[:, :, h0:h1, w0:], latents[:, :, h0:h1, : w1 - width]), dim=-1)
    return latents[:, :, h0:h1, w0:w1]


def add_view(value: Any, count: Any, denoised: Any, view: View, circular: bool) -> None:
    """Add a denoised view into the running sum ``value`` (and 1 into ``count``) where it lies."""
    h0, h1, w0, w1 = view
    width = value.shape[-1]
    if circular and w1 > width:
        value[:, :, h0:h1, w0:] += denoised[:, :, :, : width - w0]
        value[:, :, h0:h1, : w1 - width] += denoised[:, :, :, width - w0:]
        count[:, :, h0:h1, w0:] += 1
        count[:, :, h0:h1, : w1 - width] += 1
    else:
        value[:, :, h0:h1, w0:w1] += denoised
        count[:, :, h0:h1, w0:w1] += 1


def _pairs(t: Any, batch: int) -> Any:
    """``[negatives of the batch; positives of the batch]`` -> ``[neg 0, pos 0, neg 1, pos 1, ...]``
    (the rows a view batch's interleaved model input meets)."""
    import torch

    return torch.stack((t[:batch], t[batch:]), dim=1).reshape(2 * batch, *t.shape[1:])


def _view_prompt(cond: dict[str, Any], *, batch: int, do_cfg: bool, window_px: tuple[int, int],
                 device: str, dtype: Any, node: str) -> dict[str, Any]:
    """The UNet inputs one view needs besides its latent, on the CPU, rows as a view batch wants them."""
    prompt = unet_prompt(cond, batch=batch, do_cfg=do_cfg, pixel_size=window_px, device="cpu", dtype=dtype,
                         node=node)
    embeds, added = prompt.embeds, prompt.added
    if do_cfg:
        embeds = _pairs(embeds, batch)
        if added is not None:
            added = {k: _pairs(v, batch) for k, v in added.items()}
    added = None if added is None else {k: v.cpu() for k, v in added.items()}
    return {"embeds": embeds.cpu(), "added": added}


# A deliberate copy of parts of plugins.sd.sampling.sample, in the order of diffusers'
# StableDiffusionPanoramaPipeline.__call__: equal to that pipeline, and to sampling.sample on one
# view covering the latent (tests/test_tiling_sd.py)
def denoise(ctx: Context, tiling: Any, p: Any, cond: dict[str, Any], latent: Any, rng: Any,
            setup: SamplerSetup) -> Any:
    """The MultiDiffusion sampling loop; returns the denoised latent (on the block's device).

    ``p`` are ``sd.denoise``'s params, ``setup`` what it loaded (:class:`~plugins.sd.denoise.SamplerSetup`).

    A deliberate copy of parts of :func:`plugins.sd.sampling.sample` (the start latent, the
    classifier-free guidance in :func:`unet_views`, the step loop): this loop follows
    ``StableDiffusionPanoramaPipeline`` instead (per-view-batch scheduler states, the UNet
    on ``ctx.tiles``). What is not loop order is shared (``schedule``, ``randn``,
    ``lcm_timestep_cond``, ``step_kwargs``, ``unet_prompt``); ``tests/test_tiling_sd.py``
    checks that one view covering the latent gives ``sampling.sample``'s latent.
    """
    import torch

    node = ctx.node
    extras = [k for k in EXTRA_KEYS if cond.get(k)]
    if extras:
        raise BlockError(f"node {node!r}: a conditioning with {', '.join(extras)} cannot be denoised in "
                         f"MultiDiffusion tiles yet; drop the tile annotation or the extras",
                         type="input", node=node, field="inputs.cond")
    device, unet, scheduler, info = setup.device, setup.unet, setup.scheduler, setup.info
    f = info.vae_scale_factor
    for name in ("size", "stride"):
        if getattr(tiling, name) % f:
            raise BlockError(f"node {node!r}: tile {name} {getattr(tiling, name)} is not a multiple of "
                             f"the VAE's {f} pixels per latent cell", type="input", node=node,
                             field=f"tile.{name}", value=getattr(tiling, name))
    window, stride = tiling.size // f, tiling.stride // f
    dtype = unet.dtype
    config = dict(unet.config)
    timesteps, _n = schedule(scheduler, p.steps, p.strength, device, node)
    gen = generator(rng, ctx.seed if p.seed is None else p.seed)
    init = latent.to(device=device, dtype=dtype)
    batch = init.shape[0]
    noise = randn(tuple(init.shape), gen, device, dtype)
    if p.strength >= 1.0 and not bool(torch.any(init)):
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(batch))

    views = get_views(latents.shape[-2], latents.shape[-1], window, stride, tiling.circular)
    batches = [views[i:i + p.view_batch] for i in range(0, len(views), p.view_batch)]
    # as the pipeline: one scheduler state per view batch, starting as one shared copy
    states = [copy.deepcopy(scheduler.__dict__)] * len(batches)

    time_cond_dim = config.get("time_cond_proj_dim")
    do_cfg = p.cfg > 1.0 and time_cond_dim is None
    timestep_cond = lcm_timestep_cond(p.cfg, batch, time_cond_dim, dtype)
    shared = {"model": setup.ref, "do_cfg": do_cfg, "cfg": p.cfg, "guidance_rescale": p.guidance_rescale,
              "timestep_cond": timestep_cond,
              **_view_prompt(cond, batch=batch, do_cfg=do_cfg, window_px=(window * f, window * f),
                             device=device, dtype=dtype, node=node)}
    extra = step_kwargs(scheduler, p.eta, gen)

    value = torch.zeros_like(latents)
    count = torch.zeros_like(latents)
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        ctx.check_cancelled()
        count.zero_()
        value.zero_()
        inputs = [torch.cat([crop_view(latents, v, tiling.circular) for v in b]) for b in batches]
        items = []
        for j, x in enumerate(inputs):
            scheduler.__dict__.update(states[j])
            scaled = scheduler.scale_model_input(x, t)
            items.append({"x": scaled.cpu(), "t": t.cpu(), "views": len(batches[j])})
        preds = ctx.tiles.map(unet_views, items, shared=shared,
                              detail={"sampler_step": i + 1, "sampler_total": total})
        for j, b in enumerate(batches):  # in the pipeline's order: the same noise, the same sums
            scheduler.__dict__.update(states[j])
            scheduler.scale_model_input(inputs[j], t)  # its side effects on the state, as there
            denoised = scheduler.step(preds[j].to(device=device, dtype=dtype), t, inputs[j], **extra,
                                      return_dict=False)[0]
            states[j] = copy.deepcopy(scheduler.__dict__)
            for d, v in zip(denoised.chunk(len(b)), b, strict=True):
                add_view(value, count, d, v, tiling.circular)
        latents = torch.where(count > 0, value / count, value)
        ctx.progress(i + 1, total, preview=latent_preview(latents))
    return latents


def unet_views(tctx: Context, item: dict[str, Any], shared: dict[str, Any]) -> Any:
    """Tile function: the guided noise prediction of one batch of views (one UNet call).

    ``item["x"]`` is the batch's scaled model input (views one after the other, each with
    the latent's images); the result is on the CPU, in the UNet's dtype.
    """
    import torch

    device = device_of(tctx)
    unet = tctx.models.unet(shared["model"], device=device)
    dtype = unet.dtype
    n = item["views"]
    x = item["x"].to(device=device, dtype=dtype)
    do_cfg = shared["do_cfg"]
    model_in = x.repeat_interleave(2, dim=0) if do_cfg else x
    embeds = torch.cat([shared["embeds"]] * n).to(device=device, dtype=dtype)
    added = shared["added"]
    if added is not None:
        added = {k: torch.cat([v] * n).to(device=device, dtype=dtype) for k, v in added.items()}
    tc = shared["timestep_cond"]
    if tc is not None:
        tc = torch.cat([tc] * n).to(device=device, dtype=dtype)
    with torch.no_grad():
        pred = unet(model_in, item["t"].to(device), encoder_hidden_states=embeds, timestep_cond=tc,
                    cross_attention_kwargs=None, added_cond_kwargs=added, return_dict=False)[0]
        if do_cfg:
            uncond, text = pred[::2], pred[1::2]
            pred = uncond + shared["cfg"] * (text - uncond)
            if shared["guidance_rescale"] > 0.0:
                pred = rescale_noise_cfg(pred, text, shared["guidance_rescale"])
    return pred.cpu()
