"""ComfyUI's declarations of its model merging, hypernetwork and model-part loader classes (inputs,
widgets in order, outputs), for the UI <-> API conversions; the block merges' widgets are the
UNet block prefixes they weigh. Their mappings live beside their blocks
(``plugins/sd/comfy_merge.py``, ``comfy_loaders.py``, ``comfy_controlnet.py``).
"""

from __future__ import annotations

from graphs.comfy.nodes import NodeInfo

_RATIO = 1.0


def _sd1_blocks() -> tuple[str, ...]:
    return ("time_embed.", "label_emb.", *(f"input_blocks.{i}." for i in range(12)),
            *(f"middle_block.{i}." for i in range(3)), *(f"output_blocks.{i}." for i in range(12)), "out.")


def _sdxl_blocks() -> tuple[str, ...]:  # ComfyUI's SDXL prefixes have no trailing dot (9 blocks a side)
    return ("time_embed.", "label_emb.", *(f"input_blocks.{i}" for i in range(9)),
            *(f"middle_block.{i}" for i in range(3)), *(f"output_blocks.{i}" for i in range(9)), "out.")


BLOCK_WIDGETS: dict[str, tuple[str, ...]] = {
    "ModelMergeBlocks": ("input", "middle", "out"),
    "ModelMergeSD1": _sd1_blocks(),
    "ModelMergeSD2": _sd1_blocks(),
    "ModelMergeSDXL": _sdxl_blocks(),
}


def _ratio_widget(name: str) -> tuple[str, float]:
    return (name, _RATIO)


MERGE_NODES: dict[str, NodeInfo] = {
    **{cls: NodeInfo(inputs={"model1": "MODEL", "model2": "MODEL"},
                     widgets=tuple(_ratio_widget(w) for w in widgets), outputs=("MODEL",))
       for cls, widgets in BLOCK_WIDGETS.items()},
    "ModelMergeSimple": NodeInfo(inputs={"model1": "MODEL", "model2": "MODEL"}, widgets=(("ratio", 1.0),),
                                 outputs=("MODEL",)),
    "ModelMergeAdd": NodeInfo(inputs={"model1": "MODEL", "model2": "MODEL"}, outputs=("MODEL",)),
    "ModelMergeSubtract": NodeInfo(inputs={"model1": "MODEL", "model2": "MODEL"},
                                   widgets=(("multiplier", 1.0),), outputs=("MODEL",)),
    "CLIPMergeSimple": NodeInfo(inputs={"clip1": "CLIP", "clip2": "CLIP"}, widgets=(("ratio", 1.0),),
                                outputs=("CLIP",)),
    "CLIPMergeAdd": NodeInfo(inputs={"clip1": "CLIP", "clip2": "CLIP"}, outputs=("CLIP",)),
    "CLIPMergeSubtract": NodeInfo(inputs={"clip1": "CLIP", "clip2": "CLIP"}, widgets=(("multiplier", 1.0),),
                                  outputs=("CLIP",)),
    "ModelSamplingContinuousEDM": NodeInfo(inputs={"model": "MODEL"}, widgets=(
        ("sampling", "v_prediction"), ("sigma_max", 120.0), ("sigma_min", 0.002)), outputs=("MODEL",)),
    "DiffControlNetLoader": NodeInfo(inputs={"model": "MODEL"}, widgets=(("control_net_name", ""),),
                                     outputs=("CONTROL_NET",)),  # mapped beside sd.controlnet
    "UNETLoader": NodeInfo(widgets=(("unet_name", ""), ("weight_dtype", "default")), outputs=("MODEL",)),
    "DualCLIPLoader": NodeInfo(widgets=(("clip_name1", ""), ("clip_name2", ""), ("type", "sdxl"),
                                        ("device", "default")), outputs=("CLIP",)),
    "HypernetworkLoader": NodeInfo(inputs={"model": "MODEL"},
                                   widgets=(("hypernetwork_name", ""), ("strength", 1.0)),
                                   outputs=("MODEL",)),
}
