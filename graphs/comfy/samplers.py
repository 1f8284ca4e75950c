"""ComfyUI sampler and scheduler names, and the diffusers-equivalent samplers of ``sd.denoise``.

ComfyUI's KSampler imports onto ``sd.ksampler``, which runs every ComfyUI sampler and
scheduler exactly (``plugins/sd/comfy_sampling.py``); this table is the fallback for a catalog
without it, and what an ``sd.denoise`` node exports as.

ComfyUI names a sampler (``sampler_name``: ``euler``, ``dpmpp_2m``, ...) and, apart, a
noise schedule (``scheduler``: ``normal``, ``karras``, ...). Ours name diffusers
schedulers, with the Karras schedule as a variant (``dpmpp_2m_karras``). Each ComfyUI
sampler maps to a list of ours, the first one exact and the rest approximations; the
first one the catalog offers wins.

>>> map_sampler("dpmpp_2m", "karras")
('dpmpp_2m_karras', None)
>>> map_sampler("dpmpp_2m_sde", "karras")[0]
'dpmpp_2m_karras'
>>> map_sampler("euler_ancestral", "normal")
('euler_a', None)
"""

from __future__ import annotations

from collections.abc import Collection

# what plugins/sd offers (sd.denoise's ``sampler``); the catalog's own list wins when given
OUR_SAMPLERS: tuple[str, ...] = ("default", "ddim", "ddpm", "pndm", "euler", "euler_a", "heun", "lms",
                                 "dpmpp_2m", "dpmpp_2m_karras", "unipc", "lcm")

# ComfyUI sampler -> (exact equivalent or None, approximations in order of preference)
SAMPLERS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "euler": ("euler", ()),
    "euler_cfg_pp": (None, ("euler",)),
    "euler_ancestral": ("euler_a", ()),
    "euler_ancestral_cfg_pp": (None, ("euler_a",)),
    "heun": ("heun", ()),
    "heunpp2": (None, ("heun",)),
    "dpm_2": ("dpm_2", ("heun",)),
    "dpm_2_ancestral": ("dpm_2_a", ("euler_a",)),
    "lms": ("lms", ()),
    "dpm_fast": (None, ("dpmpp_2m",)),
    "dpm_adaptive": (None, ("dpmpp_2m",)),
    "dpmpp_2s_ancestral": (None, ("euler_a",)),
    "dpmpp_2s_ancestral_cfg_pp": (None, ("euler_a",)),
    "dpmpp_sde": ("dpmpp_sde", ("dpmpp_2m",)),
    "dpmpp_sde_gpu": ("dpmpp_sde", ("dpmpp_2m",)),
    "dpmpp_2m": ("dpmpp_2m", ()),
    "dpmpp_2m_cfg_pp": (None, ("dpmpp_2m",)),
    "dpmpp_2m_sde": ("dpmpp_2m_sde", ("dpmpp_2m",)),
    "dpmpp_2m_sde_gpu": ("dpmpp_2m_sde", ("dpmpp_2m",)),
    "dpmpp_3m_sde": (None, ("dpmpp_2m",)),
    "dpmpp_3m_sde_gpu": (None, ("dpmpp_2m",)),
    "ddpm": ("ddpm", ()),
    "lcm": ("lcm", ()),
    "ipndm": (None, ("pndm", "dpmpp_2m")),
    "ipndm_v": (None, ("pndm", "dpmpp_2m")),
    "deis": ("deis", ("unipc",)),
    "res_multistep": (None, ("dpmpp_2m",)),
    "ddim": ("ddim", ()),
    "uni_pc": ("unipc", ()),
    "uni_pc_bh2": ("unipc", ()),
}

# ComfyUI schedulers that our samplers follow closely enough without a variant
PLAIN_SCHEDULERS = frozenset({"normal", "simple", "sgm_uniform", "ddim_uniform"})

# ours -> ComfyUI (sampler_name, scheduler), for exporting
EXPORT_SAMPLERS: dict[str, tuple[str, str]] = {
    "default": ("euler", "normal"), "ddim": ("ddim", "ddim_uniform"), "ddpm": ("ddpm", "normal"),
    "pndm": ("ipndm", "normal"), "euler": ("euler", "normal"), "euler_a": ("euler_ancestral", "normal"),
    "heun": ("heun", "normal"), "lms": ("lms", "normal"), "dpmpp_2m": ("dpmpp_2m", "normal"),
    "dpmpp_2m_karras": ("dpmpp_2m", "karras"), "unipc": ("uni_pc", "normal"), "lcm": ("lcm", "sgm_uniform"),
}


def map_sampler(sampler: str, scheduler: str,
                available: Collection[str] = OUR_SAMPLERS) -> tuple[str, str | None]:
    """``(our sampler, None)`` when exact, else ``(nearest, why it is not exact)``."""
    exact, approximations = SAMPLERS.get(sampler, (None, ()))
    candidates = ([exact] if exact else []) + list(approximations)
    if scheduler not in PLAIN_SCHEDULERS:
        variant = [f"{c}_{scheduler}" for c in candidates]
        for i, name in enumerate(variant):
            if name in available:
                return name, (None if i == 0 and exact else
                              f"ComfyUI sampler {sampler!r} has no exact equivalent; using {name!r}")
    for i, name in enumerate(candidates):
        if name in available:
            reasons = []
            if not (i == 0 and exact):
                reasons.append(f"ComfyUI sampler {sampler!r} has no exact equivalent; using {name!r}")
            if scheduler not in PLAIN_SCHEDULERS:
                reasons.append(f"the {scheduler!r} schedule is not available for {name!r}; it uses the "
                               "model's own timestep spacing")
            return name, "; ".join(reasons) or None
    why = (f"unknown ComfyUI sampler {sampler!r}" if sampler not in SAMPLERS
           else f"no sampler of ours matches ComfyUI's {sampler!r}")
    fallback = "default" if "default" in available else next(iter(available), "default")
    return fallback, f"{why}; using {fallback!r}"
