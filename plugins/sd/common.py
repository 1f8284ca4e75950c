"""What the Stable Diffusion blocks share: model params, devices, samplers, the sampling loop.

Every step here mirrors diffusers' own pipelines (``StableDiffusionPipeline``,
``...Img2ImgPipeline``, ``...InpaintPipeline``, ``StableDiffusionXLPipeline``) so that a
graph gives the image the pipeline gives for the same seed; the equivalence tests hold
them to that. The ONNX blocks reuse :func:`sample` with an onnxruntime UNet.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from orchestrator import BlockError, Context, Params, register_port_type, resolve_device
from plugins.sd.conditioning import StepConditioning, check_conditioning

RNG = register_port_type(
    "RNG", description="random-number generator state: a block given it continues the same random "
                       "stream (as one generator runs through a diffusers pipeline)")


class Lora(Params):
    path: str = Field(..., min_length=1, max_length=512,
                      description="a LoRA by name: a file in the model folders' loras/ "
                                  "('sub/name.safetensors', with or without the extension) or a configured "
                                  "model; never a path (only the in-process CLI takes paths)")
    weight: float = Field(1.0, ge=-10.0, le=10.0, description="LoRA strength")


class Embedding(Params):
    path: str = Field(..., min_length=1, max_length=512,
                      description="an embedding by name: a file in the model folders' embeddings/ (with or "
                                  "without the extension) or a configured model; never a path (only the "
                                  "in-process CLI takes paths)")
    token: str | None = Field(None, description="the word that calls it in prompts; default: file stem")


class Hypernetwork(Params):
    path: str = Field(..., min_length=1, max_length=512,
                      description="a hypernetwork by name: a file in the model folders' hypernetworks/ "
                                  "(A1111 .pt, read weights-only, or .safetensors); never a path")
    strength: float = Field(1.0, ge=-10.0, le=10.0, description="hypernetwork strength")


PartComponent = Literal["unet", "text_encoder", "text_encoder_2"]
PartName = Annotated[str, Field(min_length=1, max_length=512)]


class SamplingSpec(Params):
    """The model's noise levels replaced as ComfyUI's ModelSamplingContinuousEDM does (CosXL, ...)."""

    type: Literal["continuous_edm"] = Field("continuous_edm", description="what replaces the sampling")
    prediction: Literal["v_prediction", "edm", "eps"] = Field("v_prediction", description="the output's form")
    sigma_max: float = Field(120.0, gt=0.0, le=1000.0, description="the largest sigma")
    sigma_min: float = Field(0.002, gt=0.0, le=1000.0, description="the smallest sigma (below sigma_max)")


class MergeSpec(Params):
    """Weights merged from two models as ComfyUI's merging nodes do (see orchestrator.models.merge)."""

    op: Literal["simple", "blocks", "add", "subtract"] = Field(
        ..., description="simple/blocks: ratio*a + (1-ratio)*b; add: a + b; subtract: ratio*(a - b)")
    target: Literal["unet", "clip"] = Field("unet", description="merge the UNet, or the text encoders")
    a: ModelParam = Field(..., description="the first model (its configs and other parts are kept)")
    b: ModelParam = Field(..., description="the second model")
    ratio: float = Field(1.0, ge=-10.0, le=10.0,
                         description="simple/blocks: the first model's share; subtract: the multiplier")
    blocks: dict[str, float] = Field(default_factory=dict, max_length=256,
                                     description="blocks: the first model's share per UNet block, by "
                                                 "the prefix of the original (LDM) key names, e.g. "
                                                 "'input_blocks.4.'")


class ModelSpec(Params):
    """A model with personalisation: LoRAs (each with a weight) and textual-inversion embeddings."""

    name: str = Field(..., min_length=1, description="registered model name")
    merge: MergeSpec | None = Field(None, description="weights merged from two models (name: the first's)")
    sampling: SamplingSpec | None = Field(None, description="noise levels replaced (continuous EDM)")
    parts: list[tuple[PartComponent, PartName]] = Field(
        default_factory=list, max_length=3,
              description="a model of parts (name @auto, @sd1, @sd2 or @sdxl): [component, file name] pairs, "
                          "files in the model folders' unet/ and clip/ (ComfyUI's UNETLoader, CLIPLoader)")
    hypernetworks: list[Hypernetwork] = Field(default_factory=list, max_length=16,
                                              description="hypernetworks on the UNet's attention")
    loras: list[Lora] = Field(default_factory=list, description="LoRAs merged into the model")
    embeddings: list[Embedding] = Field(default_factory=list, description="textual-inversion embeddings")


ModelParam = str | ModelSpec
MergeSpec.model_rebuild()
MODEL_FIELD_DESCRIPTION = ("model name (e.g. 'tiny-sd'), or {name, loras: [{path, weight}], "
                           "embeddings: [{path, token}], hypernetworks: [{path, strength}], "
                           "merge: {op, target, a, b, ratio, blocks}}")


def model_ref(value: ModelParam) -> Any:
    """The reference handed to ``ctx.models.load`` (a name or a plain dict)."""
    return value if isinstance(value, str) else value.model_dump(exclude_none=True)


def device_of(ctx: Context) -> str:
    """The torch device for this block: the context's CUDA device when CUDA is here, else CPU."""
    return resolve_device(ctx.device)


# -- samplers ---------------------------------------------------------------------------------

SAMPLERS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "default": (None, {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
# the ``sampler`` parameter of the diffusers-scheduler blocks: the names of ``SAMPLERS``
Sampler = Literal[tuple(SAMPLERS)]  # type: ignore[valid-type]


def make_scheduler(config: dict[str, Any], sampler: str) -> Any:
    """A fresh diffusers scheduler: the model's scheduler config, as the ``sampler`` class.

    The same as ``SchedulerClass.from_config(pipe.scheduler.config, **overrides)``.
    """
    import diffusers

    cls_name, overrides = SAMPLERS[sampler]
    cls = getattr(diffusers, cls_name or config.get("_class_name", "DDIMScheduler"))
    return cls.from_config(config, **overrides)


def schedule(scheduler: Any, steps: int, strength: float, device: str, node: str) -> tuple[Any, int]:
    """The timesteps to run: ``retrieve_timesteps`` then, below strength 1, ``get_timesteps``."""
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    if strength >= 1.0:
        return timesteps, steps
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    timesteps = timesteps[t_start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * scheduler.order)
    if steps - t_start < 1:
        raise BlockError(
            f"node {node!r}: strength {strength} with {steps} steps leaves no step to run "
            f"(int(steps * strength) must be >= 1)", type="input", node=node, field="params.strength",
            value=strength)
    return timesteps, steps - t_start


def generator(rng: Any, seed: int) -> Any:
    """A CPU ``torch.Generator``: continuing ``rng`` (a state) when given, else seeded with ``seed``.

    Noise is always drawn on the CPU, then moved, so a seed gives the same image on any device.
    """
    import torch

    gen = torch.Generator("cpu")
    if rng is not None:
        gen.set_state(rng.clone() if hasattr(rng, "clone") else rng)
    else:
        gen.manual_seed(int(seed))
    return gen


def randn(shape: tuple[int, ...], gen: Any, device: str, dtype: Any) -> Any:
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(shape, generator=gen, device=__import__("torch").device(device), dtype=dtype)


# -- conditioning -------------------------------------------------------------------------------


def repeat_batch(t: Any, batch: int, what: str, node: str) -> Any:
    if t is None or t.shape[0] == batch:
        return t
    if t.shape[0] == 1:
        return t.repeat(batch, *([1] * (t.ndim - 1)))
    raise BlockError(f"node {node!r}: {what} has batch {t.shape[0]}, the latent {batch}", type="input",
                     node=node, field="inputs.cond")


def check_cond(cond: Any, family: str, node: str) -> None:
    """``check_conditioning``, and the conditioning was made for a model of ``family``."""
    check_conditioning(cond, node)
    if cond.get("family", family) != family:
        raise BlockError(
            f"node {node!r}: the conditioning was made for a {cond.get('family')} model "
            f"({cond.get('model')}), this model is {family}", type="input", node=node, field="inputs.cond")


# Copied from diffusers' StableDiffusionPipeline.get_guidance_scale_embedding
# (equal: tests/test_deliberate_copies.py)
def guidance_embedding(w: Any, embedding_dim: int, dtype: Any) -> Any:
    """``get_guidance_scale_embedding`` of the pipelines (for LCM-distilled UNets)."""
    import torch

    w = w * 1000.0
    half_dim = embedding_dim // 2
    emb = torch.log(torch.tensor(10000.0)) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=dtype) * -emb)
    emb = w.to(dtype)[:, None] * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def lcm_timestep_cond(cfg: float, batch: int, time_cond_dim: int | None, dtype: Any) -> Any:
    """The guidance embedding an LCM-distilled UNet (``time_cond_proj_dim``) takes, else ``None``."""
    import torch

    if time_cond_dim is None:
        return None
    return guidance_embedding(torch.tensor(cfg - 1).repeat(batch), time_cond_dim, dtype=dtype)


def step_kwargs(scheduler: Any, eta: float, gen: Any) -> dict[str, Any]:
    """``eta`` and ``generator`` for ``scheduler.step``, each where its signature takes it."""
    step_params = set(inspect.signature(scheduler.step).parameters)
    extra: dict[str, Any] = {}
    if "eta" in step_params:
        extra["eta"] = eta
    if "generator" in step_params:
        extra["generator"] = gen
    return extra


# Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.rescale_noise_cfg
# (equal: tests/test_deliberate_copies.py)
def rescale_noise_cfg(noise_cfg: Any, noise_pred_text: Any, guidance_rescale: float) -> Any:
    """Section 3.4 of arXiv:2305.08891, as diffusers' ``rescale_noise_cfg``."""
    std_text = noise_pred_text.std(dim=list(range(1, noise_pred_text.ndim)), keepdim=True)
    std_cfg = noise_cfg.std(dim=list(range(1, noise_cfg.ndim)), keepdim=True)
    rescaled = noise_cfg * (std_text / std_cfg)
    return guidance_rescale * rescaled + (1 - guidance_rescale) * noise_cfg


# -- the sampling loop --------------------------------------------------------------------------

UNetFn = Callable[..., Any]


@dataclass
class UNetPrompt:
    """One text condition as the UNet takes it: ``embeds`` (negative first under CFG) and, for
    SDXL, ``added`` (pooled text embeddings and time ids)."""

    embeds: Any
    added: dict[str, Any] | None = None


def unet_prompt(cond: dict[str, Any], *, batch: int, do_cfg: bool, pixel_size: tuple[int, int], device: str,
                dtype: Any, node: str, negative: dict[str, Any] | None = None) -> UNetPrompt:
    """The UNet inputs of a conditioning's prompt, as the diffusers pipelines build them.

    ``negative`` takes the negative side from another conditioning (regions share the base's).
    SDXL's size conditioning is ``[h, w, 0, 0, h, w]`` of the image, or the conditioning's
    ``time_ids`` / ``negative_time_ids`` (``cond.sdxl_size``, ComfyUI's CLIPTextEncodeSDXL).
    """
    import torch

    neg_src = cond if negative is None else negative
    sdxl = cond.get("family") == "sdxl"
    embeds = repeat_batch(cond["prompt_embeds"], batch, "the prompt", node).to(device=device, dtype=dtype)
    if do_cfg:
        neg = repeat_batch(neg_src.get("negative_prompt_embeds"), batch, "the negative prompt", node)
        embeds = torch.cat([neg.to(device=device, dtype=dtype), embeds])
    added = None
    if sdxl:
        h, w = pixel_size
        # SDXL's default size conditioning; the refiner's: [h, w, 0, 0, aesthetic score 6 (negative 2.5)]
        default, neg_default = ([h, w, 0, 0, 6.0], [h, w, 0, 0, 2.5]) if cond.get("aesthetic") else \
            ([h, w, 0, 0, h, w], [h, w, 0, 0, h, w])
        time_ids = torch.tensor([cond.get("time_ids") or default], dtype=dtype).repeat(batch, 1)
        text = repeat_batch(cond["pooled_prompt_embeds"], batch, "the prompt", node).to(dtype=dtype)
        if do_cfg:
            neg_text = repeat_batch(neg_src["negative_pooled_prompt_embeds"], batch, "the negative prompt",
                                    node).to(dtype=dtype)
            text = torch.cat([neg_text, text])
            neg_ids = torch.tensor([neg_src.get("negative_time_ids") or neg_default], dtype=dtype)
            time_ids = torch.cat([neg_ids.repeat(batch, 1), time_ids])  # in the order of the embeds
        added = {"text_embeds": text.to(device), "time_ids": time_ids.to(device)}
    return UNetPrompt(embeds, added)


Window = tuple[int, int, int, int]  # top, left, height, width of a latent region


def crop(x: Any, window: Window | None) -> Any:
    """``x[..., top:top + height, left:left + width]``, or ``x`` itself without a window."""
    if window is None:
        return x
    top, left, h, w = window
    return x[..., top:top + h, left:left + w]


@dataclass
class Sampling:
    """What a run of :func:`sample` is: handed to the extras a conditioning carries."""

    ctx: Context
    device: str
    dtype: Any
    do_cfg: bool
    batch: int
    timesteps: Any
    pixel_size: tuple[int, int]
    latent_size: tuple[int, int]
    unet_config: dict[str, Any]
    scheduler: Any
    step_kwargs: dict[str, Any]
    base: UNetPrompt
    make_prompt: Callable[[dict[str, Any]], UNetPrompt]

    @property
    def total(self) -> int:
        return len(self.timesteps)

    @property
    def scale_factor(self) -> int:
        """Pixels per latent cell (the VAE's scale factor)."""
        return max(1, self.pixel_size[0] // self.latent_size[0])

    @property
    def latent_multiple(self) -> int:
        """What the sides of a latent window must be multiples of for the UNet (its downsamplings)."""
        return 2 ** max(0, len(self.unet_config.get("block_out_channels", [0])) - 1)


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
        ctx.progress(i + 1, total, preview=latent_preview(latents))
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


def torch_unet(unet: Any) -> UNetFn:
    """The diffusers UNet as :func:`sample` calls it."""

    def call(sample_in: Any, t: Any, **kwargs: Any) -> Any:
        added = kwargs.get("added_cond_kwargs")
        if added and "class_labels" in added:  # an unCLIP UNet's image embedding (plugins.sd.unclip)
            added = dict(added)
            kwargs["class_labels"] = added.pop("class_labels")
            kwargs["added_cond_kwargs"] = added or None
        return unet(sample_in, t, cross_attention_kwargs=None, return_dict=False, **kwargs)[0]

    call.module = unet  # type: ignore[attr-defined]  # what extras that change the UNet work on
    return call
