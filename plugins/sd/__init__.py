"""Stable Diffusion blocks (SD 1.x/2.x and SDXL) on diffusers.

``sd.encode_prompt`` -> ``sd.empty_latent`` / ``sd.vae_encode`` -> ``sd.denoise`` / ``sd.inpaint``
-> ``sd.vae_decode``, plus ``sd.latent_upscale``. Models are named in a ``model`` param (a
registry name, or a reference with LoRAs and embeddings) and come from ``ctx.models``.
"""

from __future__ import annotations

from orchestrator import hookimpl
from plugins.sd import denoise, latent, prompt, vae

BLOCKS = [*prompt.BLOCKS, *latent.BLOCKS, *vae.BLOCKS, *denoise.BLOCKS]


@hookimpl
def register_blocks() -> list:
    return list(BLOCKS)
