"""Model merging as ComfyUI computes it (``comfy_extras/nodes_model_merging.py``).

ComfyUI merges by patching: ``model1.clone()`` gets, for every weight of ``model2``, a patch
``(strength_patch, w2, strength_model)`` that ``comfy/lora.py`` ``calculate_weight`` applies
as ``w = w1 * strength_model + strength_patch * w2`` in float32, then casts back:

================  ==================================  =========================================
node              (strength_patch, strength_model)    weight
================  ==================================  =========================================
ModelMergeSimple  (1 - ratio, ratio)                  ``ratio * w1 + (1 - ratio) * w2``
ModelMergeBlocks  per key: the ratio of the longest   the same, per UNet block
/ SD1 / SDXL      prefix of its LDM name
ModelMergeAdd     (1, 1)                              ``w1 + w2``
ModelMergeSubtract (-m, m)                            ``m * (w1 - w2)``
CLIPMerge*        as above, on the text encoders      ``position_ids``/``logit_scale`` untouched
================  ==================================  =========================================

A merge of models whose weights differ in shape (two families, two widths) is a
:class:`ModelError` naming both references, where ComfyUI would print a warning and keep a
scaled copy of the first model's weight. One difference is merged as ComfyUI merges it, since
ComfyUI's own inpainting recipe relies on it (``inpaint + (model - base)``): UNets that differ
only in ``in_channels`` (an inpainting or InstructPix2Pix UNet and a plain one). Their
``conv_in.weight`` keeps the first model's weight times ``strength_model``, the patch skipped.

Our UNets are diffusers modules; the block prefixes ComfyUI's nodes use (``input_blocks.4.``,
``middle_block.1``, ``out.``, ``label_emb.``) are matched against each weight's original
(LDM) name, :func:`orchestrator.models.lora.ldm_unet_name`.

>>> ldm_key("down_blocks.1.attentions.0.proj_in.weight", {"layers_per_block": 2})
'input_blocks.4.1.proj_in.weight'
>>> block_ratio("input_blocks.4.1.proj_in.weight", 0.3, (("input", 0.5), ("input_blocks.4.", 0.9)))
0.9
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.lora import ldm_unet_name
from orchestrator.models.ref import MergeRef

SKIPPED_CLIP_KEYS = (".position_ids", ".logit_scale")  # CLIPMerge* leave these as the first model's
MERGE_TARGETS = {"unet": ("unet",), "clip": ("text_encoder", "text_encoder_2")}


def ldm_key(name: str, unet_config: Any) -> str:
    """The original (LDM) name of a diffusers UNet weight ``name``; the name itself when it has none."""
    module, _, leaf = name.rpartition(".")
    mapped = ldm_unet_name(module, unet_config) if module else None
    return f"{mapped}.{leaf}" if mapped else name


def block_ratio(key: str, default: float, blocks: Sequence[tuple[str, float]]) -> float:
    """ComfyUI's ModelMergeBlocks rule: the ratio of the longest prefix of ``key``, else ``default``."""
    ratio, longest = default, 0
    for prefix, share in blocks:
        if key.startswith(prefix) and longest < len(prefix):
            ratio, longest = float(share), len(prefix)
    return ratio


def strengths(merge: MergeRef, key: str) -> tuple[float, float]:
    """``(strength_patch, strength_model)`` of ComfyUI's patch for the weight named ``key``."""
    if merge.op == "add":
        return 1.0, 1.0
    if merge.op == "subtract":
        return -merge.ratio, merge.ratio
    ratio = block_ratio(key, merge.ratio, merge.blocks) if merge.op == "blocks" else merge.ratio
    return 1.0 - ratio, ratio


def tolerated_mismatches(first_config: Any, second_config: Any) -> frozenset[str]:
    """The UNet weights whose shapes may differ in a merge: ``conv_in.weight`` when the two configs
    differ in ``in_channels`` alone (ComfyUI's inpainting merge), else none."""
    ignore = ("in_channels", "_name_or_path", "_diffusers_version", "_class_name")
    if not isinstance(first_config, dict) or not isinstance(second_config, dict):
        return frozenset()
    a = {k: v for k, v in first_config.items() if k not in ignore}
    b = {k: v for k, v in second_config.items() if k not in ignore}
    return frozenset({"conv_in.weight"}) if a == b else frozenset()


_WRAPPED = re.compile(r"\.(to_[kv])\.projection\.(weight|bias)$")


def model_weights(module: Any) -> dict[str, tuple[str, Any]]:
    """``{name: (name in module, tensor)}`` of a module's weights as its model file names them: a
    hypernetwork-wrapped projection (``to_k.projection.weight``) as ``to_k.weight``, the hypernetwork's
    own layers left out (ComfyUI merges weights; attention patches are not weights)."""
    out = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if ".hypernetwork." in name:
            continue
        out[_WRAPPED.sub(r".\1.\2", name)] = (name, tensor)
    return out


def merge_modules(first: Any, second: Any, merge: MergeRef, component: str, *, unet_config: Any = None,
                  names: tuple[str, str] = ("", ""), tolerated: frozenset[str] = frozenset()) -> Any:
    """A copy of ``first`` whose weights are merged with ``second``'s as ``merge`` says.

    ``component`` is ``unet``, ``text_encoder`` or ``text_encoder_2``; ``unet_config`` (the
    first UNet's config) places each UNet weight in its block for ``op="blocks"``; ``names``
    are the two references as errors show them; ``tolerated`` weights may differ in shape (see
    :func:`tolerated_mismatches`).
    """
    import torch

    a_name, b_name = names
    where = "params.model.merge.b"
    first_w, second_w = model_weights(first), model_weights(second)
    first_sd = {k: t for k, (_, t) in first_w.items()}
    second_sd = {k: t for k, (_, t) in second_w.items()}
    missing = [k for k in second_sd if k not in first_sd]
    if missing or type(first) is not type(second):
        raise ModelError(
            f"cannot merge {component} of {b_name!r} into {a_name!r}: they are different architectures "
            f"({type(first).__name__} vs {type(second).__name__}"
            + (f"; {len(missing)} weights of the second, e.g. {missing[0]!r}, are not in the first" if missing
               else "") + ")", reason="merge", model=a_name, field=where, a=a_name, b=b_name,
            component=component)
    for k, w2 in second_sd.items():
        w1 = first_sd[k]
        if w1.shape != w2.shape and k not in tolerated:
            raise ModelError(
                f"cannot merge {component} of {b_name!r} into {a_name!r}: weight {k!r} is "
                f"{tuple(w1.shape)} in the first and {tuple(w2.shape)} in the second (different model "
                f"families or shapes)", reason="merge", model=a_name, field=where, a=a_name, b=b_name,
                component=component, weight=k)
    out = copy.deepcopy(first)  # the first model's attention patches (hypernetworks) stay, as in ComfyUI
    params = dict(out.named_parameters())
    buffers = dict(out.named_buffers())
    with torch.no_grad():
        for k, w2 in second_sd.items():
            if component != "unet" and k.endswith(SKIPPED_CLIP_KEYS):
                continue
            real = first_w[k][0]
            target = params.get(real)
            if target is None:
                target = buffers.get(real)
            if target is None or not torch.is_floating_point(target):
                continue
            key = ldm_key(k, unet_config) if component == "unet" else k
            patch, model = strengths(merge, key)
            w = target.detach().float() * model
            if target.shape == w2.shape:  # ComfyUI: a patch of another shape is skipped, the scaling kept
                w = w + patch * w2.detach().float().to(target.device)
            target.copy_(w.to(target.dtype))
    return out
