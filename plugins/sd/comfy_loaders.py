"""ComfyUI's model loaders: model references in the ``model`` params of the blocks that use them.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
CheckpointLoader(Simple), VAELoader,    a :class:`~orchestrator.Model` (``MODEL``, ``CLIP``,
CLIPLoader                              ``VAE``): our name through the model map
LoraLoader(ModelOnly)                   its LoRAs, with their weights
CLIPSetLastLayer                        its ``clip_skip``
======================================  =====================================================

Nothing is built for them: the blocks that read a model (``sd.encode_prompt``,
``sd.ksampler``, ``sd.vae_decode``, ...) name it in their ``model`` param, and the worker
loads it there.
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Model, NodeContext


def checkpoint(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("ckpt_name") or "")
    name, mapped = nc.model_name(comfy, "ckpt_name")
    return [Model(t, name, mapped=mapped, comfy_name=comfy) for t in ("MODEL", "CLIP", "VAE")]


def vae_loader(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("vae_name") or "")
    name, mapped = nc.importer.lookup_model(comfy)
    if name is None and nc.importer.primary_model is not None:
        primary = nc.importer.primary_model
        nc.warn(f"VAE {comfy!r} is not in the model map; decoding and encoding use the VAE of "
                f"{primary!r}", field="vae_name", value=comfy)
        return [Model("VAE", primary, comfy_name=comfy)]
    name, mapped = nc.model_name(comfy, "vae_name")
    return [Model("VAE", name, mapped=mapped, comfy_name=comfy)]


def clip_loader(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("clip_name") or "")
    name, mapped = nc.model_name(comfy, "clip_name")
    return [Model("CLIP", name, mapped=mapped, comfy_name=comfy)]


def lora_loader(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("lora_name") or "")
    path, _ = nc.model_name(comfy, "lora_name")
    model = nc.model("model").with_lora(path, float(nc.widget("strength_model", 1.0)))
    if nc.node.class_type == "LoraLoaderModelOnly":
        return [model]
    clip = nc.model("clip").with_lora(path, float(nc.widget("strength_clip", 1.0)))
    return [model, clip]


def clip_set_last_layer(nc: NodeContext) -> list[Any]:
    clip = nc.model("clip")
    stop = int(nc.widget("stop_at_clip_layer", -1))
    skip = -stop - 1 if stop < 0 else 0
    return [Model(clip.type, clip.name, clip.loras, skip or None, clip.mapped, clip.comfy_name)]


def _c(class_type: str, fn: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=())


MAPPINGS: tuple[ComfyMapping, ...] = (
    _c("CheckpointLoaderSimple", checkpoint),
    _c("CheckpointLoader", checkpoint),
    _c("VAELoader", vae_loader),
    _c("CLIPLoader", clip_loader),
    _c("LoraLoader", lora_loader),
    _c("LoraLoaderModelOnly", lora_loader),
    _c("CLIPSetLastLayer", clip_set_last_layer),
)
