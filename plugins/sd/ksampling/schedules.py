"""ComfyUI's sigma schedules: which noise levels a run of ``steps`` steps visits.

Every schedule returns a float32 tensor of ``steps + 1`` descending sigmas ending in 0
(``beta`` may merge repeated timesteps and return fewer). :func:`sampler_sigmas` is
what ComfyUI's ``KSampler`` does on top: one extra step, dropped again, for the samplers
that evaluate the model between two sigmas (``dpm_2``, ``dpm_2_ancestral``, ``uni_pc``,
``uni_pc_bh2``), and a schedule lengthened to ``int(steps / denoise)`` of which the last
``steps`` are kept below ``denoise`` 1. :func:`step_range` is ``KSamplerAdvanced``'s start
and end step.

>>> from plugins.sd.ksampling.model_sampling import ModelSampling
>>> ms = ModelSampling.from_config({})
>>> [round(float(s), 3) for s in calculate_sigmas(ms, "karras", 3)]
[14.615, 1.274, 0.029, 0.0]
>>> len(sampler_sigmas(ms, "normal", "euler", 10, denoise=0.5))
11
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugins.sd.ksampling.model_sampling import ModelSampling

SCHEDULERS = ("simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal")
# ComfyUI's KSampler adds a step and drops the next-to-last sigma for these
DISCARD_PENULTIMATE_SIGMA = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


def _append_zero(x: Any) -> Any:
    import torch

    return torch.cat([x, x.new_zeros([1])])


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Any:
    """Karras et al. (2022), eq. 5: evenly spaced in ``sigma ** (1 / rho)``."""
    import torch

    ramp = torch.linspace(0, 1, n)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential(n: int, sigma_min: float, sigma_max: float) -> Any:
    """Evenly spaced in ``log(sigma)``."""
    import torch

    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> Any:
    """A polynomial in ``log(sigma)``."""
    import torch

    ramp = torch.linspace(1, 0, n) ** rho
    return _append_zero(torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)))


def kl_optimal(n: int, sigma_min: float, sigma_max: float) -> Any:
    """Evenly spaced in ``atan(sigma)`` (arXiv:2407.12173's KL-optimal schedule)."""
    import torch

    idx = torch.arange(n, dtype=torch.float).div_(max(n - 1, 1))
    sigmas = idx.new_zeros(n + 1)
    sigmas[:-1] = (idx * math.atan(sigma_min) + (1 - idx) * math.atan(sigma_max)).tan_()
    return sigmas


def simple(ms: ModelSampling, steps: int) -> Any:
    """Every ``1000 / steps``-th training sigma from the top."""
    import torch

    ss = len(ms.sigmas) / steps
    return torch.FloatTensor([float(ms.sigmas[-(1 + int(x * ss))]) for x in range(steps)] + [0.0])


def ddim_uniform(ms: ModelSampling, steps: int) -> Any:
    """Every ``1000 // steps``-th training sigma from timestep 1 up, as DDIM's uniform spacing."""
    import torch

    x = 1
    if math.isclose(float(ms.sigmas[x]), 0, abs_tol=0.00001):
        steps += 1
        sigs: list[float] = []
    else:
        sigs = [0.0]
    ss = max(len(ms.sigmas) // steps, 1)
    while x < len(ms.sigmas):
        sigs.append(float(ms.sigmas[x]))
        x += ss
    return torch.FloatTensor(sigs[::-1])


def normal(ms: ModelSampling, steps: int, sgm: bool = False) -> Any:
    """Timesteps evenly spaced from the largest to the smallest (``sgm``: the end left out)."""
    import torch

    start, end = ms.timestep(ms.sigma_max), ms.timestep(ms.sigma_min)
    append_zero = True
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigs = [float(ms.sigma(ts)) for ts in timesteps]
    return torch.FloatTensor([*sigs, 0.0] if append_zero else sigs)


def beta(ms: ModelSampling, steps: int, alpha: float = 0.6, beta: float = 0.6) -> Any:
    """Timesteps at the quantiles of a Beta(alpha, beta) distribution (arXiv:2407.12173)."""
    import numpy
    import scipy.stats
    import torch

    total = len(ms.sigmas) - 1
    quantiles = 1 - numpy.linspace(0, 1, steps, endpoint=False)
    ts = numpy.rint(scipy.stats.beta.ppf(quantiles, alpha, beta) * total)
    sigs, last = [], -1.0
    for t in ts:
        if t != last:
            sigs.append(float(ms.sigmas[int(t)]))
        last = t
    return torch.FloatTensor([*sigs, 0.0])


def linear_quadratic(ms: ModelSampling, steps: int, threshold_noise: float = 0.025,
                     linear_steps: int | None = None) -> Any:
    """Linear then quadratic in sigma / sigma_max (Mochi's schedule)."""
    import torch

    if steps == 1:
        schedule = [1.0, 0.0]
    else:
        linear_steps = steps // 2 if linear_steps is None else linear_steps
        lin = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quad_coef = diff / (linear_steps * quadratic_steps ** 2)
        lin_coef = threshold_noise / linear_steps - 2 * diff / (quadratic_steps ** 2)
        const = quad_coef * (linear_steps ** 2)
        quad = [quad_coef * (i ** 2) + lin_coef * i + const for i in range(linear_steps, steps)]
        schedule = [1.0 - x for x in [*lin, *quad, 1.0]]
    return torch.FloatTensor(schedule) * ms.sigma_max.cpu()


# name -> (function, takes the model sampling (True) or n / sigma_min / sigma_max (False))
HANDLERS: dict[str, tuple[Callable[..., Any], bool]] = {
    "simple": (simple, True),
    "sgm_uniform": (lambda ms, steps: normal(ms, steps, sgm=True), True),
    "karras": (karras, False),
    "exponential": (exponential, False),
    "ddim_uniform": (ddim_uniform, True),
    "beta": (beta, True),
    "normal": (normal, True),
    "linear_quadratic": (linear_quadratic, True),
    "kl_optimal": (kl_optimal, False),
}


def calculate_sigmas(ms: ModelSampling, scheduler: str, steps: int) -> Any:
    """The ``scheduler`` schedule of ``steps`` steps for this model (ComfyUI's ``calculate_sigmas``)."""
    try:
        fn, uses_model = HANDLERS[scheduler]
    except KeyError:
        raise ValueError(f"unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULERS)}") from None
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if uses_model:
        return fn(ms, steps)
    return fn(n=steps, sigma_min=float(ms.sigma_min), sigma_max=float(ms.sigma_max))


def sampler_sigmas(ms: ModelSampling, scheduler: str, sampler: str, steps: int, denoise: float = 1.0) -> Any:
    """The sigmas ComfyUI's ``KSampler`` runs: ``steps`` steps, the last ``denoise`` share of a
    longer schedule below 1 (an empty tensor at ``denoise`` 0)."""
    import torch

    def with_sampler(n: int) -> Any:
        if sampler in DISCARD_PENULTIMATE_SIGMA:
            sigmas = calculate_sigmas(ms, scheduler, n + 1)
            return torch.cat([sigmas[:-2], sigmas[-1:]])
        return calculate_sigmas(ms, scheduler, n)

    if denoise > 0.9999:
        return with_sampler(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return with_sampler(int(steps / denoise))[-(steps + 1):]


def basic_scheduler(ms: ModelSampling, scheduler: str, steps: int, denoise: float = 1.0) -> Any:
    """ComfyUI's ``BasicScheduler`` node: like :func:`sampler_sigmas` without the sampler's extra step."""
    import torch

    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.FloatTensor([])
        total = int(steps / denoise)
    return calculate_sigmas(ms, scheduler, total).cpu()[-(steps + 1):]


def sd_turbo(ms: ModelSampling, steps: int, denoise: float = 1.0) -> Any:
    """ComfyUI's ``SDTurboScheduler``: timesteps 999, 899, ... 99 (from ``10 - int(10 * denoise)``)."""
    import torch

    start = 10 - int(10 * denoise)
    timesteps = torch.flip(torch.arange(1, 11) * 100 - 1, (0,))[start:start + steps]
    return _append_zero(ms.sigma(timesteps))


# Align Your Steps (Sabour et al. 2024, arXiv:2404.14507): NVIDIA's 10-step noise levels per model family
AYS_NOISE_LEVELS: dict[str, tuple[float, ...]] = {
    "SD1": (14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
            0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582),
    "SDXL": (14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
             0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582),
    "SVD": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002),
}


def align_your_steps(model_type: str, steps: int, denoise: float = 1.0) -> Any:
    """ComfyUI's ``AlignYourStepsScheduler``: the family's levels, log-linearly interpolated to
    ``steps + 1`` points, the last ``round(steps * denoise)`` steps kept, the last sigma 0."""
    import numpy as np
    import torch

    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.FloatTensor([])
        total = round(steps * denoise)
    sigmas: Any = list(AYS_NOISE_LEVELS[model_type])
    if steps + 1 != len(sigmas):
        xs = np.linspace(0, 1, len(sigmas))
        ys = np.log(sigmas[::-1])
        sigmas = np.exp(np.interp(np.linspace(0, 1, steps + 1), xs, ys))[::-1].copy()
    sigmas = sigmas[-(total + 1):]
    sigmas[-1] = 0
    return torch.FloatTensor(sigmas)


def flip(sigmas: Any) -> Any:
    """ComfyUI's ``FlipSigmas``: the schedule reversed, a leading 0 replaced by 1e-4."""
    sigmas = sigmas.flip(0)
    if len(sigmas) and sigmas[0] == 0:
        sigmas[0] = 0.0001
    return sigmas


def step_range(sigmas: Any, start: int | None = None, end: int | None = None,
               force_full_denoise: bool = False) -> Any:
    """``KSamplerAdvanced``'s window on a schedule: sigmas ``start..end``; with ``force_full_denoise``
    a window that stops early still ends at sigma 0. ``None`` when ``start`` leaves no step."""
    if end is not None and end < len(sigmas) - 1:
        sigmas = sigmas[:end + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start is not None:
        if start < len(sigmas) - 1:
            return sigmas[start:]
        return None
    return sigmas


def split(sigmas: Any, step: int) -> tuple[Any, Any]:
    """ComfyUI's ``SplitSigmas``: ``sigmas[:step + 1]`` and ``sigmas[step:]``."""
    return sigmas[:step + 1], sigmas[step:]


def split_denoise(sigmas: Any, denoise: float) -> tuple[Any, Any]:
    """ComfyUI's ``SplitSigmasDenoise``: the last ``round(steps * denoise)`` steps apart."""
    steps = max(sigmas.shape[-1] - 1, 0)
    total = round(steps * denoise)
    return sigmas[:-total], sigmas[-(total + 1):]
