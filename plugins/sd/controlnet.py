"""ControlNet: guide denoising with control images (edges, depth, pose, segmentation, ...).

``sd.controlnet`` adds a ControlNet, its control image, a scale and a step range to a
conditioning; chain several for several at once. The sampling loop
(:class:`Controls`) runs each ControlNet before every UNet call inside its step range and
hands the UNet the sum of their residuals, as diffusers' ``StableDiffusionControlNetPipeline``
(and its ``MultiControlNetModel``) does, so a graph gives the pipeline's image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.common import ModelParam, crop
from plugins.sd.cond_types import check_conditioning, with_extra
from plugins.sd.model_files import check_model
from plugins.sd.vae import rgb

if TYPE_CHECKING:
    from plugins.sd.common import Sampling, UNetPrompt, Window


class DifferenceControlNet(Params):
    """A difference ControlNet (ComfyUI's DiffControlNetLoader): its file stores the ControlNet minus the
    UNet it was trained from; ``diff_base``'s UNet weights are added back (see the model manager)."""

    name: str = Field(..., min_length=1, description="a registered ControlNet (a difference file)")
    diff_base: ModelParam = Field(..., description="the model whose UNet weights the difference is added to")


@block("sd.controlnet", version="1.0.0")
class ControlNet(Block):
    """Add a ControlNet with its control image to a conditioning (chain several for several).

    The control image is what the ControlNet was trained on: Canny edges
    (``image.canny``), a depth map (``onnx.run`` with a depth model), a segmentation map,
    a sketch, ... in 0..1. It is resized to the image being generated. ``scale`` weighs the
    ControlNet's residuals; ``start`` and ``end`` give the share of the steps it acts in.
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (or another conditioning block)"),
              "image": In("IMAGE", "the control image, 0..1, batch 1 or the latent's")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with this ControlNet added")}

    class Params(Params):
        model: Annotated[str, Field(min_length=1)] | DifferenceControlNet = Field(
            "tiny-controlnet",
            description="a registered ControlNet, or {name, diff_base} for a difference ControlNet")
        scale: float = Field(1.0, ge=0.0, le=10.0, description="weight of the ControlNet's residuals")
        start: float = Field(0.0, ge=0.0, le=1.0, description="share of the steps before it starts acting")
        end: float = Field(1.0, ge=0.0, le=1.0, description="share of the steps after which it stops")
        guess_mode: bool = Field(False, description="recognise the control image without the prompt "
                                                    "(only the conditional half of CFG gets it)")

        @field_validator("end")
        @classmethod
        def _end_after_start(cls, end: float, info: ValidationInfo) -> float:
            start = info.data.get("start")
            if start is not None and end < start:
                raise ValueError(f"end {end} is before start {start}")
            return end

    def run(self, ctx: Context, cond: Any, image: np.ndarray) -> dict:
        cond = check_conditioning(cond, ctx.node)
        p = self.params
        net = p.model if isinstance(p.model, str) else p.model.model_dump(exclude_none=True)
        check_model(ctx, net, "controlnet")  # an unknown name or a path fails here, not in sampling
        item = {"model": net, "image": rgb(np.asarray(image), ctx.node), "scale": p.scale,
                "start": p.start, "end": p.end, "guess_mode": p.guess_mode}
        return {"cond": with_extra(cond, "controlnets", item)}


def keep_schedule(total: int, start: float, end: float) -> list[float]:
    """1.0 for the steps a ControlNet acts in, else 0.0 (the pipelines' ``controlnet_keep``)."""
    return [1.0 - float(i / total < start or (i + 1) / total > end) for i in range(total)]


class Controls:
    """The ControlNets of one sampling run: models loaded, control images prepared."""

    def __init__(self, items: list[dict[str, Any]], run: Sampling) -> None:
        import torch
        from diffusers.image_processor import VaeImageProcessor

        self.run = run
        self.nets: list[Any] = []
        self.images: list[Any] = []
        self.keeps: list[list[float]] = []
        self.items: list[dict[str, Any]] = []
        ctx, f = run.ctx, run.scale_factor
        processor = VaeImageProcessor(vae_scale_factor=f, do_convert_rgb=True, do_normalize=False)
        height, width = run.pixel_size
        for k, item in enumerate(items):
            net = ctx.models.controlnet(item["model"], device=run.device)
            if net.config.cross_attention_dim != run.base.embeds.shape[-1]:
                raise BlockError(
                    f"node {ctx.node!r}: ControlNet {item['model']!r} takes text embeddings of width "
                    f"{net.config.cross_attention_dim}, the model's are {run.base.embeds.shape[-1]}",
                    type="input", node=ctx.node, field="inputs.cond", controlnet=k)
            image = np.asarray(item["image"], dtype=np.float32)
            pixels = processor.preprocess(image, height=height, width=width)
            pixels = pixels.to(torch.float32)
            if pixels.shape[0] == 1:
                pixels = pixels.repeat_interleave(run.batch, dim=0)
            elif pixels.shape[0] != run.batch:
                raise BlockError(f"node {ctx.node!r}: control image {k} has batch {pixels.shape[0]}, the "
                                 f"latent {run.batch}", type="input", node=ctx.node, field="inputs.cond")
            pixels = pixels.to(device=run.device, dtype=net.dtype)
            guess = item["guess_mode"] or bool(net.config.global_pool_conditions)
            self.items.append({**item, "guess_mode": guess})
            if run.do_cfg and not guess:
                pixels = torch.cat([pixels] * 2)
            self.nets.append(net)
            self.images.append(pixels)
            self.keeps.append(keep_schedule(run.total, item["start"], item["end"]))

    def kwargs(self, model_in: Any, t: Any, i: int, prompt: UNetPrompt, window: Window | None) -> dict:
        """``down_block_additional_residuals`` and ``mid_block_additional_residual`` for one UNet call."""
        import torch

        down = mid = None
        f = self.run.scale_factor
        pixel_window = None if window is None else tuple(v * f for v in window)
        for net, image, keep, item in zip(self.nets, self.images, self.keeps, self.items, strict=True):
            if keep[i] == 0.0:
                continue  # the pipeline adds zeros: leaving it out gives the same sum
            guess = item["guess_mode"] and self.run.do_cfg
            sample_in = model_in.chunk(2)[1] if guess else model_in
            embeds = prompt.embeds.chunk(2)[1] if guess else prompt.embeds
            added = prompt.added
            if added is not None and guess:
                added = {k: v.chunk(2)[1] for k, v in added.items()}
            d, m = net(sample_in, t, encoder_hidden_states=embeds, controlnet_cond=crop(image, pixel_window),
                       conditioning_scale=item["scale"] * keep[i], guess_mode=item["guess_mode"],
                       added_cond_kwargs=added, return_dict=False)
            if guess:
                d = [torch.cat([torch.zeros_like(x), x]) for x in d]
                m = torch.cat([torch.zeros_like(m), m])
            if down is None:
                down, mid = list(d), m
            else:
                down = [a + b for a, b in zip(down, d, strict=True)]
                mid = mid + m
        if down is None:
            return {}
        return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


BLOCKS = [ControlNet]
