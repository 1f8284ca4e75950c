"""ComfyUI's sampler names and what each one runs.

``_gpu`` variants differ from their plain forms only in where the Brownian tree of their
noise lives (on the latent's device instead of the CPU); ``ddim`` is ComfyUI's Euler
(with its own inpainting noise); ``_cfg_pp`` variants need the unguided prediction too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from plugins.sd.ksampling import dpm_solver, samplers, uni_pc


@dataclass(frozen=True)
class SamplerInfo:
    """How to run one ComfyUI sampler: its function, fixed options, and what it needs."""

    function: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)
    cfg_pp: bool = False  # needs the unguided prediction (CFG++): the negative runs even at cfg 1
    random_inpaint_noise: bool = False  # ddim: the inpainting noise comes from seed + 1
    options_allowed: frozenset[str] = frozenset()  # what a SAMPLER node may set (eta, s_noise, ...)


_ANCESTRAL = frozenset({"eta", "s_noise"})

SAMPLERS: dict[str, SamplerInfo] = {
    "euler": SamplerInfo(samplers.sample_euler),
    "euler_cfg_pp": SamplerInfo(samplers.sample_euler_cfg_pp, cfg_pp=True),
    "euler_ancestral": SamplerInfo(samplers.sample_euler_ancestral, options_allowed=_ANCESTRAL),
    "euler_ancestral_cfg_pp": SamplerInfo(samplers.sample_euler_ancestral_cfg_pp, cfg_pp=True,
                                          options_allowed=_ANCESTRAL),
    "heun": SamplerInfo(samplers.sample_heun),
    "heunpp2": SamplerInfo(samplers.sample_heunpp2),
    "dpm_2": SamplerInfo(samplers.sample_dpm_2),
    "dpm_2_ancestral": SamplerInfo(samplers.sample_dpm_2_ancestral, options_allowed=_ANCESTRAL),
    "lms": SamplerInfo(samplers.sample_lms, options_allowed=frozenset({"order"})),
    "dpm_fast": SamplerInfo(dpm_solver.sample_dpm_fast),
    "dpm_adaptive": SamplerInfo(dpm_solver.sample_dpm_adaptive),
    "dpmpp_2s_ancestral": SamplerInfo(samplers.sample_dpmpp_2s_ancestral, options_allowed=_ANCESTRAL),
    "dpmpp_2s_ancestral_cfg_pp": SamplerInfo(samplers.sample_dpmpp_2s_ancestral_cfg_pp, cfg_pp=True,
                                             options_allowed=_ANCESTRAL),
    "dpmpp_sde": SamplerInfo(samplers.sample_dpmpp_sde, options_allowed=_ANCESTRAL | {"r"}),
    "dpmpp_sde_gpu": SamplerInfo(samplers.sample_dpmpp_sde, {"gpu": True},
                                 options_allowed=_ANCESTRAL | {"r"}),
    "dpmpp_2m": SamplerInfo(samplers.sample_dpmpp_2m),
    "dpmpp_2m_cfg_pp": SamplerInfo(samplers.sample_dpmpp_2m_cfg_pp, cfg_pp=True),
    "dpmpp_2m_sde": SamplerInfo(samplers.sample_dpmpp_2m_sde, options_allowed=_ANCESTRAL | {"solver_type"}),
    "dpmpp_2m_sde_gpu": SamplerInfo(samplers.sample_dpmpp_2m_sde, {"gpu": True},
                                    options_allowed=_ANCESTRAL | {"solver_type"}),
    "dpmpp_2m_sde_heun": SamplerInfo(samplers.sample_dpmpp_2m_sde, {"solver_type": "heun"},
                                     options_allowed=_ANCESTRAL),
    "dpmpp_2m_sde_heun_gpu": SamplerInfo(samplers.sample_dpmpp_2m_sde, {"solver_type": "heun", "gpu": True},
                                         options_allowed=_ANCESTRAL),
    "dpmpp_3m_sde": SamplerInfo(samplers.sample_dpmpp_3m_sde, options_allowed=_ANCESTRAL),
    "dpmpp_3m_sde_gpu": SamplerInfo(samplers.sample_dpmpp_3m_sde, {"gpu": True}, options_allowed=_ANCESTRAL),
    "ddpm": SamplerInfo(samplers.sample_ddpm),
    "lcm": SamplerInfo(samplers.sample_lcm),
    "ddim": SamplerInfo(samplers.sample_euler, random_inpaint_noise=True),
    "uni_pc": SamplerInfo(uni_pc.sample_unipc),
    "uni_pc_bh2": SamplerInfo(partial(uni_pc.sample_unipc, variant="bh2")),
}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
