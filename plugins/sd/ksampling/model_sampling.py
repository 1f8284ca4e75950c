"""A discrete-time model's noise levels, as ComfyUI's ``ModelSamplingDiscrete`` keeps them.

ComfyUI samples in *sigma* space (k-diffusion's "variance exploding" form): a latent at
noise level ``sigma`` is ``x0 + sigma * noise``. A discrete model (SD 1.x/2.x, SDXL) was
trained on timesteps ``0..N-1`` with ``alphas_cumprod``; its sigmas are
``sqrt((1 - alphas_cumprod) / alphas_cumprod)`` (betas built in float64, kept in float32).
A sigma goes to the UNet as the *nearest* training timestep (``timestep``), a timestep
back to a sigma by interpolating ``log(sigma)`` (``sigma``), exactly as there.

The betas come from the model's diffusers scheduler config (``beta_schedule``,
``beta_start``, ``beta_end``, ``num_train_timesteps``, ``trained_betas``,
``prediction_type``, ``rescale_betas_zero_snr``); diffusers' ``scaled_linear`` is
ComfyUI's ``linear``.

>>> ms = ModelSampling.from_config({"beta_schedule": "scaled_linear", "beta_start": 0.00085,
...                                 "beta_end": 0.012, "num_train_timesteps": 1000})
>>> round(float(ms.sigma_max), 4), round(float(ms.sigma_min), 4)
(14.6146, 0.0292)
>>> int(ms.timestep(ms.sigma_max)), round(float(ms.sigma(ms.timestep(ms.sigma_max))), 4)
(999, 14.6146)

A *continuous* EDM model (ComfyUI's ``ModelSamplingContinuousEDM``: CosXL, Playground v2.5) has
1000 sigmas log-spaced between ``sigma_min`` and ``sigma_max``; its timestep is
``0.25 * log(sigma)``. It comes from a diffusers ``EDM*Scheduler`` config (``sigma_min``,
``sigma_max``, ``sigma_data``, ``prediction_type``: diffusers' EDM ``epsilon`` is ComfyUI's
``EDM`` output scaling, ``v_prediction`` its ``V_PREDICTION``), or from ComfyUI's node (a model
reference's ``sampling``, see ``orchestrator.models.ref.SamplingRef``: the config then names
ComfyUI's choice in ``comfyui_sampling``, whose ``eps`` is plain noise prediction on those sigmas).

>>> edm = ModelSampling.from_config({"_class_name": "EDMEulerScheduler", "sigma_min": 0.002,
...                                  "sigma_max": 120.0, "sigma_data": 1.0,
...                                  "prediction_type": "v_prediction"})
>>> edm.continuous, edm.prediction, round(float(edm.sigma_max), 3)
(True, 'v_prediction', 120.0)
>>> round(float(edm.timestep(edm.sigma_max)), 4)
1.1969
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PREDICTIONS = ("epsilon", "v_prediction", "sample", "lcm", "edm")
# ComfyUI's ModelSamplingDiscrete ``sampling`` names -> ours
OVERRIDES = {"eps": "epsilon", "v_prediction": "v_prediction", "x0": "sample", "lcm": "lcm"}
LCM_TIMESTEPS = 50  # ModelSamplingDiscreteDistilled.original_timesteps
# ComfyUI's ModelSamplingContinuousEDM ``sampling`` -> our prediction
CONTINUOUS_EDM = {"v_prediction": "v_prediction", "edm": "edm", "eps": "epsilon"}
EDM_SIGMA_STEPS = 1000



class UnsupportedSchedule(ValueError):
    """The model's scheduler config asks for something this sampler family does not know."""


@dataclass(frozen=True, eq=False)
class ModelSampling:
    """``sigmas`` (float32, ascending, one per training timestep), the prediction type.

    ``skip_steps`` > 1 is ComfyUI's ``ModelSamplingDiscreteDistilled`` (LCM): one sigma every
    ``skip_steps`` training timesteps, timestep ``i * skip_steps + skip_steps - 1``.
    """

    sigmas: Any
    log_sigmas: Any
    prediction: str = "epsilon"
    sigma_data: float = 1.0
    skip_steps: int = 1
    continuous: bool = False  # ModelSamplingContinuousEDM: timestep = 0.25 * log(sigma)

    @classmethod
    def from_config(cls, config: dict[str, Any], sampling: str | None = None,
                    zsnr: bool | None = None) -> ModelSampling:
        """From a diffusers scheduler config (the model's ``scheduler/scheduler_config.json``).

        ``sampling`` and ``zsnr`` override it as ComfyUI's ``ModelSamplingDiscrete`` node does
        (``eps``, ``v_prediction``, ``lcm``, ``x0``; zero terminal SNR).
        """
        import torch

        if str(config.get("_class_name", "")).startswith("EDM"):
            if sampling is None:
                return cls._continuous_edm(config)
            # a ModelSamplingDiscrete after the EDM node replaces it: the model's own discrete schedule
            config = dict(config.get("discrete") or {})
        prediction = str(config.get("prediction_type", "epsilon"))
        if sampling is not None:
            if sampling not in OVERRIDES:
                raise UnsupportedSchedule(f"sampling {sampling!r} is not one of {', '.join(OVERRIDES)}")
            prediction = OVERRIDES[sampling]
        if prediction not in PREDICTIONS:
            raise UnsupportedSchedule(f"prediction_type {prediction!r} is not one of "
                                      f"{', '.join(PREDICTIONS)}")
        sigmas = _sigmas_of_betas(_betas(config))
        if config.get("rescale_betas_zero_snr") if zsnr is None else zsnr:
            sigmas = _rescale_zero_terminal_snr(sigmas)
        sigmas = sigmas.float()
        skip = 1
        if prediction == "lcm":
            n = len(sigmas)
            skip = n // LCM_TIMESTEPS
            distilled = torch.zeros(LCM_TIMESTEPS, dtype=torch.float32)
            for x in range(LCM_TIMESTEPS):
                distilled[LCM_TIMESTEPS - 1 - x] = sigmas[n - 1 - x * skip]
            sigmas = distilled
        return cls(sigmas, sigmas.log().float(), prediction, skip_steps=skip)

    @classmethod
    def _continuous_edm(cls, config: dict[str, Any]) -> ModelSampling:
        import torch

        comfy = config.get("comfyui_sampling")
        prediction = str(config.get("prediction_type", "epsilon"))
        if comfy is not None:
            if comfy not in CONTINUOUS_EDM:
                raise UnsupportedSchedule(f"continuous EDM sampling {comfy!r} is not one of "
                                          f"{', '.join(CONTINUOUS_EDM)}")
            ours = CONTINUOUS_EDM[str(comfy)]
        elif prediction in ("epsilon", "v_prediction"):
            ours = "edm" if prediction == "epsilon" else "v_prediction"  # diffusers' EDM preconditioning
        else:
            raise UnsupportedSchedule(f"EDM prediction_type {prediction!r} is not epsilon or v_prediction")
        sigma_min, sigma_max = float(config.get("sigma_min", 0.002)), float(config.get("sigma_max", 80.0))
        if not 0 < sigma_min < sigma_max:
            raise UnsupportedSchedule(f"EDM needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        sigmas = torch.linspace(math.log(sigma_min), math.log(sigma_max), EDM_SIGMA_STEPS).exp()
        sigma_data = float(config.get("sigma_data", 0.5))
        return cls(sigmas, sigmas.log(), ours, sigma_data=sigma_data, continuous=True)

    @property
    def sigma_min(self) -> Any:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Any:
        return self.sigmas[-1]

    def timestep(self, sigma: Any) -> Any:
        """The training timestep nearest to ``sigma`` in log space (a long tensor of its shape);
        continuous EDM: ``0.25 * log(sigma)``."""
        if self.continuous:
            return 0.25 * sigma.log()
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        index = dists.abs().argmin(dim=0).view(sigma.shape)
        if self.skip_steps > 1:
            index = index * self.skip_steps + (self.skip_steps - 1)
        return index.to(sigma.device)

    def sigma(self, timestep: Any) -> Any:
        """The sigma at a (fractional) timestep: log-sigma interpolated between its neighbours."""
        import torch

        if self.continuous:
            return (timestep.float() / 0.25).exp()
        t = timestep.float().to(self.log_sigmas.device)
        if self.skip_steps > 1:
            t = (t - (self.skip_steps - 1)) / self.skip_steps
        t = torch.clamp(t, min=0, max=len(self.sigmas) - 1)
        low, high = t.floor().long(), t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        """Sampling progress (0 = start, 1 = end) as a sigma, for step ranges given as fractions."""
        import torch

        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        if self.continuous:
            log_min = math.log(float(self.sigma_min))
            return math.exp((math.log(float(self.sigma_max)) - log_min) * (1.0 - percent) + log_min)
        return float(self.sigma(torch.tensor((1.0 - percent) * 999.0)).item())

    # -- the model's input and output at a noise level --------------------------------------

    def calculate_input(self, sigma: Any, x: Any) -> Any:
        """What the UNet sees: ``x / sqrt(sigma**2 + sigma_data**2)``."""
        sigma = sigma.view(sigma.shape[:1] + (1,) * (x.ndim - 1))
        return x / (sigma ** 2 + self.sigma_data ** 2) ** 0.5

    def calculate_denoised(self, sigma: Any, model_output: Any, x: Any) -> Any:
        """The denoised latent from the UNet's output (noise, velocity or the sample itself)."""
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        if self.prediction == "v_prediction":
            sd2 = self.sigma_data ** 2
            scale = sigma * self.sigma_data / (sigma ** 2 + sd2) ** 0.5
            return x * sd2 / (sigma ** 2 + sd2) - model_output * scale
        if self.prediction == "edm":  # ComfyUI's EDM: the v_prediction form with the output's sign flipped
            sd2 = self.sigma_data ** 2
            scale = sigma * self.sigma_data / (sigma ** 2 + sd2) ** 0.5
            return x * sd2 / (sigma ** 2 + sd2) + model_output * scale
        if self.prediction == "sample":
            return model_output
        if self.prediction == "lcm":  # LCM's boundary condition on the eps prediction (sigma_data 0.5)
            timestep = self.timestep(sigma.reshape(-1)).view(sigma.shape)
            x0 = x - model_output * sigma
            scaled = timestep * 10.0
            c_skip = 0.25 / (scaled ** 2 + 0.25)
            c_out = scaled / (scaled ** 2 + 0.25) ** 0.5
            return c_out * x0 + c_skip * x
        return x - model_output * sigma

    def noise_scaling(self, sigma: Any, noise: Any, latent: Any, max_denoise: bool = False) -> Any:
        """The starting latent: ``latent + noise * sigma`` (``* sqrt(1 + sigma**2)`` from pure noise)."""
        import torch

        sigma = torch.as_tensor(sigma, dtype=noise.dtype, device=noise.device)
        scaled = noise * torch.sqrt(1.0 + sigma ** 2.0) if max_denoise else noise * sigma
        return scaled + latent

    def is_max_denoise(self, sigmas: Any) -> bool:
        """Whether a schedule starts at (or above) the model's largest sigma: pure noise."""
        max_sigma, sigma = float(self.sigma_max), float(sigmas[0])
        return math.isclose(max_sigma, sigma, rel_tol=1e-05) or sigma > max_sigma


def _betas(config: dict[str, Any]) -> Any:
    import torch

    n = int(config.get("num_train_timesteps", 1000))
    if config.get("trained_betas") is not None:
        return torch.tensor(list(config["trained_betas"]), dtype=torch.float64)
    schedule = str(config.get("beta_schedule", "scaled_linear"))
    start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
    if schedule == "scaled_linear":  # ComfyUI's "linear"
        return torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2
    if schedule == "linear":  # ComfyUI's "sqrt_linear"
        return torch.linspace(start, end, n, dtype=torch.float64)
    if schedule == "squaredcos_cap_v2":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)],
                            dtype=torch.float64)
    raise UnsupportedSchedule(f"beta_schedule {schedule!r} is not supported (scaled_linear, linear, "
                              f"squaredcos_cap_v2 or trained_betas)")


def _sigmas_of_betas(betas: Any) -> Any:
    import torch

    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


def _rescale_zero_terminal_snr(sigmas: Any) -> Any:
    """Zero terminal SNR (arXiv:2305.08891), in sigma form; the last sigma stays finite."""
    alphas_cumprod = 1 / ((sigmas * sigmas) + 1)
    root = alphas_cumprod.sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    alphas_bar = root ** 2
    alphas_bar[-1] = 4.8973451890853435e-08
    return ((1 - alphas_bar) / alphas_bar) ** 0.5
