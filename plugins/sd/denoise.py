"""Denoising: text-to-image, image-to-image and inpainting with the model's UNet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, ModelInfo, Out, Params, Resources, block
from plugins.sd import multidiffusion
from plugins.sd.common import (
    MODEL_FIELD_DESCRIPTION,
    ModelParam,
    Sampler,
    check_cond,
    device_of,
    generator,
    make_scheduler,
    model_ref,
    randn,
    schedule,
    torch_unet,
)
from plugins.sd.sampling import sample
from plugins.sd.vae import image_processor, rgb, vae_encode


class SamplingParams(Params):
    model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
    steps: int = Field(20, ge=1, le=1000, description="sampler steps (before strength)")
    cfg: float = Field(7.5, ge=0.0, le=50.0, description="classifier-free guidance scale; <= 1 disables it")
    sampler: Sampler = Field("default", description="scheduler; default: the model's own")
    strength: float = Field(1.0, ge=0.0, le=1.0,
                            description="1: start from pure noise; below 1: noise the input latent that "
                                        "far and run that share of the steps (img2img)")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="noise seed; null: derived from the node")
    eta: float = Field(0.0, ge=0.0, le=1.0, description="DDIM eta (0: deterministic)")
    guidance_rescale: float = Field(0.0, ge=0.0, le=1.0, description="rescale guidance (arXiv:2305.08891)")


class DenoiseParams(SamplingParams):
    view_batch: int = Field(1, ge=1, le=64, description="with a tile annotation (MultiDiffusion): views "
                                                       "per UNet call; the pipeline's view_batch_size")
    denoising_start: float | None = Field(
        None, gt=0.0, lt=1.0, description="continue a latent handed over with its noise at this fraction "
                                          "of the schedule (no new noise; strength is not used): a "
                                          "refiner's half of an SDXL base + refiner pair, as diffusers' "
                                          "denoising_start")
    denoising_end: float | None = Field(
        None, gt=0.0, lt=1.0, description="stop at this fraction of the schedule and return the latent with "
                                          "its leftover noise, as diffusers' denoising_end")


def window(scheduler: Any, steps: int, device: str, start: float | None, end: float | None) -> Any:
    """The timesteps of diffusers' SDXL pipelines between ``denoising_start`` and ``denoising_end``.

    # Copied from diffusers' StableDiffusionXLImg2ImgPipeline.get_timesteps (denoising_start) and
    # StableDiffusionXLPipeline.__call__ (denoising_end): cut-offs at round(N - fraction * N) of the
    # N training timesteps; a second-order scheduler keeps an odd count.
    """
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    n_train = int(scheduler.config.num_train_timesteps)
    if start is not None:
        cutoff = round(n_train - start * n_train)
        n = int((timesteps < cutoff).sum().item())
        if scheduler.order == 2 and n % 2 == 0:
            n += 1
        t_start = len(timesteps) - n
        timesteps = timesteps[t_start:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start)
    if end is not None:
        cutoff = round(n_train - end * n_train)
        timesteps = timesteps[:len([t for t in timesteps if t >= cutoff])]
    return timesteps


@dataclass(frozen=True)
class SamplerSetup:
    """What a diffusers-scheduler sampling block loads before it samples."""

    ref: Any  # the model reference (a name, or a dict with LoRAs...), as ctx.models takes it
    device: str  # the torch device it samples on
    info: ModelInfo
    unet: Any  # the model's UNet on ``device``
    scheduler: Any  # a fresh scheduler: the model's config, as the ``sampler`` param's class


def sampler_setup(ctx: Context, p: SamplingParams, cond: Any) -> SamplerSetup:
    """The model, UNet and scheduler ``p`` names, after checking ``cond`` was made for its family."""
    ref = model_ref(p.model)
    device = device_of(ctx)
    info = ctx.models.info(ref)
    check_cond(cond, info.family, ctx.node)
    scheduler = make_scheduler(info.scheduler, p.sampler)
    check_steps(scheduler, p.steps, p.sampler, ctx.node)
    unet = ctx.models.unet(ref, device=device)
    return SamplerSetup(ref=ref, device=device, info=info, unet=unet, scheduler=scheduler)


def check_steps(scheduler: Any, steps: int, sampler: str, node: str) -> None:
    """Refuse (an ``input`` error naming ``params.steps``) a step count ``scheduler`` cannot run:
    more steps than its training timesteps, one it refuses itself (LCM: more than its original
    steps), or a schedule that reaches past the last training timestep (DDIM and DDPM with a
    ``steps_offset`` at as many steps as training timesteps, which would fail mid-loop with an
    IndexError)."""
    n_train = int(scheduler.config.num_train_timesteps)

    def refuse(why: str, bound: int) -> BlockError:
        return BlockError(f"node {node!r}: {steps} steps {why} (sampler {sampler!r}); at most {bound}",
                          type="input", node=node, field="params.steps", value=steps, bound={"le": bound})

    if steps > n_train:
        raise refuse(f"are more than the scheduler's {n_train} training timesteps", n_train)
    try:
        scheduler.set_timesteps(steps, device="cpu")
    except ValueError as exc:
        bound = int(getattr(scheduler.config, "original_inference_steps", 0) or 0) or n_train - 1
        raise refuse(f"are refused by the scheduler: {str(exc)[:200]}", bound) from None
    timesteps = scheduler.timesteps
    # the schedulers that index their training table by timestep (DDIM, DDPM, PNDM, LCM; not the
    # sigma schedulers, which interpolate)
    if not hasattr(scheduler, "sigmas") and len(timesteps) and float(timesteps.max()) >= n_train:
        offset = int(getattr(scheduler.config, "steps_offset", 0) or 0)
        raise refuse(f"reach timestep {int(timesteps.max())}, past the scheduler's last training timestep "
                     f"{n_train - 1}", n_train - max(offset, 1))


@block("sd.denoise", version="1.0.0")
class Denoise(Block):
    """Denoise a latent towards the conditioning (SD 1.x/2.x and SDXL).

    An empty latent (all zeros, from ``sd.empty_latent``) at ``strength`` 1 gives only the
    size: sampling starts from pure noise, as diffusers' text-to-image pipeline does.
    Otherwise the input latent is noised to the first timestep of the last ``strength``
    share of the steps, and those steps run, as the image-to-image pipeline does (at
    strength 1 a trace of the input remains, exactly as there). Noise comes from ``seed``,
    or continues ``rng`` when it is wired (from ``sd.vae_encode``).

    Tiles by ``multidiffusion``: with a ``tile`` annotation, a latent larger than the
    model's window (wide and tall images, 360-degree panoramas with ``circular``) is
    denoised in overlapping views averaged at every step, spread over every worker, as
    diffusers' panorama pipeline does (see :mod:`plugins.sd.multidiffusion`).
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt"),
              "latent": In("LATENT", "an empty latent (size) or an image latent (img2img)"),
              "rng": In("RNG", "continue this random stream instead of seeding", optional=True)}
    outputs = {"latent": Out("LATENT", "the denoised latent")}
    resources = Resources(device="gpu", memory_mb=4096, batch=True)
    tiling = "multidiffusion"
    Params = DenoiseParams

    def run_tiled(self, ctx: Context, tiling: Any, cond: Any, latent: Any, rng: Any = None) -> dict:
        import torch

        with torch.no_grad():
            out = multidiffusion.denoise(ctx, tiling, self.params, cond, latent, rng,
                                         sampler_setup(ctx, self.params, cond))
        return {"latent": out.float().cpu()}

    def run(self, ctx: Context, cond: Any, latent: Any, rng: Any = None) -> dict:
        import torch

        p = self.params
        s = sampler_setup(ctx, p, cond)
        device, unet, scheduler = s.device, s.unet, s.scheduler
        dtype = unet.dtype
        if p.denoising_start is not None and p.denoising_end is not None and \
                p.denoising_start >= p.denoising_end:
            raise BlockError(f"node {ctx.node!r}: denoising_start {p.denoising_start} must be below "
                             f"denoising_end {p.denoising_end}", type="input", node=ctx.node,
                             field="params.denoising_start", value=p.denoising_start, bound=p.denoising_end)
        if p.denoising_start is None and p.denoising_end is None:
            timesteps, _n = schedule(scheduler, p.steps, p.strength, device, ctx.node)
        elif p.denoising_start is None and p.strength < 1.0:
            timesteps, _n = schedule(scheduler, p.steps, p.strength, device, ctx.node)
            n_train = int(scheduler.config.num_train_timesteps)
            cutoff = round(n_train - p.denoising_end * n_train)
            timesteps = timesteps[:len([t for t in timesteps if t >= cutoff])]
        else:
            timesteps = window(scheduler, p.steps, device, p.denoising_start, p.denoising_end)
        if len(timesteps) == 0:
            raise BlockError(f"node {ctx.node!r}: the denoising window leaves no step of {p.steps}",
                             type="input", node=ctx.node, field="params.steps", value=p.steps)
        gen = generator(rng, ctx.seed if p.seed is None else p.seed)
        init = latent.to(device=device, dtype=dtype)
        with torch.no_grad():
            noise = randn(tuple(init.shape), gen, device, dtype)
            if p.denoising_start is not None:  # a latent handed over with its noise: taken as it is
                latents = init
            elif p.strength >= 1.0 and not bool(torch.any(init)):
                latents = noise * scheduler.init_noise_sigma
            else:
                latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(init.shape[0]))
            f = s.info.vae_scale_factor
            out = sample(ctx=ctx, unet=torch_unet(unet), unet_config=dict(unet.config), scheduler=scheduler,
                         timesteps=timesteps, latents=latents, cond=cond, cfg=p.cfg, gen=gen, device=device,
                         dtype=dtype, pixel_size=(init.shape[-2] * f, init.shape[-1] * f), eta=p.eta,
                         guidance_rescale=p.guidance_rescale)
        return {"latent": out.float().cpu()}


@block("sd.inpaint", version="1.0.0")
class Inpaint(Block):
    """Repaint the masked (white) part of an image following the conditioning.

    With an inpainting model (9-channel UNet) the mask and the masked image are fed to the
    UNet; with an ordinary model the unmasked part is put back, re-noised, after every step.
    Both follow diffusers' ``StableDiffusionInpaintPipeline``. Decode the result with
    ``sd.vae_decode``.
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt"),
              "image": In("IMAGE", "the image to edit, sides multiples of 8"),
              "mask": In("MASK", "1 (white) where to repaint")}
    outputs = {"latent": Out("LATENT", "the inpainted latent")}
    resources = Resources(device="gpu", memory_mb=4096, batch=True)

    class Params(SamplingParams):
        batch: int = Field(1, ge=1, le=64, description="images per input image")

    def run(self, ctx: Context, cond: Any, image: np.ndarray, mask: np.ndarray) -> dict:
        import torch

        p = self.params
        s = sampler_setup(ctx, p, cond)
        device, unet, scheduler, info = s.device, s.unet, s.scheduler, s.info
        if info.family == "sdxl":
            raise BlockError(f"node {ctx.node!r}: sd.inpaint supports SD 1.x/2.x models, not SDXL",
                             type="input", node=ctx.node, field="params.model")
        vae = ctx.models.vae(s.ref, device=device)
        dtype = unet.dtype
        f = info.vae_scale_factor
        image = rgb(image, ctx.node)
        height, width = (image.shape[1] // f) * f, (image.shape[2] // f) * f
        if mask.ndim == 4:
            mask = mask[..., 0]
        if mask.shape[1:] != image.shape[1:3]:
            raise BlockError(f"node {ctx.node!r}: mask is {mask.shape[2]}x{mask.shape[1]}, the image "
                             f"{image.shape[2]}x{image.shape[1]}", type="input", node=ctx.node,
                             field="inputs.mask")
        batch = image.shape[0] * p.batch
        timesteps, _n = schedule(scheduler, p.steps, p.strength, device, ctx.node)
        latent_timestep = timesteps[:1].repeat(batch)
        is_strength_max = p.strength == 1.0
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        channels_unet = unet.config.in_channels
        if channels_unet not in (4, 9):
            raise BlockError(f"node {ctx.node!r}: the UNet has {channels_unet} input channels; "
                             f"inpainting needs 4 or 9", type="input", node=ctx.node, field="params.model")

        with torch.no_grad():
            init_image = image_processor(f).preprocess(image, height=height, width=width).to(torch.float32)
            image_latents = None
            if channels_unet == 4 or not is_strength_max:
                image_latents = vae_encode(vae, init_image.to(device=device, dtype=dtype), gen)
                image_latents = image_latents.repeat(batch // image_latents.shape[0], 1, 1, 1)
            shape = (batch, info.latent_channels, height // f, width // f)
            noise = randn(shape, gen, device, dtype)
            if is_strength_max:
                latents = noise * scheduler.init_noise_sigma
            else:
                latents = scheduler.add_noise(image_latents, noise, latent_timestep)
            mask_cond = image_processor(f, mask=True).preprocess(np.asarray(mask, dtype=np.float32),
                                                                 height=height, width=width)
            masked_image = init_image * (mask_cond < 0.5)
            small_mask = torch.nn.functional.interpolate(mask_cond, size=(height // f, width // f))
            small_mask = small_mask.to(device=device, dtype=dtype)
            masked_latents = vae_encode(vae, masked_image.to(device=device, dtype=dtype), gen)
            if small_mask.shape[0] < batch:
                small_mask = small_mask.repeat(batch // small_mask.shape[0], 1, 1, 1)
            if masked_latents.shape[0] < batch:
                masked_latents = masked_latents.repeat(batch // masked_latents.shape[0], 1, 1, 1)
            if channels_unet == 9:
                masked_latents = masked_latents.to(device=device, dtype=dtype)
                extra = {"mask": small_mask, "masked_image_latents": masked_latents}
            else:
                extra = {"mask": small_mask, "image_latents": image_latents, "noise": noise}
            out = sample(ctx=ctx, unet=torch_unet(unet), unet_config=dict(unet.config), scheduler=scheduler,
                         timesteps=timesteps, latents=latents, cond=cond, cfg=p.cfg, gen=gen, device=device,
                         dtype=dtype, pixel_size=(height, width), eta=p.eta,
                         guidance_rescale=p.guidance_rescale, inpaint=extra)
        return {"latent": out.float().cpu()}


BLOCKS = [Denoise, Inpaint]
