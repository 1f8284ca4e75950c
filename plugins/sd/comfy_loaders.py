"""ComfyUI's model loaders: model references in the ``model`` params of the blocks that use them.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
CheckpointLoader(Simple), VAELoader     a :class:`~orchestrator.Model` (``MODEL``, ``CLIP``,
                                        ``VAE``): our name through the model map
UNETLoader, CLIPLoader, DualCLIPLoader  a model of parts (``@auto``/``@sdxl`` with ``parts``: the
                                        files, see ``orchestrator.models.parts``)
LoraLoader(ModelOnly)                   its LoRAs, with their weights
CLIPSetLastLayer                        its ``clip_skip``
======================================  =====================================================

Nothing is built for them: the blocks that read a model (``sd.encode_prompt``,
``sd.ksampler``, ``sd.vae_decode``, ...) name it in their ``model`` param, and the worker
loads it there.
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Model, NodeContext, Unresolved


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
    """CLIPLoader (``stable_diffusion``: an SD 1.x/2.x text encoder file) and DualCLIPLoader (``sdxl``:
    CLIP-L and CLIP-G files, in either order): a CLIP of parts, files from clip/ (text_encoders/)."""
    dual = nc.node.class_type == "DualCLIPLoader"
    kind = str(nc.widget("type", "sdxl" if dual else "stable_diffusion"))
    if kind != ("sdxl" if dual else "stable_diffusion"):
        raise Unresolved(f"type {kind!r} is not a Stable Diffusion text encoder (SD 1.x/2.x: CLIPLoader "
                         f"'stable_diffusion'; SDXL: DualCLIPLoader 'sdxl')", field="type")
    widgets = ("clip_name1", "clip_name2") if dual else ("clip_name",)
    parts = []
    for component, widget in zip(("text_encoder", "text_encoder_2"), widgets, strict=False):
        comfy = str(nc.widget(widget) or "")
        if not comfy:
            raise Unresolved(f"no {widget}", field=widget)
        parts.append((component, nc.model_name(comfy, widget)[0]))
    return [Model("CLIP", "@sdxl" if dual else "@auto", parts=tuple(parts),
                  comfy_name=str(nc.widget(widgets[0])))]


def unet_loader(nc: NodeContext) -> list[Any]:
    """UNETLoader: a UNet file from unet/ (diffusion_models/); its family read from the file."""
    comfy = str(nc.widget("unet_name") or "")
    if not comfy:
        raise Unresolved("no unet_name", field="unet_name")
    name, _ = nc.model_name(comfy, "unet_name")
    dtype = str(nc.widget("weight_dtype", "default"))
    if dtype != "default":
        nc.warn(f"weight_dtype {dtype!r} (a lower precision) is not applied: the UNet runs in the worker's "
                f"dtype", field="weight_dtype", value=dtype)
    return [Model("MODEL", "@auto", parts=(("unet", name),), comfy_name=comfy)]


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
    _c("DualCLIPLoader", clip_loader),
    _c("UNETLoader", unet_loader),
    _c("LoraLoader", lora_loader),
    _c("LoraLoaderModelOnly", lora_loader),
    _c("CLIPSetLastLayer", clip_set_last_layer),
)
