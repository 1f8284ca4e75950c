"""ComfyUI's sampling, natively: its noise, sigma schedules, model wrapper and samplers.

- :mod:`.model_sampling`: a discrete model's sigmas, sigma <-> timestep (``ModelSamplingDiscrete``)
- :mod:`.schedules`: ``normal``, ``karras``, ``exponential``, ``sgm_uniform``, ``simple``,
  ``ddim_uniform``, ``beta``, ``linear_quadratic``, ``kl_optimal``; ``KSampler``'s step
  and denoise handling, ``KSamplerAdvanced``'s step window, the custom-sampling schedules
- :mod:`.noise`: the starting noise from the seed, ancestral noise, Brownian-tree noise
- :mod:`.denoiser`: ``D(x, sigma)`` with classifier-free guidance, on our UNet call
- :mod:`.samplers`, :mod:`.dpm_solver`, :mod:`.uni_pc`: the samplers; :mod:`.catalog` their names
- :mod:`.run`: one run (noise scaling, the inpainting noise mask)

It follows ComfyUI's ``comfy/samplers.py``, ``comfy/sample.py``, ``comfy/model_sampling.py``,
``comfy/k_diffusion/sampling.py`` and ``comfy/extra_samplers/uni_pc.py`` step for step, so
a seed gives ComfyUI's latent; ``tests/test_ksampling.py`` holds each sampler and schedule
to the ``k-diffusion`` package (which ComfyUI's samplers derive from) on the same model
wrapper, sigmas and noise. Blocks: :mod:`plugins.sd.ksampler` and
:mod:`plugins.sd.custom_sampling`.
"""

from __future__ import annotations

from plugins.sd.ksampling.catalog import SAMPLER_NAMES, SAMPLERS
from plugins.sd.ksampling.schedules import SCHEDULERS

__all__ = ["SAMPLERS", "SAMPLER_NAMES", "SCHEDULERS"]
