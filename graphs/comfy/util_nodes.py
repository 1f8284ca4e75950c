"""Mappings of ComfyUI's image, mask and latent utility nodes, and where a noise mask travels.

======================================  =====================================================
ComfyUI                                 ours
======================================  =====================================================
ImageInvert, ImageBlur, ImageSharpen    ``image.invert``, ``image.blur``, ``image.sharpen``
ImageScaleToTotalPixels                 ``image.scale_total_pixels``
ImageBatch, RepeatImageBatch,           ``image.batch``, ``image.batch_repeat``,
ImageFromBatch                          ``image.from_batch``
ImageCrop, ImageCompositeMasked         ``image.crop_clamped``, ``image.composite_masked``
SolidMask, FeatherMask, MaskComposite,  ``image.mask_solid``, ``image.mask_feather``,
CropMask, ThresholdMask, GrowMask       ``image.mask_composite``, ``image.mask_crop``,
                                        ``image.mask_threshold``, ``image.mask_expand``
LatentCrop, LatentFlip, LatentRotate    ``sd.latent_crop``, ``sd.latent_flip``, ``sd.latent_rotate``
LatentAdd, LatentSubtract,              ``sd.latent_add`` (``op``), ``sd.latent_multiply``,
LatentMultiply, LatentInterpolate       ``sd.latent_interpolate``
LatentCompositeMasked                   ``sd.latent_composite_masked``
LatentBatch, LatentBatchSeedBehavior    ``sd.latent_concat``, ``sd.latent_seed_behavior`` (the
                                        sampler gets their batch_index record)
======================================  =====================================================

Each block computes what the ComfyUI node computes (``plugins/image/mask_ops.py``,
``filters.py``, ``comfy_scale.py``, ``batches.py``, ``regions.py``, ``plugins/sd/latent_transform.py``,
``latent_math.py``). A class whose block the catalog lacks is reported as unsupported.

**The noise mask.** A ComfyUI ``LATENT`` is a dict: ``samples`` and, after
``VAEEncodeForInpaint`` or ``SetLatentNoiseMask``, a ``noise_mask``. Every node that makes a latent
from a latent copies that dict (``samples.copy()``), so the mask rides along through latent
upscales, crops, flips, batches, composites and even samplers, to the next sampler, which
denoises only under it. :func:`carry_noise_mask` does the same at import: a node of ours whose
``LATENT`` output comes from a latent that carried a mask gives a masked latent again, and a
sampler reading it gets the mask; nodes that are not samplers read the latent itself.
``VAEEncodeForInpaint``'s latent is ``sd.vae_encode_for_inpaint``'s (the image cropped to the
VAE's grid, the pixels under the rounded mask set to 0.5, then encoded), for samplers and for
every other reader alike; its mask is that block's grown mask (its mapping:
``plugins/sd/comfy_latents.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphs.comfy.mapping import ComfyMapping, Data, MaskedLatent, NodeContext, Unresolved
from graphs.comfy.nodes import NodeInfo

if TYPE_CHECKING:
    from graphs.comfy.api import ComfyNode
    from graphs.comfy.importer import Importer


def _out(node_id: str, port: str, type: str, **kw: Any) -> Data:
    return Data(f"{node_id}.{port}", type, **kw)


def _latent_in(nc: NodeContext, name: str) -> Data:
    value = nc.data(name)
    if value is None or value.type != "LATENT":
        raise Unresolved(f"input {name!r} is not a latent", field=name)
    return value


# -- images ----------------------------------------------------------------------------------------


def _simple(class_type: str, block: str, inputs: dict[str, str], params: dict[str, str], out_port: str,
            out_type: str, widgets: tuple[str, ...] = (), **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, block=block, inputs=inputs, params=params, outputs=[out_port],
                        output_types=[out_type], widgets=widgets, defaults=defaults)


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


# -- latents: the noise mask rides along ----------------------------------------------------------


# the ComfyUI classes whose LATENT output is a copy of their first latent input's dict with new samples
# (so a noise mask on that input stays on the output); SetLatentNoiseMask and VAEEncodeForInpaint make one
_SETS_MASK = frozenset({"SetLatentNoiseMask", "VAEEncodeForInpaint"})
_LATENT_INPUTS = ("samples", "samples1", "samples_to", "destination", "latent_image", "latent")


def carry_noise_mask(importer: Importer, node: ComfyNode, values: list[Any]) -> list[Any]:
    """``values`` (a node's outputs) with each ``LATENT`` one masked as its first latent input was."""
    if node.class_type in _SETS_MASK or not importer.has_block("sd.ksampler"):
        return values
    if not any(isinstance(v, Data) and v.type == "LATENT" for v in values):
        return values
    masked = None
    for name in _LATENT_INPUTS:
        link = node.link(name)
        if link is None:
            continue
        try:
            value = importer.resolve(link[0], link[1], "LATENT", field=name)
        except Unresolved:
            return values
        masked = value if isinstance(value, MaskedLatent) else None
        break
    if masked is None:
        return values
    mask = masked.mask
    if node.class_type in _BATCH_NODES and importer.has_block("sd.noise_mask_batch"):
        mask = _batched_mask(importer, node, masked)
    return [MaskedLatent(node.id, masked.image, mask, (lambda d=v: d))
            if isinstance(v, Data) and v.type == "LATENT" else v for v in values]


_BATCH_NODES = frozenset({"LatentFromBatch", "RepeatLatentBatch"})


def _batched_mask(importer: Importer, node: ComfyNode, masked: MaskedLatent) -> Data:
    """The noise mask through LatentFromBatch / RepeatLatentBatch (a batch of masks is sliced or repeated
    with the latents: ``sd.noise_mask_batch``)."""
    nc = NodeContext(importer, node, importer.mapping_for(node.class_type))
    if node.class_type == "LatentFromBatch":
        params: dict[str, Any] = {"mode": "from_batch", "start": int(nc.widget("batch_index", 0)),
                                  "length": int(nc.widget("length", 1))}
    else:
        params = {"mode": "repeat", "amount": int(nc.widget("amount", 1))}
    node_id = importer.add_node(node, "sd.noise_mask_batch", {"mask": masked.mask, "latent": masked.plain()},
                                params, suffix="_mask")
    return Data(f"{node_id}.mask", "MASK", size=masked.mask.size)


def _latent_block(block: str, ins: tuple[str, ...], ours: tuple[str, ...], widgets: dict[str, str],
                  fixed: dict[str, Any] | None = None) -> Any:
    """A convert giving one latent ``block`` node from latent inputs ``ins`` (and an optional ``mask``)."""

    def convert(nc: NodeContext) -> list[Any]:
        inputs: dict[str, Any] = {}
        for theirs, mine in zip(ins, ours, strict=True):
            if theirs == "mask":
                mask = nc.data("mask", optional=True)
                if mask is not None:
                    inputs[mine] = mask
            else:
                inputs[mine] = _latent_in(nc, theirs)
        params = {mine: nc.widget(theirs) for mine, theirs in widgets.items()
                  if nc.widget(theirs) is not None}
        params.update(fixed or {})
        return [_out(nc.add(block, inputs=inputs, params=params), "latent", "LATENT")]

    return convert


def _m(class_type: str, fn: Any, block: str, widgets: tuple[str, ...] = (), **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=(block,), widgets=widgets, defaults=defaults)


_IMAGE = {"image": "IMAGE"}
_MASK = {"mask": "MASK"}
_LATENT = {"samples": "LATENT"}
_TWO_LATENTS = {"samples1": "LATENT", "samples2": "LATENT"}

# ComfyUI's declarations of the classes mapped here that graphs.comfy.nodes does not list
UTIL_NODES: dict[str, NodeInfo] = {
    "ImageInvert": NodeInfo(inputs=_IMAGE, outputs=("IMAGE",)),
    "ImageBlur": NodeInfo(inputs=_IMAGE, widgets=(("blur_radius", 1), ("sigma", 1.0)), outputs=("IMAGE",)),
    "ImageSharpen": NodeInfo(inputs=_IMAGE, widgets=(("sharpen_radius", 1), ("sigma", 1.0), ("alpha", 1.0)),
                             outputs=("IMAGE",)),
    "ImageBatch": NodeInfo(inputs={"image1": "IMAGE", "image2": "IMAGE"}, outputs=("IMAGE",)),
    "RepeatImageBatch": NodeInfo(inputs=_IMAGE, widgets=(("amount", 1),), outputs=("IMAGE",)),
    "ImageFromBatch": NodeInfo(inputs=_IMAGE, widgets=(("batch_index", 0), ("length", 1)),
                               outputs=("IMAGE",)),
    "ImageCompositeMasked": NodeInfo(inputs={"destination": "IMAGE", "source": "IMAGE", "mask": "MASK"},
                                     widgets=(("x", 0), ("y", 0), ("resize_source", False)),
                                     outputs=("IMAGE",), optional=frozenset({"mask"})),
    "SolidMask": NodeInfo(widgets=(("value", 1.0), ("width", 512), ("height", 512)), outputs=("MASK",)),
    "FeatherMask": NodeInfo(inputs=_MASK, widgets=(("left", 0), ("top", 0), ("right", 0), ("bottom", 0)),
                            outputs=("MASK",)),
    "MaskComposite": NodeInfo(inputs={"destination": "MASK", "source": "MASK"},
                              widgets=(("x", 0), ("y", 0), ("operation", "multiply")), outputs=("MASK",)),
    "CropMask": NodeInfo(inputs=_MASK, widgets=(("x", 0), ("y", 0), ("width", 512), ("height", 512)),
                         outputs=("MASK",)),
    "ThresholdMask": NodeInfo(inputs=_MASK, widgets=(("value", 0.5),), outputs=("MASK",)),
    "LatentCrop": NodeInfo(inputs=_LATENT, widgets=(("width", 512), ("height", 512), ("x", 0), ("y", 0)),
                           outputs=("LATENT",)),
    "LatentFlip": NodeInfo(inputs=_LATENT, widgets=(("flip_method", "x-axis: vertically"),),
                           outputs=("LATENT",)),
    "LatentRotate": NodeInfo(inputs=_LATENT, widgets=(("rotation", "none"),), outputs=("LATENT",)),
    "LatentAdd": NodeInfo(inputs=_TWO_LATENTS, outputs=("LATENT",)),
    "LatentSubtract": NodeInfo(inputs=_TWO_LATENTS, outputs=("LATENT",)),
    "LatentMultiply": NodeInfo(inputs=_LATENT, widgets=(("multiplier", 1.0),), outputs=("LATENT",)),
    "LatentInterpolate": NodeInfo(inputs=_TWO_LATENTS, widgets=(("ratio", 1.0),), outputs=("LATENT",)),
    "LatentBatch": NodeInfo(inputs=_TWO_LATENTS, outputs=("LATENT",)),
    "LatentBatchSeedBehavior": NodeInfo(inputs=_LATENT, widgets=(("seed_behavior", "fixed"),),
                                        outputs=("LATENT",)),
    "LatentCompositeMasked": NodeInfo(inputs={"destination": "LATENT", "source": "LATENT", "mask": "MASK"},
                                      widgets=(("x", 0), ("y", 0), ("resize_source", False)),
                                      outputs=("LATENT",), optional=frozenset({"mask"})),
}

def _px(class_type: str, block: str, ins: tuple[str, ...], widgets: tuple[str, ...] = (),
        keep: str | None = None, port: str = "image", type: str = "IMAGE") -> ComfyMapping:
    """An image or mask node: ComfyUI's input and widget names are the block's input and param names."""
    return _m(class_type, _same_size(block, port, type, ins, ins, widgets, keep), block, widgets)


def _lat(class_type: str, block: str, ins: tuple[str, ...], ours: tuple[str, ...],
         widgets: tuple[str, ...] = (), **fixed: Any) -> ComfyMapping:
    """A latent node: ComfyUI's inputs ``ins`` are the block's ``ours``; widgets are same-named params."""
    return _m(class_type, _latent_block(block, ins, ours, {w: w for w in widgets}, fixed), block, widgets)


_ONE = ("samples",), ("latent",)
_PAIR = ("samples1", "samples2"), ("latent", "other")
_PASTE = ("destination", "source", "mask")

UTIL_MAPPINGS: tuple[ComfyMapping, ...] = (
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
    _lat("LatentCrop", "sd.latent_crop", *_ONE, ("width", "height", "x", "y")),
    _lat("LatentFlip", "sd.latent_flip", *_ONE, ("flip_method",)),
    _lat("LatentRotate", "sd.latent_rotate", *_ONE, ("rotation",)),
    _lat("LatentAdd", "sd.latent_add", *_PAIR, op="add"),
    _lat("LatentSubtract", "sd.latent_add", *_PAIR, op="subtract"),
    _lat("LatentMultiply", "sd.latent_multiply", *_ONE, ("multiplier",)),
    _lat("LatentInterpolate", "sd.latent_interpolate", *_PAIR, ("ratio",)),
    _lat("LatentCompositeMasked", "sd.latent_composite_masked", _PASTE, _PASTE, ("x", "y", "resize_source")),
    _lat("LatentBatch", "sd.latent_concat", *_PAIR),
    _lat("LatentBatchSeedBehavior", "sd.latent_seed_behavior", *_ONE, ("seed_behavior",)),
)

# the blocks these mappings use (all shipped by this project's plugins)
UTIL_BLOCKS: frozenset[str] = frozenset(
    r.split("|")[0] for m in UTIL_MAPPINGS for r in m.requires or ())
