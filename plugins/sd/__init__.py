"""Stable Diffusion blocks (SD 1.x/2.x and SDXL) on diffusers.

``sd.encode_prompt`` -> ``sd.empty_latent`` / ``sd.vae_encode`` -> ``sd.denoise`` / ``sd.inpaint``
-> ``sd.vae_decode``, plus ``sd.latent_upscale`` and ``sd.img2img`` (encode, denoise and
decode in one), ``sd.ksampler`` and the custom-sampling family (ComfyUI's samplers,
natively: :mod:`plugins.sd.ksampling`). Conditioning blocks add to a prompt's conditioning
what the sampling loop applies with it: ``sd.controlnet``,
``sd.regional_prompt``, ``sd.ip_adapter``, the ``cond.*`` area/mask/strength/timestep blocks
(ComfyUI's, :mod:`plugins.sd.area`), and ``sd.cond_combine`` to merge them (see
:mod:`plugins.sd.conditioning`). Models are named in a ``model`` param (a
registry name, or a reference with LoRAs and embeddings) and come from ``ctx.models``.
"""

from __future__ import annotations

from orchestrator import hookimpl
from plugins.sd import (
    area,
    clip_vision,
    comfy_cond_nodes,
    comfy_controlnet,
    comfy_gligen,
    comfy_ip2p,
    comfy_latent_utils,
    comfy_latents,
    comfy_loaders,
    comfy_merge,
    comfy_sampling,
    comfy_unclip,
    conditioning,
    controlnet,
    custom_sampling,
    denoise,
    gligen,
    img2img,
    inpaint_encode,
    ip2p,
    ip_adapter,
    ksampler,
    latent,
    latent_batch,
    latent_math,
    latent_ops,
    latent_resize,
    latent_transform,
    prompt,
    regional,
    unclip,
    vae,
)

BLOCKS = [*area.BLOCKS, *prompt.BLOCKS, *latent.BLOCKS, *latent_resize.BLOCKS, *latent_ops.BLOCKS,
          *vae.BLOCKS, *denoise.BLOCKS,
          *conditioning.BLOCKS, *controlnet.BLOCKS, *regional.BLOCKS, *ip_adapter.BLOCKS, *img2img.BLOCKS,
          *ksampler.BLOCKS, *custom_sampling.BLOCKS, *inpaint_encode.BLOCKS,
          *latent_batch.BLOCKS, *latent_transform.BLOCKS, *latent_math.BLOCKS]
BLOCKS += [*clip_vision.BLOCKS, *unclip.BLOCKS]  # CLIP vision, unCLIP / SDXL revision
BLOCKS += ip2p.BLOCKS  # InstructPix2Pix, DualCFGGuider
BLOCKS += gligen.BLOCKS  # GLIGEN text boxes


@hookimpl
def register_blocks() -> list:
    return list(BLOCKS)


@hookimpl
def register_comfy_mappings() -> list:
    """ComfyUI's loaders, text encoders, conditioning, ControlNet, sampler and latent nodes."""
    return [*comfy_loaders.MAPPINGS, *comfy_cond_nodes.MAPPINGS, *comfy_controlnet.MAPPINGS,
            *comfy_sampling.MAPPINGS, *comfy_latents.MAPPINGS, *comfy_ip2p.MAPPINGS,
            *comfy_gligen.MAPPINGS, *comfy_unclip.MAPPINGS,
            *comfy_merge.MAPPINGS, *comfy_latent_utils.MAPPINGS]
