"""``image.upscale_model``: upscale an image with an ESRGAN / Real-ESRGAN / SwinIR-family model file."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.sd.common import device_of


def upscaler(ctx: Context, name: str, device: str) -> Any:
    """The upscaler ``name`` means (a file in ``upscale_models/`` or ``models/ESRGAN``, or a
    configured model; never a path in the daemon), loaded once per worker by its model
    manager and kept under its memory budget. Errors name this node and ``params.model``."""
    try:
        return ctx.models.upscaler(name, device=device)
    except BlockError as exc:
        exc.node = exc.node or ctx.node
        exc.field = exc.field or "params.model"
        if not exc.message.startswith("node "):
            exc.message = f"node {ctx.node!r}: {exc.message}"
            exc.args = (exc.message,)
        raise


def check_output_size(ctx: Context, image: np.ndarray, scale: int, name: str) -> None:
    """Refuse, before allocating it, an output larger than the run's ``limits.pixels`` (the
    scale is known only once the file is read, so the submit-time gate cannot see it)."""
    lim = ctx.limits
    if lim is None:
        return
    bound = lim.get("pixels") if isinstance(lim, dict) else getattr(lim, "pixels", None)
    pixels = int(image.shape[1]) * scale * int(image.shape[2]) * scale
    if isinstance(bound, int) and pixels > bound:
        raise BlockError(f"node {ctx.node!r}: upscale model {name!r} (x{scale}) would make "
                         f"{image.shape[2] * scale}x{image.shape[1] * scale} = {pixels} pixels, over "
                         f"limits.pixels {bound}; tile the node (a tile annotation) or upscale less",
                         type="limit", node=ctx.node, field="params.model", value=pixels, bound={"le": bound})


@block("image.upscale_model", version="1.0.0")
class UpscaleModel(Block):
    """Upscale an image with a super-resolution model file (ESRGAN, Real-ESRGAN and its compact
    SRVGG nets, SwinIR, Swin2SR, HAT, DAT, SPAN, ... as spandrel detects them).

    The scale comes from the file (x1 restoration models work too). ``.safetensors`` files,
    and ``.pth`` files through torch's weights-only loader. Gray images are upscaled as RGB
    and come back with 3 channels; an alpha channel is resized bicubically beside the model's
    RGB. Tiles by ``split``: with a ``tile`` annotation the image is cut into overlapping tiles,
    spread over the workers and merged with feathered seams, for images too large for one pass.
    """

    inputs = {"image": In("IMAGE", "[B, H, W, C] in 0..1")}
    outputs = {"image": Out("IMAGE", "[B, H * scale, W * scale, C] in 0..1")}
    resources = Resources(device="gpu", memory_mb=2048)
    tiling = "split"

    class Params(Params):
        model: str = Field(..., min_length=1, max_length=512,
                           description="an upscale model by name: a file in upscale_models/ (ComfyUI) or "
                                       "models/ESRGAN (A1111), with or without its extension, or a "
                                       "configured model (never a path)")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch

        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 4 or img.shape[-1] not in (1, 3, 4) or min(img.shape[1:3]) < 1:
            raise BlockError(f"node {ctx.node!r}: image must be [batch, height, width, 1|3|4], got shape "
                             f"{tuple(img.shape)}", type="input", node=ctx.node, field="inputs.image")
        device = device_of(ctx)
        up = upscaler(ctx, self.params.model, device)
        check_output_size(ctx, img, up.scale, self.params.model)
        c = img.shape[-1]
        color = np.repeat(img, 3, axis=-1) if c == 1 else img[..., :3]
        if up.input_channels not in (1, 3):
            raise BlockError(f"node {ctx.node!r}: upscale model {self.params.model!r} takes "
                             f"{up.input_channels} channels", type="model", node=ctx.node,
                             field="params.model")
        if up.input_channels == 1:
            color = color.mean(axis=-1, keepdims=True)
        outs = []
        with torch.no_grad():
            for i in range(img.shape[0]):
                ctx.check_cancelled()
                x = torch.from_numpy(np.ascontiguousarray(color[i].transpose(2, 0, 1)))[None].to(device)
                y = up.net(x.clamp(0, 1)).float().cpu()[0].numpy().transpose(1, 2, 0)
                if y.shape[-1] == 1:
                    y = np.repeat(y, 3, axis=-1)
                if c == 4:
                    alpha = torch.from_numpy(np.ascontiguousarray(img[i, :, :, 3]))[None, None]
                    a = torch.nn.functional.interpolate(alpha, size=y.shape[:2], mode="bicubic",
                                                        align_corners=False).clamp(0, 1)[0, 0].numpy()
                    y = np.concatenate([y, a[..., None]], axis=-1)
                outs.append(y)
                ctx.progress(i + 1, img.shape[0])
        return {"image": np.ascontiguousarray(np.stack(outs), dtype=np.float32)}


BLOCKS = [UpscaleModel]
