"""The guided denoiser the samplers call: ``D(x, sigma)``, ComfyUI's model wrapper and CFG.

At noise level ``sigma`` the UNet sees ``x / sqrt(sigma**2 + 1)`` at the training timestep
nearest to ``sigma``; its output (noise, or velocity for v-prediction models) becomes the
denoised latent (:class:`~plugins.sd.ksampling.model_sampling.ModelSampling`). Classifier-
free guidance mixes the denoised latents of the negative and the positive prompt:
``uncond + (cond - uncond) * cfg``, as ComfyUI's ``cfg_function``; at ``cfg`` 1 the
negative pass is skipped unless a CFG++ sampler needs the unguided prediction
(``keep_uncond``), which is then kept in :attr:`Denoiser.uncond_denoised`.

What a conditioning carries beyond its prompt comes in through
:class:`plugins.sd.conditioning.StepConditioning`: an IP-Adapter's UNet and ControlNet
residuals for each call (the caller reads :attr:`Denoiser.sigma_now` for their step ranges). An
inpainting UNet (9 input channels) gets ``concat`` (the noise mask and the masked image's latent)
beside the latent, as ComfyUI's ``concat_cond``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugins.sd.common import UNetFn, UNetPrompt
    from plugins.sd.ksampling.model_sampling import ModelSampling


def needs_uncond(cfg: float, keep_uncond: bool = False) -> bool:
    """Whether the negative prompt is run: always but at ``cfg`` 1 (ComfyUI's cfg1 optimisation)."""
    return keep_uncond or not math.isclose(cfg, 1.0)


class Denoiser:
    """``denoiser(x, sigma) -> denoised``: one guided model evaluation (two prompts in one batch)."""

    def __init__(self, unet: UNetFn, ms: ModelSampling, prompt: UNetPrompt, cfg: float, *, dtype: Any,
                 do_uncond: bool, timestep_cond: Any = None,
                 unet_kwargs: Callable[[Any, Any, int, UNetPrompt], dict] | None = None,
                 before_call: Callable[[], None] | None = None, concat: Any = None) -> None:
        self.unet = unet
        self.ms = ms
        self.prompt = prompt
        self.cfg = float(cfg)
        self.dtype = dtype
        self.do_uncond = do_uncond
        self.timestep_cond = timestep_cond
        self.unet_kwargs = unet_kwargs
        self.before_call = before_call
        self.concat = concat  # an inpainting UNet's extra input channels (mask, masked latent)
        self.step = 0  # the sampler step being run
        self.sigma_now = 0.0  # the sigma of the current call (ControlNet step ranges follow it)
        self.uncond_denoised: Any = None
        self.calls = 0

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
        if self.concat is not None:
            xc = torch.cat([xc, self.concat.to(device=xc.device, dtype=xc.dtype)], dim=1)
        t = self.ms.timestep(sigma).float()
        model_in = torch.cat([xc, xc]) if self.do_uncond else xc
        t_in = torch.cat([t, t]) if self.do_uncond else t
        model_in = model_in.to(self.dtype)
        kwargs = {} if self.unet_kwargs is None else self.unet_kwargs(model_in, t_in, self.step, self.prompt)
        out = self.unet(model_in, t_in, encoder_hidden_states=self.prompt.embeds,
                        timestep_cond=self.timestep_cond, added_cond_kwargs=self.prompt.added,
                        **kwargs).float()
        if not self.do_uncond:
            return self.ms.calculate_denoised(sigma, out, x)
        out_uncond, out_cond = out.chunk(2)
        uncond = self.ms.calculate_denoised(sigma, out_uncond, x)
        cond = self.ms.calculate_denoised(sigma, out_cond, x)
        self.uncond_denoised = uncond
        return uncond + (cond - uncond) * self.cfg
