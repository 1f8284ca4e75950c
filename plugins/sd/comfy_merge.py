"""ComfyUI's model merging and hypernetwork nodes: derived model references.

======================================  =====================================================
ComfyUI                                 ours (the ``model`` param of the blocks that use it)
======================================  =====================================================
ModelMergeSimple (ratio)                ``{"merge": {"op": "simple", "a", "b", "ratio"}}``
ModelMergeBlocks (input, middle, out),  ``op: "blocks"``: a share per UNet block by LDM key
ModelMergeSD1/SD2/SDXL (per block)      prefix (longest wins), the first widget's the default
ModelMergeAdd, ModelMergeSubtract       ``op: "add"``, ``op: "subtract"`` (``ratio``: multiplier)
CLIPMergeSimple/Add/Subtract            the same with ``target: "clip"`` (the text encoders)
HypernetworkLoader (strength)           ``{"hypernetworks": [{"path", "strength"}]}``
ModelSamplingContinuousEDM              ``{"sampling": {"type": "continuous_edm", "prediction",
(v_prediction, edm, eps)                "sigma_max", "sigma_min"}}``: the samplers' sigmas
======================================  =====================================================

``edm_playground_v2.5`` (and ``cosmos_rflow``) also swap the latent format the sampler works
in; they are reported as unsupported rather than approximated.

Nothing runs at import: the merged weights are made by the worker's model manager
(:mod:`orchestrator.models.merge`) when a block loads the reference, and kept under the
recipe's key, so node caching and worker model affinity work as for any model. A merge of
two models of different families fails there, naming both references.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from orchestrator import ComfyMapping, Model, ModelMerge, NodeContext, Unresolved

# merges with a share per UNet block: their widgets are the blocks' LDM key prefixes
BLOCK_CLASSES = ("ModelMergeBlocks", "ModelMergeSD1", "ModelMergeSD2", "ModelMergeSDXL")
SIMPLE = {"ModelMergeSimple": ("unet", "model"), "CLIPMergeSimple": ("clip", "clip")}


ADD = {"ModelMergeAdd": ("unet", "model"), "CLIPMergeAdd": ("clip", "clip")}


SUBTRACT = {"ModelMergeSubtract": ("unet", "model"), "CLIPMergeSubtract": ("clip", "clip")}


def _pair(nc: NodeContext, prefix: str) -> tuple[Model, Model]:
    return nc.model(f"{prefix}1"), nc.model(f"{prefix}2")


def _number(nc: NodeContext, widget: str, low: float, high: float) -> float:
    value = nc.widget(widget, 1.0)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Unresolved(f"widget {widget!r} is {value!r}, not a number", field=widget) from None
    if not low <= number <= high:
        raise Unresolved(f"widget {widget!r} is {number}, outside [{low}, {high}]", field=widget)
    return number


def _merged(first: Model, second: Model, merge: ModelMerge) -> Model:
    """The first model (its configs, VAE, sampling overrides kept, as ``model1.clone()`` keeps them) with
    merged weights; LoRAs and hypernetworks loaded after the merge apply on top."""
    return replace(first, loras=(), hypernetworks=(), merge=merge)


def merge_node(nc: NodeContext) -> list[Any]:
    cls = nc.node.class_type
    if cls in BLOCK_CLASSES:
        first, second = _pair(nc, "model")
        names = nc.widget_names()  # a share per UNet block prefix, in ComfyUI's order
        shares = tuple((name, _number(nc, name, 0.0, 1.0)) for name in names)
        merge = ModelMerge("blocks", "unet", first, second, ratio=shares[0][1], blocks=shares)
        return [_merged(first, second, merge)]
    for table, op in ((SIMPLE, "simple"), (ADD, "add"), (SUBTRACT, "subtract")):
        if cls in table:
            target, prefix = table[cls]
            first, second = _pair(nc, prefix)
            ratio = 1.0
            if op == "simple":
                ratio = _number(nc, "ratio", 0.0, 1.0)
            elif op == "subtract":
                ratio = _number(nc, "multiplier", -10.0, 10.0)
            return [_merged(first, second, ModelMerge(op, target, first, second, ratio=ratio))]
    raise Unresolved(f"no merge for {cls!r}")  # pragma: no cover - the table lists only the classes above


def hypernetwork_loader(nc: NodeContext) -> list[Any]:
    comfy = str(nc.widget("hypernetwork_name") or "")
    if not comfy:
        raise Unresolved("no hypernetwork_name", field="hypernetwork_name")
    name, _ = nc.importer.map_model(comfy, nc.node, "hypernetwork_name", kind="hypernetwork")
    strength = _number(nc, "strength", -10.0, 10.0)
    model = nc.model("model")
    if strength == 0:
        return [model]
    return [replace(model, hypernetworks=(*model.hypernetworks, (name, strength)))]


EDM_SAMPLINGS = ("v_prediction", "edm", "eps")


def model_sampling_continuous_edm(nc: NodeContext) -> list[Any]:
    sampling = str(nc.widget("sampling", "v_prediction"))
    if sampling not in EDM_SAMPLINGS:
        raise Unresolved(f"sampling {sampling!r} is not supported ({', '.join(EDM_SAMPLINGS)}; "
                         f"edm_playground_v2.5 and cosmos_rflow also change the latent format, which no "
                         f"block of ours does)", field="sampling")
    sigma_max = _number(nc, "sigma_max", 0.0, 1000.0)
    sigma_min = _number(nc, "sigma_min", 0.0, 1000.0)
    if not 0 < sigma_min < sigma_max:
        raise Unresolved(f"sigma_min {sigma_min} must be above 0 and below sigma_max {sigma_max}",
                         field="sigma_min")
    # the node replaces the model's sampling object: a ModelSamplingDiscrete override before it is gone
    return [replace(nc.model("model"), edm=(sampling, sigma_max, sigma_min), sampling=None, zsnr=None)]


MAPPINGS: tuple[ComfyMapping, ...] = (
    *(ComfyMapping(cls, convert=merge_node, requires=())
      for cls in (*BLOCK_CLASSES, *SIMPLE, *ADD, *SUBTRACT)),
    ComfyMapping("HypernetworkLoader", convert=hypernetwork_loader, requires=()),
    ComfyMapping("ModelSamplingContinuousEDM", convert=model_sampling_continuous_edm,
                 requires=("sd.ksampler",)),
)
