"""CLIP vision encoders from single files, as ComfyUI loads them: no config beside the file needed.

ComfyUI's ``CLIPVisionLoader`` reads a ``.safetensors`` file in transformers' key layout
(``vision_model.*``, ``visual_projection.weight``) or open_clip's (``visual.conv1.weight``,
``visual.transformer.resblocks.N.*``, ``visual.proj``), and unCLIP checkpoints carry one under
``embedder.model.visual.`` (ComfyUI's ``convert_to_transformers``). It picks one of three
configs by layer count; here the config is read off the weights' shapes instead (width, patch,
image size, layers, MLP width, projection), so any size loads, and only what the weights cannot
say is chosen by the published models' values: 16 heads for ViT-L/H/bigG widths (1024, 1280,
1664), 12 for ViT-B (768), else heads of 64 channels; ``quick_gelu`` for OpenAI's ViT-L/14
(24 layers of 1024), ``gelu`` otherwise (LAION's). A ``<stem>.config/config.json`` beside the
file still wins (see :meth:`orchestrator.models.manager.ModelManager._load_component`).

>>> sd = {"visual.transformer.resblocks.0.attn.in_proj_weight": None}
>>> layout(sd, "visual.")
'open_clip'
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

OPEN_CLIP_PREFIXES = ("visual.", "embedder.model.visual.", "conditioner.embedders.0.model.visual.")
HEADS_BY_WIDTH = {1664: 16, 1280: 16, 1024: 16, 768: 12}
_LAYER = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.")


def layout(sd: dict[str, Any], prefix: str = "") -> str:
    """``"open_clip"`` when the weights under ``prefix`` are open_clip's, else ``"transformers"``."""
    return "open_clip" if f"{prefix}transformer.resblocks.0.attn.in_proj_weight" in sd else "transformers"


def open_clip_prefix(sd: dict[str, Any]) -> str | None:
    """The prefix of an open_clip visual tower in ``sd`` (a file of its own or an unCLIP checkpoint)."""
    return next((p for p in OPEN_CLIP_PREFIXES if layout(sd, p) == "open_clip"), None)


def to_transformers(sd: dict[str, Any], prefix: str) -> dict[str, Any]:
    """open_clip's visual tower under ``prefix`` in transformers' key layout (ComfyUI's
    ``convert_to_transformers`` with ``transformers_convert``): ``in_proj`` split into q/k/v,
    ``proj`` transposed into ``visual_projection.weight``. Other keys are dropped."""
    out: dict[str, Any] = {}
    simple = {"class_embedding": "vision_model.embeddings.class_embedding",
              "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
              "positional_embedding": "vision_model.embeddings.position_embedding.weight",
              "ln_post.weight": "vision_model.post_layernorm.weight",
              "ln_post.bias": "vision_model.post_layernorm.bias",
              "ln_pre.weight": "vision_model.pre_layrnorm.weight",
              "ln_pre.bias": "vision_model.pre_layrnorm.bias"}
    for theirs, ours in simple.items():
        if f"{prefix}{theirs}" in sd:
            out[ours] = sd[f"{prefix}{theirs}"]
    if f"{prefix}proj" in sd:
        out["visual_projection.weight"] = sd[f"{prefix}proj"].transpose(0, 1).contiguous()
    parts = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
             "attn.out_proj": "self_attn.out_proj"}
    block = re.compile(rf"^{re.escape(prefix)}transformer\.resblocks\.(\d+)\.(.+?)[._](weight|bias)$")
    for key, value in sd.items():
        m = block.match(key)
        if m is None:
            continue
        i, part, kind = m.groups()
        base = f"vision_model.encoder.layers.{i}."
        if part == "attn.in_proj":
            for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                out[f"{base}self_attn.{name}.{kind}"] = chunk.contiguous()
        elif part in parts:
            out[f"{base}{parts[part]}.{kind}"] = value
    return out


def transformers_keys(sd: dict[str, Any]) -> dict[str, Any]:
    """The vision tower of ``sd`` in transformers' layout, whatever layout or prefix it came in."""
    prefix = open_clip_prefix(sd)
    if prefix is not None:
        return to_transformers(sd, prefix)
    return {k: v for k, v in sd.items() if k.startswith(("vision_model.", "visual_projection."))}


def infer_config(sd: dict[str, Any], name: str = "") -> dict[str, Any]:
    """``CLIPVisionConfig`` arguments read off transformers-layout weights (see the module doc)."""
    try:
        patch = sd["vision_model.embeddings.patch_embedding.weight"]
        positions = sd["vision_model.embeddings.position_embedding.weight"].shape[0]
        projection = sd["visual_projection.weight"].shape[0]
        intermediate = sd["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise ModelError(f"CLIP vision model {name!r} lacks {exc.args[0]!r}: not a CLIP vision encoder "
                         f"with a projection", reason="format", model=name) from None
    hidden, channels, patch_size = int(patch.shape[0]), int(patch.shape[1]), int(patch.shape[2])
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise ModelError(f"CLIP vision model {name!r}: {positions} position embeddings are not a square grid "
                         f"plus one", reason="format", model=name)
    layers = 1 + max(int(m.group(1)) for k in sd if (m := _LAYER.match(k)))
    heads = HEADS_BY_WIDTH.get(hidden) or (hidden // 64 if hidden % 64 == 0 else 0)
    if not heads:
        raise ModelError(f"CLIP vision model {name!r}: its width {hidden} does not tell its attention heads; "
                         f"put its config.json in a '.config' folder beside it", reason="config", model=name)
    act = "quick_gelu" if (hidden, layers) == (1024, 24) else "gelu"
    return {"hidden_size": hidden, "intermediate_size": int(intermediate), "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_channels": channels, "image_size": grid * patch_size,
            "patch_size": patch_size, "projection_dim": int(projection), "hidden_act": act,
            "layer_norm_eps": 1e-5}


def build(sd: dict[str, Any], name: str, dtype: Any, config: dict[str, Any] | None = None) -> Any:
    """A ``CLIPVisionModelWithProjection`` holding ``sd`` (any layout); every weight must be there."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    weights = transformers_keys(sd)
    if not weights:
        raise ModelError(f"model {name!r} holds no CLIP vision encoder (no vision_model.* or open_clip "
                         f"visual.* weights)", reason="format", model=name)
    cfg = CLIPVisionConfig(**(config if config is not None else infer_config(weights, name)))
    model = CLIPVisionModelWithProjection(cfg)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        shown = (missing or unexpected)[:3]
        raise ModelError(f"model {name!r}: the CLIP vision weights do not fit their config "
                         f"({'missing' if missing else 'unexpected'}: {', '.join(shown)})", reason="load",
                         model=name)
    model.to(dtype=dtype)
    model.requires_grad_(False)
    return model.eval()


def load_file(path: str | Path, name: str, dtype: Any) -> Any:
    """A CLIP vision encoder from a safetensors file (its own, or an unCLIP checkpoint's part)."""
    from safetensors.torch import load_file as read

    from orchestrator.models.safety import require_safetensors

    require_safetensors(Path(path), f"model {name!r}:")
    try:
        sd = read(str(path))
    except Exception as exc:  # noqa: BLE001 - a truncated file, a pickle by another name
        raise ModelError(f"model {name!r} is not a readable safetensors file ({type(exc).__name__})",
                         reason="format", model=name) from None
    return build(sd, name, dtype)
