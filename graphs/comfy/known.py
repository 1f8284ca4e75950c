"""Every ComfyUI class whose declaration the import knows: inputs, widget order, outputs.

The core classes (:mod:`graphs.comfy.nodes`), the conditioning classes
(:mod:`graphs.comfy.cond_nodes`), the custom-sampling ones (:mod:`graphs.comfy.sampling_nodes`),
the utility, unCLIP and merging ones, in one table for the UI <-> API conversions. Declarations
only: which block each class becomes is its plugin's mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphs.comfy.cond_nodes import COND_NODES
from graphs.comfy.merge_nodes import MERGE_NODES
from graphs.comfy.nodes import CORE_NODES, NodeInfo
from graphs.comfy.sampling_nodes import SAMPLING_NODES
from graphs.comfy.unclip_nodes import UNCLIP_NODES
from graphs.comfy.util_nodes import UTIL_NODES

KNOWN: Mapping[str, NodeInfo] = {
    **CORE_NODES, **COND_NODES, **SAMPLING_NODES, **UTIL_NODES, **MERGE_NODES,
    **UNCLIP_NODES,  # CLIP vision and unCLIP: graphs/comfy/unclip_nodes.py
    "LatentBlend": NodeInfo(inputs={"samples1": "LATENT", "samples2": "LATENT"},
                            widgets=(("blend_factor", 0.5),), outputs=("LATENT",)),
}
