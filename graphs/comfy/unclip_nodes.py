"""ComfyUI's declarations of its CLIP vision and unCLIP classes (inputs, widgets in order, outputs), for
the UI <-> API conversions. Their mappings live beside their blocks (``plugins/sd/comfy_unclip.py``).
"""

from __future__ import annotations

from graphs.comfy.nodes import NodeInfo

UNCLIP_NODES: dict[str, NodeInfo] = {
    "CLIPVisionLoader": NodeInfo(widgets=(("clip_name", ""),), outputs=("CLIP_VISION",)),
    "CLIPVisionEncode": NodeInfo(inputs={"clip_vision": "CLIP_VISION", "image": "IMAGE"},
                                 widgets=(("crop", "center"),), outputs=("CLIP_VISION_OUTPUT",)),
    "unCLIPConditioning": NodeInfo(inputs={"conditioning": "CONDITIONING",
                                           "clip_vision_output": "CLIP_VISION_OUTPUT"},
                                   widgets=(("strength", 1.0), ("noise_augmentation", 0.0)),
                                   outputs=("CONDITIONING",)),
    "unCLIPCheckpointLoader": NodeInfo(widgets=(("ckpt_name", ""),),
                                       outputs=("MODEL", "CLIP", "VAE", "CLIP_VISION")),
}
