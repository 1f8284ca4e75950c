"""ComfyUI's image and mask utility nodes, mapped to the blocks that compute what they do.

ImageInvert/Blur/Sharpen, ImageScaleToTotalPixels, ImageBatch, RepeatImageBatch, ImageFromBatch,
ImageCrop, ImageCompositeMasked, SolidMask, FeatherMask, MaskComposite, CropMask, ThresholdMask and
GrowMask (see ``graphs/comfy/util_nodes.py`` for their declarations and ``plugins/image/mask_ops.py``,
``filters.py``, ``comfy_scale.py``, ``batches.py``, ``regions.py`` for the blocks).
"""

from __future__ import annotations

from typing import Any

from orchestrator import ComfyMapping, Data, NodeContext


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def image_scale_total_pixels(nc: NodeContext) -> list[Any]:
    image = nc.data("image")
    params = {"megapixels": float(nc.widget("megapixels", 1.0)),
              "upscale_method": str(nc.widget("upscale_method", "nearest-exact")),
              "resolution_steps": int(nc.widget("resolution_steps", 1))}
    node = nc.add("image.scale_total_pixels", inputs={"image": image}, params=params)
    return [_out(node, "image", "IMAGE")]


def image_crop(nc: NodeContext) -> list[Any]:
    image = nc.data("image")
    params = {k: int(nc.widget(k, 512 if k in ("width", "height") else 0))
              for k in ("width", "height", "x", "y")}
    size = None
    if image is not None and image.size:  # ComfyUI moves a start past the image to its last pixel, then cuts
        x, y = min(params["x"], image.size[0] - 1), min(params["y"], image.size[1] - 1)
        size = (min(params["width"], image.size[0] - x), min(params["height"], image.size[1] - y))
    return [_out(nc.add("image.crop_clamped", inputs={"image": image}, params=params), "image", "IMAGE",
                 size=size)]


def _same_size(block: str, port: str, type: str, ins: tuple[str, ...], ours: tuple[str, ...],
               widgets: tuple[str, ...], keep: str | None = None) -> Any:
    """A convert giving one ``block`` node; its output keeps the size of input ``keep`` (known at import)."""

    def convert(nc: NodeContext) -> list[Any]:
        inputs: dict[str, Any] = {}
        for theirs, mine in zip(ins, ours, strict=True):
            value = nc.data(theirs, optional=theirs == "mask")
            if value is not None:
                inputs[mine] = value
        params = {w: nc.widget(w) for w in widgets if nc.widget(w) is not None}
        size = getattr(inputs.get(keep), "size", None) if keep else None
        return [_out(nc.add(block, inputs=inputs, params=params), port, type, size=size)]

    return convert


def _m(class_type: str, fn: Any, block: str, widgets: tuple[str, ...] = (), **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=(block,), widgets=widgets, defaults=defaults)


def _px(class_type: str, block: str, ins: tuple[str, ...], widgets: tuple[str, ...] = (),
        keep: str | None = None, port: str = "image", type: str = "IMAGE") -> ComfyMapping:
    """An image or mask node: ComfyUI's input and widget names are the block's input and param names."""
    return _m(class_type, _same_size(block, port, type, ins, ins, widgets, keep), block, widgets)


_PASTE = ("destination", "source", "mask")

MAPPINGS: tuple[ComfyMapping, ...] = (
    _px("ImageInvert", "image.invert", ("image",), keep="image"),
    _px("ImageBlur", "image.blur", ("image",), ("blur_radius", "sigma"), "image"),
    _px("ImageSharpen", "image.sharpen", ("image",), ("sharpen_radius", "sigma", "alpha"), "image"),
    _m("ImageScaleToTotalPixels", image_scale_total_pixels, "image.scale_total_pixels",
       ("upscale_method", "megapixels", "resolution_steps")),
    _px("ImageBatch", "image.batch", ("image1", "image2"), keep="image1"),
    _px("RepeatImageBatch", "image.batch_repeat", ("image",), ("amount",), "image"),
    _px("ImageFromBatch", "image.from_batch", ("image",), ("batch_index", "length"), "image"),
    _m("ImageCrop", image_crop, "image.crop_clamped", ("width", "height", "x", "y")),
    _px("ImageCompositeMasked", "image.composite_masked", _PASTE, ("x", "y", "resize_source"), "destination"),
    _px("SolidMask", "image.mask_solid", (), ("value", "width", "height"), port="mask", type="MASK"),
    _px("FeatherMask", "image.mask_feather", ("mask",), ("left", "top", "right", "bottom"), "mask", "mask",
        "MASK"),
    _px("MaskComposite", "image.mask_composite", ("destination", "source"), ("x", "y", "operation"),
        "destination", "mask", "MASK"),
    _px("CropMask", "image.mask_crop", ("mask",), ("x", "y", "width", "height"), port="mask", type="MASK"),
    _px("ThresholdMask", "image.mask_threshold", ("mask",), ("value",), "mask", "mask", "MASK"),
    _px("GrowMask", "image.mask_expand", ("mask",), ("expand", "tapered_corners"), "mask", "mask", "MASK"),
)
