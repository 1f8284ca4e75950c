"""Style and semantics: the image embedding of a CLIP vision encoder.

The embedding is what an IP-Adapter takes (``sd.ip_adapter``) and what image similarity
compares. Pixels are prepared as CLIP's image processor does: the shorter side resized to
the encoder's input size (bicubic), a centred square cut, normalised by CLIP's mean and std.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Out, Params, Resources, block
from plugins.image.common import check_image, resize_array, rgb
from plugins.sd.common import device_of
from plugins.sd.conditioning import EMBEDDING

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def clip_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """``[B, H, W, C]`` in 0..1 -> CLIP's ``pixel_values`` ``[B, 3, size, size]``."""
    image = np.clip(rgb(image), 0.0, 1.0)
    h, w = image.shape[1:3]
    scale = size / min(h, w)
    rh, rw = max(size, round(h * scale)), max(size, round(w * scale))
    image = resize_array(np.ascontiguousarray(image), rh, rw, "bicubic")
    top, left = (rh - size) // 2, (rw - size) // 2
    image = image[:, top:top + size, left:left + size]
    return ((image - CLIP_MEAN) / CLIP_STD).transpose(0, 3, 1, 2).astype(np.float32)


@block("compose.image_embed", version="1.0.0")
class ImageEmbed(Block):
    """The style/semantics embedding of an image: a CLIP vision encoder's projected output.

    Use the image encoder of the IP-Adapter that will read it (``tiny-ip-adapter`` has
    ``tiny-clip-vision``'s); any registered model with an ``image_encoder`` part works.
    """

    inputs = {"image": In("IMAGE", "the reference image (style, subject)")}
    outputs = {"embedding": Out(EMBEDDING.name, "[B, D] image embeddings")}
    resources = Resources(device="gpu", memory_mb=1024)

    class Params(Params):
        model: str = Field("tiny-clip-vision", min_length=1,
                           description="a registered model with an image_encoder (CLIP vision)")
        normalize: bool = Field(False, description="scale each embedding to unit length (for similarity; "
                                                   "IP-Adapters take them as they are)")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        device = device_of(ctx)
        encoder = ctx.models.image_encoder(self.params.model, device=device)
        pixels = clip_pixels(check_image(ctx, image), int(encoder.config.image_size))
        with torch.no_grad():
            out: Any = encoder(torch.from_numpy(pixels).to(device=device, dtype=encoder.dtype))
            embeds = out.image_embeds.float().cpu()
        if self.params.normalize:
            embeds = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return {"embedding": embeds}


BLOCKS = [ImageEmbed]
