"""The VAE: images to latents and back."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.sd import tiled_vae
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, generator, model_ref
from plugins.sd.latent_scaling import scaled_latents, unscale


def image_processor(vae_scale_factor: int, mask: bool = False) -> Any:
    from diffusers.image_processor import VaeImageProcessor

    if mask:
        return VaeImageProcessor(vae_scale_factor=vae_scale_factor, do_normalize=False, do_binarize=True,
                                 do_convert_grayscale=True)
    return VaeImageProcessor(vae_scale_factor=vae_scale_factor)


def rgb(image: np.ndarray, node: str) -> np.ndarray:
    """``[B, H, W, 3]`` float32 from an IMAGE with 1, 3 or 4 channels."""
    if image.ndim != 4:
        raise BlockError(f"node {node!r}: image must be [batch, height, width, channels], got shape "
                         f"{tuple(image.shape)}", type="input", node=node, field="inputs.image")
    c = image.shape[-1]
    if c == 1:
        image = np.repeat(image, 3, axis=-1)
    elif c >= 3:
        image = image[..., :3]
    else:
        raise BlockError(f"node {node!r}: image has {c} channels", type="input", node=node,
                         field="inputs.image")
    return np.ascontiguousarray(image, dtype=np.float32)


def vae_encode(vae: Any, pixels: Any, gen: Any, mode: str = "sample") -> Any:
    """Pixels in [-1, 1] -> scaled latents (``retrieve_latents`` of the pipelines)."""
    return scaled_latents(vae, vae.encode(pixels).latent_dist, gen, mode)


def vae_decode(vae: Any, latents: Any) -> Any:
    """Scaled latents -> pixels in [-1, 1] (the pipelines' decode step)."""
    return vae.decode(unscale(vae, latents), return_dict=False)[0]


def vae_scale(pixels: Any, latent: Any) -> int:
    """Pixels per latent cell, from a decode's input and output."""
    return max(1, pixels.shape[-2] // latent.shape[-2])


def to_image(pixels: Any) -> np.ndarray:
    """``[B, 3, H, W]`` in [-1, 1] -> IMAGE ``[B, H, W, 3]`` float32 in [0, 1] (``postprocess``)."""
    return (pixels / 2 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()


@block("sd.vae_encode", version="1.0.0")
class VaeEncode(Block):
    """Encode an image into a latent with the model's VAE.

    ``mode='sample'`` draws from the VAE's posterior as diffusers' img2img pipeline does and
    outputs the random state after that draw: wire ``rng`` into ``sd.denoise`` to continue
    the same random stream (what makes a graph equal the pipeline's image). ``mode='mean'``
    takes the posterior mean and needs no randomness.

    Tiles by ``vae``: with a ``tile`` annotation the image is encoded in overlapping tiles
    spread over every worker, as ``AutoencoderKL`` with tiling enabled does (see
    :mod:`plugins.sd.tiled_vae`).
    """

    inputs = {"image": In("IMAGE", "image [B, H, W, C] in 0..1, sides multiples of 8")}
    outputs = {"latent": Out("LATENT", "scaled latent"),
               "rng": Out("RNG", "random state after the posterior sample")}
    resources = Resources(device="gpu", memory_mb=1024)
    tiling = "vae"

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        mode: Literal["sample", "mean"] = Field("sample", description="posterior sample or its mean")
        seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed; null: derived from the node")

    def run_tiled(self, ctx: Context, tiling: Any, image: np.ndarray) -> dict:
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        p = self.params
        ref = model_ref(p.model)
        info = ctx.models.info(ref)
        vae = ctx.models.vae(ref, device=device_of(ctx))
        pixels = image_processor(info.vae_scale_factor).preprocess(rgb(image, ctx.node))
        moments = tiled_vae.encode(ctx, tiling, ref, pixels.to(dtype=vae.dtype), info.vae_scale_factor)
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        dist = DiagonalGaussianDistribution(moments.to(device=vae.device))
        latents = scaled_latents(vae, dist, gen, "sample" if p.mode == "sample" else "mean")
        return {"latent": latents.float().cpu(), "rng": gen.get_state()}

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        p = self.params
        ref = model_ref(p.model)
        device = device_of(ctx)
        info = ctx.models.info(ref)
        vae = ctx.models.vae(ref, device=device)
        pixels = image_processor(info.vae_scale_factor).preprocess(rgb(image, ctx.node))
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        with torch.no_grad():
            latents = vae_encode(vae, pixels.to(device=device, dtype=vae.dtype), gen,
                                 "sample" if p.mode == "sample" else "mean")
        return {"latent": latents.float().cpu(), "rng": gen.get_state()}


@block("sd.vae_decode", version="1.0.0")
class VaeDecode(Block):
    """Decode a latent into an image with the model's VAE.

    ``wrap`` decodes a 360-degree panorama seamlessly: that many latent columns of each edge
    are put beyond the other edge before decoding and cut off after (the panorama
    pipeline's circular decode uses 8).

    Tiles by ``vae``: with a ``tile`` annotation the latent is decoded in overlapping tiles
    spread over every worker, blended at the seams as ``AutoencoderKL`` with tiling enabled
    does (see :mod:`plugins.sd.tiled_vae`); a worker's memory then follows the tile size.
    """

    inputs = {"latent": "LATENT"}
    outputs = {"image": Out("IMAGE", "[B, H, W, 3] in 0..1")}
    resources = Resources(device="gpu", memory_mb=1024, batch=True)  # several jobs' decodes: one call
    tiling = "vae"

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        wrap: int = Field(0, ge=0, le=256, description="latent columns wrapped around each side "
                                                       "(360-degree panoramas; 0: none)")

    def run(self, ctx: Context, latent: Any) -> dict:
        import torch

        device = device_of(ctx)
        vae = ctx.models.vae(model_ref(self.params.model), device=device)
        with torch.no_grad():
            pixels = vae_decode(vae, self._wrapped(latent).to(device=device, dtype=vae.dtype))
        return {"image": self._unwrapped(to_image(pixels), vae_scale(pixels, latent))}

    def run_tiled(self, ctx: Context, tiling: Any, latent: Any) -> dict:
        ref = model_ref(self.params.model)
        f = ctx.models.info(ref).vae_scale_factor
        pixels = tiled_vae.decode(ctx, tiling, ref, self._wrapped(latent), f)
        return {"image": self._unwrapped(to_image(pixels), f)}

    def _wrapped(self, latent: Any) -> Any:
        import torch

        k = self.params.wrap
        return latent if not k else torch.cat((latent[..., -k:], latent, latent[..., :k]), dim=-1)

    def _unwrapped(self, image: np.ndarray, f: int) -> np.ndarray:
        k = self.params.wrap * f
        return image if not k else np.ascontiguousarray(image[:, :, k:-k])


BLOCKS = [VaeEncode, VaeDecode]
