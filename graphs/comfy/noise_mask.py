"""Where a ComfyUI latent's noise mask travels, at import.

A ComfyUI ``LATENT`` is a dict: ``samples`` and, after ``VAEEncodeForInpaint`` or
``SetLatentNoiseMask``, a ``noise_mask``. Every node that makes a latent from a latent copies that
dict (``samples.copy()``), so the mask rides along through latent upscales, crops, flips, batches,
composites and even samplers, to the next sampler, which denoises only under it.
:func:`carry_noise_mask` does the same for every node the import converts: a node of ours whose
``LATENT`` output comes from a latent that carried a mask gives a masked latent again, and a
sampler reading it gets the mask; nodes that are not samplers read the latent itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphs.comfy.mapping import Data, MaskedLatent, NodeContext, Unresolved

if TYPE_CHECKING:
    from graphs.comfy.api import ComfyNode
    from graphs.comfy.importer import Importer

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
