"""``GET /object_info``: the ComfyUI node classes this daemon runs, with ComfyUI's input specs.

A class is listed when the importer maps it (the nodes ``graphs.comfy`` computes itself, and every
plugin's ``register_comfy_mappings``, the built-in plugins' included) onto blocks the catalog offers,
and we know its inputs
(``graphs.comfy.nodes.CORE_NODES``, or a mapping's ``widgets``/``defaults``). Each spec is
ComfyUI's shape: ``input.required`` / ``input.optional`` as ``[TYPE, {options}]`` (a combo
is ``[[choices...], {options}]``), ``input_order``, ``output``, ``output_name``,
``output_is_list``, ``output_node``, ``category``, ``display_name``. Widget ranges and
choices follow ComfyUI's own ``INPUT_TYPES`` (``nodes.py``); sampler and scheduler choices
come from our ``sd.ksampler`` block's schema, model file choices from the model library
(configured models and the model folders), image choices from the input folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphs.comfy.importer import mapping_table
from graphs.comfy.nodes import CORE_NODES, SEED_WIDGETS

MAX_SEED = 0xFFFFFFFFFFFFFFFF
SIZE = {"min": 16, "max": 16384, "step": 8}
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
LATENT_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
CATEGORIES = {
    "CheckpointLoaderSimple": "loaders", "CheckpointLoader": "advanced/loaders", "VAELoader": "loaders",
    "CLIPLoader": "advanced/loaders", "LoraLoader": "loaders", "LoraLoaderModelOnly": "loaders",
    "ControlNetLoader": "loaders", "UpscaleModelLoader": "loaders", "CLIPSetLastLayer": "conditioning",
    "KSampler": "sampling", "KSamplerAdvanced": "sampling", "EmptyLatentImage": "latent",
    "VAEEncode": "latent", "VAEDecode": "latent", "VAEEncodeTiled": "_for_testing",
    "VAEDecodeTiled": "_for_testing", "VAEEncodeForInpaint": "latent/inpaint",
    "SetLatentNoiseMask": "latent/inpaint", "LatentUpscale": "latent", "LatentUpscaleBy": "latent",
    "LatentComposite": "latent", "LoadImage": "image", "LoadImageMask": "mask", "SaveImage": "image",
    "PreviewImage": "image", "ImageScale": "image/upscaling", "ImageScaleBy": "image/upscaling",
    "ImageScaleToTotalPixels": "image/upscaling", "ImagePadForOutpaint": "image",
    "ImageCrop": "image/transform", "ImageBlend": "image/postprocessing", "Canny": "image/preprocessors",
    "ImageUpscaleWithModel": "image/upscaling", "GrowMask": "mask", "InvertMask": "mask",
    "ImageToMask": "mask", "MaskToImage": "mask",
}
DISPLAY = {"CheckpointLoaderSimple": "Load Checkpoint", "CLIPTextEncode": "CLIP Text Encode (Prompt)",
           "EmptyLatentImage": "Empty Latent Image", "VAEDecode": "VAE Decode", "VAEEncode": "VAE Encode",
           "SaveImage": "Save Image", "PreviewImage": "Preview Image", "LoadImage": "Load Image",
           "LoraLoader": "Load LoRA", "VAELoader": "Load VAE", "KSamplerAdvanced": "KSampler (Advanced)",
           "UpscaleModelLoader": "Load Upscale Model", "ControlNetLoader": "Load ControlNet Model",
           "ImageUpscaleWithModel": "Upscale Image (using Model)", "LatentUpscale": "Upscale Latent",
           "LatentUpscaleBy": "Upscale Latent By", "ImageScale": "Upscale Image",
           "ImageScaleBy": "Upscale Image By", "VAEEncodeForInpaint": "VAE Encode (for Inpainting)"}

# (class or "*", widget) -> ComfyUI options; "*" applies to every class without its own entry
_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("*", "steps"): {"min": 1, "max": 10000},
    ("*", "cfg"): {"min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01},
    ("*", "denoise"): {"min": 0.0, "max": 1.0, "step": 0.01},
    ("*", "width"): SIZE, ("*", "height"): SIZE,
    ("*", "batch_size"): {"min": 1, "max": 4096},
    ("*", "strength"): {"min": 0.0, "max": 10.0, "step": 0.01},
    ("*", "strength_model"): {"min": -100.0, "max": 100.0, "step": 0.01},
    ("*", "strength_clip"): {"min": -100.0, "max": 100.0, "step": 0.01},
    ("*", "start_percent"): {"min": 0.0, "max": 1.0, "step": 0.001},
    ("*", "end_percent"): {"min": 0.0, "max": 1.0, "step": 0.001},
    ("*", "start_at_step"): {"min": 0, "max": 10000}, ("*", "end_at_step"): {"min": 0, "max": 10000},
    ("*", "stop_at_clip_layer"): {"min": -24, "max": -1, "step": 1},
    ("*", "x"): {"min": 0, "max": 16384, "step": 8}, ("*", "y"): {"min": 0, "max": 16384, "step": 8},
    ("*", "feather"): {"min": 0, "max": 16384, "step": 8},
    ("*", "scale_by"): {"min": 0.01, "max": 8.0, "step": 0.01},
    ("*", "megapixels"): {"min": 0.01, "max": 16.0, "step": 0.01},
    ("*", "resolution_steps"): {"min": 1, "max": 256},
    ("*", "tile_size"): {"min": 64, "max": 4096, "step": 32},
    ("*", "overlap"): {"min": 0, "max": 4096, "step": 32},
    ("*", "temporal_size"): {"min": 8, "max": 4096, "step": 4},
    ("*", "temporal_overlap"): {"min": 4, "max": 4096, "step": 4},
    ("*", "grow_mask_by"): {"min": 0, "max": 64, "step": 1},
    ("*", "left"): {"min": 0, "max": 16384, "step": 8}, ("*", "top"): {"min": 0, "max": 16384, "step": 8},
    ("*", "right"): {"min": 0, "max": 16384, "step": 8}, ("*", "bottom"): {"min": 0, "max": 16384, "step": 8},
    ("*", "feathering"): {"min": 0, "max": 16384, "step": 1},
    ("*", "blend_factor"): {"min": 0.0, "max": 1.0, "step": 0.01},
    ("*", "low_threshold"): {"min": 0.01, "max": 0.99, "step": 0.01},
    ("*", "high_threshold"): {"min": 0.01, "max": 0.99, "step": 0.01},
    ("*", "expand"): {"min": -16384, "max": 16384, "step": 1},
    ("*", "text"): {"multiline": True, "dynamicPrompts": True},
    ("ConditioningSetArea", "width"): {"min": 64, "max": 16384, "step": 8},
    ("ConditioningSetArea", "height"): {"min": 64, "max": 16384, "step": 8},
    ("ImageCrop", "width"): {"min": 1, "max": 16384, "step": 1},
    ("ImageCrop", "height"): {"min": 1, "max": 16384, "step": 1},
    ("ImageScale", "width"): {"min": 0, "max": 16384, "step": 1},
    ("ImageScale", "height"): {"min": 0, "max": 16384, "step": 1},
    ("LatentUpscale", "width"): {"min": 0, "max": 16384, "step": 8},
    ("LatentUpscale", "height"): {"min": 0, "max": 16384, "step": 8},
    ("PrimitiveStringMultiline", "value"): {"multiline": True},
    **{("ConditioningSetAreaPercentage", k): {"min": 0.0, "max": 1.0, "step": 0.01}
       for k in ("width", "height", "x", "y")},
    ("ConditioningAverage", "conditioning_to_strength"): {"min": 0.0, "max": 1.0, "step": 0.01},
    ("ConditioningSetTimestepRange", "start"): {"min": 0.0, "max": 1.0, "step": 0.001},
    ("ConditioningSetTimestepRange", "end"): {"min": 0.0, "max": 1.0, "step": 0.001},
    ("CLIPTextEncodeSDXL", "crop_w"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "crop_h"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "target_width"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "target_height"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "width"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "height"): {"min": 0, "max": 16384},
    ("CLIPTextEncodeSDXL", "text_g"): {"multiline": True, "dynamicPrompts": True},
    ("CLIPTextEncodeSDXL", "text_l"): {"multiline": True, "dynamicPrompts": True},
    ("StringConcatenate", "string_a"): {"multiline": True},
    ("StringConcatenate", "string_b"): {"multiline": True},
    ("StringSubstring", "start"): {"min": -(2**31), "max": 2**31 - 1},
    ("StringSubstring", "end"): {"min": -(2**31), "max": 2**31 - 1},
    ("RegexExtract", "group_index"): {"min": 0, "max": 100},
    ("RegexReplace", "count"): {"min": 0, "max": 100},
}
_STATIC_CHOICES: dict[str, list[Any]] = {
    "crop": ["disabled", "center"], "add_noise": ["enable", "disable"],
    "return_with_leftover_noise": ["disable", "enable"],
    "channel": ["alpha", "red", "green", "blue"],
    "blend_mode": ["normal", "multiply", "screen", "overlay", "soft_light", "difference"],
    "config_name": [],
}
_COND = {"conditioning": "CONDITIONING"}
_TO_FROM = {"conditioning_to": "CONDITIONING", "conditioning_from": "CONDITIONING"}
_REGEX_FLAGS = (("case_insensitive", True), ("multiline", False), ("dotall", False))
# classes the importer maps whose inputs graphs.comfy.nodes does not describe: ComfyUI's own
# INPUT_TYPES (nodes.py, comfy_extras/nodes_cond.py, nodes_mask.py, nodes_string.py), as
# (link inputs, widgets with defaults in ComfyUI's order, outputs)
EXTRA_NODES: dict[str, tuple[dict[str, str], tuple[tuple[str, Any], ...], tuple[str, ...]]] = {
    "CLIPTextEncodeSDXL": ({"clip": "CLIP"}, (("width", 1024), ("height", 1024), ("crop_w", 0), ("crop_h", 0),
                                              ("target_width", 1024), ("target_height", 1024), ("text_g", ""),
                                              ("text_l", "")), ("CONDITIONING",)),
    "ConditioningAverage": (_TO_FROM, (("conditioning_to_strength", 1.0),), ("CONDITIONING",)),
    "ConditioningConcat": (_TO_FROM, (), ("CONDITIONING",)),
    "ConditioningSetAreaPercentage": (_COND, (("width", 1.0), ("height", 1.0), ("x", 0.0), ("y", 0.0),
                                              ("strength", 1.0)), ("CONDITIONING",)),
    "ConditioningSetAreaStrength": (_COND, (("strength", 1.0),), ("CONDITIONING",)),
    "ConditioningSetMask": ({**_COND, "mask": "MASK"}, (("strength", 1.0), ("set_cond_area", "default")),
                            ("CONDITIONING",)),
    "ConditioningSetTimestepRange": (_COND, (("start", 0.0), ("end", 1.0)), ("CONDITIONING",)),
    "StringConcatenate": ({}, (("string_a", ""), ("string_b", ""), ("delimiter", "")), ("STRING",)),
    "StringLength": ({}, (("string", ""),), ("INT",)),
    "StringSubstring": ({}, (("string", ""), ("start", 0), ("end", 0)), ("STRING",)),
    "StringTrim": ({}, (("string", ""), ("mode", "Both")), ("STRING",)),
    "StringReplace": ({}, (("string", ""), ("find", ""), ("replace", "")), ("STRING",)),
    "StringContains": ({}, (("string", ""), ("substring", ""), ("case_sensitive", True)), ("BOOLEAN",)),
    "StringCompare": ({}, (("string_a", ""), ("string_b", ""), ("mode", "Starts With"),
                           ("case_sensitive", True)), ("BOOLEAN",)),
    "CaseConverter": ({}, (("string", ""), ("mode", "UPPERCASE")), ("STRING",)),
    "RegexMatch": ({}, (("string", ""), ("regex_pattern", ""), *_REGEX_FLAGS), ("BOOLEAN",)),
    "RegexExtract": ({}, (("string", ""), ("regex_pattern", ""), ("mode", "First Match"), *_REGEX_FLAGS,
                          ("group_index", 1)), ("STRING",)),
    "RegexReplace": ({}, (("string", ""), ("regex_pattern", ""), ("replace", ""), *_REGEX_FLAGS,
                          ("count", 0)), ("STRING",)),
}
# (class, widget) -> choices, where a widget name means different things in different classes
_CLASS_CHOICES: dict[tuple[str, str], list[str]] = {
    ("ConditioningSetMask", "set_cond_area"): ["default", "mask bounds"],
    ("StringTrim", "mode"): ["Both", "Left", "Right"],
    ("StringCompare", "mode"): ["Starts With", "Ends With", "Equal"],
    ("CaseConverter", "mode"): ["UPPERCASE", "lowercase", "Capitalize", "Title Case"],
    ("RegexExtract", "mode"): ["First Match", "All Matches", "First Group", "All Groups"],
}
# widget -> model kind whose names are its choices (orchestrator.models.folders kinds)
MODEL_WIDGETS = {"ckpt_name": "checkpoint", "vae_name": "vae", "lora_name": "lora",
                 "control_net_name": "controlnet", "clip_name": "clip", "model_name": "upscaler"}
LINK_TYPES = frozenset({"MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE", "MASK", "CONTROL_NET",
                        "UPSCALE_MODEL", "SIGMAS", "SAMPLER", "NOISE", "GUIDER", "CLIP_VISION"})


def _requirement_met(req: str, blocks: set[str]) -> bool:
    return any(alt.split(":", 1)[0] in blocks for alt in req.split("|"))


def runnable_classes(catalog: Any, mappings: Iterable[Any] = ()) -> dict[str, Any]:
    """class_type -> mapping, for the ComfyUI classes whose blocks ``catalog`` offers."""
    table, _ = mapping_table(mappings)
    blocks = set(catalog.keys()) if hasattr(catalog, "keys") else {b["id"] for b in catalog.to_json()}
    return {cls: m for cls, m in table.items()
            if all(_requirement_met(r, blocks) for r in (m.requires or ()))}


def _block_enum(catalog: Any, block: str, param: str) -> list[str] | None:
    try:
        spec = catalog[block]
        schema = spec.params_model.model_json_schema()
    except Exception:  # noqa: BLE001 - a catalog without the block: the fallback list
        return None
    values = schema.get("properties", {}).get(param, {}).get("enum")
    return list(values) if isinstance(values, list) else None


class ObjectInfo:
    """Builds ComfyUI's ``object_info`` for a catalog; choices are read fresh on every call."""

    def __init__(self, catalog: Any, mappings: Iterable[Any] = (),
                 model_names: Callable[[str], list[str]] | None = None,
                 input_names: Callable[[], list[str]] | None = None) -> None:
        self.catalog = catalog
        try:
            self.classes = runnable_classes(catalog, mappings)
        except Exception:  # noqa: BLE001 - a plugin's bad mapping: the core classes are still listed
            self.classes = runnable_classes(catalog, ())
        self.model_names = model_names or (lambda _kind: [])
        self.input_names = input_names or (lambda: [])
        from graphs.comfy.samplers import SAMPLERS

        self.samplers = _block_enum(catalog, "sd.ksampler", "sampler") or list(SAMPLERS)
        self.schedulers = _block_enum(catalog, "sd.ksampler", "scheduler") or [
            "normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]

    def names(self) -> list[str]:
        """The classes with a spec, sorted."""
        return sorted(c for c in self.classes if self._info(c) is not None)

    def _info(self, cls: str) -> tuple[dict[str, str], list[tuple[str, Any]], tuple[str, ...],
                                       frozenset[str], bool] | None:
        info = CORE_NODES.get(cls)
        m = self.classes.get(cls)
        if info is not None:
            return dict(info.inputs), list(info.widgets), info.outputs, info.optional, info.output_node
        extra = EXTRA_NODES.get(cls)
        order = tuple(w for w, _ in extra[1]) if extra is not None else ()
        if extra is not None and (m is None or not m.widgets or tuple(m.widgets) == order):
            return dict(extra[0]), list(extra[1]), extra[2], frozenset(), False
        # a plugin's mapping: listed when it says enough to draw the node right (its outputs'
        # types, a default, so a type, for every widget); else left out rather than drawn wrong
        if m is not None and m.output_types and all(w in m.defaults for w in m.widgets):
            widgets = [(w, m.defaults[w]) for w in m.widgets]
            return dict(m.input_types), widgets, tuple(m.output_types), frozenset(), bool(m.output_node)
        return None

    def all(self) -> dict[str, Any]:
        choices = self._choices()
        return {cls: self._spec(cls, choices) for cls in self.names()}

    def one(self, cls: str) -> dict[str, Any] | None:
        if cls not in self.classes or self._info(cls) is None:
            return None
        return {cls: self._spec(cls, self._choices())}

    def _choices(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = dict(_STATIC_CHOICES)
        out["sampler_name"] = self.samplers
        out["scheduler"] = self.schedulers
        for widget, kind in MODEL_WIDGETS.items():
            out[widget] = self.model_names(kind)
        out["image"] = self.input_names()
        return out

    def _widget(self, cls: str, name: str, default: Any, choices: Mapping[str, list[Any]]) -> list[Any]:
        opts = dict(_OPTIONS.get((cls, name)) or _OPTIONS.get(("*", name)) or {})
        if isinstance(default, (int, float)) and not isinstance(default, bool) and "min" in opts and \
                not opts["min"] <= default <= opts.get("max", default):
            opts = {}  # a range for another kind of value of the same name (a fraction, not pixels)
        if (cls, name) in _CLASS_CHOICES:
            return [list(_CLASS_CHOICES[cls, name]), {"default": default}]
        if name == "upscale_method":
            values = LATENT_UPSCALE_METHODS if cls.startswith("Latent") else UPSCALE_METHODS
            return [values, {"default": default}]
        if name in choices and not isinstance(default, bool) and \
                (isinstance(default, str) or name == "image"):
            values = list(choices[name])
            if name == "image":
                opts["image_upload"] = True
            if default not in ("", None) and default not in values:
                opts["default"] = values[0] if values else default
            elif default not in ("", None):
                opts["default"] = default
            return [values, opts]
        if name in SEED_WIDGETS:
            return ["INT", {"default": int(default or 0), "min": 0, "max": MAX_SEED,
                            "control_after_generate": True}]
        if isinstance(default, bool):
            return ["BOOLEAN", {"default": default}]
        if isinstance(default, int):
            return ["INT", {"default": default, **opts}]
        if isinstance(default, float):
            return ["FLOAT", {"default": default, **opts}]
        return ["STRING", {"default": "" if default is None else str(default), **opts}]

    def _spec(self, cls: str, choices: Mapping[str, list[Any]]) -> dict[str, Any]:
        found = self._info(cls)
        assert found is not None
        links, widgets, outputs, optional, output_node = found
        required: dict[str, Any] = {}
        opt: dict[str, Any] = {}
        for name, type_ in links.items():
            (opt if name in optional else required)[name] = [type_]
        for name, default in widgets:
            if name == "upload":  # the editor's upload button: LoadImage's image_upload option
                continue
            required[name] = self._widget(cls, name, default, choices)
        outs = list(outputs)
        return {"input": {"required": required, "optional": opt, "hidden": {}},
                "input_order": {"required": list(required), "optional": list(opt)},
                "output": outs, "output_is_list": [False] * len(outs), "output_name": outs,
                "name": cls, "display_name": DISPLAY.get(cls, cls), "description": "",
                "python_module": "nodes", "category": CATEGORIES.get(cls, "orchestrator"),
                "output_node": output_node, "deprecated": False, "experimental": False,
                "api_node": False}
