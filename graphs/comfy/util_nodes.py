"""ComfyUI's declarations of its image, mask and latent utility classes (inputs, widgets in order,
outputs), for the UI <-> API conversions. Their mappings live beside their blocks
(``plugins/image/comfy_utils.py``, ``plugins/sd/comfy_latent_utils.py``).
"""

from __future__ import annotations

from graphs.comfy.nodes import NodeInfo

_IMAGE = {"image": "IMAGE"}

_MASK = {"mask": "MASK"}

_LATENT = {"samples": "LATENT"}

_TWO_LATENTS = {"samples1": "LATENT", "samples2": "LATENT"}

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
