"""``sd.vae_encode_for_inpaint``: ComfyUI's VAEEncodeForInpaint, for the native samplers.

The image is cropped (centred) to multiples of the VAE's scale, the mask resized to it
(bilinear), the pixels under the rounded mask set to grey (0.5) and the image encoded; the
noise mask is the rounded mask grown by ``grow_mask_by`` pixels (a box filter over the
rounded mask, as ComfyUI's ``conv2d`` with a ``grow x grow`` kernel). Wire ``latent`` and
``mask`` into ``sd.ksampler``: an ordinary model samples only under the mask; an
inpainting model (9-channel UNet) also sees the mask and this latent beside its input.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, device_of, generator, model_ref
from plugins.sd.vae import rgb, vae_encode


def inpaint_pixels(image: Any, mask: Any, scale: int, grow: int) -> tuple[Any, Any]:
    """``(greyed pixels [B, H, W, 3], noise mask [B, 1, H, W])`` as ComfyUI's VAEEncodeForInpaint makes them.

    >>> import torch
    >>> px, m = inpaint_pixels(torch.ones(1, 16, 16, 3), torch.zeros(1, 16, 16), 8, 6)
    >>> float(px.min()), px.shape, m.shape, float(m.max())
    (1.0, torch.Size([1, 16, 16, 3]), torch.Size([1, 1, 16, 16]), 0.0)
    """
    import torch

    pixels = image.clone()
    x, y = (pixels.shape[1] // scale) * scale, (pixels.shape[2] // scale) * scale
    mask = torch.nn.functional.interpolate(mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])),
                                           size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
    if pixels.shape[1] != x or pixels.shape[2] != y:
        x_off, y_off = (pixels.shape[1] % scale) // 2, (pixels.shape[2] % scale) // 2
        pixels = pixels[:, x_off:x + x_off, y_off:y + y_off, :]
        mask = mask[:, :, x_off:x + x_off, y_off:y + y_off]
    if grow == 0:
        grown = mask
    else:
        kernel = torch.ones((1, 1, grow, grow))
        pad = math.ceil((grow - 1) / 2)
        grown = torch.clamp(torch.nn.functional.conv2d(mask.round(), kernel, padding=pad), 0, 1)
    keep = (1.0 - mask.round()).squeeze(1)
    pixels = (pixels - 0.5) * keep[..., None] + 0.5
    return pixels, grown[:, :, :x, :y].round()


@block("sd.vae_encode_for_inpaint", version="1.0.0")
class VaeEncodeForInpaint(Block):
    """Encode an image for inpainting as ComfyUI's VAEEncodeForInpaint: masked pixels greyed, the mask
    grown into the noise mask (feed both to ``sd.ksampler``)."""

    inputs = {"image": In("IMAGE", "the image to repaint"),
              "mask": In("MASK", "1 (white) where to repaint; resized to the image")}
    outputs = {"latent": Out("LATENT", "the encoded image, the masked part grey"),
               "mask": Out("MASK", "the noise mask: the mask rounded and grown, at the cropped image's size")}
    resources = Resources(device="gpu", memory_mb=2048)

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        grow_mask_by: int = Field(6, ge=0, le=64, description="pixels the noise mask grows by")
        mode: Literal["mean", "sample"] = Field("mean", description="the VAE posterior's mean, or a sample "
                                                                    "from seed")
        seed: int | None = Field(None, ge=0, le=2**63 - 1, description="for mode 'sample'; null: the node's")

    def run(self, ctx: Context, image: np.ndarray, mask: np.ndarray) -> dict:
        import torch

        p = self.params
        ref = model_ref(p.model)
        info = ctx.models.info(ref)
        pixels = torch.from_numpy(np.ascontiguousarray(rgb(image, ctx.node), dtype=np.float32))
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
        if m.ndim == 4:
            m = m[..., 0]
        if m.ndim not in (2, 3) or min(m.shape[-2:]) < 1:
            raise BlockError(f"node {ctx.node!r}: the mask is not [batch, height, width]", type="input",
                             node=ctx.node, field="inputs.mask")
        f = info.vae_scale_factor
        if pixels.shape[1] < f or pixels.shape[2] < f:
            raise BlockError(f"node {ctx.node!r}: the image is smaller than {f} pixels", type="input",
                             node=ctx.node, field="inputs.image")
        greyed, noise_mask = inpaint_pixels(pixels, m, f, p.grow_mask_by)
        device = device_of(ctx)
        vae = ctx.models.vae(ref, device=device)
        gen = generator(None, ctx.seed if p.seed is None else p.seed)
        with torch.no_grad():
            nchw = (greyed * 2 - 1).permute(0, 3, 1, 2).to(device=device, dtype=vae.dtype)
            latent = vae_encode(vae, nchw, gen, "sample" if p.mode == "sample" else "mean")
        return {"latent": latent.float().cpu(), "mask": noise_mask[:, 0].numpy().astype(np.float32)}


BLOCKS = [VaeEncodeForInpaint]
