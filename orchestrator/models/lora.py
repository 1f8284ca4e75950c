"""LoRAs and textual-inversion embeddings from ``.safetensors`` files, applied to copies of models.

LoRAs are *merged*: every targeted Linear or Conv2d weight becomes
``W + weight * (alpha / rank) * up @ down``, which is what diffusers' ``fuse_lora`` computes,
without needing peft at run time. Three layouts are read:

- kohya / A1111 (``lora_unet_...``, ``lora_te_...``, ``lora_te1_``/``lora_te2_`` for SDXL, with
  ``.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``), diffusers or LDM block names;
- peft / diffusers (``unet.<module>.lora_A.weight`` and ``lora_B``, alpha from the file's
  ``lora_adapter_metadata`` when present);
- older diffusers (``<module>.lora.down.weight`` and ``lora.up``).

Embeddings: A1111 (``emb_params``), diffusers (``{token: vector}``) and SDXL (``clip_l`` and
``clip_g``) files. A k-vector embedding adds the tokens ``tok``, ``tok_1`` ... ``tok_{k-1}``,
as diffusers' ``load_textual_inversion`` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.safety import require_safetensors

LORA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder",
                 "lora_te2_": "text_encoder_2"}
COMPONENT_PREFIXES = ("unet.", "text_encoder.", "text_encoder_2.")


@dataclass
class LoraLayer:
    down: Any
    up: Any
    alpha: float | None = None

    @property
    def scale(self) -> float:
        rank = self.down.shape[0]
        return (self.alpha / rank) if self.alpha is not None else 1.0


def _load(path: Path, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    require_safetensors(path, what)
    with safe_open(str(path), framework="pt") as st:
        return {k: st.get_tensor(k) for k in st.keys()}, dict(st.metadata() or {})


def read_lora(path: str | Path, family: str = "sd",
              unet_config: Any = None) -> dict[str, dict[str, LoraLayer]]:
    """``{component: {module key: LoraLayer}}`` from a LoRA file.

    Module keys are either dotted module paths (peft/diffusers files) or kohya's
    underscore-joined paths; :func:`merge_lora` matches both against the real modules.
    """
    p = Path(path)
    sd, meta = _load(p, "LoRA")
    out: dict[str, dict[str, LoraLayer]] = {}
    if unet_config is not None and any(k.startswith("lora_unet_input_blocks") for k in sd):
        sd = _map_sgm_blocks(sd, unet_config)
    alphas = _peft_alphas(meta)
    unknown = []
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    for key, tensor in sd.items():
        comp, module, part = _split_key(key)
        if comp is None:
            unknown.append(key)
            continue
        pending.setdefault((comp, module), {})[part] = tensor
    for (comp, module), parts in pending.items():
        if "down" not in parts or "up" not in parts:
            if set(parts) - {"alpha"}:
                unknown.append(f"{comp}.{module}")
            continue
        alpha = parts.get("alpha")
        a = float(alpha) if alpha is not None else alphas.get(comp)
        out.setdefault(comp, {})[module] = LoraLayer(parts["down"].float(), parts["up"].float(), a)
    if not out:
        sample = ", ".join(sorted(sd)[:3])
        raise ModelError(f"LoRA {str(p)!r}: no LoRA layers found (keys like: {sample})",
                         reason="format", path=str(p))
    if unknown:
        raise ModelError(f"LoRA {str(p)!r}: {len(unknown)} keys in an unsupported layout "
                         f"(e.g. {unknown[0]!r}); supported: kohya, peft/diffusers LoRA",
                         reason="format", path=str(p))
    return out


_KOHYA_SUFFIXES = ((".lora_down.weight", "down"), (".lora_up.weight", "up"), (".alpha", "alpha"))
_PEFT = re.compile(r"^(?P<m>.+)\.lora_(?P<p>A|B)(\.[A-Za-z0-9_]+)?\.weight$")
_OLD = re.compile(r"^(?P<m>.+)\.lora(_linear_layer)?\.(?P<p>down|up)\.weight$")


def _split_key(key: str) -> tuple[str | None, str, str]:
    for prefix, comp in LORA_PREFIXES.items():
        if key.startswith(prefix):
            rest = key[len(prefix):]
            for suffix, part in _KOHYA_SUFFIXES:
                if rest.endswith(suffix):
                    return comp, rest[: -len(suffix)], part
            return None, key, ""
    comp = "unet"
    body = key
    for prefix in COMPONENT_PREFIXES:
        if key.startswith(prefix):
            comp, body = prefix[:-1], key[len(prefix):]
            break
    m = _PEFT.match(body)
    if m:
        return comp, m.group("m"), "down" if m.group("p") == "A" else "up"
    m = _OLD.match(body)
    if m:
        return comp, m.group("m"), m.group("p")
    if body.endswith(".alpha"):
        return comp, body[: -len(".alpha")], "alpha"
    return None, key, ""


def _peft_alphas(meta: dict[str, str]) -> dict[str, float]:
    raw = meta.get("lora_adapter_metadata")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    out = {}
    for comp, cfg in (data.items() if isinstance(data, dict) else []):
        if isinstance(cfg, dict) and "lora_alpha" in cfg:
            out[comp] = float(cfg["lora_alpha"])
    if "lora_alpha" in data:
        out.setdefault("unet", float(data["lora_alpha"]))
    return out


def _map_sgm_blocks(sd: dict[str, Any], unet_config: Any) -> dict[str, Any]:
    try:
        from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers
    except ImportError:  # pragma: no cover - depends on the diffusers version
        return sd
    return _maybe_map_sgm_blocks_to_diffusers(sd, unet_config)


def _find_module(key: str, modules: dict[str, Any], by_underscore: dict[str, str]) -> str | None:
    """The module a LoRA key names; ``text_model.`` prefixes are optional (transformers 4 vs 5)."""
    candidates = [key]
    for prefix in ("text_model.", "text_model_"):
        if key.startswith(prefix):
            candidates.append(key[len(prefix):])
        else:
            candidates.append(prefix + key)
    for c in candidates:
        if c in modules:
            return c
        if c in by_underscore:
            return by_underscore[c]
    return None


def merge_lora(module: Any, layers: dict[str, dict[str, LoraLayer]], component: str, weight: float) -> int:
    """Merge the ``component`` part of a LoRA into ``module`` in place; returns layers merged."""
    import torch

    targets = layers.get(component, {})
    if not targets or weight == 0:
        return 0
    modules = dict(module.named_modules())
    by_underscore = {name.replace(".", "_"): name for name in modules}
    missing = []
    merged = 0
    with torch.no_grad():
        for key, layer in targets.items():
            name = _find_module(key, modules, by_underscore)
            target = modules.get(name) if name is not None else None
            w = getattr(target, "weight", None)
            if w is None:
                missing.append(key)
                continue
            down = layer.down.to(torch.float32)
            up = layer.up.to(torch.float32)
            delta = up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)
            if delta.numel() != w.numel():
                raise ModelError(f"LoRA layer {key!r} has shape {tuple(delta.shape)}, the model's "
                                 f"{name} weight {tuple(w.shape)}", reason="format")
            w += (weight * layer.scale * delta).reshape(w.shape).to(device=w.device, dtype=w.dtype)
            merged += 1
    if missing:
        raise ModelError(f"LoRA does not fit this model's {component}: no module for "
                         f"{len(missing)} layers (e.g. {missing[0]!r})", reason="format")
    return merged


# -- textual inversion -------------------------------------------------------------------------


def read_embedding(path: str | Path) -> dict[str, Any]:
    """``{"default" | "clip_l" | "clip_g": tensor [n, dim]}`` plus ``"token"`` when the file names one."""
    p = Path(path)
    sd, _meta = _load(p, "embedding")
    if "clip_l" in sd or "clip_g" in sd:
        return {k: _2d(v) for k, v in sd.items() if k in ("clip_l", "clip_g")}
    if "emb_params" in sd:
        return {"default": _2d(sd["emb_params"])}
    if len(sd) == 1:
        (token, vec), = sd.items()
        return {"default": _2d(vec), "token": token}
    raise ModelError(f"embedding {str(p)!r}: unknown layout (keys {sorted(sd)[:4]}); expected emb_params, "
                     f"clip_l/clip_g or a single token", reason="format", path=str(p))


def _2d(t: Any) -> Any:
    return t.reshape(1, -1).float() if t.ndim == 1 else t.float()


def embedding_vectors(emb: dict[str, Any], component: str) -> Any:
    """The vectors of ``emb`` meant for ``component`` (``None`` when it has none for it)."""
    second = component.endswith("_2")
    if "clip_l" in emb or "clip_g" in emb:
        return emb.get("clip_g" if second else "clip_l")
    return None if second else emb.get("default")


def embedding_tokens(token: str, n: int) -> list[str]:
    return [token] + [f"{token}_{i}" for i in range(1, n)]


def add_embedding_tokens(tokenizer: Any, emb: dict[str, Any], component: str, token: str) -> None:
    vecs = embedding_vectors(emb, component)
    if vecs is None:
        return
    tokens = embedding_tokens(token, vecs.shape[0])
    vocab = tokenizer.get_vocab()
    taken = [t for t in tokens if t in vocab]
    if taken:
        raise ModelError(f"embedding token {taken[0]!r} is already in the tokenizer's vocabulary; "
                         f"choose another token", reason="format")
    tokenizer.add_tokens(tokens)


def set_embedding_vectors(text_encoder: Any, tokenizer: Any, emb: dict[str, Any], component: str,
                          token: str) -> None:
    import torch

    vecs = embedding_vectors(emb, component)
    if vecs is None:
        return
    tokens = embedding_tokens(token, vecs.shape[0])
    ids = tokenizer.convert_tokens_to_ids(tokens)
    table = text_encoder.get_input_embeddings()
    if vecs.shape[1] != table.weight.shape[1]:
        raise ModelError(f"embedding {token!r} has vectors of size {vecs.shape[1]}, the {component} "
                         f"expects {table.weight.shape[1]}", reason="format")
    text_encoder.resize_token_embeddings(len(tokenizer))
    table = text_encoder.get_input_embeddings()
    with torch.no_grad():
        for i, vec in zip(ids, vecs, strict=True):
            table.weight[i] = vec.to(device=table.weight.device, dtype=table.weight.dtype)
