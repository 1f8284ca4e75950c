"""Image prompts with IP-Adapters: condition on an image's embedding (its style, its subject).

``sd.ip_adapter`` adds an IP-Adapter, an image embedding (from ``compose.image_embed`` with
the adapter's own image encoder) and a scale to a conditioning; chain several for several.
The sampling loop (:class:`ImagePrompts`) runs a copy of the UNet that shares its weights
but carries the adapters' attention processors and image projections (diffusers'
``IPAdapterAttnProcessor2_0`` and ``ImageProjection``, as ``pipeline.load_ip_adapter``
installs them), so the resident UNet is never changed. Works for SD 1.x/2.x and SDXL
adapters alike.

An adapter is named, never given as a path: a registered model folder holding
``ip_adapter.safetensors`` (the built-in ``tiny-ip-adapter``), or a ``.safetensors`` file in
the published layout (``image_proj.*``, ``ip_adapter.*``) in the model folders' ``ipadapter/``
(``sub/name.safetensors``, as ComfyUI shows it). The in-process CLI also takes a path,
relative to the graph's folder.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import Field

from orchestrator import Block, BlockError, Context, In, Out, Params, block
from plugins.sd.common import torch_unet
from plugins.sd.cond_types import check_conditioning, with_extra
from plugins.sd.model_files import model_file

if TYPE_CHECKING:
    from plugins.sd.common import Sampling, UNetFn

ADAPTER_FILE = "ip_adapter.safetensors"


@block("sd.ip_adapter", version="1.0.0")
class IPAdapter(Block):
    """Add an image prompt to a conditioning: an IP-Adapter and an image embedding.

    The embedding is the style and semantics of a reference image (``compose.image_embed``
    with the adapter's image encoder); ``scale`` weighs it against the text (0: text only).
    """

    inputs = {"cond": In("CONDITIONING", "from sd.encode_prompt (or another conditioning block)"),
              "embedding": In("EMBEDDING", "the reference image's embedding, batch 1 or the latent's")}
    outputs = {"cond": Out("CONDITIONING", "the conditioning with this image prompt added")}

    class Params(Params):
        adapter: str = Field("tiny-ip-adapter", min_length=1, max_length=512,
                             description="an IP-Adapter by name: a registered model, or a .safetensors "
                                         "file in the model folders' ipadapter/ (never a path)")
        scale: float = Field(1.0, ge=0.0, le=5.0, description="weight of the image prompt (0: none)")

    def run(self, ctx: Context, cond: Any, embedding: Any) -> dict:
        import torch

        cond = check_conditioning(cond, ctx.node)
        p = self.params
        embeds = torch.as_tensor(embedding).float().cpu()
        if embeds.ndim != 2:
            raise BlockError(f"node {ctx.node!r}: the embedding must be [batch, dim], got shape "
                             f"{tuple(embeds.shape)}", type="input", node=ctx.node, field="inputs.embedding")
        model_file(ctx, p.adapter, "ip_adapter", "params.adapter")  # refused here, before sampling
        item = {"adapter": p.adapter, "embeds": embeds, "scale": p.scale}
        return {"cond": with_extra(cond, "image_prompts", item)}


def shared_weights_copy(module: Any) -> Any:
    """A copy of a torch module's structure that shares its parameters and buffers."""
    memo = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


@contextmanager
def _quiet_diffusers() -> Iterator[None]:
    from diffusers.utils import logging as dlog

    logger = dlog.get_logger("diffusers")
    level = logger.level
    logger.setLevel(dlog.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_adapter(ctx: Context, adapter: str) -> dict[str, dict[str, Any]]:
    """An IP-Adapter's weights as ``{"image_proj": {...}, "ip_adapter": {...}}``."""
    from safetensors.torch import load_file

    path = model_file(ctx, adapter, "ip_adapter", "params.adapter")
    if not path.is_file():
        raise BlockError(f"node {ctx.node!r}: IP-Adapter {adapter!r} has no {ADAPTER_FILE}",
                         type="input", node=ctx.node, field="params.adapter", value=adapter)
    try:
        flat = load_file(str(path))  # safetensors only: never an unpickle
    except Exception as exc:  # noqa: BLE001 - a truncated file, a pickle by another name, ...
        raise BlockError(f"node {ctx.node!r}: IP-Adapter {adapter!r} is not a readable safetensors file "
                         f"({type(exc).__name__})", type="model", reason="format", node=ctx.node,
                         field="params.adapter", value=adapter) from None
    out: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if head in out:
            out[head][rest] = value
    if not out["image_proj"] or not out["ip_adapter"]:
        raise BlockError(f"node {ctx.node!r}: {adapter!r} is not an IP-Adapter (no image_proj.* / "
                         f"ip_adapter.* weights)", type="input", node=ctx.node, field="params.adapter",
                         value=adapter)
    return out


class ImagePrompts:
    """The image prompts of one sampling run: adapters read, embeddings laid out for the UNet."""

    def __init__(self, items: list[dict[str, Any]], run: Sampling) -> None:
        import torch

        self.run = run
        self.items = items
        self.weights = [read_adapter(run.ctx, item["adapter"]) for item in items]
        self.embeds = []
        for k, item in enumerate(items):
            e = item["embeds"].to(device=run.device, dtype=run.dtype)
            if e.shape[0] == 1:
                e = e.repeat(run.batch, 1)
            elif e.shape[0] != run.batch:
                raise BlockError(f"node {run.ctx.node!r}: image prompt {k} has batch {e.shape[0]}, the "
                                 f"latent {run.batch}", type="input", node=run.ctx.node, field="inputs.cond")
            width = self.weights[k]["image_proj"]["proj.weight"].shape[-1] \
                if "proj.weight" in self.weights[k]["image_proj"] else e.shape[-1]
            if e.shape[-1] != width:
                raise BlockError(f"node {run.ctx.node!r}: image prompt {k}: the embedding has {e.shape[-1]} "
                                 f"values, adapter {item['adapter']!r} takes {width} (use its image encoder)",
                                 type="input", node=run.ctx.node, field="inputs.cond")
            e = e[:, None]  # [batch, images, dim], as the pipelines lay image embeddings out
            if run.do_cfg:
                e = torch.cat([torch.zeros_like(e), e])
            self.embeds.append(e)

    def wrap(self, unet: UNetFn) -> UNetFn:
        """The UNet call on a weight-sharing copy that carries the adapters."""
        from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0

        module = getattr(unet, "module", None)
        if module is None:
            raise BlockError(f"node {self.run.ctx.node!r}: image prompts need the torch UNet (sd.denoise, "
                             f"sd.inpaint), not this one", type="input", node=self.run.ctx.node,
                             field="inputs.cond")
        adapted = shared_weights_copy(module)
        with _quiet_diffusers():  # it warns about a dtype cast that changes nothing here
            adapted._load_ip_adapter_weights(self.weights, low_cpu_mem_usage=False)
        scales = [float(item["scale"]) for item in self.items]
        for proc in adapted.attn_processors.values():
            if isinstance(proc, IPAdapterAttnProcessor | IPAdapterAttnProcessor2_0):
                proc.scale = scales
        inner = torch_unet(adapted)
        embeds = self.embeds

        def call(sample_in: Any, t: Any, *, added_cond_kwargs: Any = None, **kwargs: Any) -> Any:
            added = {**(added_cond_kwargs or {}), "image_embeds": embeds}
            return inner(sample_in, t, added_cond_kwargs=added, **kwargs)

        call.module = adapted  # type: ignore[attr-defined]
        return call


BLOCKS = [IPAdapter]
