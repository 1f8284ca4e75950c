"""Mappings of ComfyUI's core node classes to our blocks.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
CheckpointLoader(Simple), VAELoader,    model references in the ``model`` params of the
CLIPLoader, LoraLoader(ModelOnly),      blocks that use them (names through the model map;
CLIPSetLastLayer                        LoRAs with their weights; ``clip_skip``)
CLIPTextEncode (positive + negative)    ``sd.encode_prompt`` (see :mod:`.conditioning`)
KSampler, KSamplerAdvanced              ``sd.ksampler`` (ComfyUI's samplers natively, see
                                        :mod:`.sampling`); without it ``sd.denoise``
EmptyLatentImage                        ``sd.empty_latent``
VAE{Encode,Decode}(Tiled)               ``sd.vae_encode`` / ``sd.vae_decode``
VAEEncodeForInpaint, SetLatentNoiseMask a masked latent: ``sd.vae_encode_for_inpaint`` / a noise
                                        mask for ``sd.ksampler`` (``sd.inpaint`` without them)
LatentUpscale(By)                       ``sd.latent_upscale``
LoadImage / LoadImageMask               ``image.load`` (+ ``image.load_mask`` of the alpha)
SaveImage, PreviewImage                 ``image.save``
ImageScale(By)                          ``image.resize``
ImagePadForOutpaint, ImageCrop          ``image.pad``, ``image.crop``
ImageBlend, Canny                       ``image.blend``, ``image.canny``
GrowMask, InvertMask                    ``image.mask_grow``
ImageToMask, MaskToImage                ``image.image_to_mask``, ``image.mask_to_image``
Primitive{Int,Float,String,Boolean}     constants for the widgets they feed
======================================  =====================================================

Mapped only when the catalog has the block (else reported as unsupported):
``ConditioningCombine`` -> ``sd.cond_combine``, ``ConditioningSetArea`` -> ``cond.set_area``,
``ConditioningZeroOut`` on a positive -> ``cond.zero_out``, ``ControlNetLoader`` +
``ControlNetApply(Advanced)`` -> ``sd.controlnet``, ``LatentComposite`` ->
``sd.latent_composite``, ``UpscaleModelLoader`` + ``ImageUpscaleWithModel`` ->
``image.upscale_model`` (ESRGAN-family files, as ComfyUI loads them; ``onnx.image_model`` or
``onnx.run`` where a catalog has no such block), ``ImageScaleToTotalPixels`` -> ``image.resize``
with a ``megapixels`` param. Their ports and params are found in the catalog by type
and by the usual names, so the blocks may name them as they like.

ComfyUI's sampler runs ``steps`` steps of a schedule lengthened by ``1 / denoise``;
ours (as diffusers) runs ``steps * strength`` of ``steps``: ``denoise`` becomes
``strength`` and ``steps`` stays.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from graphs.comfy import conditioning
from graphs.comfy.cond_nodes import COND_MAPPINGS
from graphs.comfy.mapping import (
    ComfyMapping,
    Cond,
    Const,
    Data,
    Lazy,
    MaskedLatent,
    Model,
    NodeContext,
    PairOp,
    Resource,
    Unresolved,
)
from graphs.comfy.merge_nodes import MERGE_MAPPINGS
from graphs.comfy.primitives import PRIMITIVE_MAPPINGS
from graphs.comfy.samplers import map_sampler
from graphs.comfy.sampling import SAMPLING_BLOCKS, SAMPLING_MAPPINGS
from graphs.model import TileSpec

if TYPE_CHECKING:
    from graphs.comfy.importer import Importer

IMAGE_METHODS = {"nearest-exact": "nearest", "bilinear": "bilinear", "area": "area", "bicubic": "bicubic",
                 "lanczos": "lanczos"}
LATENT_METHODS = {"nearest-exact": "nearest-exact", "bilinear": "bilinear", "area": "area",
                  "bicubic": "bicubic"}


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


# -- loaders -------------------------------------------------------------------------------------


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


def resource(kind: str, widget: str) -> Any:
    def convert(nc: NodeContext) -> list[Any]:
        name, _ = nc.model_name(str(nc.widget(widget) or ""), widget)
        return [Resource(kind, name)]

    return convert


# -- conditioning -----------------------------------------------------------------------------


def clip_text_encode(nc: NodeContext) -> list[Any]:
    return [Cond(nc.id, "text", text=str(nc.widget("text", "")), clip=nc.model("clip"))]


def _cond_arg(nc: NodeContext, name: str) -> Any:
    value = nc.input(name)
    if not isinstance(value, (Cond, Data)) or value.type != "CONDITIONING":
        raise Unresolved(f"input {name!r} is not conditioning", field=name)
    return value


def _controlnet_values(nc: NodeContext) -> dict[tuple[str, ...], Any]:
    net = nc.input("control_net")
    if not isinstance(net, Resource):
        raise Unresolved("input 'control_net' is not a ControlNet", field="control_net")
    values: dict[tuple[str, ...], Any] = {
        ("controlnet", "model", "control_model", "name"): net.name,
        ("strength", "scale", "conditioning_scale", "weight"): nc.widget("strength", 1.0)}
    if nc.node.class_type == "ControlNetApplyAdvanced":
        values[("start", "start_percent", "guidance_start")] = nc.widget("start_percent", 0.0)
        values[("end", "end_percent", "guidance_end")] = nc.widget("end_percent", 1.0)
    return values


def _controlnet_build(nc: NodeContext, image: Data, values: dict[tuple[str, ...], Any]) -> Any:
    block = "sd.controlnet"

    def build(imp: Importer, cond: Data) -> Data:
        inputs = {imp.port(block, "CONDITIONING", "input"): cond, imp.port(block, "IMAGE", "input"): image}
        node = nc.add(block, inputs=inputs, params=imp.params_for(block, values), suffix=_again(imp, nc))
        return _out(node, imp.port(block, "CONDITIONING", "output"), "CONDITIONING")

    return build


def controlnet_apply(nc: NodeContext) -> list[Any]:
    image, values = nc.data("image"), _controlnet_values(nc)
    assert image is not None
    one = _controlnet_build(nc, image, values)
    return [Cond(nc.id, "op", args=(_cond_arg(nc, "conditioning"),),
                 build=lambda imp, refs: one(imp, refs[0]))]


def controlnet_apply_advanced(nc: NodeContext) -> list[Any]:
    image, values = nc.data("image"), _controlnet_values(nc)
    assert image is not None
    pair = PairOp(nc.id, _cond_arg(nc, "positive"), _cond_arg(nc, "negative"),
                  _controlnet_build(nc, image, values))
    return [Cond(nc.id, "pair", pair=pair, slot=0), Cond(nc.id, "pair", pair=pair, slot=1)]


def _again(imp: Importer, nc: NodeContext) -> str:
    """A suffix for the second and later nodes built from one ComfyUI node."""
    return nc.next_suffix()


# -- sampling -----------------------------------------------------------------------------------


def ksampler(nc: NodeContext) -> list[Any]:
    advanced = nc.node.class_type == "KSamplerAdvanced"
    model = nc.model("model")
    cond = conditioning.build(nc.importer, nc, nc.input("positive"), nc.input("negative"))
    latent = nc.input("latent_image")
    steps = int(nc.widget("steps", 20))
    sampler, why = map_sampler(str(nc.widget("sampler_name", "euler")), str(nc.widget("scheduler", "normal")),
                               nc.importer.samplers())
    if why:
        nc.warn(why, field="sampler_name", value=nc.widget("sampler_name"), used=sampler)
    seed = int(nc.widget("noise_seed" if advanced else "seed", 0))
    if seed > 2**63 - 1 or seed < 0:
        nc.warn(f"seed {seed} is outside 0..2**63-1; using it modulo 2**63", field="seed", value=seed)
        seed %= 2**63
    params: dict[str, Any] = {"model": model.ref(), "steps": steps, "cfg": float(nc.widget("cfg", 8.0)),
                              "sampler": sampler, "seed": seed}
    strength = _advanced_strength(nc, steps) if advanced else float(nc.widget("denoise", 1.0))
    if strength != 1.0:
        params["strength"] = strength
    if isinstance(latent, MaskedLatent):
        node = nc.add("sd.inpaint", inputs={"cond": cond, "image": latent.image, "mask": latent.mask},
                      params=params, meta={"latent_id": latent.node})
        return [_out(node, "latent", "LATENT", size=latent.size)]
    if not isinstance(latent, Data) or latent.type != "LATENT":
        raise Unresolved("input 'latent_image' is not a latent", field="latent_image")
    node = nc.add("sd.denoise", inputs={"cond": cond, "latent": latent}, params=params)
    return [_out(node, "latent", "LATENT", size=latent.size)]


def _advanced_strength(nc: NodeContext, steps: int) -> float:
    start = max(0, int(nc.widget("start_at_step", 0)))
    end = int(nc.widget("end_at_step", 10000))
    if nc.widget("add_noise", "enable") == "disable":
        nc.warn("add_noise 'disable' is not supported; ours adds noise for the steps it runs",
                field="add_noise")
    if end < steps:
        nc.warn(f"end_at_step {end} < steps {steps}: ours runs to the last step", field="end_at_step",
                value=end)
        if nc.widget("return_with_leftover_noise", "disable") == "enable":
            nc.warn("return_with_leftover_noise is not supported; the latent is fully denoised",
                    field="return_with_leftover_noise")
    if start <= 0 or steps <= 0:
        return 1.0
    if start >= steps:
        nc.warn(f"start_at_step {start} >= steps {steps}: no step would run; ours runs one",
                field="start_at_step")
        start = steps - 1
    strength = (steps - start) / steps
    while int(steps * strength) < steps - start:  # so that ours runs exactly steps - start steps
        strength = math.nextafter(strength, 2.0)
    return min(1.0, strength)


# -- latents -------------------------------------------------------------------------------------


def empty_latent(nc: NodeContext) -> list[Any]:
    w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
    batch = int(nc.widget("batch_size", 1))
    node = nc.add("sd.empty_latent", params={"width": w, "height": h, "batch": batch})
    nc.importer.latents.append(node)
    return [_out(node, "latent", "LATENT", size=(w, h))]


def vae_encode(nc: NodeContext) -> list[Any]:
    pixels, vae = nc.data("pixels"), nc.model("vae")
    assert pixels is not None
    node = nc.add("sd.vae_encode", inputs={"image": pixels}, params={"model": vae.ref(loras=False)})
    return [_out(node, "latent", "LATENT", size=pixels.size, source_image=pixels)]


def vae_decode(nc: NodeContext) -> list[Any]:
    samples, vae = nc.data("samples"), nc.model("vae")
    assert samples is not None
    node = nc.add("sd.vae_decode", inputs={"latent": samples}, params={"model": vae.ref(loras=False)})
    return [_out(node, "image", "IMAGE", size=samples.size)]


def vae_encode_for_inpaint(nc: NodeContext) -> list[Any]:
    pixels, vae, mask = nc.data("pixels"), nc.model("vae"), nc.data("mask")
    assert pixels is not None and mask is not None
    grow = int(nc.widget("grow_mask_by", 6))
    if grow > 0:
        node = nc.add("image.mask_grow", inputs={"mask": mask}, params={"grow": grow}, suffix="_grow")
        mask = _out(node, "mask", "MASK", size=mask.size)

    def plain() -> Data:
        nc.warn("its masked latent is read by a node that is not a sampler: the mask is dropped there",
                field="mask")
        node = nc.add("sd.vae_encode", inputs={"image": pixels}, params={"model": vae.ref(loras=False)},
                      suffix="_latent")
        return _out(node, "latent", "LATENT", size=pixels.size, source_image=pixels)

    return [MaskedLatent(nc.id, pixels, mask, _once(plain))]


def set_latent_noise_mask(nc: NodeContext) -> list[Any]:
    samples, mask = nc.input("samples"), nc.data("mask")
    assert mask is not None
    if isinstance(samples, MaskedLatent):
        return [MaskedLatent(nc.id, samples.image, mask, samples.plain)]
    if isinstance(samples, Data) and samples.source_image is not None:
        return [MaskedLatent(nc.id, samples.source_image, mask, lambda: samples)]
    nc.error("unsupported_input", "the latent does not come from a VAEEncode of an image, which ours needs "
             "to inpaint; the mask is left out", field="samples")
    return [samples]


def latent_upscale(nc: NodeContext) -> list[Any]:
    samples = nc.data("samples")
    assert samples is not None
    if nc.has_block("sd.latent_resize"):
        return _latent_resize(nc, samples)
    method = str(nc.widget("upscale_method", "nearest-exact"))
    mode = LATENT_METHODS.get(method, "bicubic")
    if method not in LATENT_METHODS:
        nc.warn(f"upscale_method {method!r} is not available; using {mode!r}", field="upscale_method")
    if nc.node.class_type == "LatentUpscaleBy":
        scale = float(nc.widget("scale_by", 1.5))
        size = (round(samples.size[0] * scale), round(samples.size[1] * scale)) if samples.size else None
    else:
        scale, size = _scale_to(nc, samples)
    node = nc.add("sd.latent_upscale", inputs={"latent": samples}, params={"scale": scale, "mode": mode})
    return [_out(node, "latent", "LATENT", size=size)]


def _latent_resize(nc: NodeContext, samples: Data) -> list[Any]:
    """LatentUpscale (an exact size, crop) and LatentUpscaleBy on ``sd.latent_resize``, every method."""
    method = str(nc.widget("upscale_method", "nearest-exact"))
    if method not in ("nearest-exact", "bilinear", "area", "bicubic", "bislerp"):
        raise Unresolved(f"upscale_method {method!r} is not one of ComfyUI's latent methods",
                         field="upscale_method")
    params: dict[str, Any] = {"method": method}
    size = None
    if nc.node.class_type == "LatentUpscaleBy":
        params["scale"] = float(nc.widget("scale_by", 1.5))
        if samples.size:
            scale = params["scale"]
            size = (round(samples.size[0] / 8 * scale) * 8, round(samples.size[1] / 8 * scale) * 8)
    else:
        w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
        params.update(width=w, height=h, crop=str(nc.widget("crop", "disabled")))
        if w and h:
            size = (max(64, w) // 8 * 8, max(64, h) // 8 * 8)
        elif not w and not h:
            size = samples.size
    node = nc.add("sd.latent_resize", inputs={"latent": samples}, params=params)
    return [_out(node, "latent", "LATENT", size=size)]


def _scale_to(nc: NodeContext, samples: Data) -> tuple[float, tuple[int, int] | None]:
    w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
    if samples.size is None:
        raise Unresolved("the size of its input latent is not known at import, and sd.latent_upscale "
                         "takes a scale", field="width")
    sw, sh = samples.size
    if w == 0 and h == 0:
        return 1.0, samples.size
    sx = w / sw if w else h / sh
    sy = h / sh if h else sx
    if abs(sx - sy) > 1e-6:
        nc.warn(f"{sw}x{sh} -> {w}x{h} changes the aspect ratio; ours scales both sides by {sx:g}",
                field="height")
    if nc.widget("crop", "disabled") != "disabled":
        nc.warn("crop is not supported", field="crop")
    return round(sx, 6), (round(sw * sx), round(sh * sx))


def latent_composite(nc: NodeContext) -> list[Any]:
    block = "sd.latent_composite"
    to, src = nc.data("samples_to"), nc.data("samples_from")
    ports = nc.importer.ports(block, "LATENT", "input") or ["latent", "source"]
    values = {("x",): int(nc.widget("x", 0)), ("y",): int(nc.widget("y", 0)),
              ("feather",): int(nc.widget("feather", 0))}
    node = nc.add(block, inputs=dict(zip(ports, [to, src], strict=False)),
                  params=nc.importer.params_for(block, values))
    assert to is not None
    return [_out(node, nc.importer.port(block, "LATENT", "output"), "LATENT", size=to.size)]


# -- images --------------------------------------------------------------------------------------


def _input_file(name: Any) -> str:
    """``"clipspace/x.png [input]"`` -> ``"clipspace/x.png"``."""
    return re.sub(r"\s*\[(input|output|temp)\]$", "", str(name or "")) or "input.png"


def load_image(nc: NodeContext) -> list[Any]:
    path = _input_file(nc.widget("image"))

    def image() -> Data:
        return _out(nc.add("image.load", params={"path": path}), "image", "IMAGE")

    def mask() -> Data:
        node = nc.add("image.load_mask", params={"path": path, "channel": "alpha", "invert": True},
                      suffix="_mask")
        return _out(node, "mask", "MASK")

    return [Lazy(image), Lazy(mask)]


def load_image_mask(nc: NodeContext) -> list[Any]:
    channel = str(nc.widget("channel", "alpha"))
    params = {"path": _input_file(nc.widget("image")), "channel": channel, "invert": channel == "alpha"}
    return [_out(nc.add("image.load_mask", params=params), "mask", "MASK")]


def save_image(nc: NodeContext) -> list[Any]:
    images = nc.data("images")
    preview = nc.node.class_type == "PreviewImage"
    name = "preview" if preview else file_name(str(nc.widget("filename_prefix", "ComfyUI")))
    nc.add("image.save", inputs={"image": images}, params={"name": nc.importer.unique_name(name)})
    return []


def file_name(prefix: str) -> str:
    last = re.sub(r"%[^%]*%", "", prefix.replace("\\", "/")).rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_\-]+", "_", last).strip("_-")
    return name[:100] or "ComfyUI"


def image_scale(nc: NodeContext) -> list[Any]:
    image = nc.data("image")
    assert image is not None
    method = str(nc.widget("upscale_method", "nearest-exact"))
    params: dict[str, Any] = {"method": IMAGE_METHODS.get(method, "bicubic")}
    if method not in IMAGE_METHODS:
        nc.warn(f"upscale_method {method!r} is not available; using 'bicubic'", field="upscale_method")
    size = None
    if nc.node.class_type == "ImageScaleBy":
        params["scale"] = float(nc.widget("scale_by", 1.0))
        if image.size:
            size = (round(image.size[0] * params["scale"]), round(image.size[1] * params["scale"]))
    elif nc.node.class_type == "ImageScaleToTotalPixels":
        params["megapixels"] = float(nc.widget("megapixels", 1.0))
    else:
        w, h = int(nc.widget("width", 512)), int(nc.widget("height", 512))
        if w:
            params["width"] = w
        if h:
            params["height"] = h
        if not w and not h:
            return [image]
        if w and h:
            params["aspect"] = "crop" if nc.widget("crop", "disabled") == "center" else "stretch"
            size = (w, h)
    node = nc.add("image.resize", inputs={"image": image}, params=params)
    return [_out(node, "image", "IMAGE", size=size)]


def image_pad(nc: NodeContext) -> list[Any]:
    image = nc.data("image")
    sides = {k: int(nc.widget(k, 0)) for k in ("left", "top", "right", "bottom")}
    if nc.has_block("sd.outpaint_pad"):  # ComfyUI's feathered mask, exactly
        node = nc.add("sd.outpaint_pad", inputs={"image": image},
                      params={**sides, "feathering": int(nc.widget("feathering", 40))})
        size = None
        if image is not None and image.size:
            size = (image.size[0] + sides["left"] + sides["right"],
                    image.size[1] + sides["top"] + sides["bottom"])
        return [_out(node, "image", "IMAGE", size=size), _out(node, "mask", "MASK", size=size)]
    if int(nc.widget("feathering", 40)) > 0:
        nc.warn(f"feathering {nc.widget('feathering', 40)} is not supported: the mask has a hard edge",
                field="feathering")
    node = nc.add("image.pad", inputs={"image": image},
                  params={**sides, "mode": "constant", "color": [0.5, 0.5, 0.5]})
    assert image is not None
    size = (image.size[0] + sides["left"] + sides["right"], image.size[1] + sides["top"] + sides["bottom"]) \
        if image.size else None
    return [_out(node, "image", "IMAGE", size=size), _out(node, "mask", "MASK", size=size)]


UPSCALE_BLOCKS = ("image.upscale_model", "onnx.image_model", "onnx.run")  # the first the catalog has
UPSCALE_TILE, UPSCALE_OVERLAP = 512, 32  # ImageUpscaleWithModel's tiles (memory-bounded, spread over workers)


def image_upscale_with_model(nc: NodeContext) -> list[Any]:
    model = nc.input("upscale_model")
    if not isinstance(model, Resource):
        raise Unresolved("input 'upscale_model' is not an upscale model", field="upscale_model")
    block = next(b for b in UPSCALE_BLOCKS if nc.has_block(b))
    node = nc.add(block, inputs={"image": nc.data("image")},
                  params=nc.importer.params_for(block, {("model", "path", "file"): model.name}))
    if block == "image.upscale_model":  # ComfyUI upscales in 512 px tiles overlapping by 32: so do we
        nc.importer.graph_nodes[node].tile = TileSpec(size=UPSCALE_TILE, overlap=UPSCALE_OVERLAP)
    return [_out(node, "image", "IMAGE")]


def canny(nc: NodeContext) -> list[Any]:
    # ComfyUI's Canny is kornia's on 0..1 images (blur sigma 1, L2 gradient); OpenCV's is on 0..255
    params = {"low": round(float(nc.widget("low_threshold", 0.4)) * 255, 3),
              "high": round(float(nc.widget("high_threshold", 0.8)) * 255, 3),
              "blur": 1.0, "l2_gradient": True}
    node = nc.add("image.canny", inputs={"image": nc.data("image")}, params=params)
    return [_out(node, "image", "IMAGE")]


def primitive(kind: str) -> Any:
    return lambda nc: [Const(kind, nc.widget("value"))]


def _once(make: Any) -> Any:
    done: list[Data] = []

    def call() -> Data:
        if not done:
            done.append(make())
        return done[0]

    return call


def _simple(class_type: str, block: str, inputs: dict[str, str], params: dict[str, Any], outputs: list[str],
            output_types: list[str], **kw: Any) -> ComfyMapping:
    return ComfyMapping(class_type, block=block, inputs=inputs, params=params, outputs=outputs,
                        output_types=output_types, **kw)


def _c(class_type: str, fn: Any, requires: tuple[str, ...] = (), output_node: bool = False) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=requires, output_node=output_node)


CORE_MAPPINGS: tuple[ComfyMapping, ...] = (
    _c("CheckpointLoaderSimple", checkpoint),
    _c("CheckpointLoader", checkpoint),
    _c("VAELoader", vae_loader),
    _c("CLIPLoader", clip_loader),
    _c("LoraLoader", lora_loader),
    _c("LoraLoaderModelOnly", lora_loader),
    _c("CLIPSetLastLayer", clip_set_last_layer),
    _c("CLIPTextEncode", clip_text_encode, ("sd.encode_prompt",)),
    *COND_MAPPINGS,  # ConditioningCombine, SetArea(Percentage/Strength), SetMask, ZeroOut, ...
    _c("ControlNetLoader", resource("CONTROL_NET", "control_net_name"), ("sd.controlnet",)),
    _c("ControlNetApply", controlnet_apply, ("sd.controlnet",)),
    _c("ControlNetApplyAdvanced", controlnet_apply_advanced, ("sd.controlnet",)),
    *SAMPLING_MAPPINGS,  # KSampler(Advanced) and the custom-sampling nodes: graphs/comfy/sampling.py
    _c("EmptyLatentImage", empty_latent, ("sd.empty_latent",)),
    _c("VAEEncode", vae_encode, ("sd.vae_encode",)),
    _c("VAEDecode", vae_decode, ("sd.vae_decode",)),
    _c("VAEEncodeTiled", vae_encode, ("sd.vae_encode",)),
    _c("VAEDecodeTiled", vae_decode, ("sd.vae_decode",)),
    _c("VAEEncodeForInpaint", vae_encode_for_inpaint, ("sd.inpaint", "image.mask_grow")),
    _c("SetLatentNoiseMask", set_latent_noise_mask, ("sd.inpaint",)),
    _c("LatentUpscale", latent_upscale, ("sd.latent_resize|sd.latent_upscale",)),
    _c("LatentUpscaleBy", latent_upscale, ("sd.latent_resize|sd.latent_upscale",)),
    _c("LatentComposite", latent_composite, ("sd.latent_composite",)),
    _simple("LatentBlend", "sd.latent_blend", {"samples1": "latent", "samples2": "source"},
            {"factor": "blend_factor"}, ["latent"], ["LATENT"], widgets=("blend_factor",),
            defaults={"blend_factor": 0.5}),
    _c("LoadImage", load_image, ("image.load", "image.load_mask")),
    _c("LoadImageMask", load_image_mask, ("image.load_mask",)),
    _c("SaveImage", save_image, ("image.save",), output_node=True),
    _c("PreviewImage", save_image, ("image.save",), output_node=True),
    _c("ImageScale", image_scale, ("image.resize",)),
    _c("ImageScaleBy", image_scale, ("image.resize",)),
    _c("ImageScaleToTotalPixels", image_scale, ("image.resize:megapixels",)),
    _c("ImagePadForOutpaint", image_pad, ("sd.outpaint_pad|image.pad",)),
    _c("Canny", canny, ("image.canny",)),
    _c("UpscaleModelLoader", resource("UPSCALE_MODEL", "model_name"), ("|".join(UPSCALE_BLOCKS),)),
    _c("ImageUpscaleWithModel", image_upscale_with_model, ("|".join(UPSCALE_BLOCKS),)),
    _simple("ImageCrop", "image.crop", {"image": "image"},
            {"x": "x", "y": "y", "width": "width", "height": "height"}, ["image"], ["IMAGE"]),
    _simple("ImageBlend", "image.blend", {"image1": "a", "image2": "b"},
            {"opacity": "blend_factor", "mode": "blend_mode"}, ["image"], ["IMAGE"]),
    _simple("GrowMask", "image.mask_grow", {"mask": "mask"}, {"grow": "expand"}, ["mask"], ["MASK"]),
    _simple("InvertMask", "image.mask_grow", {"mask": "mask"}, {"invert": lambda w: True}, ["mask"],
            ["MASK"]),
    _simple("ImageToMask", "image.image_to_mask", {"image": "image"}, {"channel": "channel"}, ["mask"],
            ["MASK"]),
    _simple("MaskToImage", "image.mask_to_image", {"mask": "mask"}, {}, ["image"], ["IMAGE"]),
    _c("PrimitiveInt", primitive("INT")),
    _c("PrimitiveFloat", primitive("FLOAT")),
    _c("PrimitiveString", primitive("STRING")),
    _c("PrimitiveStringMultiline", primitive("STRING")),
    _c("PrimitiveBoolean", primitive("BOOLEAN")),
    *PRIMITIVE_MAPPINGS,  # string, math and switch nodes, computed at import
    *MERGE_MAPPINGS,  # model/CLIP merging and hypernetworks: derived model references (merge_nodes.py)
)

# the blocks these mappings use that this project ships; the catalog to assume when none is given
BUILTIN_BLOCKS: frozenset[str] = frozenset({
    "sd.encode_prompt", "sd.denoise", "sd.inpaint", "sd.empty_latent", "sd.vae_encode", "sd.vae_decode",
    "sd.latent_upscale", "image.load", "image.load_mask", "image.save", "image.resize", "image.pad",
    "image.crop", "image.blend", "image.canny", "image.mask_grow", "image.image_to_mask",
    "image.mask_to_image", "onnx.run", "image.upscale_model",
    "sd.cond_combine", "cond.set_area", "cond.set_strength", "cond.set_mask", "cond.timestep_range",
    "cond.average", "cond.concat", "cond.zero_out", "sd.latent_resize", "sd.outpaint_pad",
    "sd.latent_composite", "sd.latent_blend", "cond.sdxl_size",
}) | SAMPLING_BLOCKS
