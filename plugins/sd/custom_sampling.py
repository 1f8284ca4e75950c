"""ComfyUI's custom-sampling nodes as blocks: schedules, samplers, noise and guiders on their own ports.

======================================  ====================================================
ComfyUI                                 ours
======================================  ====================================================
BasicScheduler                          ``sd.sigmas`` (a model's schedule by name)
KarrasScheduler, ExponentialScheduler,  ``sd.sigmas_karras``, ``sd.sigmas_exponential``,
PolyexponentialScheduler                ``sd.sigmas_polyexponential``
SDTurboScheduler, BetaSamplingScheduler ``sd.sigmas_turbo``, ``sd.sigmas_beta``
AlignYourStepsScheduler, FlipSigmas     ``sd.sigmas_ays``, ``sd.flip_sigmas``
SplitSigmas, SplitSigmasDenoise         ``sd.split_sigmas``, ``sd.split_sigmas_denoise``
KSamplerSelect (and the sampler nodes   ``sd.sampler_select`` (``eta``, ``s_noise``,
with eta / s_noise / solver_type)       ``solver_type``)
RandomNoise, DisableNoise               ``sd.noise`` (``add`` off: no noise)
CFGGuider, BasicGuider                  ``sd.guider`` (``cfg`` 1: the positive prompt only)
SamplerCustomAdvanced / SamplerCustom   ``sd.sample_custom`` (with ``sd.noise`` and ``sd.guider``)
======================================  ====================================================

``SIGMAS`` is a float32 tensor of descending sigmas; ``SAMPLER``, ``NOISE`` and ``GUIDER``
carry small dataclasses (a sampler name with its options, a seed, a model with its
conditioning and cfg). ``sd.sample_custom`` runs :func:`plugins.sd.ksampler.native_sample`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block, register_port_type
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam
from plugins.sd.ksampler import (
    BatchIndex,
    ComfySampler,
    ComfyScheduler,
    ModelSamplingParams,
    check_schedule_length,
    model_sampling,
    native_sample,
)
from plugins.sd.ksampling import schedules
from plugins.sd.ksampling.catalog import SAMPLERS
from plugins.sd.ksampling.noise import MAX_SEED

SAMPLER = register_port_type("SAMPLER", description="a ComfyUI sampler, name and options (sd.sampler_select)")
NOISE = register_port_type("NOISE", description="the starting noise: a seed, or none (sd.noise)")
GUIDER = register_port_type("GUIDER", description="a model with its conditioning and cfg (sd.guider)")


@dataclass(frozen=True)
class SamplerChoice:
    """A ComfyUI sampler by name, with the options its node set (``eta``, ``s_noise``, ...)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoiseSource:
    """The starting noise: drawn from ``seed`` (which also seeds the sampler's noise), or none."""

    seed: int
    add: bool = True


@dataclass(frozen=True)
class Guider:
    """What the denoiser is: a model, a conditioning (positive and negative) and the cfg scale."""

    model: Any
    cond: Any
    cfg: float
    sampling: str | None = None  # ComfyUI's ModelSamplingDiscrete override
    zsnr: bool | None = None


def _sigmas_out(sigmas: Any) -> dict:
    import torch

    return {"sigmas": torch.as_tensor(sigmas, dtype=torch.float32).reshape(-1).cpu()}


def _check_sigmas(sigmas: Any, node: str, field: str = "inputs.sigmas") -> Any:
    import torch

    if not isinstance(sigmas, torch.Tensor) or sigmas.ndim != 1:
        raise BlockError(f"node {node!r}: {field} is not a 1-D tensor of sigmas", type="input", node=node,
                         field=field)
    return sigmas


STEPS = Field(20, ge=1, le=1000, description="steps")
SIGMA_MAX = Field(14.614642, gt=0.0, le=5000.0, description="the largest sigma")
SIGMA_MIN = Field(0.0291675, gt=0.0, le=5000.0, description="the smallest non-zero sigma")


@block("sd.sigmas", version="1.0.0")
class BasicScheduler(Block):
    """A model's noise schedule by ComfyUI scheduler name (ComfyUI's BasicScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(ModelSamplingParams):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        scheduler: ComfyScheduler = Field("normal", description="ComfyUI scheduler name")
        steps: int = STEPS
        denoise: float = Field(1.0, ge=0.0, le=1.0,
                               description="below 1: the last steps of a longer schedule")

    def run(self, ctx: Context) -> dict:
        p = self.params
        check_schedule_length(ctx, p.steps, p.denoise)
        ms = model_sampling(ctx, p.model, sampling=p.model_sampling, zsnr=p.zsnr)
        return _sigmas_out(schedules.basic_scheduler(ms, p.scheduler, p.steps, p.denoise))


def _range_check(ctx: Context, sigma_min: float, sigma_max: float) -> None:
    if sigma_min >= sigma_max:
        raise BlockError(f"node {ctx.node!r}: sigma_min {sigma_min} must be below sigma_max {sigma_max}",
                         type="input", node=ctx.node, field="params.sigma_min", value=sigma_min,
                         bound=sigma_max)


@block("sd.sigmas_karras", version="1.0.0")
class KarrasScheduler(Block):
    """Karras et al.'s schedule between two sigmas (ComfyUI's KarrasScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(Params):
        steps: int = STEPS
        sigma_max: float = SIGMA_MAX
        sigma_min: float = SIGMA_MIN
        rho: float = Field(7.0, ge=0.01, le=100.0, description="the schedule's curvature")

    def run(self, ctx: Context) -> dict:
        p = self.params
        _range_check(ctx, p.sigma_min, p.sigma_max)
        return _sigmas_out(schedules.karras(p.steps, p.sigma_min, p.sigma_max, p.rho))


@block("sd.sigmas_exponential", version="1.0.0")
class ExponentialScheduler(Block):
    """Sigmas evenly spaced in log between two sigmas (ComfyUI's ExponentialScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(Params):
        steps: int = STEPS
        sigma_max: float = SIGMA_MAX
        sigma_min: float = SIGMA_MIN

    def run(self, ctx: Context) -> dict:
        p = self.params
        _range_check(ctx, p.sigma_min, p.sigma_max)
        return _sigmas_out(schedules.exponential(p.steps, p.sigma_min, p.sigma_max))


@block("sd.sigmas_polyexponential", version="1.0.0")
class PolyexponentialScheduler(Block):
    """A polynomial in log sigma between two sigmas (ComfyUI's PolyexponentialScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(Params):
        steps: int = STEPS
        sigma_max: float = SIGMA_MAX
        sigma_min: float = SIGMA_MIN
        rho: float = Field(1.0, ge=0.01, le=100.0, description="the polynomial's degree")

    def run(self, ctx: Context) -> dict:
        p = self.params
        _range_check(ctx, p.sigma_min, p.sigma_max)
        return _sigmas_out(schedules.polyexponential(p.steps, p.sigma_min, p.sigma_max, p.rho))


@block("sd.sigmas_turbo", version="1.0.0")
class SDTurboScheduler(Block):
    """SD-Turbo's few-step schedule: timesteps 999, 899, ... (ComfyUI's SDTurboScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(ModelSamplingParams):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        steps: int = Field(1, ge=1, le=10, description="steps (1 to 10)")
        denoise: float = Field(1.0, ge=0.0, le=1.0, description="below 1: start at a lower timestep")

    def run(self, ctx: Context) -> dict:
        p = self.params
        ms = model_sampling(ctx, p.model, sampling=p.model_sampling, zsnr=p.zsnr)
        return _sigmas_out(schedules.sd_turbo(ms, p.steps, p.denoise))


@block("sd.sigmas_beta", version="1.0.0")
class BetaSamplingScheduler(Block):
    """Timesteps at the quantiles of a Beta distribution (ComfyUI's BetaSamplingScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "descending sigmas ending at 0")}

    class Params(ModelSamplingParams):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        steps: int = STEPS
        alpha: float = Field(0.6, gt=0.0, le=50.0, description="Beta distribution alpha")
        beta: float = Field(0.6, gt=0.0, le=50.0, description="Beta distribution beta")

    def run(self, ctx: Context) -> dict:
        p = self.params
        ms = model_sampling(ctx, p.model, sampling=p.model_sampling, zsnr=p.zsnr)
        return _sigmas_out(schedules.beta(ms, p.steps, p.alpha, p.beta))


@block("sd.sigmas_ays", version="1.0.0")
class AlignYourStepsScheduler(Block):
    """NVIDIA's Align Your Steps schedule for a model family (ComfyUI's AlignYourStepsScheduler)."""

    outputs = {"sigmas": Out("SIGMAS", "steps + 1 descending sigmas ending at 0")}

    class Params(Params):
        model_type: Literal["SD1", "SDXL", "SVD"] = Field("SD1", description="whose noise levels")
        steps: int = Field(10, ge=1, le=1000, description="steps")
        denoise: float = Field(1.0, ge=0.0, le=1.0, description="below 1: the last round(steps * denoise)")

    def run(self, ctx: Context) -> dict:
        p = self.params
        return _sigmas_out(schedules.align_your_steps(p.model_type, p.steps, p.denoise))


@block("sd.flip_sigmas", version="1.0.0")
class FlipSigmas(Block):
    """A schedule reversed, a leading 0 made 1e-4 (ComfyUI's FlipSigmas: for unsampling)."""

    inputs = {"sigmas": In("SIGMAS", "the schedule")}
    outputs = {"sigmas": Out("SIGMAS", "ascending sigmas")}

    def run(self, ctx: Context, sigmas: Any) -> dict:
        return {"sigmas": schedules.flip(_check_sigmas(sigmas, ctx.node).clone())}


@block("sd.split_sigmas", version="1.0.0")
class SplitSigmas(Block):
    """Split a schedule at a step: ``high`` runs first, ``low`` continues (ComfyUI's SplitSigmas)."""

    inputs = {"sigmas": In("SIGMAS", "the schedule to split")}
    outputs = {"high": Out("SIGMAS", "sigmas[:step + 1]"), "low": Out("SIGMAS", "sigmas[step:]")}

    class Params(Params):
        step: int = Field(0, ge=0, le=10000, description="the step where the second part starts")

    def run(self, ctx: Context, sigmas: Any) -> dict:
        high, low = schedules.split(_check_sigmas(sigmas, ctx.node), self.params.step)
        return {"high": high.clone(), "low": low.clone()}


@block("sd.split_sigmas_denoise", version="1.0.0")
class SplitSigmasDenoise(Block):
    """Split off the last ``denoise`` share of a schedule's steps (ComfyUI's SplitSigmasDenoise)."""

    inputs = {"sigmas": In("SIGMAS", "the schedule to split")}
    outputs = {"high": Out("SIGMAS", "the first steps"), "low": Out("SIGMAS", "the last denoise share")}

    class Params(Params):
        denoise: float = Field(1.0, ge=0.0, le=1.0, description="share of the steps in the second part")

    def run(self, ctx: Context, sigmas: Any) -> dict:
        high, low = schedules.split_denoise(_check_sigmas(sigmas, ctx.node), self.params.denoise)
        return {"high": high.clone(), "low": low.clone()}


@block("sd.sampler_select", version="1.0.0")
class SamplerSelect(Block):
    """A ComfyUI sampler by name, with its options (ComfyUI's KSamplerSelect and sampler nodes)."""

    outputs = {"sampler": Out("SAMPLER", "for sd.sample_custom")}

    class Params(Params):
        sampler: ComfySampler = Field("euler", description="ComfyUI sampler name")
        eta: float | None = Field(None, ge=0.0, le=100.0,
                                  description="ancestral/SDE noise amount (default 1)")
        s_noise: float | None = Field(None, ge=0.0, le=100.0, description="noise scale (default 1)")
        solver_type: Literal["midpoint", "heun"] | None = Field(None, description="dpmpp_2m_sde's solver")
        r: float | None = Field(None, ge=0.01, le=1.0, description="dpmpp_sde's midpoint (default 0.5)")
        order: int | None = Field(None, ge=1, le=10, description="lms's order (default 4)")

    def run(self, ctx: Context) -> dict:
        p = self.params
        names = ("eta", "s_noise", "solver_type", "r", "order")
        options = {k: v for k in names if (v := getattr(p, k)) is not None}
        allowed = SAMPLERS[p.sampler].options_allowed
        for key in options:
            if key not in allowed:
                raise BlockError(f"node {ctx.node!r}: sampler {p.sampler!r} takes no {key!r}", type="input",
                                 node=ctx.node, field=f"params.{key}", value=options[key])
        return {"sampler": SamplerChoice(p.sampler, options)}


@block("sd.noise", version="1.0.0")
class RandomNoise(Block):
    """The starting noise from a seed, or none (ComfyUI's RandomNoise / DisableNoise)."""

    outputs = {"noise": Out("NOISE", "for sd.sample_custom")}

    class Params(Params):
        seed: int | None = Field(None, ge=0, le=MAX_SEED, description="noise seed; null: from the node")
        add: bool = Field(True, description="off: no starting noise (the latent is already noisy)")

    def run(self, ctx: Context) -> dict:
        p = self.params
        return {"noise": NoiseSource(ctx.seed if p.seed is None else p.seed, p.add)}


@block("sd.guider", version="1.0.0")
class CFGGuider(Block):
    """A model guided by a conditioning at a cfg scale (ComfyUI's CFGGuider; cfg 1: BasicGuider)."""

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (its negative is used when cfg != 1)")}
    outputs = {"guider": Out("GUIDER", "for sd.sample_custom")}

    class Params(ModelSamplingParams):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        cfg: float = Field(8.0, ge=0.0, le=100.0, description="classifier-free guidance scale")

    def run(self, ctx: Context, cond: Any) -> dict:
        if not isinstance(cond, dict) or "prompt_embeds" not in cond:
            raise BlockError(f"node {ctx.node!r}: inputs.cond is not a conditioning from sd.encode_prompt",
                             type="input", node=ctx.node, field="inputs.cond")
        p = self.params
        return {"guider": Guider(p.model, cond, float(p.cfg), p.model_sampling, p.zsnr)}


def _typed(value: Any, cls: type, port: str, node: str) -> Any:
    if not isinstance(value, cls):
        raise BlockError(f"node {node!r}: inputs.{port} is not a {port.upper()} (got {type(value).__name__})",
                         type="input", node=node, field=f"inputs.{port}")
    return value


@block("sd.sample_custom", version="1.0.0")
class SampleCustom(Block):
    """Sample a latent with a guider, a sampler, sigmas and noise (ComfyUI's SamplerCustomAdvanced).

    ``denoised`` is the last step's prediction of the clean latent (``denoised_output``).
    """

    inputs = {"noise": In("NOISE", "from sd.noise"), "guider": In("GUIDER", "from sd.guider"),
              "sampler": In("SAMPLER", "from sd.sampler_select"), "sigmas": In("SIGMAS", "the schedule"),
              "latent": In("LATENT", "an empty latent (size) or a latent to denoise"),
              "mask": In("MASK", "noise mask: 1 where to denoise", optional=True)}
    outputs = {"latent": Out("LATENT", "the sampled latent"),
               "denoised": Out("LATENT", "the last step's denoised prediction")}
    resources = Resources(device="gpu", memory_mb=4096, batch=True)

    class Params(Params):
        batch_index: BatchIndex = Field(None, max_length=4096,
                                              description="each latent's index in the batch its noise is "
                                                          "drawn for; null: 0, 1, 2, ...")

    def run(self, ctx: Context, noise: Any, guider: Any, sampler: Any, sigmas: Any, latent: Any,
            mask: Any = None) -> dict:
        node = ctx.node
        noise = _typed(noise, NoiseSource, "noise", node)
        guider = _typed(guider, Guider, "guider", node)
        sampler = _typed(sampler, SamplerChoice, "sampler", node)
        sigmas = _check_sigmas(sigmas, node)
        out, denoised = native_sample(ctx, model=guider.model, cond=guider.cond, cfg=guider.cfg,
                                      sampler=sampler.name, sigmas=sigmas, latent=latent, seed=noise.seed,
                                      add_noise=noise.add, batch_index=self.params.batch_index, mask=mask,
                                      options=dict(sampler.options), sampling=guider.sampling,
                                      zsnr=guider.zsnr, guide=getattr(guider, "wrap", None))  # sd.dual_guider
        return {"latent": out, "denoised": denoised}


BLOCKS = [BasicScheduler, KarrasScheduler, ExponentialScheduler, PolyexponentialScheduler, SDTurboScheduler,
          BetaSamplingScheduler, AlignYourStepsScheduler, FlipSigmas, SplitSigmas, SplitSigmasDenoise,
          SamplerSelect, RandomNoise, CFGGuider,
          SampleCustom]
