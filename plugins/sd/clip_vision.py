"""``sd.clip_vision_encode``: ComfyUI's CLIPVisionEncode, a CLIP vision encoder's view of an image.

The encoder is named in ``model``: a CLIP vision file in the model folders' ``clip_vision/``
(transformers' or open_clip's key layout, as ComfyUI's ``CLIPVisionLoader`` takes them: see
:mod:`orchestrator.models.clip_vision`), a registered model with an ``image_encoder``
(``tiny-clip-vision``), never a path. Pixels are prepared as ComfyUI's ``clip_preprocess``:
the shorter side scaled to the encoder's size (bicubic, antialiased) and the centre cut
(``crop='center'``), or the whole image squeezed to the square (``crop='none'``); quantised to
8 bits, normalised by CLIP's mean and std. The output carries what ComfyUI's does:
``image_embeds`` (the projected pooled output, what unCLIP and revision read),
``last_hidden_state`` and ``penultimate_hidden_states``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block, register_port_type
from plugins.image.common import check_image, rgb
from plugins.sd.common import device_of
from plugins.sd.conditioning import EMBEDDING

CLIP_VISION_OUTPUT = register_port_type(
    "CLIP_VISION_OUTPUT", description="a CLIP vision encoder's output for a batch of images: image_embeds "
                                      "[B, D], last_hidden_state and penultimate_hidden_states [B, T, W]")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipVisionOutput:
    """ComfyUI's ``clip_vision.Output``: float32 CPU tensors, one row per image."""

    image_embeds: Any
    last_hidden_state: Any
    penultimate_hidden_states: Any


def clip_preprocess(image: Any, size: int, crop: bool = True) -> Any:
    """``[B, H, W, C]`` 0..1 -> ``[B, 3, size, size]`` as ComfyUI's ``clip_preprocess``."""
    import torch

    mean = torch.tensor(CLIP_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=image.dtype).view(3, 1, 1)
    image = image[..., :3].movedim(-1, 1)
    if not (image.shape[2] == size and image.shape[3] == size):
        if crop:
            scale = size / min(image.shape[2], image.shape[3])
            scaled = (round(scale * image.shape[2]), round(scale * image.shape[3]))
        else:
            scaled = (size, size)
        image = torch.nn.functional.interpolate(image, size=scaled, mode="bicubic", antialias=True)
        h, w = (image.shape[2] - size) // 2, (image.shape[3] - size) // 2
        image = image[:, :, h:h + size, w:w + size]
    image = torch.clip(255.0 * image, 0, 255).round() / 255.0
    return (image - mean) / std


def encode(encoder: Any, image: Any, crop: bool, device: str) -> ClipVisionOutput:
    """Run ``encoder`` (a transformers ``CLIPVisionModelWithProjection``) on a ``[B, H, W, C]`` batch."""
    import numpy as np
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    pixels = clip_preprocess(batch, int(encoder.config.image_size), crop)
    with torch.no_grad():
        out = encoder(pixel_values=pixels.to(device=device, dtype=encoder.dtype), output_hidden_states=True)
    return ClipVisionOutput(image_embeds=out.image_embeds.float().cpu(),
                            last_hidden_state=out.last_hidden_state.float().cpu(),
                            penultimate_hidden_states=out.hidden_states[-2].float().cpu())


def check_output(value: Any, node: str, field: str = "inputs.clip_vision_output") -> ClipVisionOutput:
    if not isinstance(value, ClipVisionOutput):
        raise BlockError(f"node {node!r}: {field} is not a CLIP vision output (sd.clip_vision_encode), got "
                         f"{type(value).__name__}", type="input", node=node, field=field)
    return value


@block("sd.clip_vision_encode", version="1.0.0")
class ClipVisionEncode(Block):
    """Encode images with a CLIP vision model (ComfyUI's CLIPVisionLoader + CLIPVisionEncode)."""

    inputs = {"image": In("IMAGE", "the images to encode")}
    outputs = {"clip_vision_output": Out(CLIP_VISION_OUTPUT.name, "image embeds and hidden states"),
               "embedding": Out(EMBEDDING.name, "the image embeds alone [B, D] (for sd.ip_adapter)")}
    resources = Resources(device="gpu", memory_mb=2048)

    class Params(Params):
        model: str = Field("tiny-clip-vision", min_length=1, max_length=512,
                           description="a CLIP vision model by name: a file in the model folders' "
                                       "clip_vision/ or a registered model with an image_encoder")
        crop: Literal["center", "none"] = Field(
            "center", description="center: scale the shorter side and cut the centre square; none: squeeze "
                                  "the whole image to the square")

    def run(self, ctx: Context, image: Any) -> dict:
        pixels = rgb(check_image(ctx, image))
        device = device_of(ctx)
        try:
            encoder = ctx.models.image_encoder(self.params.model, device=device)
        except BlockError as exc:  # a file that is no CLIP vision encoder: the param names it
            exc.field = exc.field or "params.model"
            raise
        out = encode(encoder, pixels, self.params.crop == "center", device)
        return {"clip_vision_output": out, "embedding": out.image_embeds}


BLOCKS = [ClipVisionEncode]
