"""InstructPix2Pix: edit an image by instruction; and ComfyUI's two-scale guidance (DualCFGGuider).

``sd.ip2p_conditioning`` (ComfyUI's InstructPixToPixConditioning) encodes the image to edit
with the model's VAE (its sides cut to multiples of 8 around the centre, the posterior's mean)
and puts that latent on the conditioning; its ``latent`` output is zeros of that size, to
sample from. An InstructPix2Pix UNet takes twice the latent's channels: the sampler
(:func:`plugins.sd.ksampler.native_sample`) puts the conditioning's image latent beside the
noisy latent at every call, as ComfyUI's ``IP2P.concat_cond`` (the VAE's own latent, not scaled;
resized bilinearly to the latent and repeated to its batch; zeros for a prompt without one).

``sd.dual_guider`` (ComfyUI's DualCFGGuider) guides with three prompts, each with its own image
latent: ``cond1`` (instruction and image), ``cond2`` (the image alone, ComfyUI's *middle*) and
``negative``. ``regular``: ``neg + (mid - neg) * cfg_cond2_negative + (pos - mid) * cfg_conds``;
``nested``: ``neg + cfg_cond2_negative * (mid + (pos - mid) * cfg_conds - neg)``, on the denoised
predictions, as ComfyUI's ``Guider_DualCFG``. Each conditioning's prompt is used (not its negative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.image.common import check_image, rgb
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, model_ref, unet_prompt
from plugins.sd.conditioning import EXTRA_KEYS, check_conditioning
from plugins.sd.custom_sampling import Guider
from plugins.sd.ip2p_latent import CONCAT_KEY, SCALE_KEY, center_crop, ip2p_concat
from plugins.sd.ksampler import ModelSamplingParams
from plugins.sd.ksampling.denoiser import Denoiser
from plugins.sd.latent_scaling import scaled_latents


@block("sd.ip2p_conditioning", version="1.0.0")
class InstructPixToPixConditioning(Block):
    """Put the image to edit on a conditioning, for InstructPix2Pix models (ComfyUI's
    InstructPixToPixConditioning); ``latent`` is the empty latent to sample."""

    inputs = {"cond": In("CONDITIONING", "the instruction, from sd.encode_prompt (without: only the latent)",
                         optional=True),
              "image": In("IMAGE", "the image to edit")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with the image's latent (null without one)"),
               "latent": Out("LATENT", "zeros of the image's latent size")}
    resources = Resources(device="gpu", memory_mb=1024)

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION + " (its VAE encodes)")

    def run(self, ctx: Context, image: Any, cond: Any = None) -> dict:
        import torch

        cond = None if cond is None else check_conditioning(cond, ctx.node)
        ref = model_ref(self.params.model)
        f = ctx.models.info(ref).vae_scale_factor
        pixels = rgb(check_image(ctx, image))
        if pixels.shape[1] < f or pixels.shape[2] < f:
            raise BlockError(f"node {ctx.node!r}: the image is smaller than {f} pixels", type="input",
                             node=ctx.node, field="inputs.image", value=list(pixels.shape[1:3]), bound=f)
        pixels = torch.from_numpy(np.ascontiguousarray(center_crop(pixels, f), dtype=np.float32))
        device = device_of(ctx)
        vae = ctx.models.vae(ref, device=device)
        with torch.no_grad():
            nchw = (pixels * 2 - 1).permute(0, 3, 1, 2).to(device=device, dtype=vae.dtype)
            dist = vae.encode(nchw).latent_dist
            raw = dist.mode().float().cpu()
            scaled = scaled_latents(vae, dist, None, "mean").float().cpu()
        scale = float(vae.config.scaling_factor)
        out_cond = None if cond is None else {**cond, CONCAT_KEY: raw, SCALE_KEY: scale}
        return {"cond": out_cond, "latent": torch.zeros_like(scaled)}


# -- two-scale guidance --------------------------------------------------------------------------


@dataclass(frozen=True)
class DualGuider(Guider):
    """A guider of three prompts: ``cond`` (cond1), ``middle`` (cond2) and ``negative``, two scales."""

    middle: Any = None
    negative: Any = None
    cfg2: float = 1.0
    nested: bool = False

    def wrap(self, inner: Denoiser, **run: Any) -> DualDenoiser:
        """The sampler's denoiser for this guider (see :func:`dual_denoiser`)."""
        return dual_denoiser(self, inner, **run)


class DualDenoiser(Denoiser):
    """``D(x, sigma)`` of ComfyUI's ``Guider_DualCFG``: one UNet call on [negative, middle, positive]."""

    def __init__(self, inner: Denoiser, prompts: list[Any], concats: list[Any], cfg1: float, cfg2: float,
                 nested: bool) -> None:
        import torch

        embeds = torch.cat([p.embeds for p in prompts])
        added = None
        if prompts[0].added:
            added = {k: torch.cat([p.added[k] for p in prompts]) for k in prompts[0].added}
        super().__init__(inner.unet, inner.ms, type(prompts[0])(embeds, added), cfg1, dtype=inner.dtype,
                         do_uncond=True, timestep_cond=inner.timestep_cond, before_call=inner.before_call)
        self.concats, self.cfg2, self.nested = concats, float(cfg2), nested

    def __call__(self, x: Any, sigma: Any) -> Any:
        import torch

        if self.before_call is not None:
            self.before_call()
        self.calls += 1
        sigma = sigma.to(device=x.device, dtype=torch.float32).reshape(-1)
        if sigma.shape[0] != x.shape[0]:
            sigma = sigma.expand(x.shape[0])
        self.sigma_now = float(sigma[0])
        xc = self.ms.calculate_input(sigma, x)
        parts = [xc if c is None else torch.cat([xc, c.to(device=xc.device, dtype=xc.dtype)], dim=1)
                 for c in self.concats]
        t = self.ms.timestep(sigma).float()
        timestep_cond = None if self.timestep_cond is None else torch.cat([self.timestep_cond] * 3)
        out = self.unet(torch.cat(parts).to(self.dtype), torch.cat([t] * 3),
                        encoder_hidden_states=self.prompt.embeds, timestep_cond=timestep_cond,
                        added_cond_kwargs=self.prompt.added).float()
        neg, mid, pos = (self.ms.calculate_denoised(sigma, o, x) for o in out.chunk(3))
        self.uncond_denoised = neg
        if self.nested:
            return neg + self.cfg2 * (mid + (pos - mid) * self.cfg - neg)
        return neg + (mid - neg) * self.cfg2 + (pos - mid) * self.cfg


def dual_denoiser(guider: DualGuider, inner: Denoiser, *, in_channels: int, latent: Any, batch: int,
                  pixel_size: tuple[int, int], device: str, node: str) -> DualDenoiser:
    """The :class:`DualDenoiser` of ``guider`` around the sampler's plain one (``inner``)."""
    conds = [guider.negative, guider.middle, guider.cond]
    for name, c in zip(("negative", "cond2", "cond1"), conds, strict=True):
        if any(c.get(k) for k in (*EXTRA_KEYS, "entries", "unclip")):
            raise BlockError(f"node {node!r}: {name} carries ControlNets, regions, image prompts, areas or "
                             f"unCLIP images, which DualCFGGuider does not combine here", type="input",
                             node=node, field="inputs.guider")
    prompts = [unet_prompt(c, batch=batch, do_cfg=False, pixel_size=pixel_size, device=device,
                           dtype=inner.dtype, node=node) for c in conds]
    if len({tuple(p.embeds.shape) for p in prompts}) > 1:
        raise BlockError(f"node {node!r}: the three prompts of DualCFGGuider have different lengths "
                         f"({', '.join(str(tuple(p.embeds.shape)) for p in prompts)}); keep each within one "
                         f"75-token chunk", type="input", node=node, field="inputs.guider")
    if in_channels == 2 * latent.shape[1]:
        edm = inner.ms.continuous and prompts[0].added is not None  # CosXL edit: see ip2p_concat
        concats = [ip2p_concat(c, tuple(latent.shape), latent.device, edm) for c in conds]
    else:
        concats = [inner.concat] * 3
    return DualDenoiser(inner, prompts, concats, guider.cfg, guider.cfg2, guider.nested)


@block("sd.dual_guider", version="1.0.0")
class DualCFGGuider(Block):
    """Guide with two scales (ComfyUI's DualCFGGuider): for InstructPix2Pix edits, ``cfg_conds`` pulls
    toward the instruction (cond1 over cond2), ``cfg_cond2_negative`` toward the image (cond2 over
    the negative)."""

    inputs = {"cond1": In("CONDITIONING", "the instruction and the image (sd.ip2p_conditioning)"),
              "cond2": In("CONDITIONING", "the image alone (ComfyUI's middle)"),
              "negative": In("CONDITIONING", "the negative prompt")}
    outputs = {"guider": Out("GUIDER", "for sd.sample_custom")}

    class Params(ModelSamplingParams):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        cfg_conds: float = Field(8.0, ge=0.0, le=100.0, description="scale of cond1 over cond2")
        cfg_cond2_negative: float = Field(8.0, ge=0.0, le=100.0, description="scale of cond2 over negative")
        style: Literal["regular", "nested"] = Field("regular", description="how the two scales combine")

    def run(self, ctx: Context, cond1: Any, cond2: Any, negative: Any) -> dict:
        p = self.params
        conds = [check_conditioning(c, ctx.node, f"inputs.{n}")
                 for c, n in ((cond1, "cond1"), (cond2, "cond2"), (negative, "negative"))]
        families = {c.get("family") for c in conds}
        if len(families) > 1:
            raise BlockError(f"node {ctx.node!r}: the conditionings are for models of different families "
                             f"({', '.join(sorted(map(str, families)))})", type="input", node=ctx.node,
                             field="inputs.cond2")
        return {"guider": DualGuider(p.model, conds[0], float(p.cfg_conds), p.model_sampling, p.zsnr,
                                     middle=conds[1], negative=conds[2], cfg2=float(p.cfg_cond2_negative),
                                     nested=p.style == "nested")}


BLOCKS = [InstructPixToPixConditioning, DualCFGGuider]
