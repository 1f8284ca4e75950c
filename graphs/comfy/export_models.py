"""Derived model references back to ComfyUI's model nodes (the exporter's half of :mod:`.merge_nodes`).

A ``model`` param with a ``merge``, ``hypernetworks``, a continuous-EDM ``sampling`` or
``parts`` becomes the ComfyUI nodes that make it: ``ModelMerge*``/``CLIPMerge*`` over the two
models' own chains, ``HypernetworkLoader``, ``ModelSamplingContinuousEDM``,
``LoraLoaderModelOnly`` for the LoRAs on top, ``UNETLoader`` and ``CLIPLoader``/
``DualCLIPLoader`` for a model of parts. Importing the result gives the same reference back.
A block merge whose prefixes are not one of ComfyUI's node layouts has no node, and is said so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphs.comfy.merge_nodes import BLOCK_WIDGETS

Link = list[Any]
DERIVED = ("merge", "hypernetworks", "sampling", "parts")
_MERGE_CLASS = {("simple", 0): "ModelMergeSimple", ("add", 0): "ModelMergeAdd",
                ("subtract", 0): "ModelMergeSubtract", ("simple", 1): "CLIPMergeSimple",
                ("add", 1): "CLIPMergeAdd", ("subtract", 1): "CLIPMergeSubtract"}


def is_derived(ref: Any) -> bool:
    """Whether a ``model`` param is a derived reference (see the module doc)."""
    return isinstance(ref, Mapping) and any(ref.get(k) for k in DERIVED)


class Unexportable(Exception):
    """The reference has no ComfyUI node chain; ``field`` names the param."""

    def __init__(self, message: str, field: str = "params.model") -> None:
        super().__init__(message)
        self.field = field


class ModelExport:
    """Mixed into the exporter: uses its ``cache``, ``_new``, ``_comfy_name``, ``_checkpoint``, ``_loras``."""

    cache: dict[Any, str]
    _new: Any
    _comfy_name: Any
    _checkpoint: Any
    _loras: Any

    def model_link(self, ref: Any, slot: int) -> Link:
        """The MODEL (slot 0) or CLIP (slot 1) output that gives ``ref``."""
        return self._derived(ref, slot) if is_derived(ref) else self._loras(ref, slot)

    def _chain(self, class_type: str, inputs: dict[str, Any], slot: int = 0) -> Link:
        key = (class_type, repr(sorted(inputs.items())))
        if key not in self.cache:
            self.cache[key] = self._new(class_type, inputs)
        return [self.cache[key], slot]

    def _derived(self, ref: Mapping[str, Any], slot: int) -> Link:
        link = self._base(ref, slot)
        loras = list(ref.get("loras") or [])
        if slot == 1:
            for lora in loras:  # LoraLoader wants a MODEL too: the reference's own
                w = float(lora.get("weight", 1.0))
                link = self._chain("LoraLoader", {
                    "lora_name": self._comfy_name(lora["path"]), "strength_model": w, "strength_clip": w,
                    "model": self._base(ref, 0), "clip": link}, 1)
            return link
        for h in ref.get("hypernetworks") or []:
            link = self._chain("HypernetworkLoader", {
                "hypernetwork_name": self._comfy_name(h["path"]), "strength": float(h.get("strength", 1.0)),
                "model": link})
        sampling = ref.get("sampling")
        if sampling:
            link = self._chain("ModelSamplingContinuousEDM", {
                "sampling": sampling.get("prediction", "v_prediction"),
                "sigma_max": float(sampling.get("sigma_max", 120.0)),
                "sigma_min": float(sampling.get("sigma_min", 0.002)), "model": link})
        for lora in loras:
            link = self._chain("LoraLoaderModelOnly", {"lora_name": self._comfy_name(lora["path"]),
                                                       "strength_model": float(lora.get("weight", 1.0)),
                                                       "model": link})
        return link

    def _base(self, ref: Mapping[str, Any], slot: int) -> Link:
        """The link before the reference's own hypernetworks, sampling and LoRAs."""
        parts = dict(tuple(p) for p in ref.get("parts") or [])
        if parts:
            return self._parts(parts, slot)
        merge = ref.get("merge")
        if not merge:
            return [self._checkpoint(ref["name"]), slot]
        if (slot == 0) != (merge.get("target", "unet") == "unet"):
            return self.model_link(merge["a"], slot)  # the part a merge leaves alone is the first model's
        op = merge.get("op")
        prefix = "model" if slot == 0 else "clip"
        inputs: dict[str, Any] = {f"{prefix}1": self.model_link(merge["a"], slot),
                                  f"{prefix}2": self.model_link(merge["b"], slot)}
        ratio = float(merge.get("ratio", 1.0))
        if op == "blocks" and slot == 0:
            blocks = dict(merge.get("blocks") or {})
            for class_type, widgets in BLOCK_WIDGETS.items():
                if set(widgets) == set(blocks) and ratio == float(blocks[widgets[0]]):
                    return self._chain(class_type, {**inputs, **{w: float(blocks[w]) for w in widgets}})
            raise Unexportable("a block merge whose prefixes are not ModelMergeBlocks', ModelMergeSD1's or "
                               "ModelMergeSDXL's has no ComfyUI node", "params.model.merge.blocks")
        class_type = _MERGE_CLASS.get((op, slot))
        if class_type is None:
            raise Unexportable(f"merge op {op!r} has no ComfyUI node", "params.model.merge.op")
        if op == "simple":
            inputs["ratio"] = ratio
        elif op == "subtract":
            inputs["multiplier"] = ratio
        return self._chain(class_type, inputs)

    def _parts(self, parts: Mapping[str, str], slot: int) -> Link:
        if slot == 0:
            if "unet" not in parts:
                raise Unexportable("a model of parts without a UNet gives no MODEL", "params.model.parts")
            return self._chain("UNETLoader", {"unet_name": self._comfy_name(parts["unet"]),
                                              "weight_dtype": "default"})
        if "text_encoder" in parts and "text_encoder_2" in parts:
            return self._chain("DualCLIPLoader", {"clip_name1": self._comfy_name(parts["text_encoder"]),
                                                  "clip_name2": self._comfy_name(parts["text_encoder_2"]),
                                                  "type": "sdxl", "device": "default"})
        if "text_encoder" in parts:
            return self._chain("CLIPLoader", {"clip_name": self._comfy_name(parts["text_encoder"]),
                                              "type": "stable_diffusion", "device": "default"})
        raise Unexportable("a model of parts without text encoders gives no CLIP", "params.model.parts")

    def derived_vae(self, ref: Mapping[str, Any]) -> Link:
        """The VAE of a derived reference: a merge's is its first model's; a model of parts has none."""
        if ref.get("parts"):
            raise Unexportable("a model of parts has no VAE (ComfyUI's VAELoader gives it)")
        merge = ref.get("merge")
        first = merge["a"] if merge else ref["name"]
        if is_derived(first):
            return self.derived_vae(first)
        return [self._checkpoint(first["name"] if isinstance(first, Mapping) else first), 2]
