"""Image to image in one block, image in and image out: what tiled upscaling runs per tile."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Resources, block
from plugins.sd.common import generator, randn, schedule, torch_unet
from plugins.sd.denoise import SamplingParams, sampler_setup
from plugins.sd.sampling import sample
from plugins.sd.vae import image_processor, rgb, to_image, vae_decode, vae_encode


@block("sd.img2img", version="1.0.0")
class Img2Img(Block):
    """Redraw an image following the conditioning: encode, denoise from ``strength``, decode.

    The same as ``sd.vae_encode`` -> ``sd.denoise`` (``rng`` wired) -> ``sd.vae_decode``,
    in one block that takes and gives an image. When ``strength`` leaves no step to run
    (``int(steps * strength) < 1``, e.g. 0) the image comes back exactly as it went in.

    Tiles by ``split``: with a ``tile`` annotation each tile of the image is redrawn on its
    own (with a seed of its own unless ``seed`` is set) and the tiles are merged with
    feathered seams, spread over every worker: after an upscale, this is the Ultimate SD
    Upscale pattern, detail at a size no model could draw at once.
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt"),
              "image": In("IMAGE", "[B, H, W, C] in 0..1, sides multiples of 8")}
    outputs = {"image": Out("IMAGE", "the redrawn image, [B, H, W, 3] in 0..1")}
    resources = Resources(device="gpu", memory_mb=4096, batch=True)
    tiling = "split"

    class Params(SamplingParams):
        strength: float = Field(0.35, ge=0.0, le=1.0, description="how far to noise the image and "
                                                                 "redraw it: 0 keeps it, 1 draws anew")

    def run(self, ctx: Context, cond: Any, image: np.ndarray) -> dict:
        import torch

        p = self.params
        if int(p.steps * p.strength) < 1:
            return {"image": np.array(image, dtype=np.float32, copy=True)}
        s = sampler_setup(ctx, p, cond)
        device, unet, scheduler, info = s.device, s.unet, s.scheduler, s.info
        f = info.vae_scale_factor
        pixels_in = rgb(image, ctx.node)
        if pixels_in.shape[1] % f or pixels_in.shape[2] % f:
            raise BlockError(f"node {ctx.node!r}: image is {pixels_in.shape[2]}x{pixels_in.shape[1]}; its "
                             f"sides must be multiples of {f}", type="input", node=ctx.node,
                             field="inputs.image")
        vae = ctx.models.vae(s.ref, device=device)
        dtype = unet.dtype
        timesteps, _n = schedule(scheduler, p.steps, p.strength, device, ctx.node)
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        with torch.no_grad():
            pixels = image_processor(f).preprocess(pixels_in).to(device=device, dtype=vae.dtype)
            init = vae_encode(vae, pixels, gen).to(dtype=dtype)
            noise = randn(tuple(init.shape), gen, device, dtype)
            latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(init.shape[0]))
            out = sample(ctx=ctx, unet=torch_unet(unet), unet_config=dict(unet.config), scheduler=scheduler,
                         timesteps=timesteps, latents=latents, cond=cond, cfg=p.cfg, gen=gen, device=device,
                         dtype=dtype, pixel_size=tuple(pixels_in.shape[1:3]), eta=p.eta,
                         guidance_rescale=p.guidance_rescale)
            decoded = vae_decode(vae, out.to(dtype=vae.dtype))
        return {"image": to_image(decoded)}


BLOCKS = [Img2Img]
