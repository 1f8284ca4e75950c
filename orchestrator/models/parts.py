"""Models made of parts: a UNet saved alone and text encoders from separate files.

ComfyUI's ``UNETLoader`` reads a diffusion model file (``unet/``, ``diffusion_models/``),
``CLIPLoader`` and ``DualCLIPLoader`` text encoder files (``clip/``, ``text_encoders/``): an
SDXL UNet saved alone, the two SDXL text encoders (CLIP-L and CLIP-G) from their own files.
Here such a model is a reference named ``@auto`` (or ``@sd1``, ``@sd2``, ``@sdxl``) whose
``parts`` name the files, by name in the model folders::

    {"name": "@sdxl", "parts": [["text_encoder", "clip_l.safetensors"],
                                ["text_encoder_2", "clip_g.safetensors"]]}

What the parts do not hold (tokenizers, the scheduler, the component configs) comes from a
config folder: a part's sidecar ``<stem>.config/`` holding a diffusers ``model_index.json``
(as for single-file checkpoints of an unusual shape), else the shipped configs of the family
(named, or read from the files: a UNet's cross-attention width and ``label_emb``; a text
encoder's width). A component a model of parts does not have (its VAE, say) is an error that
says which loader gives it.

Files: a UNet in the original layout (``input_blocks.*``, with or without the
``model.diffusion_model.`` prefix) or diffusers' (``down_blocks.*``); text encoders in
transformers' layout (``text_model.*``, with any prefix before it, as ComfyUI's ``CLIPSave``
and the published ``clip_l``/``clip_g`` files have them). ``.safetensors``, or legacy pickles
read only with torch's weights-only loader.

>>> is_parts_name("@auto"), is_parts_name("tiny-sd")
(True, False)
>>> family_of_width({"text_encoder": 768, "text_encoder_2": 1280})
'sdxl'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

PART_KIND = {"unet": "diffusion_model", "text_encoder": "text_encoder", "text_encoder_2": "text_encoder"}
PARTS_NAMES = ("@auto", "@sd1", "@sd2", "@sdxl")
LOADER = {"unet": "UNETLoader", "text_encoder": "CLIPLoader / DualCLIPLoader",
          "text_encoder_2": "DualCLIPLoader", "vae": "VAELoader"}
UNET_PREFIX = "model.diffusion_model."
XATTN = "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
TE_WIDTH = "text_model.final_layer_norm.weight"
UNET_WIDTH_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


def is_parts_name(name: str) -> bool:
    """Whether ``name`` is a model made of parts (``@auto``, ``@sdxl``, ...)."""
    return isinstance(name, str) and name.startswith("@")


def sidecar(path: Path) -> Path | None:
    """A part's ``<stem>.config/`` folder, when there is one."""
    side = path.with_name(path.name.rsplit(".", 1)[0] + ".config")
    return side if side.is_dir() else None


def family_of_width(widths: Mapping[str, int]) -> str | None:
    """The family the text encoders' widths say (``None``: they do not say)."""
    if "text_encoder_2" in widths:
        return "sdxl" if "text_encoder" in widths else "sdxl-refiner"
    return {768: "sd1", 1024: "sd2"}.get(widths.get("text_encoder", 0))


def _header(path: Path, display: str) -> Any:
    from orchestrator.models.detect import read_header

    return read_header(path, display)


def _is_safetensors(path: Path) -> bool:
    from orchestrator.models.safety import sniff

    return sniff(path) == "safetensors"


def detect_family(parts: Mapping[str, Path], shown: Mapping[str, str]) -> str:
    """The family of a model of parts, read from its files' headers (no weights read)."""
    unet = parts.get("unet")
    if unet is not None and _is_safetensors(unet):
        header = _header(unet, shown["unet"])
        keys = header.keys
        prefix = UNET_PREFIX if any(k.startswith(UNET_PREFIX) for k in keys) else ""
        shape = header.shape(prefix + XATTN)
        family = UNET_WIDTH_FAMILY.get(shape[-1]) if shape else None
        if family is not None:
            conv = header.shape(prefix + "input_blocks.0.0.weight")
            inpaint = conv is not None and len(conv) > 1 and conv[1] == 9
            return family + ("-inpaint" if inpaint and family in ("sd1", "sd2", "sdxl") else "")
    widths = {}
    for comp in ("text_encoder", "text_encoder_2"):
        p = parts.get(comp)
        if p is not None and _is_safetensors(p):
            header = _header(p, shown[comp])
            for k in header.keys:
                if k.endswith(TE_WIDTH):
                    widths[comp] = (header.shape(k) or (0,))[-1]
    family = family_of_width(widths)
    if family is None:
        names = ", ".join(shown.values())
        raise ModelError(f"the model family of {names} cannot be read from the files (not a published "
                         f"SD 1.x/2.x/SDXL shape): put its diffusers configs (model_index.json and the "
                         f"component folders) in a '<name>.config/' folder next to one of them, or name the "
                         f"family (@sd1, @sd2, @sdxl)", reason="config", model=names)
    return family


def base_folder(name: str, parts: Mapping[str, Path], shown: Mapping[str, str], cache_dir: Any) -> Path:
    """The config folder of a model of parts (see the module doc)."""
    from orchestrator.models.single_file import config_folder

    for comp in ("unet", "text_encoder", "text_encoder_2"):
        p = parts.get(comp)
        side = sidecar(p) if p is not None else None
        if side is not None and (side / "model_index.json").is_file():
            return side
    if name not in PARTS_NAMES:
        raise ModelError(f"model {name!r}: a model of parts is named @auto, @sd1, @sd2 or @sdxl",
                         reason="reference", model=name)
    family = detect_family(parts, shown) if name == "@auto" else name[1:]
    return config_folder(family, cache_dir)


def component_config(part: Path, base: Path, component: str) -> dict[str, Any]:
    """A part's config: its sidecar's ``config.json`` (or ``<component>/config.json`` in it), else the
    base folder's."""
    side = sidecar(part)
    for cand in ([side / "config.json", side / component / "config.json"] if side is not None else []) + \
            [base / component / "config.json"]:
        if cand.is_file():
            return json.loads(cand.read_text())
    raise ModelError(f"no config for the {component} part {part.name!r}", reason="config", model=part.name)


def _tensors(path: Path, display: str, legacy: str) -> dict[str, Any]:
    from orchestrator.models.single_file import legacy_state_dict

    if _is_safetensors(path):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as st:
                return {k: st.get_tensor(k) for k in st.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"model file {display!r} is not a readable .safetensors file ({exc})",
                             reason="format", file=display) from None
    if path.suffix.lower() not in (".ckpt", ".pt", ".pth", ".bin"):
        from orchestrator.models.safety import require_safetensors

        require_safetensors(path, f"model file {display!r}:")
    return legacy_state_dict(path, display, legacy)


def _load_into(model: Any, state: dict[str, Any], display: str, what: str,
               optional: tuple[str, ...] = ()) -> Any:
    result = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.endswith(optional)]
    if missing or result.unexpected_keys:
        detail = (f"{len(missing)} weights missing, e.g. {missing[0]!r}" if missing else
                  f"{len(result.unexpected_keys)} unexpected, e.g. {result.unexpected_keys[0]!r}")
        raise ModelError(f"model file {display!r} is not a {what} of this shape ({detail})", reason="load",
                         file=display)
    return model


def load_unet(path: Path, display: str, config: dict[str, Any], dtype: str,
              legacy: str = "weights_only") -> Any:
    """A diffusers UNet from a UNet file in the original or diffusers layout."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    tensors = _tensors(path, display, legacy)
    if any(k.startswith(("down_blocks.", "conv_in.")) for k in tensors):
        state = tensors
    else:
        ldm = {k if k.startswith(UNET_PREFIX) else UNET_PREFIX + k: v for k, v in tensors.items()}
        if not any(k.startswith(UNET_PREFIX + "input_blocks.") for k in ldm):
            raise ModelError(f"model file {display!r} is not a UNet (no input_blocks.* or down_blocks.* "
                             f"weights)", reason="format", file=display)
        try:
            state = convert_ldm_unet_checkpoint(ldm, config)
        except (KeyError, IndexError, ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {display!r}: its UNet weights do not fit the config "
                             f"({type(exc).__name__}: {str(exc)[:200]})", reason="load",
                             file=display) from None
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    unet = _load_into(unet, state, display, "UNet")
    return unet.to(getattr(torch, dtype))


def load_text_encoder(path: Path, display: str, config: dict[str, Any], component: str, dtype: str,
                      legacy: str = "weights_only") -> Any:
    """A transformers CLIP text model from a file in transformers' layout (``text_model.*``, any prefix)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tensors = _tensors(path, display, legacy)
    architectures = config.get("architectures") or []
    with_projection = component == "text_encoder_2" or "CLIPTextModelWithProjection" in architectures
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    cfg = CLIPTextConfig(**{k: v for k, v in config.items() if k not in ("architectures", "_name_or_path")})
    with torch.device("meta"):
        model = cls(cfg)
    expected = {_te_key(k): k for k in model.state_dict()}  # transformers 4 and 5 name them differently
    state = {expected.get(_te_key(k), k): v for k, v in tensors.items()
             if _te_key(k) is not None and (_te_key(k) in expected or _te_key(k) != "text_projection.weight")}
    if not state:
        open_clip = any("resblocks." in k for k in tensors)
        layout = "OpenCLIP's (transformer.resblocks.*)" if open_clip else "unknown"
        raise ModelError(f"model file {display!r} is not a CLIP text encoder in transformers' layout "
                         f"(text_model.*); its layout is {layout}: save it in transformers' layout "
                         f"(ComfyUI's CLIPSave writes that)", reason="format", file=display)
    model = _load_into(model, state, display, "CLIP text encoder", optional=("position_ids",))
    for name, buf in list(model.named_buffers()):
        if buf.is_meta:  # position ids a file leaves out: their fixed values
            owner = model.get_submodule(name.rsplit(".", 1)[0])
            owner.register_buffer(name.rsplit(".", 1)[1], torch.arange(buf.shape[-1]).expand(buf.shape),
                                  persistent=False)
    return model.to(getattr(torch, dtype))


_TE_ROOTS = ("embeddings", "encoder", "final_layer_norm", "text_projection")


def _te_key(key: str) -> str | None:
    """A text encoder weight's name from its first CLIP part on (``encoder.layers.0...``), whatever prefix a
    file or a transformers version puts before it (``text_model.``, ``clip_l.``, ...); ``None``: none."""
    segments = key.split(".")
    for i, s in enumerate(segments):
        if s in _TE_ROOTS:
            return ".".join(segments[i:])
    return None


def ordered_text_encoders(parts: dict[str, Path], shown: dict[str, str]) -> tuple[dict[str, Path],
                                                                                   dict[str, str]]:
    """SDXL's two text encoders in their places whichever order a DualCLIPLoader names them: the
    narrower one (CLIP-L) is ``text_encoder``, the wider one (CLIP-G) ``text_encoder_2``."""
    a, b = parts.get("text_encoder"), parts.get("text_encoder_2")
    if a is None or b is None or not (_is_safetensors(a) and _is_safetensors(b)):
        return parts, shown

    def width(p: Path, s: str) -> int:
        h = _header(p, s)
        return next(((h.shape(k) or (0,))[-1] for k in h.keys if k.endswith(TE_WIDTH)), 0)

    if width(a, shown["text_encoder"]) > width(b, shown["text_encoder_2"]):
        return ({**parts, "text_encoder": b, "text_encoder_2": a},
                {**shown, "text_encoder": shown["text_encoder_2"], "text_encoder_2": shown["text_encoder"]})
    return parts, shown
