"""Exporting the blocks of ComfyUI's utility nodes back to those nodes (the inverse of
:mod:`graphs.comfy.util_nodes` and of ``plugins/image/comfy_nodes.py``'s ImageScale).

Each of these blocks is one ComfyUI node whose widgets are the block's params of the same
names, so the table below is the whole mapping: ComfyUI class, our input -> ComfyUI input,
the widgets, our output port. A param the graph leaves out takes the block's default, which
is ComfyUI's widget default too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphs.comfy.known import KNOWN
from graphs.model import Node

_IMG = {"image": "image"}
_MASK = {"mask": "mask"}
_LAT = {"latent": "samples"}
_PAIR = {"latent": "samples1", "other": "samples2"}
_PASTE = {"destination": "destination", "source": "source", "mask": "mask"}

# block -> (ComfyUI class, our input -> its input, widgets, our output port)
EXACT: dict[str, tuple[str, Mapping[str, str], tuple[str, ...], str]] = {
    "image.invert": ("ImageInvert", _IMG, (), "image"),
    "image.mix": ("ImageBlend", {"image1": "image1", "image2": "image2"}, ("blend_factor", "blend_mode"),
                  "image"),
    "image.blur": ("ImageBlur", _IMG, ("blur_radius", "sigma"), "image"),
    "image.sharpen": ("ImageSharpen", _IMG, ("sharpen_radius", "sigma", "alpha"), "image"),
    "image.scale_total_pixels": ("ImageScaleToTotalPixels", _IMG,
                                 ("upscale_method", "megapixels", "resolution_steps"), "image"),
    "image.batch": ("ImageBatch", {"image1": "image1", "image2": "image2"}, (), "image"),
    "image.batch_repeat": ("RepeatImageBatch", _IMG, ("amount",), "image"),
    "image.from_batch": ("ImageFromBatch", _IMG, ("batch_index", "length"), "image"),
    "image.crop_clamped": ("ImageCrop", _IMG, ("width", "height", "x", "y"), "image"),
    "image.composite_masked": ("ImageCompositeMasked", _PASTE, ("x", "y", "resize_source"), "image"),
    "image.mask_solid": ("SolidMask", {}, ("value", "width", "height"), "mask"),
    "image.mask_feather": ("FeatherMask", _MASK, ("left", "top", "right", "bottom"), "mask"),
    "image.mask_composite": ("MaskComposite", {"destination": "destination", "source": "source"},
                             ("x", "y", "operation"), "mask"),
    "image.mask_crop": ("CropMask", _MASK, ("x", "y", "width", "height"), "mask"),
    "image.mask_threshold": ("ThresholdMask", _MASK, ("value",), "mask"),
    "image.mask_expand": ("GrowMask", _MASK, ("expand", "tapered_corners"), "mask"),
    "sd.latent_crop": ("LatentCrop", _LAT, ("width", "height", "x", "y"), "latent"),
    "sd.latent_flip": ("LatentFlip", _LAT, ("flip_method",), "latent"),
    "sd.latent_rotate": ("LatentRotate", _LAT, ("rotation",), "latent"),
    "sd.latent_multiply": ("LatentMultiply", _LAT, ("multiplier",), "latent"),
    "sd.latent_interpolate": ("LatentInterpolate", _PAIR, ("ratio",), "latent"),
    "sd.latent_composite_masked": ("LatentCompositeMasked", _PASTE, ("x", "y", "resize_source"), "latent"),
    "sd.latent_concat": ("LatentBatch", _PAIR, (), "latent"),
    "sd.latent_seed_behavior": ("LatentBatchSeedBehavior", _LAT, ("seed_behavior",), "latent"),
}

# image.scale's defaults (ImageScale's widget defaults)
_SCALE_DEFAULTS = {"upscale_method": "nearest-exact", "width": 512, "height": 512, "crop": "disabled"}


def _widget(class_type: str, params: Mapping[str, Any], name: str) -> Any:
    if name in params and params[name] is not None:
        return params[name]
    info = KNOWN.get(class_type)
    return info.default(name) if info is not None else None


def utility_export(block: str) -> Callable[[Any, str, Node], None] | None:
    """The exporter of ``block`` (called as ``fn(exporter, node_id, node)``); None for other blocks."""
    if block == "sd.latent_add":
        return _latent_add
    if block == "image.scale":
        return _image_scale
    if block == "sd.noise_mask_batch":
        return _noise_mask_batch
    if block not in EXACT:
        return None

    def export(exporter: Any, node_id: str, node: Node) -> None:
        class_type, inputs, widgets, port = EXACT[block]
        values: dict[str, Any] = {w: _widget(class_type, node.params, w) for w in widgets}
        for ours, theirs in inputs.items():
            if node.inputs.get(ours) is not None:
                values[theirs] = exporter._link(node, ours)
        new = exporter._new(class_type, values, node.meta.get("comfy", {}).get("id"))
        exporter.ports[f"{node_id}.{port}"] = [new, 0]

    return export


def _latent_add(exporter: Any, node_id: str, node: Node) -> None:
    class_type = "LatentSubtract" if node.params.get("op") == "subtract" else "LatentAdd"
    values = {"samples1": exporter._link(node, "latent"), "samples2": exporter._link(node, "other")}
    new = exporter._new(class_type, values, node.meta.get("comfy", {}).get("id"))
    exporter.ports[f"{node_id}.latent"] = [new, 0]


def _image_scale(exporter: Any, node_id: str, node: Node) -> None:
    p = {**_SCALE_DEFAULTS, **{k: v for k, v in node.params.items() if v is not None}}
    image = exporter._link(node, "image")
    if p.get("scale_by") is not None:
        values = {"upscale_method": p["upscale_method"], "scale_by": float(p["scale_by"]), "image": image}
        new = exporter._new("ImageScaleBy", values, node.meta.get("comfy", {}).get("id"))
    else:
        values = {"upscale_method": p["upscale_method"], "width": int(p["width"]), "height": int(p["height"]),
                  "crop": p["crop"], "image": image}
        new = exporter._new("ImageScale", values, node.meta.get("comfy", {}).get("id"))
    exporter.ports[f"{node_id}.image"] = [new, 0]


def _noise_mask_batch(exporter: Any, node_id: str, node: Node) -> None:
    """In ComfyUI the noise mask rides inside the latent through its batch nodes: no node of its own."""
    exporter.ports[f"{node_id}.mask"] = exporter._link(node, "mask")
