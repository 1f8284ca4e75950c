"""The denoising loop of the diffusers pipelines, shared by the diffusers-scheduler blocks.

Every step mirrors diffusers' own pipelines (``StableDiffusionPipeline``,
``...Img2ImgPipeline``, ``...InpaintPipeline``, ``StableDiffusionXLPipeline``) so that a
graph gives the image the pipeline gives for the same seed; the equivalence tests hold
them to that. The ONNX blocks reuse :func:`sample` with an onnxruntime UNet. What a
conditioning carries beyond its prompt comes in through
:class:`~plugins.sd.conditioning.StepConditioning`.
"""

from __future__ import annotations

from typing import Any

from orchestrator import BlockError, Context
from plugins.sd.common import lcm_timestep_cond, rescale_noise_cfg, step_kwargs
from plugins.sd.cond_types import Sampling, UNetFn, UNetPrompt, Window, crop, unet_prompt
from plugins.sd.conditioning import StepConditioning


def sample(
    *,
    ctx: Context,
    unet: UNetFn,
    unet_config: dict[str, Any],
    scheduler: Any,
    timesteps: Any,
    latents: Any,
    cond: dict[str, Any],
    cfg: float,
    gen: Any,
    device: str,
    dtype: Any,
    pixel_size: tuple[int, int],
    eta: float = 0.0,
    guidance_rescale: float = 0.0,
    inpaint: dict[str, Any] | None = None,
) -> Any:
    """The denoising loop of the diffusers pipelines, one ``ctx.progress`` per step.

    ``unet(latent_model_input, t, encoder_hidden_states=..., timestep_cond=...,
    added_cond_kwargs=...)`` returns the noise prediction (the diffusers UNet's first
    output, or an ONNX session's). ``inpaint`` carries ``mask`` and ``masked_image_latents``
    (9-channel UNets) or ``mask``, ``image_latents`` and ``noise`` (4-channel UNets).

    What a conditioning carries beyond its prompt (ControlNets, regional prompts, image
    prompts: :mod:`plugins.sd.conditioning`) comes in at three points: the UNet itself
    (``extras.unet``), extra UNet arguments for each call (``extras.unet_kwargs``) and the
    prediction of a step (``extras.predict``, which may call :func:`predict` on windows of
    the latent with other prompts). A plain conditioning changes none of them.
    """
    import torch

    batch = latents.shape[0]
    if cond.get("unclip") or unet_config.get("class_embed_type") == "projection":
        raise BlockError(f"node {ctx.node!r}: unCLIP image embeddings (and unCLIP models) are sampled by "
                         f"ComfyUI's samplers (sd.ksampler, sd.sample_custom), not this loop", type="input",
                         node=ctx.node, field="inputs.cond")
    time_cond_dim = unet_config.get("time_cond_proj_dim")
    do_cfg = cfg > 1.0 and time_cond_dim is None

    def make_prompt(c: dict[str, Any]) -> UNetPrompt:
        return unet_prompt(c, batch=batch, do_cfg=do_cfg, pixel_size=pixel_size, device=device, dtype=dtype,
                           node=ctx.node, negative=cond)

    base = make_prompt(cond)
    timestep_cond = lcm_timestep_cond(cfg, batch, time_cond_dim, dtype)
    if timestep_cond is not None:
        timestep_cond = timestep_cond.to(device=device, dtype=dtype)
    extra = step_kwargs(scheduler, eta, gen)

    mask = masked = None
    if inpaint is not None and "masked_image_latents" in inpaint:
        mask = inpaint["mask"]
        masked = inpaint["masked_image_latents"]
        if do_cfg:
            mask, masked = torch.cat([mask] * 2), torch.cat([masked] * 2)

    extras = StepConditioning.build(cond, Sampling(
        ctx=ctx, device=device, dtype=dtype, do_cfg=do_cfg, batch=batch, timesteps=timesteps,
        pixel_size=pixel_size, latent_size=tuple(latents.shape[-2:]), unet_config=unet_config,
        scheduler=scheduler, step_kwargs=extra, base=base, make_prompt=make_prompt))
    unet = extras.unet(unet, ctx.node)

    def predict(latents: Any, t: Any, i: int, prompt: UNetPrompt = base, window: Window | None = None) -> Any:
        """The guided noise prediction for ``latents`` (the ``window`` of the latent, when given)."""
        model_in = torch.cat([latents] * 2) if do_cfg else latents
        model_in = scheduler.scale_model_input(model_in, t)
        kwargs = extras.unet_kwargs(model_in, t, i, prompt, window)
        if masked is not None:
            model_in = torch.cat([model_in, crop(mask, window), crop(masked, window)], dim=1)
        noise_pred = unet(model_in, t, encoder_hidden_states=prompt.embeds, timestep_cond=timestep_cond,
                          added_cond_kwargs=prompt.added, **kwargs)
        if do_cfg:
            uncond, text_pred = noise_pred.chunk(2)
            noise_pred = uncond + cfg * (text_pred - uncond)
            if guidance_rescale > 0.0:
                noise_pred = rescale_noise_cfg(noise_pred, text_pred, guidance_rescale)
        return noise_pred

    total = len(timesteps)
    for i, t in enumerate(timesteps):
        ctx.check_cancelled()
        latents, noise_pred = extras.predict(predict, latents, t, i)
        latents = scheduler.step(noise_pred, t, latents, **extra, return_dict=False)[0]
        if inpaint is not None and "image_latents" in inpaint:
            proper = inpaint["image_latents"]
            if i < total - 1:
                proper = scheduler.add_noise(proper, inpaint["noise"], torch.tensor([timesteps[i + 1]]))
            latents = (1 - inpaint["mask"]) * proper + inpaint["mask"] * latents
        # the preview only for someone listening (11 us a step at 64x64, mostly numpy)
        ctx.progress(i + 1, total, preview=latent_preview(latents) if ctx.on_event is not None else None)
    return latents


# SD 1.x/2.x latent channels -> RGB, the linear approximation preview UIs use; other channel
# counts (SDXL's 4 are similar enough) fall back to the first three channels.
LATENT_RGB = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173), (-0.158, 0.189, 0.264),
              (-0.184, -0.271, -0.473))


def latent_preview(latents: Any) -> Any:
    """A cheap RGB preview of the first latent of a batch: float32 ``[h, w, 3]`` in 0..1.

    At latent resolution (1/8 of the image): the dashboard scales it up.
    """
    import numpy as np

    lat = latents[0].detach().float().cpu().numpy()  # [C, h, w]
    if lat.shape[0] == 4:
        rgb = np.einsum("chw,cr->hwr", lat, np.asarray(LATENT_RGB, dtype=np.float32))
    else:
        rgb = np.moveaxis(lat[:3], 0, -1)
    return np.clip((rgb + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
