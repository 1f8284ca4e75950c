"""ComfyUI's image and mask nodes, mapped to the ``image.*`` blocks.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
LoadImage / LoadImageMask               ``image.load`` (+ ``image.load_mask`` of the alpha)
SaveImage, PreviewImage                 ``image.save``
ImageScale(By)                          ``image.scale`` (``image.resize`` without it)
ImagePadForOutpaint                     ``sd.outpaint_pad`` (ComfyUI's feathered mask), else
                                        ``image.pad``
ImageBlend, Canny                       ``image.mix`` (``image.blend`` without it), ``image.canny``
InvertMask                              ``image.mask_grow``
ImageToMask, MaskToImage                ``image.image_to_mask``, ``image.mask_to_image``
======================================  =====================================================

(The utility nodes, ImageCrop and GrowMask among them, are mapped beside their blocks too.)
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator import ComfyMapping, Data, Lazy, NodeContext

IMAGE_METHODS = {"nearest-exact": "nearest", "bilinear": "bilinear", "area": "area", "bicubic": "bicubic",
                 "lanczos": "lanczos"}


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


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
    name = nc.save_name("preview" if preview else str(nc.widget("filename_prefix", "ComfyUI")))
    nc.add("image.save", inputs={"image": images}, params={"name": name})
    return []


def image_scale(nc: NodeContext) -> list[Any]:
    image = nc.data("image")
    assert image is not None
    if nc.has_block("image.scale"):  # ComfyUI's common_upscale, exactly (plugins/image/comfy_scale.py)
        return _image_scale_exact(nc, image)
    method = str(nc.widget("upscale_method", "nearest-exact"))
    params: dict[str, Any] = {"method": IMAGE_METHODS.get(method, "bicubic")}
    if method not in IMAGE_METHODS:
        nc.warn(f"upscale_method {method!r} is not available; using 'bicubic'", field="upscale_method")
    size = None
    if nc.node.class_type == "ImageScaleBy":
        params["scale"] = float(nc.widget("scale_by", 1.0))
        if image.size:
            size = (round(image.size[0] * params["scale"]), round(image.size[1] * params["scale"]))
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


def image_blend(nc: NodeContext) -> list[Any]:
    """ImageBlend: ``image.mix`` (ComfyUI's arithmetic exactly), else ``image.blend`` (a compositor)."""
    image1, image2 = nc.data("image1"), nc.data("image2")
    assert image1 is not None and image2 is not None
    factor, mode = float(nc.widget("blend_factor", 0.5)), str(nc.widget("blend_mode", "normal"))
    if nc.has_block("image.mix"):
        node = nc.add("image.mix", inputs={"image1": image1, "image2": image2},
                      params={"blend_factor": factor, "blend_mode": mode})
    else:
        node = nc.add("image.blend", inputs={"a": image1, "b": image2},
                      params={"opacity": factor, "mode": mode})
    return [_out(node, "image", "IMAGE", size=image1.size)]


def _image_scale_exact(nc: NodeContext, image: Data) -> list[Any]:
    params: dict[str, Any] = {"upscale_method": str(nc.widget("upscale_method", "nearest-exact"))}
    size = None
    if nc.node.class_type == "ImageScaleBy":
        params["scale_by"] = float(nc.widget("scale_by", 1.0))
        if image.size:
            size = (round(image.size[0] * params["scale_by"]), round(image.size[1] * params["scale_by"]))
    else:
        params.update(width=int(nc.widget("width", 512)), height=int(nc.widget("height", 512)),
                      crop=str(nc.widget("crop", "disabled")))
        if not params["width"] and not params["height"]:
            return [image]
        if params["width"] and params["height"]:
            size = (params["width"], params["height"])
    node = nc.add("image.scale", inputs={"image": image}, params=params)
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


def canny(nc: NodeContext) -> list[Any]:
    # ComfyUI's Canny is kornia's on 0..1 images (blur sigma 1, L2 gradient); OpenCV's is on 0..255
    params = {"low": round(float(nc.widget("low_threshold", 0.4)) * 255, 3),
              "high": round(float(nc.widget("high_threshold", 0.8)) * 255, 3),
              "blur": 1.0, "l2_gradient": True}
    node = nc.add("image.canny", inputs={"image": nc.data("image")}, params=params)
    return [_out(node, "image", "IMAGE")]


def _c(class_type: str, fn: Any, requires: tuple[str, ...], output_node: bool = False) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=requires, output_node=output_node)


def _simple(class_type: str, block: str, inputs: dict[str, str], params: dict[str, Any], outputs: list[str],
            output_types: list[str]) -> ComfyMapping:
    return ComfyMapping(class_type, block=block, inputs=inputs, params=params, outputs=outputs,
                        output_types=output_types)


MAPPINGS: tuple[ComfyMapping, ...] = (
    _c("LoadImage", load_image, ("image.load", "image.load_mask")),
    _c("LoadImageMask", load_image_mask, ("image.load_mask",)),
    _c("SaveImage", save_image, ("image.save",), output_node=True),
    _c("PreviewImage", save_image, ("image.save",), output_node=True),
    _c("ImageScale", image_scale, ("image.scale|image.resize",)),
    _c("ImageScaleBy", image_scale, ("image.scale|image.resize",)),
    _c("ImagePadForOutpaint", image_pad, ("sd.outpaint_pad|image.pad",)),
    _c("Canny", canny, ("image.canny",)),
    _c("ImageBlend", image_blend, ("image.mix|image.blend",)),
    _simple("InvertMask", "image.mask_grow", {"mask": "mask"}, {"invert": lambda w: True}, ["mask"],
            ["MASK"]),
    _simple("ImageToMask", "image.image_to_mask", {"image": "image"}, {"channel": "channel"}, ["mask"],
            ["MASK"]),
    _simple("MaskToImage", "image.mask_to_image", {"mask": "mask"}, {}, ["image"], ["IMAGE"]),
)
