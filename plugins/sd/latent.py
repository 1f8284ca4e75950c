"""Latents without a model run: an empty latent of a size, and latent upscaling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator import Block, BlockError, Context, Out, Params, block
from plugins.sd.common import MODEL_FIELD_DESCRIPTION, ModelParam, model_ref


@block("sd.empty_latent", version="1.0.0")
class EmptyLatent(Block):
    """An empty (all-zero) latent for an image of ``width`` x ``height``, ``batch`` images.

    It fixes the size only: ``sd.denoise`` at strength 1 starts from noise drawn with its own
    seed, the way a diffusers text-to-image pipeline does.
    """

    outputs = {"latent": Out("LATENT", "zeros, [batch, channels, height/8, width/8]")}

    class Params(Params):
        model: ModelParam = Field("tiny-sd", description=MODEL_FIELD_DESCRIPTION)
        width: int = Field(512, ge=8, le=16384, description="image width in pixels (multiple of 8)")
        height: int = Field(512, ge=8, le=16384, description="image height in pixels (multiple of 8)")
        batch: int = Field(1, ge=1, le=64, description="number of images")

    def run(self, ctx: Context) -> dict:
        import torch

        p = self.params
        info = ctx.models.info(model_ref(p.model))
        f = info.vae_scale_factor
        for name in ("width", "height"):
            value = getattr(p, name)
            if value % f:
                raise BlockError(f"node {ctx.node!r}: {name} {value} is not a multiple of {f}",
                                 type="input", node=ctx.node, field=f"params.{name}", value=value)
        return {"latent": torch.zeros(p.batch, info.latent_channels, p.height // f, p.width // f)}


@block("sd.latent_upscale", version="1.0.0")
class LatentUpscale(Block):
    """Resize a latent by ``scale`` (the first pass of a hires fix), without a model."""

    inputs = {"latent": "LATENT"}
    outputs = {"latent": "LATENT"}

    class Params(Params):
        scale: float = Field(2.0, gt=0.0, le=8.0, description="size factor")
        mode: Literal["nearest", "nearest-exact", "bilinear", "bicubic", "area"] = Field(
            "nearest-exact", description="interpolation")

    def run(self, ctx: Context, latent) -> dict:
        import torch.nn.functional as F

        h, w = latent.shape[-2:]
        size = (max(1, round(h * self.params.scale)), max(1, round(w * self.params.scale)))
        kwargs = {"align_corners": False} if self.params.mode in ("bilinear", "bicubic") else {}
        return {"latent": F.interpolate(latent.float(), size=size, mode=self.params.mode, **kwargs)}


BLOCKS = [EmptyLatent, LatentUpscale]
