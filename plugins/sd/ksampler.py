"""``sd.ksampler``: ComfyUI's KSampler and KSamplerAdvanced, natively (see :mod:`plugins.sd.ksampling`).

For the same model, prompt, seed, sampler, scheduler, steps and cfg the latent is the one
ComfyUI's sampler gives: the noise is drawn as ComfyUI draws it from the seed, the
schedule and the sampler are ComfyUI's. ``denoise`` below 1 runs the last ``steps`` of a
longer schedule (img2img), as there. ``start_step``/``end_step`` cut a window out of the
schedule; with ``return_with_leftover_noise`` the latent comes back still noised at the
window's last sigma and ``add_noise`` off takes such a latent up where it stopped: the
SDXL base + refiner handoff, exactly. A ``mask`` (1 = denoise) keeps the rest of the
latent (ComfyUI's noise mask, ``SetLatentNoiseMask``).

:func:`native_sample` is the run both this block and ``sd.sample_custom`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.sd.common import (
    MODEL_FIELD_DESCRIPTION,
    ModelParam,
    Sampling,
    check_cond,
    device_of,
    guidance_embedding,
    model_ref,
    torch_unet,
    unet_prompt,
)
from plugins.sd.conditioning import StepConditioning
from plugins.sd.ip2p_latent import ip2p_concat
from plugins.sd.ksampling.catalog import SAMPLER_NAMES, SAMPLERS
from plugins.sd.ksampling.denoiser import Denoiser, needs_uncond
from plugins.sd.ksampling.model_sampling import ModelSampling, UnsupportedSchedule
from plugins.sd.ksampling.noise import MAX_SEED, prepare_noise
from plugins.sd.ksampling.run import prepare_mask, run_sampler
from plugins.sd.ksampling.schedules import SCHEDULERS, sampler_sigmas, step_range
from plugins.sd.sampling import latent_preview
from plugins.sd.unclip import Adm

ComfySampler = Literal[SAMPLER_NAMES]  # type: ignore[valid-type]
ComfyScheduler = Literal[SCHEDULERS]  # type: ignore[valid-type]
BatchIndex = list[Annotated[int, Field(ge=0, le=4095)]] | None  # a latent's place in a batch of <= 4096
MAX_SCHEDULE = 10000  # steps / denoise: the longest schedule a denoise below 1 may ask for


def check_schedule_length(ctx: Context, steps: int, denoise: float) -> None:
    """A denoise so small that ``int(steps / denoise)`` passes :data:`MAX_SCHEDULE` is refused."""
    if 0.0 < denoise < 1.0 and steps / denoise > MAX_SCHEDULE:
        raise BlockError(f"node {ctx.node!r}: denoise {denoise} with {steps} steps asks for a schedule of "
                         f"{int(steps / denoise)} steps (at most {MAX_SCHEDULE})", type="limit",
                         node=ctx.node, field="params.denoise", value=denoise, bound=steps / MAX_SCHEDULE)


class ModelSamplingParams(Params):
    """ComfyUI's ModelSamplingDiscrete node, as params of the blocks that read the model's sigmas."""

    model_sampling: Literal["eps", "v_prediction", "lcm", "x0"] | None = Field(
        None, description="the model's prediction, overridden as ComfyUI's ModelSamplingDiscrete (lcm: LCM's "
                          "50-step distilled sigmas and boundary condition); null: the model's own")
    zsnr: bool | None = Field(None, description="zero terminal SNR sigmas; null: the model's own")


def model_sampling(ctx: Context, model: ModelParam, field: str = "params.model", sampling: str | None = None,
                   zsnr: bool | None = None) -> ModelSampling:
    """The model's :class:`ModelSampling` (from its scheduler config, with ComfyUI's
    ModelSamplingDiscrete overrides), or a structured error."""
    info = ctx.models.info(model_ref(model))
    try:
        return ModelSampling.from_config(dict(info.scheduler), sampling, zsnr)
    except UnsupportedSchedule as exc:
        raise BlockError(f"node {ctx.node!r}: model {info.name!r}: {exc}", type="input", node=ctx.node,
                         field=field) from None


def _latent(latent: Any, node: str) -> Any:
    import torch

    if not isinstance(latent, torch.Tensor) or latent.ndim != 4:
        raise BlockError(f"node {node!r}: inputs.latent is not a latent [batch, channels, height, width]",
                         type="input", node=node, field="inputs.latent")
    return latent.detach().float().cpu()


def inpaint_concat(mask: Any, latent: Any) -> Any:
    """An inpainting UNet's extra input (ComfyUI's ``concat_cond``): the rounded noise mask and the
    masked image's latent; without a mask, all ones and the latent of a black image."""
    import torch

    if mask is not None:
        return torch.cat([mask[:, :1].round(), latent], dim=1)
    blank = torch.ones_like(latent)
    for c, v in enumerate((0.8223, -0.6876, 0.6364, 0.1380)[:latent.shape[1]]):
        blank[:, c] *= v
    return torch.cat([torch.ones_like(latent)[:, :1], blank], dim=1)


def control_active(ms: ModelSampling, start: float, end: float, sigma: float) -> bool:
    """Whether a ControlNet with ComfyUI's ``start_percent``/``end_percent`` acts at ``sigma``: the
    sigma lies between the two percents' sigmas (``ControlBase.get_control``'s timestep range)."""
    return ms.percent_to_sigma(end) <= sigma <= ms.percent_to_sigma(start)


def native_sample(ctx: Context, *, model: ModelParam, cond: Any, cfg: float, sampler: str, sigmas: Any,
                  latent: Any, seed: int, add_noise: bool = True, batch_index: BatchIndex = None,
                  mask: Any = None, options: dict[str, Any] | None = None, sampling: str | None = None,
                  zsnr: bool | None = None, guide: Callable[..., Any] | None = None) -> tuple[Any, Any]:
    """``(latent, denoised)``: ComfyUI's sampler run on ``latent`` down ``sigmas``; ``denoised`` is the
    last step's prediction of the clean latent (SamplerCustom's ``denoised_output``). ``guide`` makes
    the denoiser of a guider of its own from the plain one (``sd.dual_guider``)."""
    import torch

    node = ctx.node
    ref = model_ref(model)
    info = ctx.models.info(ref)
    check_cond(cond, info.family, node)
    if cond.get("regions"):
        raise BlockError(f"node {node!r}: regional prompts run on sd.denoise's samplers, not on ComfyUI's "
                         f"(sd.ksampler, sd.sample_custom)", type="input", node=node, field="inputs.cond")
    ms = model_sampling(ctx, model, sampling=sampling, zsnr=zsnr)
    latent = _latent(latent, node)
    if batch_index is not None and len(batch_index) != latent.shape[0]:
        raise BlockError(f"node {node!r}: batch_index has {len(batch_index)} entries for a batch of "
                         f"{latent.shape[0]}", type="input", node=node, field="params.batch_index",
                         value=len(batch_index))
    noise = prepare_noise(latent.shape, seed, batch_index) if add_noise else torch.zeros_like(latent)
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32).reshape(-1)
    if len(sigmas) == 0:
        return latent, latent
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise BlockError(f"node {node!r}: the sigmas must be finite and >= 0", type="input", node=node,
                         field="inputs.sigmas")
    device = device_of(ctx)
    unet = ctx.models.unet(ref, device=device)
    dtype = unet.dtype
    batch = latent.shape[0]
    f = info.vae_scale_factor
    pixel_size = (latent.shape[-2] * f, latent.shape[-1] * f)
    time_cond_dim = dict(unet.config).get("time_cond_proj_dim")
    in_channels = int(dict(unet.config).get("in_channels", latent.shape[1]))
    if in_channels not in (latent.shape[1], 2 * latent.shape[1], 2 * latent.shape[1] + 1):
        raise BlockError(f"node {node!r}: the UNet takes {in_channels} channels; the latent has "
                         f"{latent.shape[1]}", type="input", node=node, field="params.model")
    do_uncond = needs_uncond(cfg, SAMPLERS[sampler].cfg_pp) and time_cond_dim is None
    if do_uncond and cond.get("negative_prompt_embeds") is None:
        raise BlockError(f"node {node!r}: cfg {cfg} needs a negative prompt in the conditioning",
                         type="input", node=node, field="inputs.cond")
    timestep_cond = None
    if time_cond_dim is not None:
        w = torch.tensor(cfg - 1).repeat(batch)
        timestep_cond = guidance_embedding(w, time_cond_dim, dtype=dtype).to(device=device, dtype=dtype)
    sigmas = sigmas.to(device)

    adm = Adm.build(cond, dict(unet.config), info.family, seed=seed, batch=batch, do_cfg=do_uncond, node=node)

    def make_prompt(c: dict[str, Any]) -> Any:
        p = unet_prompt(c, batch=batch, do_cfg=do_uncond, pixel_size=pixel_size, device=device,
                        dtype=dtype, node=node, negative=cond)
        return p if adm is None else adm.apply(p, c)  # unCLIP / revision image embeddings

    prompt = make_prompt(cond)
    extras = StepConditioning.build(cond, Sampling(
        ctx=ctx, device=device, dtype=dtype, do_cfg=do_uncond, batch=batch,
        timesteps=ms.timestep(sigmas[:-1]),
        pixel_size=pixel_size, latent_size=tuple(latent.shape[-2:]), unet_config=dict(unet.config),
        scheduler=None, step_kwargs={}, base=prompt, make_prompt=make_prompt))
    last_step = len(sigmas) - 2
    controls = getattr(extras, "controls", None)

    def unet_kwargs(model_in: Any, t: Any, i: int, p: Any) -> dict:
        if controls is not None:  # ComfyUI's step range: by the sigma of each model call
            for k, item in enumerate(controls.items):
                on = control_active(ms, item["start"], item["end"], denoiser.sigma_now)
                controls.keeps[k] = [1.0 if on else 0.0] * len(controls.keeps[k])
        return extras.unet_kwargs(model_in, t, min(i, last_step), p, None)

    denoiser = Denoiser(extras.unet(torch_unet(unet), node), ms, prompt, cfg, dtype=dtype,
                        do_uncond=do_uncond, timestep_cond=timestep_cond, unet_kwargs=unet_kwargs,
                        before_call=ctx.check_cancelled)
    total = len(sigmas) - 1
    last: dict[str, Any] = {}

    def callback(i: int, x: Any, denoised: Any) -> None:
        last["denoised"] = denoised
        ctx.progress(min(i + 1, total), total, preview=latent_preview(denoised))

    with torch.no_grad():
        lat = latent.to(device)
        noise_mask = None if mask is None else prepare_mask(mask, tuple(lat.shape), device)
        if in_channels == 2 * lat.shape[1]:  # InstructPix2Pix: the image's latent beside
            edm = ms.continuous and prompt.added is not None  # CosXL edit (SDXL, EDM): scaled
            denoiser.concat = ip2p_concat(cond, tuple(lat.shape), device, edm)
        elif in_channels != lat.shape[1]:  # an inpainting model: the mask and the masked latent beside
            denoiser.concat = inpaint_concat(noise_mask, lat)
        if guide is not None:
            denoiser = guide(denoiser, in_channels=in_channels, latent=lat, batch=batch,
                             pixel_size=pixel_size, device=device, node=node)
        out = run_sampler(sampler, denoiser, ms, sigmas, noise.to(device), lat, seed=seed, callback=callback,
                          mask=noise_mask, options=options)
    out = out.float().cpu()
    return out, last.get("denoised", out).float().cpu()


class KSamplerParams(ModelSamplingParams):
    model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="noise seed (ComfyUI's); null: from the node")
    steps: int = Field(20, ge=1, le=1000, description="steps of the schedule")
    cfg: float = Field(8.0, ge=0.0, le=100.0,
                       description="classifier-free guidance scale (1: no negative pass)")
    sampler: ComfySampler = Field("euler", description="ComfyUI sampler name")
    scheduler: ComfyScheduler = Field("normal", description="ComfyUI scheduler (sigma schedule) name")
    denoise: float = Field(1.0, ge=0.0, le=1.0, description="below 1: the last `steps` of a schedule of "
                                                            "int(steps / denoise) steps (img2img)")
    start_step: int = Field(0, ge=0, le=10000, description="first step of the schedule to run")
    end_step: int = Field(10000, ge=0, le=10000,
                          description="step to stop at (KSamplerAdvanced's end_at_step)")
    add_noise: bool = Field(True,
                            description="noise the latent from the seed first (off: it is already noisy)")
    return_with_leftover_noise: bool = Field(False, description="stopping before the last step, return the "
                                                                "latent still noisy instead of denoised")
    batch_index: BatchIndex = Field(None, max_length=4096,
                                          description="each latent's index in the batch its noise is drawn "
                                                      "for (ComfyUI's batch_index); null: 0, 1, 2, ...")


@block("sd.ksampler", version="1.0.0")
class KSampler(Block):
    """Denoise a latent with ComfyUI's samplers and schedules: ComfyUI's image for the same seed.

    ComfyUI's ``KSampler`` and ``KSamplerAdvanced`` in one block. An empty latent (zeros)
    is pure noise; another latent is noised to the first sigma of the schedule
    (``denoise``). ``start_step``/``end_step`` run a window of the schedule;
    ``return_with_leftover_noise`` keeps the noise of a window that stops early, and
    ``add_noise`` off continues such a latent (SDXL base then refiner). ``mask`` (white =
    denoise) keeps the rest of the latent.
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (positive and negative)"),
              "latent": In("LATENT", "an empty latent (size) or a latent to denoise"),
              "mask": In("MASK", "noise mask: 1 where to denoise (ComfyUI's SetLatentNoiseMask)",
                         optional=True)}
    outputs = {"latent": Out("LATENT", "the sampled latent")}
    resources = Resources(device="gpu", memory_mb=4096, batch=True)
    Params = KSamplerParams

    def run(self, ctx: Context, cond: Any, latent: Any, mask: Any = None) -> dict:
        p = self.params
        check_schedule_length(ctx, p.steps, p.denoise)
        ms = model_sampling(ctx, p.model, sampling=p.model_sampling, zsnr=p.zsnr)
        sigmas = sampler_sigmas(ms, p.scheduler, p.sampler, p.steps, p.denoise)
        window = step_range(sigmas, p.start_step, p.end_step,
                            force_full_denoise=not p.return_with_leftover_noise)
        if window is None:  # the window leaves no step: the latent as it is
            return {"latent": _latent(latent, ctx.node)}
        seed = ctx.seed if p.seed is None else p.seed
        out, _ = native_sample(ctx, model=p.model, cond=cond, cfg=p.cfg, sampler=p.sampler, sigmas=window,
                               latent=latent, seed=seed, add_noise=p.add_noise, batch_index=p.batch_index,
                               mask=mask, sampling=p.model_sampling, zsnr=p.zsnr)
        return {"latent": out}


BLOCKS = [KSampler]
