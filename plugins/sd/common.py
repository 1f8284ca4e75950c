"""What the Stable Diffusion blocks share: model params, devices, samplers and schedules, noise.

Each helper mirrors diffusers' own pipelines (``StableDiffusionPipeline``,
``...Img2ImgPipeline``, ``...InpaintPipeline``, ``StableDiffusionXLPipeline``) so that a
graph gives the image the pipeline gives for the same seed. The sampling loop is
:mod:`plugins.sd.sampling`; the types it shares with the conditioning extras
(:class:`UNetPrompt`, :class:`Sampling`, :func:`unet_prompt`, :func:`torch_unet`, ...) live in
:mod:`plugins.sd.cond_types` and are re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from pydantic import Field

from orchestrator import BlockError, Context, Params, register_port_type, resolve_device
from plugins.sd.cond_types import (
    Sampling,
    UNetFn,
    UNetPrompt,
    Window,
    check_conditioning,
    crop,
    repeat_batch,
    torch_unet,
    unet_prompt,
)

# the types the sampling loops share with the conditioning extras (plugins.sd.cond_types)
# are re-exported: blocks import them from here too
__all__ = [
    "MODEL_FIELD_DESCRIPTION",
    "RNG",
    "SAMPLERS",
    "Embedding",
    "Hypernetwork",
    "Lora",
    "MergeSpec",
    "ModelParam",
    "ModelSpec",
    "PartComponent",
    "PartName",
    "Sampler",
    "Sampling",
    "SamplingSpec",
    "UNetFn",
    "UNetPrompt",
    "Window",
    "check_cond",
    "crop",
    "device_of",
    "generator",
    "guidance_embedding",
    "lcm_timestep_cond",
    "make_scheduler",
    "model_ref",
    "randn",
    "repeat_batch",
    "rescale_noise_cfg",
    "schedule",
    "step_kwargs",
    "torch_unet",
    "unet_prompt",
]

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



# -- conditioning -----------------------------------------------------------------------------


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
