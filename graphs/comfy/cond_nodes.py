"""ComfyUI's declarations of its conditioning classes that :mod:`graphs.comfy.nodes` does not list.

Their link inputs, widgets in order (what a UI-format ``widgets_values`` list holds) and
outputs, for the UI <-> API conversions. Their mappings live beside their blocks
(``plugins/sd/comfy_cond_nodes.py``).
"""

from __future__ import annotations

from graphs.comfy.nodes import NodeInfo

_COND = {"conditioning": "CONDITIONING"}
_TWO = {"conditioning_to": "CONDITIONING", "conditioning_from": "CONDITIONING"}

COND_NODES: dict[str, NodeInfo] = {
    "ConditioningSetAreaPercentage": NodeInfo(
        inputs=_COND, widgets=(("width", 1.0), ("height", 1.0), ("x", 0.0), ("y", 0.0), ("strength", 1.0)),
        outputs=("CONDITIONING",)),
    "ConditioningSetAreaStrength": NodeInfo(inputs=_COND, widgets=(("strength", 1.0),),
                                            outputs=("CONDITIONING",)),
    "ConditioningSetMask": NodeInfo(inputs={**_COND, "mask": "MASK"},
                                    widgets=(("strength", 1.0), ("set_cond_area", "default")),
                                    outputs=("CONDITIONING",)),
    "ConditioningSetTimestepRange": NodeInfo(inputs=_COND, widgets=(("start", 0.0), ("end", 1.0)),
                                             outputs=("CONDITIONING",)),
    "ConditioningAverage": NodeInfo(inputs=_TWO, widgets=(("conditioning_to_strength", 1.0),),
                                    outputs=("CONDITIONING",)),
    "ConditioningConcat": NodeInfo(inputs=_TWO, outputs=("CONDITIONING",)),
    "CLIPTextEncodeSDXL": NodeInfo(
        inputs={"clip": "CLIP"},
        widgets=(("width", 1024), ("height", 1024), ("crop_w", 0), ("crop_h", 0), ("target_width", 1024),
                 ("target_height", 1024), ("text_g", ""), ("text_l", "")), outputs=("CONDITIONING",)),
}
