"""One ComfyUI sampler run: noise the latent to the first sigma, sample, keep what a mask protects.

The equivalent of ComfyUI's ``KSAMPLER.sample`` with its ``KSamplerX0Inpaint``: the
starting latent is ``latent + noise * sigmas[0]`` (``* sqrt(1 + sigma**2)`` when the
schedule starts at the model's largest sigma, i.e. from pure noise); with a noise mask
(1 = denoise) the unmasked part is put back, noised to the current sigma, before every
model call, and the prediction there is the original latent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugins.sd.ksampling.catalog import SAMPLERS
from plugins.sd.ksampling.model_sampling import ModelSampling
from plugins.sd.ksampling.noise import MAX_SEED


class MaskedDenoiser:
    """The denoiser inside a noise mask: outside it the latent stays the original, re-noised."""

    def __init__(self, inner: Any, ms: ModelSampling, latent: Any, noise: Any, mask: Any) -> None:
        self.inner, self.ms, self.latent, self.noise, self.mask = inner, ms, latent, noise, mask

    @property
    def step(self) -> int:
        return getattr(self.inner, "step", 0)

    @step.setter
    def step(self, value: int) -> None:
        if hasattr(self.inner, "step"):
            self.inner.step = value

    @property
    def uncond_denoised(self) -> Any:
        return getattr(self.inner, "uncond_denoised", None)

    def __call__(self, x: Any, sigma: Any) -> Any:
        keep = 1.0 - self.mask
        sig = sigma.reshape([sigma.shape[0]] + [1] * (self.noise.ndim - 1))
        x = x * self.mask + self.ms.noise_scaling(sig, self.noise, self.latent) * keep
        return self.inner(x, sigma) * self.mask + self.latent * keep


def prepare_mask(mask: Any, shape: tuple[int, ...], device: Any) -> Any:
    """A ``[B, H, W]`` (or ``[H, W]``) mask at the latent's size, bilinear, one row per latent."""
    import torch

    mask = torch.as_tensor(mask, dtype=torch.float32)
    mask = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
    mask = torch.nn.functional.interpolate(mask, size=(shape[2], shape[3]), mode="bilinear")
    mask = torch.cat([mask] * shape[1], dim=1)
    if mask.shape[0] < shape[0]:
        mask = mask.repeat((shape[0] + mask.shape[0] - 1) // mask.shape[0], 1, 1, 1)
    return mask[:shape[0]].to(device)


def run_sampler(name: str, denoiser: Any, ms: ModelSampling, sigmas: Any, noise: Any, latent: Any, *,
                seed: int | None, callback: Callable[[int, Any, Any], None] | None = None,
                mask: Any = None, options: dict[str, Any] | None = None) -> Any:
    """Sample ``latent`` (with ``noise`` of its shape, both on the sampling device) down ``sigmas``."""
    import torch

    info = SAMPLERS[name]
    if len(sigmas) == 0:
        return latent
    model = denoiser
    if mask is not None:
        inpaint_noise = noise
        if info.random_inpaint_noise:
            gen = torch.Generator("cpu").manual_seed((int(41 if seed is None else seed) + 1) & MAX_SEED)
            inpaint_noise = torch.randn(noise.shape, generator=gen).to(noise.dtype).to(noise.device)
        model = MaskedDenoiser(denoiser, ms, latent, inpaint_noise, mask)
    x = ms.noise_scaling(sigmas[0], noise, latent, ms.is_max_denoise(sigmas))
    kwargs = {**info.options, **(options or {})}
    return info.function(model, x, sigmas, seed=seed, callback=callback, **kwargs)
