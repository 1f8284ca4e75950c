"""Exporting one of our graphs back to ComfyUI's API format.

Works for graphs made of the blocks the import maps (``sd.*`` and the ``image.*`` ones
with a ComfyUI equivalent). Model references become loader nodes again: a
``CheckpointLoaderSimple`` per model, a ``LoraLoader`` chain per LoRA list, a
``CLIPSetLastLayer`` for a clip skip; ``sd.encode_prompt`` becomes two ``CLIPTextEncode``
(positive and negative); ``sd.inpaint`` a ``VAEEncodeForInpaint`` (or, below strength 1,
``VAEEncode`` + ``SetLatentNoiseMask``) and a ``KSampler``. Node ids and model file names
of an imported graph are given back (``meta.comfy`` of each node, ``meta.comfy_models``),
so import -> export -> import gives the same graph. A block with no ComfyUI equivalent is
reported as ``unexportable_block``.

>>> from graphs import GraphBuilder
>>> b = GraphBuilder()
>>> latent = b.add("sd.empty_latent", model="tiny-sd", width=64, height=64)
>>> api, problems = export_api(b.build())
>>> api["1"]["class_type"], api["1"]["inputs"], problems
('EmptyLatentImage', {'width': 64, 'height': 64, 'batch_size': 1}, [])
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from graphs.comfy.export_models import ModelExport, Unexportable, is_derived
from graphs.comfy.export_sampling import SamplingExport
from graphs.comfy.export_utility import utility_export
from graphs.comfy.samplers import EXPORT_SAMPLERS
from graphs.errors import GraphError
from graphs.model import Graph, Node

Link = list[Any]  # [node id, slot]
RESIZE_METHODS = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area",
                  "lanczos": "lanczos"}
BLEND_MODES = {"normal", "multiply", "screen", "overlay", "soft_light", "difference"}


def export_api(graph: Graph, model_map: Mapping[str, str] | None = None) -> tuple[dict[str, dict[str, Any]],
                                                                                   list[GraphError]]:
    """``(API-format prompt, problems)`` for ``graph``; ``model_map`` maps ComfyUI names to ours."""
    return _Exporter(graph, model_map or {}).run()


class _Exporter(ModelExport, SamplingExport):
    def __init__(self, graph: Graph, model_map: Mapping[str, str]) -> None:
        self.graph = graph
        reverse: dict[str, str] = {}
        for comfy, ours in [*dict(graph.meta.get("comfy_models") or {}).items(), *model_map.items()]:
            reverse.setdefault(ours, comfy)
        self.names = reverse
        self.out: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, Any] = {}  # "node.port" -> link, or (positive, negative) links
        self.problems: list[GraphError] = []
        self.cache: dict[Any, str] = {}
        self.folded: set[str] = set()
        self.folded_sizes: set[str] = set()  # cond.sdxl_size nodes folded into a CLIPTextEncodeSDXL
        claimed = [_comfy(n).get("id") for n in graph.nodes.values()]
        self.free = max([int(i) for i in claimed if isinstance(i, str) and i.isdigit()] + [0]) + 1

    def run(self) -> tuple[dict[str, dict[str, Any]], list[GraphError]]:
        try:
            order = self.graph.topological_order()
        except GraphError as exc:
            return {}, [exc]
        self._fold_inpaint_masks()
        for node_id in order:
            node = self.graph.nodes[node_id]
            handler = getattr(self, "_" + node.block.replace(".", "_"), None)
            utility = utility_export(node.block) if handler is None else None  # the utility nodes' blocks
            if utility is not None:
                handler = partial(utility, self)
            if node_id in self.folded:
                continue
            if handler is None:
                self._problem(node_id, f"block {node.block!r} has no ComfyUI equivalent", "block")
                continue
            try:
                handler(node_id, node)
            except _Skip as exc:
                self._problem(node_id, str(exc), exc.field)
        ordered = sorted(self.out.items(), key=lambda kv: (0, int(kv[0])) if kv[0].isdigit() else (1, kv[0]))
        return dict(ordered), self.problems

    def _fold_inpaint_masks(self) -> None:
        """A mask grown for an inpaint (as imported from VAEEncodeForInpaint) folds back into it."""
        readers: dict[str, list[str]] = {}
        for node in self.graph.nodes.values():
            for _name, _i, ref in node.references():
                readers.setdefault(ref.split(".")[0], []).append(node.block)
        for node_id, node in self.graph.nodes.items():
            if (node.block == "image.mask_grow" and _comfy(node).get("class_type") == "VAEEncodeForInpaint"
                    and not node.params.get("blur") and not node.params.get("invert")
                    and readers.get(node_id) and set(readers[node_id]) == {"sd.inpaint"}):
                self.folded.add(node_id)

    # -- helpers ----------------------------------------------------------------------------

    def _problem(self, node_id: str, message: str, field: str | None) -> None:
        self.problems.append(GraphError(f"node {node_id!r}: {message}; it is left out of the export",
                                        type="unexportable_block", node=node_id, field=field,
                                        block=self.graph.nodes[node_id].block))

    def _new(self, class_type: str, inputs: dict[str, Any], want: str | None = None) -> str:
        node_id = want if (want and want.isdigit() and want not in self.out) else None
        if node_id is None:
            node_id = str(self.free)
            self.free += 1
        self.out[node_id] = {"inputs": inputs, "class_type": class_type}
        return node_id

    def _input(self, node: Node, name: str) -> Any:
        ref = node.inputs.get(name)
        if not isinstance(ref, str) or ref not in self.ports:
            raise _Skip(f"input {name!r} ({ref!r}) comes from nothing exported", f"inputs.{name}")
        return self.ports[ref]

    def _link(self, node: Node, name: str) -> Link:
        value = self._input(node, name)
        if not isinstance(value, list):
            raise _Skip(f"input {name!r} is not a single ComfyUI output", f"inputs.{name}")
        return value

    def _comfy_name(self, ours: str) -> str:
        return self.names.get(ours, ours)

    def _checkpoint(self, ref: Any) -> str:
        name = ref["name"] if isinstance(ref, dict) else str(ref or "tiny-sd")
        key = ("ckpt", name)
        if key not in self.cache:
            self.cache[key] = self._new("CheckpointLoaderSimple", {"ckpt_name": self._comfy_name(name)})
        return self.cache[key]

    def _loras(self, ref: Any, slot: int) -> Link:
        """The MODEL (slot 0) or CLIP (slot 1) output after the reference's LoRA chain (a derived
        reference's node chain: :mod:`graphs.comfy.export_models`)."""
        if is_derived(ref):
            try:
                return self._derived(ref, slot)
            except Unexportable as exc:
                raise _Skip(str(exc), exc.field) from None
        ckpt = self._checkpoint(ref)
        link: Link = [ckpt, slot]
        loras = ref.get("loras", []) if isinstance(ref, dict) else []
        chain: tuple[Any, ...] = (ckpt,)
        model_link, clip_link = [ckpt, 0], [ckpt, 1]
        for lora in loras:
            chain = (*chain, lora["path"], float(lora.get("weight", 1.0)))
            if chain not in self.cache:
                w = float(lora.get("weight", 1.0))
                self.cache[chain] = self._new("LoraLoader", {
                    "lora_name": self._comfy_name(lora["path"]), "strength_model": w, "strength_clip": w,
                    "model": model_link, "clip": clip_link})
            model_link, clip_link = [self.cache[chain], 0], [self.cache[chain], 1]
            link = model_link if slot == 0 else clip_link
        return link

    def _vae(self, ref: Any) -> Link:
        if is_derived(ref):
            try:
                return self.derived_vae(ref)
            except Unexportable as exc:
                raise _Skip(str(exc), exc.field) from None
        return [self._checkpoint(ref), 2]

    # -- sd blocks ------------------------------------------------------------------------------

    def _sd_encode_prompt(self, node_id: str, node: Node) -> None:
        p, meta = node.params, _comfy(node)
        clip = self._loras(p.get("model", "tiny-sd"), 1)
        skip = p.get("clip_skip")
        if skip:
            key = ("skip", tuple(clip), skip)
            if key not in self.cache:
                self.cache[key] = self._new("CLIPSetLastLayer",
                                            {"stop_at_clip_layer": -int(skip) - 1, "clip": clip})
            clip = [self.cache[key], 0]
        embs = p["model"].get("embeddings", []) if isinstance(p.get("model"), dict) else []
        pos_text = self._with_embeddings(p.get("prompt", ""), embs)
        neg_text = self._with_embeddings(p.get("negative_prompt") or "", embs)
        size = self._sdxl_size(node_id, "prompt")
        if size is not None or p.get("prompt_2") is not None:  # CLIPTextEncodeSDXL: text_l, text_g, size
            if size is None:
                raise _Skip("prompt_2 without its size conditioning (cond.sdxl_size) has no ComfyUI node",
                            "params.prompt_2")
            text_g = self._with_embeddings(p.get("prompt_2") or p.get("prompt", ""), embs)
            widgets = {**size, "text_g": text_g, "text_l": pos_text, "clip": clip}
            pos = self._new("CLIPTextEncodeSDXL", widgets, meta.get("id"))
        else:
            pos = self._new("CLIPTextEncode", {"text": pos_text, "clip": clip}, meta.get("id"))
        neg_size = self._sdxl_size(node_id, "negative")
        key = ("negative", tuple(clip), neg_text, meta.get("negative_id"),  # one node for a shared negative
               json.dumps([neg_size, p.get("negative_prompt_2")], sort_keys=True))
        if key not in self.cache and (neg_size is not None or p.get("negative_prompt_2") is not None):
            if neg_size is None:
                raise _Skip("negative_prompt_2 without its size conditioning (cond.sdxl_size) has no "
                            "ComfyUI node", "params.negative_prompt_2")
            text_g = self._with_embeddings(p.get("negative_prompt_2") or neg_text, embs)
            widgets = {**neg_size, "text_g": text_g, "text_l": neg_text, "clip": clip}
            self.cache[key] = self._new("CLIPTextEncodeSDXL", widgets, meta.get("negative_id"))
        elif key not in self.cache:
            self.cache[key] = self._new("CLIPTextEncode", {"text": neg_text, "clip": clip},
                                        meta.get("negative_id"))
        self.ports[f"{node_id}.cond"] = ([pos, 0], [self.cache[key], 0])

    def _sdxl_size(self, node_id: str, side: str) -> dict[str, int] | None:
        """The widgets of the ``cond.sdxl_size`` on ``side`` right after this encode (a chain of them:
        one per side), folded into its CLIPTextEncodeSDXL."""
        refs, found = {f"{node_id}.cond"}, None
        for _ in range(2):
            chained = [(k, n) for k, n in self.graph.nodes.items()
                       if n.block == "cond.sdxl_size" and n.inputs.get("cond") in refs]
            if len(chained) != 1:
                break
            other_id, other = chained[0]
            refs = {f"{other_id}.cond"}
            if other.params.get("side", "prompt") == side:
                found = other_id, other
        if found is None:
            return None
        other_id, other = found
        self.folded_sizes.add(other_id)
        p = other.params
        return {"width": int(p.get("width", 1024)), "height": int(p.get("height", 1024)),
                "crop_w": int(p.get("crop_w", 0)), "crop_h": int(p.get("crop_h", 0)),
                "target_width": int(p.get("target_width", 1024)),
                "target_height": int(p.get("target_height", 1024))}

    def _cond_sdxl_size(self, node_id: str, node: Node) -> None:
        if node_id not in self.folded_sizes:
            raise _Skip("size conditioning not straight on an sd.encode_prompt has no ComfyUI node",
                        "inputs.cond")
        self.ports[f"{node_id}.cond"] = self._input(node, "cond")

    def _with_embeddings(self, text: str, embeddings: list[dict[str, Any]]) -> str:
        for e in embeddings:
            token = e.get("token") or re.sub(r"\.\w+$", "", e["path"].rsplit("/", 1)[-1])
            comfy = self._comfy_name(e["path"])
            text = re.sub(rf"(?<![\w:]){re.escape(token)}(?!\w)", f"embedding:{comfy}", text)
        return text

    def _cond(self, node: Node) -> tuple[Link, Link]:
        value = self._input(node, "cond")
        if not isinstance(value, tuple):
            raise _Skip("its conditioning is not a positive/negative pair from sd.encode_prompt",
                        "inputs.cond")
        return value

    def _sampler_inputs(self, node: Node, latent: Link) -> dict[str, Any]:
        p = node.params
        pos, neg = self._cond(node)
        sampler, scheduler = EXPORT_SAMPLERS.get(p.get("sampler", "default"), ("euler", "normal"))
        return {"seed": int(p.get("seed") or 0), "steps": int(p.get("steps", 20)),
                "cfg": float(p.get("cfg", 7.5)), "sampler_name": sampler, "scheduler": scheduler,
                "denoise": float(p.get("strength", 1.0)),
                "model": self._loras(p.get("model", "tiny-sd"), 0), "positive": pos, "negative": neg,
                "latent_image": latent}

    def _sd_denoise(self, node_id: str, node: Node) -> None:
        sampler = self._new("KSampler", self._sampler_inputs(node, self._link(node, "latent")),
                            _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [sampler, 0]

    def _sd_inpaint(self, node_id: str, node: Node) -> None:
        model = node.params.get("model", "tiny-sd")
        image, mask_ref = self._link(node, "image"), node.inputs.get("mask")
        grow, source = 0, str(mask_ref).split(".")[0]
        if source in self.folded:
            grow = int(self.graph.nodes[source].params.get("grow", 0))
            mask_ref = self.graph.nodes[source].inputs.get("mask")
        if not isinstance(mask_ref, str) or mask_ref not in self.ports:
            raise _Skip("its mask comes from nothing exported", "inputs.mask")
        mask = self.ports[mask_ref]
        latent_id = _comfy(node).get("latent_id")
        if float(node.params.get("strength", 1.0)) < 1.0:
            enc = self._new("VAEEncode", {"pixels": image, "vae": self._vae(model)})
            latent = self._new("SetLatentNoiseMask", {"samples": [enc, 0], "mask": mask}, latent_id)
        else:
            latent = self._new("VAEEncodeForInpaint", {"grow_mask_by": grow, "pixels": image,
                                                       "vae": self._vae(model), "mask": mask}, latent_id)
        sampler = self._new("KSampler", self._sampler_inputs(node, [latent, 0]), _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [sampler, 0]

    def _sd_ksampler(self, node_id: str, node: Node) -> None:
        """``sd.ksampler``: KSampler, or KSamplerAdvanced when it sets a step window or noise control."""
        p = node.params
        pos, neg = self._cond(node)
        latent = self._noise_masked(node, self._link(node, "latent"))
        inputs: dict[str, Any] = {
            "steps": int(p.get("steps", 20)), "cfg": float(p.get("cfg", 8.0)),
            "sampler_name": p.get("sampler", "euler"), "scheduler": p.get("scheduler", "normal"),
            "model": self._sampled_model(p), "positive": pos, "negative": neg, "latent_image": latent}
        seed = int(p.get("seed") or 0)
        leftover = "enable" if p.get("return_with_leftover_noise") else "disable"
        window = {"start_at_step": int(p.get("start_step", 0)), "end_at_step": int(p.get("end_step", 10000)),
                  "add_noise": "enable" if p.get("add_noise", True) else "disable",
                  "return_with_leftover_noise": leftover}
        if window == {"start_at_step": 0, "end_at_step": 10000, "add_noise": "enable",
                      "return_with_leftover_noise": "disable"}:
            new = self._new("KSampler", {"seed": seed, **inputs, "denoise": float(p.get("denoise", 1.0))},
                            _comfy(node).get("id"))
        else:
            if float(p.get("denoise", 1.0)) != 1.0:
                raise _Skip("KSamplerAdvanced has no denoise; a step window with denoise below 1 has no "
                            "ComfyUI equivalent", "params.denoise")
            new = self._new("KSamplerAdvanced", {"noise_seed": seed, **inputs, **window},
                            _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _sd_empty_latent(self, node_id: str, node: Node) -> None:
        p = node.params
        size = {"width": int(p.get("width", 512)), "height": int(p.get("height", 512)),
                "batch_size": int(p.get("batch", 1))}
        new = self._new("EmptyLatentImage", size, _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _sd_vae_encode(self, node_id: str, node: Node) -> None:
        vae = self._vae(node.params.get("model", "tiny-sd"))
        new = self._new("VAEEncode", {"pixels": self._link(node, "image"), "vae": vae},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _sd_vae_decode(self, node_id: str, node: Node) -> None:
        vae = self._vae(node.params.get("model", "tiny-sd"))
        new = self._new("VAEDecode", {"samples": self._link(node, "latent"), "vae": vae},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _sd_latent_upscale(self, node_id: str, node: Node) -> None:
        p = node.params
        samples, method = self._link(node, "latent"), p.get("mode", "nearest-exact")
        scale = float(p.get("scale", 2.0))
        size = self._latent_size(node.inputs.get("latent"))
        if _comfy(node).get("class_type") == "LatentUpscale" and size is not None:
            inputs = {"upscale_method": method, "width": round(size[0] * scale),
                      "height": round(size[1] * scale), "crop": "disabled", "samples": samples}
            new = self._new("LatentUpscale", inputs, _comfy(node).get("id"))
        else:
            inputs = {"upscale_method": method, "scale_by": scale, "samples": samples}
            new = self._new("LatentUpscaleBy", inputs, _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _latent_size(self, ref: Any) -> tuple[float, float] | None:
        """The pixel size a latent reference stands for, when the graph fixes it."""
        node = self.graph.nodes.get(str(ref).split(".")[0])
        if node is None:
            return None
        if node.block == "sd.empty_latent":
            return float(node.params.get("width", 512)), float(node.params.get("height", 512))
        if node.block == "sd.denoise":
            return self._latent_size(node.inputs.get("latent"))
        if node.block == "sd.latent_upscale":
            size, scale = self._latent_size(node.inputs.get("latent")), float(node.params.get("scale", 2.0))
            return (size[0] * scale, size[1] * scale) if size else None
        return None

    # -- image blocks -----------------------------------------------------------------------------

    def _load(self, path: str, want: str | None) -> str:
        key = ("load", path)
        if key not in self.cache:
            self.cache[key] = self._new("LoadImage", {"image": path, "upload": "image"}, want)
        return self.cache[key]

    def _image_load(self, node_id: str, node: Node) -> None:
        self.ports[f"{node_id}.image"] = [self._load(node.params["path"], _comfy(node).get("id")), 0]

    def _image_load_mask(self, node_id: str, node: Node) -> None:
        p = node.params
        channel, invert = p.get("channel", "luminance"), bool(p.get("invert", False))
        if channel == "alpha" and invert:
            self.ports[f"{node_id}.mask"] = [self._load(p["path"], _comfy(node).get("id")), 1]
        elif channel in ("red", "green", "blue") and not invert:
            new = self._new("LoadImageMask", {"image": p["path"], "channel": channel, "upload": "image"},
                            _comfy(node).get("id"))
            self.ports[f"{node_id}.mask"] = [new, 0]
        else:
            raise _Skip(f"channel {channel!r} with invert={invert} has no ComfyUI loader", "params.channel")

    def _image_save(self, node_id: str, node: Node) -> None:
        image = self._link(node, "image")
        if _comfy(node).get("class_type") == "PreviewImage":
            self._new("PreviewImage", {"images": image}, _comfy(node).get("id"))
        else:
            self._new("SaveImage", {"filename_prefix": node.params.get("name", "image"), "images": image},
                      _comfy(node).get("id"))

    def _image_resize(self, node_id: str, node: Node) -> None:
        p = node.params
        method = RESIZE_METHODS.get(p.get("method", "bicubic"), "bicubic")
        image = self._link(node, "image")
        if p.get("scale") is not None:
            new = self._new("ImageScaleBy", {"upscale_method": method, "scale_by": float(p["scale"]),
                                             "image": image}, _comfy(node).get("id"))
        else:
            if p.get("aspect", "stretch") not in ("stretch", "crop") or int(p.get("multiple_of", 1)) != 1:
                raise _Skip("aspect 'fit'/'fill' and multiple_of have no ComfyUI ImageScale equivalent",
                            "params.aspect")
            new = self._new("ImageScale", {"upscale_method": method, "width": int(p.get("width") or 0),
                                           "height": int(p.get("height") or 0),
                                           "crop": "center" if p.get("aspect") == "crop" else "disabled",
                                           "image": image}, _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _image_pad(self, node_id: str, node: Node) -> None:
        p = node.params
        sides = {k: int(p.get(k, 0)) for k in ("left", "top", "right", "bottom")}
        new = self._new("ImagePadForOutpaint", {**sides, "feathering": 0, "image": self._link(node, "image")},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.image"], self.ports[f"{node_id}.mask"] = [new, 0], [new, 1]

    def _image_crop(self, node_id: str, node: Node) -> None:
        p = node.params
        new = self._new("ImageCrop", {"width": p["width"], "height": p["height"], "x": p.get("x", 0),
                                      "y": p.get("y", 0), "image": self._link(node, "image")},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _image_blend(self, node_id: str, node: Node) -> None:
        p = node.params
        if p.get("mode", "normal") not in BLEND_MODES or "mask" in node.inputs:
            raise _Skip("ComfyUI's ImageBlend has no such mode, or no mask input", "params.mode")
        new = self._new("ImageBlend", {"blend_factor": float(p.get("opacity", 1.0)),
                                       "blend_mode": p.get("mode", "normal"),
                                       "image1": self._link(node, "a"), "image2": self._link(node, "b")},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _image_upscale_model(self, node_id: str, node: Node) -> None:
        name = self._comfy_name(str(node.params.get("model", "")))
        key = ("upscaler", name)
        if key not in self.cache:
            self.cache[key] = self._new("UpscaleModelLoader", {"model_name": name})
        inputs = {"upscale_model": [self.cache[key], 0], "image": self._link(node, "image")}
        new = self._new("ImageUpscaleWithModel", inputs, _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _image_canny(self, node_id: str, node: Node) -> None:
        p = node.params
        new = self._new("Canny", {"low_threshold": round(float(p.get("low", 100.0)) / 255, 4),
                                  "high_threshold": round(float(p.get("high", 200.0)) / 255, 4),
                                  "image": self._link(node, "image")}, _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    def _image_mask_grow(self, node_id: str, node: Node) -> None:
        p = node.params
        if p.get("blur"):
            raise _Skip("a blurred mask has no ComfyUI core equivalent", "params.blur")
        link = self._link(node, "mask")
        if p.get("grow"):
            link = [self._new("GrowMask", {"expand": int(p["grow"]), "tapered_corners": True, "mask": link},
                              _comfy(node).get("id")), 0]
        if p.get("invert"):
            link = [self._new("InvertMask", {"mask": link}), 0]
        self.ports[f"{node_id}.mask"] = link

    def _image_image_to_mask(self, node_id: str, node: Node) -> None:
        channel = node.params.get("channel", "luminance")
        if channel == "luminance" or node.params.get("invert"):
            raise _Skip(f"channel {channel!r} (or invert) has no ComfyUI ImageToMask equivalent",
                        "params.channel")
        new = self._new("ImageToMask", {"channel": channel, "image": self._link(node, "image")},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.mask"] = [new, 0]

    def _image_mask_to_image(self, node_id: str, node: Node) -> None:
        new = self._new("MaskToImage", {"mask": self._link(node, "mask")}, _comfy(node).get("id"))
        self.ports[f"{node_id}.image"] = [new, 0]

    # -- ComfyUI's own nodes as blocks: latent resize, outpaint pad, conditioning ------------------

    def _sd_latent_resize(self, node_id: str, node: Node) -> None:
        p, samples = node.params, self._link(node, "latent")
        method = p.get("method", "nearest-exact")
        if p.get("scale") is not None:
            inputs = {"upscale_method": method, "scale_by": float(p["scale"]), "samples": samples}
            new = self._new("LatentUpscaleBy", inputs, _comfy(node).get("id"))
        else:
            inputs = {"upscale_method": method, "width": int(p.get("width", 0)),
                      "height": int(p.get("height", 0)), "crop": p.get("crop", "disabled"),
                      "samples": samples}
            new = self._new("LatentUpscale", inputs, _comfy(node).get("id"))
        self.ports[f"{node_id}.latent"] = [new, 0]

    def _sd_latent_composite(self, node_id: str, node: Node) -> None:
        p = node.params
        inputs = {"x": int(p.get("x", 0)), "y": int(p.get("y", 0)), "feather": int(p.get("feather", 0)),
                  "samples_to": self._link(node, "latent"), "samples_from": self._link(node, "source")}
        self.ports[f"{node_id}.latent"] = [self._new("LatentComposite", inputs, _comfy(node).get("id")), 0]

    def _sd_latent_blend(self, node_id: str, node: Node) -> None:
        inputs = {"blend_factor": float(node.params.get("factor", 0.5)),
                  "samples1": self._link(node, "latent"), "samples2": self._link(node, "source")}
        self.ports[f"{node_id}.latent"] = [self._new("LatentBlend", inputs, _comfy(node).get("id")), 0]

    def _sd_outpaint_pad(self, node_id: str, node: Node) -> None:
        p = node.params
        sides = {k: int(p.get(k, 0)) for k in ("left", "top", "right", "bottom")}
        new = self._new("ImagePadForOutpaint", {**sides, "feathering": int(p.get("feathering", 40)),
                                                "image": self._link(node, "image")}, _comfy(node).get("id"))
        self.ports[f"{node_id}.image"], self.ports[f"{node_id}.mask"] = [new, 0], [new, 1]

    def _cond_pair(self, node: Node, name: str = "cond") -> tuple[Link, Link]:
        value = self._input(node, name)
        if not isinstance(value, tuple):
            raise _Skip(f"input {name!r} is not a positive/negative conditioning pair", f"inputs.{name}")
        return value

    def _on_positive(self, node_id: str, node: Node, class_type: str, widgets: dict[str, Any],
                     extra: dict[str, Any] | None = None) -> None:
        pos, neg = self._cond_pair(node)
        new = self._new(class_type, {**widgets, "conditioning": pos, **(extra or {})}, _comfy(node).get("id"))
        self.ports[f"{node_id}.cond"] = ([new, 0], neg)

    def _cond_set_area(self, node_id: str, node: Node) -> None:
        p = node.params
        fraction = p.get("unit", "pixels") == "fraction"
        number = float if fraction else int
        widgets = {k: number(p.get(k, 1.0 if fraction else 64)) for k in ("width", "height")}
        widgets |= {k: number(p.get(k, 0)) for k in ("x", "y")} | {"strength": float(p.get("strength", 1.0))}
        kind = "ConditioningSetAreaPercentage" if fraction else "ConditioningSetArea"
        self._on_positive(node_id, node, kind, widgets)

    def _cond_set_strength(self, node_id: str, node: Node) -> None:
        self._on_positive(node_id, node, "ConditioningSetAreaStrength",
                          {"strength": float(node.params.get("strength", 1.0))})

    def _cond_set_mask(self, node_id: str, node: Node) -> None:
        p = node.params
        bounds = "mask bounds" if p.get("bounds") == "mask" else "default"
        self._on_positive(node_id, node, "ConditioningSetMask",
                          {"strength": float(p.get("strength", 1.0)), "set_cond_area": bounds},
                          {"mask": self._link(node, "mask")})

    def _cond_timestep_range(self, node_id: str, node: Node) -> None:
        self._on_positive(node_id, node, "ConditioningSetTimestepRange",
                          {"start": float(node.params.get("start", 0.0)),
                           "end": float(node.params.get("end", 1.0))})

    def _cond_zero_out(self, node_id: str, node: Node) -> None:
        pos, neg = self._cond_pair(node)
        if node.params.get("side", "prompt") == "negative":
            new = self._new("ConditioningZeroOut", {"conditioning": neg}, _comfy(node).get("id"))
            self.ports[f"{node_id}.cond"] = (pos, [new, 0])
        else:
            new = self._new("ConditioningZeroOut", {"conditioning": pos}, _comfy(node).get("id"))
            self.ports[f"{node_id}.cond"] = ([new, 0], neg)

    def _two_conds(self, node_id: str, node: Node, class_type: str, widgets: dict[str, Any]) -> None:
        (to, neg), (source, _) = self._cond_pair(node, "to"), self._cond_pair(node, "source")
        new = self._new(class_type, {**widgets, "conditioning_to": to, "conditioning_from": source},
                        _comfy(node).get("id"))
        self.ports[f"{node_id}.cond"] = ([new, 0], neg)

    def _cond_average(self, node_id: str, node: Node) -> None:
        self._two_conds(node_id, node, "ConditioningAverage",
                        {"conditioning_to_strength": float(node.params.get("weight", 1.0))})

    def _cond_concat(self, node_id: str, node: Node) -> None:
        self._two_conds(node_id, node, "ConditioningConcat", {})

    def _sd_cond_combine(self, node_id: str, node: Node) -> None:
        refs = node.inputs.get("conds")
        refs = refs if isinstance(refs, list) else [refs]
        prompts = node.params.get("prompts", "first")
        if prompts == "first" and len(refs) > 1:
            raise _Skip("prompts 'first' keeps one prompt of several, which no ComfyUI node does",
                        "params.prompts")
        pairs = []
        for k, ref in enumerate(refs):
            if not isinstance(ref, str) or not isinstance(self.ports.get(ref), tuple):
                raise _Skip(f"conds[{k}] is not a positive/negative conditioning pair", "inputs.conds")
            pairs.append(self.ports[ref])
        pos, neg = pairs[0]
        for k, (other, _) in enumerate(pairs[1:]):  # ComfyUI's Combine takes two: a chain, the last one ours
            want = _comfy(node).get("id") if k == len(pairs) - 2 else None
            inputs = {"conditioning_1": pos, "conditioning_2": other}
            pos = [self._new("ConditioningCombine", inputs, want), 0]
        self.ports[f"{node_id}.cond"] = (pos, neg)


class _Skip(Exception):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


def _comfy(node: Node) -> dict[str, Any]:
    info = node.meta.get("comfy")
    return info if isinstance(info, dict) else {}
