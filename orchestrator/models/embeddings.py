"""Textual-inversion embeddings: read from the files people have, added to tokenizers and text encoders.

Files (:func:`read_embedding`): A1111 ``.safetensors`` (``emb_params``) and ``.pt``
(``string_to_param: {'*': tensor}``, read with ``torch.load(weights_only=True)``, never
unpickled), diffusers files (``{token: vector}``) and SDXL files (``clip_l`` and ``clip_g``,
one set of vectors per text encoder). A k-vector embedding adds the tokens ``tok``,
``tok_1`` ... ``tok_{k-1}``, as diffusers' ``load_textual_inversion`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.safety import require_safetensors, sniff


def _load(path: Path, what: str) -> dict[str, Any]:
    from safetensors import SafetensorError, safe_open

    require_safetensors(path, what)
    try:
        with safe_open(str(path), framework="pt") as st:
            return {k: st.get_tensor(k) for k in st.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{what} {path.name!r}: not a readable .safetensors file ({exc})",
                         reason="format", path=path.name) from None


def load_weights_only(path: Path, what: str, legacy: str = "weights_only") -> dict[str, Any]:
    """A ``.pt``/``.pth``/``.ckpt`` file through ``torch.load(weights_only=True)`` (never a full
    unpickle: only tensors, containers and plain values load), as a dict. ``legacy="refuse"``
    (the ``model_files.legacy`` setting) refuses such files."""
    import pickle

    import torch

    if legacy == "refuse":
        raise ModelError(f"{what} {path.name!r} is a legacy pickle (.pt); model_files.legacy is 'refuse': "
                         f"convert it to .safetensors once", reason="pickle", path=path.name)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{what} {path.name!r}: cannot be read with torch's weights-only loader "
                         f"({first[:200]})", reason="pickle", path=path.name) from None
    if not isinstance(data, dict):
        raise ModelError(f"{what} {path.name!r}: holds a {type(data).__name__}, not a dict of tensors",
                         reason="format", path=path.name)
    return data


def _embedding_dict(p: Path, legacy: str) -> dict[str, Any]:
    kind = sniff(p)
    if kind in ("pickle", "zip") and p.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt"):
        return load_weights_only(p, "embedding", legacy)
    return _load(p, "embedding")


def read_embedding(path: str | Path, legacy: str = "weights_only") -> dict[str, Any]:
    """``{"default" | "clip_l" | "clip_g": tensor [n, dim]}`` plus ``"token"`` when the file names one.

    ``.safetensors`` files, and A1111 ``.pt`` files (``string_to_param: {'*': tensor}``; A1111
    calls it by the file's name) read with torch's weights-only loader.
    """
    import torch

    p = Path(path)
    sd = _embedding_dict(p, legacy)
    if "clip_l" in sd or "clip_g" in sd:
        return {k: _2d(v, p, k) for k, v in sd.items() if k in ("clip_l", "clip_g")}
    if "emb_params" in sd:
        return {"default": _2d(sd["emb_params"], p, "emb_params")}
    if isinstance(sd.get("string_to_param"), dict):
        params = sd["string_to_param"]
        if len(params) != 1:
            raise ModelError(f"embedding {p.name!r}: string_to_param holds {len(params)} entries, "
                             f"expected one", reason="format", path=p.name)
        (vec,) = params.values()
        return {"default": _2d(vec, p, "string_to_param")}  # the token: the file's stem, as A1111
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if len(tensors) == 1 and len(sd) == 1:
        (token, vec), = tensors.items()
        return {"default": _2d(vec, p, token), "token": token}
    raise ModelError(f"embedding {p.name!r}: unknown layout (keys {sorted(map(str, sd))[:4]}); expected "
                     f"emb_params, string_to_param, clip_l/clip_g or a single token", reason="format",
                     path=p.name)


def _2d(t: Any, p: Path, key: str) -> Any:
    import torch

    if not isinstance(t, torch.Tensor) or t.ndim not in (1, 2) or not t.is_floating_point():
        raise ModelError(f"embedding {p.name!r}: {key!r} is not a float vector or matrix "
                         f"({getattr(t, 'shape', type(t).__name__)})", reason="format", path=p.name)
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
