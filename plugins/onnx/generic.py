"""Run any single-input image model in ONNX: upscalers, depth and segmentation nets, scorers."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, Resources, block
from plugins.sd.common import device_of
from plugins.sd.model_files import model_file


def _layout(shape: list[Any], wanted: str) -> str:
    if wanted != "auto":
        return wanted
    if len(shape) == 4 and shape[1] in (1, 3, 4):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3, 4):
        return "nhwc"
    return "nchw"


def _fixed(v: Any) -> int | None:
    return v if isinstance(v, int) and v > 0 else None


@block("onnx.run", version="1.0.0")
class OnnxRun(Block):
    """Run a single-input image model from an ONNX file and return its output.

    The image is converted to what the model's input declares: layout (NCHW or NHWC, read from
    the model), channels (gray <-> RGB, alpha dropped), a fixed size (resized to it), the value
    range (``input_range``, optional ``mean``/``std``) and the batch (one image per run when the
    model's batch is fixed at 1). An image-shaped output (4-D, or 3-D as one channel) comes
    back as ``image``, mapped to 0..1 by ``output_range`` (``minmax``: per image, for depth
    maps) and optionally resized to the input size; ``values`` always holds the raw output
    (a float32 array), and ``score`` its mean, for scorers. ``image`` is null when the output
    is not image-shaped.
    """

    inputs = {"image": In("IMAGE", "input image [B, H, W, C] in 0..1")}
    outputs = {"image": Out("IMAGE", "the output as an image (null when it is not image-shaped)"),
               "values": Out("ANY", "the raw output, a float32 numpy array"),
               "score": Out("FLOAT", "mean of the output")}
    resources = Resources(device="gpu", memory_mb=2048)

    class Params(Params):
        model: str = Field(..., min_length=1, max_length=512,
                           description="an ONNX model by name: a registered model or a .onnx file in the "
                                       "model folders' onnx/ (never a path)")
        output: str | None = Field(None, description="output name; default: the first output")
        layout: Literal["auto", "nchw", "nhwc"] = Field("auto",
                                                        description="input layout; auto: from the model")
        input_range: Literal["0..1", "-1..1", "0..255"] = Field("0..1",
                                                                description="value range the model takes")
        mean: list[float] | None = Field(None, min_length=1, max_length=4,
                                         description="per-channel mean subtracted after the range")
        std: list[float] | None = Field(None, min_length=1, max_length=4, description="per-channel std")
        output_range: Literal["0..1", "-1..1", "0..255", "minmax"] = Field(
            "0..1", description="value range of an image output; minmax: stretch each image to 0..1")
        resize_output: bool = Field(False, description="resize an image output back to the input size")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        import torch
        import torch.nn.functional as F

        p = self.params
        model = self._session(ctx)
        in_name, (shape, dtype) = next(iter(model.inputs.items()))
        if len(model.inputs) != 1:
            raise BlockError(f"node {ctx.node!r}: {p.model} has {len(model.inputs)} inputs; onnx.run "
                             f"takes models with one image input", type="input", node=ctx.node,
                             field="params.model")
        if len(shape) != 4:
            raise BlockError(f"node {ctx.node!r}: {p.model} takes a {len(shape)}-D input, not an image "
                             f"(4-D)", type="input", node=ctx.node, field="params.model")
        layout = _layout(shape, p.layout)
        want_c = _fixed(shape[1] if layout == "nchw" else shape[3])
        want_h, want_w = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(0, 3, 1, 2)
        x = _channels(x, want_c, ctx.node)
        in_h, in_w = x.shape[-2:]
        size = (_fixed(want_h) or in_h, _fixed(want_w) or in_w)
        if size != (in_h, in_w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = {"0..1": x, "-1..1": x * 2 - 1, "0..255": x * 255}[p.input_range]
        if p.mean is not None:
            x = x - torch.tensor(p.mean).view(1, -1, 1, 1)
        if p.std is not None:
            x = x / torch.tensor(p.std).view(1, -1, 1, 1)
        if layout == "nhwc":
            x = x.permute(0, 2, 3, 1)
        out_name = p.output or model.outputs[0]
        if out_name not in model.outputs:
            raise BlockError(f"node {ctx.node!r}: {p.model} has no output {out_name!r}; outputs: "
                             f"{', '.join(model.outputs)}", type="input", node=ctx.node,
                             field="params.output")
        per_image = _fixed(shape[0]) == 1 and x.shape[0] > 1
        batches = [x[i:i + 1] for i in range(x.shape[0])] if per_image else [x]
        results = [model.run({in_name: b.to(dtype=getattr(torch, dtype))}, [out_name])[out_name].float().cpu()
                   for b in batches]
        y = torch.cat(results)
        values = y.numpy()
        img = self._as_image(y, layout, (in_h, in_w))
        return {"image": img, "values": values, "score": float(values.mean())}

    def _session(self, ctx: Context) -> Any:
        path = model_file(ctx, self.params.model, "onnx", "params.model")
        return ctx.models.onnx(str(path), device=device_of(ctx))

    def _as_image(self, y: Any, layout: str, in_size: tuple[int, int]) -> np.ndarray | None:
        import torch.nn.functional as F

        p = self.params
        if y.ndim == 3:
            y = y[:, None]
        elif y.ndim == 4 and layout == "nhwc" and y.shape[-1] in (1, 3, 4):
            y = y.permute(0, 3, 1, 2)
        elif y.ndim != 4:
            return None
        if y.shape[1] not in (1, 3, 4) or min(y.shape[-2:]) < 2:
            return None
        if p.output_range == "minmax":
            lo = y.amin(dim=(1, 2, 3), keepdim=True)
            hi = y.amax(dim=(1, 2, 3), keepdim=True)
            y = (y - lo) / (hi - lo).clamp_min(1e-12)
        else:
            y = {"0..1": y, "-1..1": y / 2 + 0.5, "0..255": y / 255}[p.output_range]
        if p.resize_output and tuple(y.shape[-2:]) != in_size:
            y = F.interpolate(y, size=in_size, mode="bilinear", align_corners=False)
        return y.clamp(0, 1).permute(0, 2, 3, 1).contiguous().numpy()


def _channels(x: Any, want: int | None, node: str) -> Any:
    import torch

    c = x.shape[1]
    if want is None or want == c:
        return x
    if want == 3 and c == 4:
        return x[:, :3]
    if want == 3 and c == 1:
        return x.repeat(1, 3, 1, 1)
    if want == 1 and c >= 3:
        w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x[:, :3] * w).sum(1, keepdim=True)
    if want == 4 and c == 3:
        return torch.cat([x, x.new_ones(x.shape[0], 1, *x.shape[2:])], 1)
    raise BlockError(f"node {node!r}: the model takes {want} channels, the image has {c}", type="input",
                     node=node, field="inputs.image")


BLOCKS = [OnnxRun]
