"""LoRAs, merged into copies of models (embeddings: :mod:`orchestrator.models.embeddings`).

LoRAs are *merged*: every targeted Linear or Conv2d weight ``W`` gets ``W + weight * delta``,
which is what diffusers' ``fuse_lora`` and ComfyUI's patcher compute, without peft at run
time. Layouts read (:func:`read_lora`):

- kohya / A1111 (``lora_unet_...``, ``lora_te_...``, ``lora_te1_``/``lora_te2_`` for SDXL's
  two text encoders, with ``.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``), with
  diffusers block names (``lora_unet_down_blocks_...``, how kohya trains SD 1.x/2.x) or the
  original SGM/LDM ones (``lora_unet_input_blocks_...``, how kohya trains SDXL);
- peft / diffusers (``unet.<module>.lora_A.weight`` and ``lora_B``, alphas from the file's
  ``lora_adapter_metadata``), and the older diffusers layouts (``<module>.lora.down.weight``,
  ``...processor.to_q_lora.down.weight``);
- LyCORIS: LoCon (a ``lora_mid`` Tucker core), LoHa (``hada_w1_a``...), LoKr (``lokr_w1``...),
  DoRA (``dora_scale``), full differences (``diff``, ``diff_b``), merged as ComfyUI merges
  them (peft's DoRA, ``lora_magnitude_vector``, as peft merges it); OFT/BOFT/GLoRA and norm
  layers are refused with a clear error.

Shapes are compared exactly: the only reshape allowed is between a Linear weight
``[out, in]`` and a 1x1 convolution's ``[out, in, 1, 1]``. Every error names the file (by
its name) and the layer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.embeddings import (  # re-exported: the manager reads both from here
    add_embedding_tokens,
    embedding_tokens,
    embedding_vectors,
    load_weights_only,
    read_embedding,
    set_embedding_vectors,
)
from orchestrator.models.errors import ModelError
from orchestrator.models.safety import require_safetensors

__all__ = ["DiffLayer", "LohaLayer", "LokrLayer", "LoraFile", "LoraLayer", "add_embedding_tokens",
           "embedding_tokens", "embedding_vectors", "ldm_unet_name", "load_weights_only", "merge_lora",
           "read_embedding", "read_lora", "set_embedding_vectors"]

LORA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder", "lora_te1_": "text_encoder",
                 "lora_te2_": "text_encoder_2"}
COMPONENT_PREFIXES = ("unet.", "text_encoder.", "text_encoder_2.")
COMPONENTS = ("unet", "text_encoder", "text_encoder_2")

# kohya / LyCORIS parts of one layer: the suffix after the module name -> our part name
_KOHYA_PARTS = {
    "lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid", "alpha": "alpha",
    "dora_scale": "dora_scale",
    "hada_w1_a": "hada_w1_a", "hada_w1_b": "hada_w1_b", "hada_w2_a": "hada_w2_a", "hada_w2_b": "hada_w2_b",
    "hada_t1": "hada_t1", "hada_t2": "hada_t2",
    "lokr_w1": "lokr_w1", "lokr_w1_a": "lokr_w1_a", "lokr_w1_b": "lokr_w1_b", "lokr_w2": "lokr_w2",
    "lokr_w2_a": "lokr_w2_a", "lokr_w2_b": "lokr_w2_b", "lokr_t2": "lokr_t2",
    "diff": "diff", "diff_b": "diff_b",
}
# LyCORIS variants we do not merge: a part -> what it is called
_REFUSED_PARTS = {
    "oft_blocks": "OFT", "oft_diag": "OFT", "oft_R": "OFT", "oft_rotation": "BOFT", "rescale": "BOFT",
    "a1.weight": "GLoRA", "a2.weight": "GLoRA", "b1.weight": "GLoRA", "b2.weight": "GLoRA",
    "w_norm": "a norm-layer patch", "b_norm": "a norm-layer patch", "on_input": "a LoHa/LoKr 'on_input' flag",
}


def _loading_error(file: str, message: str, layer: str | None = None) -> ModelError:
    where = f", layer {layer!r}" if layer else ""
    return ModelError(f"LoRA {file!r}{where}: {message}", reason="format", path=file)


# -- the kinds of layer ---------------------------------------------------------------------------


@dataclass
class LoraLayer:
    """A low-rank pair: ``delta = up @ down`` (``mid``: LoCon's Tucker core), times ``alpha / rank``."""

    down: Any
    up: Any
    alpha: float | None = None
    mid: Any = None
    dora_scale: Any = None
    peft_dora: bool = False  # a peft ``lora_magnitude_vector``: the weight scales the LoRA, not the result

    @property
    def scale(self) -> float:
        rank = self.down.shape[0]
        return (self.alpha / rank) if self.alpha is not None else 1.0

    def delta(self, target: tuple[int, ...], file: str, layer: str) -> Any:
        import torch

        down, up = self.down.float(), self.up.float()
        rank = down.shape[0]
        if up.ndim not in (2, 4) or down.ndim not in (2, 4) or up.shape[1] != rank \
                or (up.ndim == 4 and tuple(up.shape[2:]) != (1, 1)):
            raise _loading_error(file, f"lora_up {tuple(up.shape)} does not pair with lora_down "
                                       f"{tuple(down.shape)} (rank {rank})", layer)
        if self.mid is not None:  # LoCon with a Tucker core: [rank, rank, kh, kw]
            mid = self.mid.float()
            if mid.ndim != 4 or mid.shape[0] != rank or mid.shape[1] != rank:
                raise _loading_error(file, f"lora_mid {tuple(mid.shape)} does not fit rank {rank}", layer)
            final = [down.shape[1], rank, mid.shape[2], mid.shape[3]]
            down = torch.mm(down.transpose(0, 1).flatten(start_dim=1),
                            mid.transpose(0, 1).flatten(start_dim=1)).reshape(final).transpose(0, 1)
        natural = (up.shape[0], *down.shape[1:])
        _check_shape(natural, target, file, layer)
        return (up.flatten(start_dim=1) @ down.flatten(start_dim=1)).reshape(target) * self.scale


@dataclass
class LohaLayer:
    """LyCORIS LoHa: ``(w1_a @ w1_b) * (w2_a @ w2_b)`` (Tucker cores ``t1``/``t2`` for convs)."""

    w1a: Any
    w1b: Any
    w2a: Any
    w2b: Any
    t1: Any = None
    t2: Any = None
    alpha: float | None = None
    dora_scale: Any = None

    def delta(self, target: tuple[int, ...], file: str, layer: str) -> Any:
        import torch

        w1a, w1b, w2a, w2b = (t.float() for t in (self.w1a, self.w1b, self.w2a, self.w2b))
        scale = self.alpha / w1b.shape[0] if self.alpha is not None else 1.0
        try:
            if self.t1 is not None and self.t2 is not None:
                m1 = torch.einsum("i j k l, j r, i p -> p r k l", self.t1.float(), w1b, w1a)
                m2 = torch.einsum("i j k l, j r, i p -> p r k l", self.t2.float(), w2b, w2a)
            else:
                m1, m2 = w1a @ w1b, w2a @ w2b
            diff = m1 * m2
        except RuntimeError as exc:
            raise _loading_error(file, f"LoHa factors do not fit together ({exc})", layer) from None
        _check_numel_shape(diff, target, file, layer)
        return diff.reshape(target) * scale


@dataclass
class LokrLayer:
    """LyCORIS LoKr: ``kron(w1, w2)``, each factor whole or as a low-rank pair."""

    w1: Any = None
    w1a: Any = None
    w1b: Any = None
    w2: Any = None
    w2a: Any = None
    w2b: Any = None
    t2: Any = None
    alpha: float | None = None
    dora_scale: Any = None

    def delta(self, target: tuple[int, ...], file: str, layer: str) -> Any:
        import torch

        dim = None
        try:
            if self.w1 is not None:
                w1 = self.w1.float()
            else:
                dim = self.w1b.shape[0]
                w1 = self.w1a.float() @ self.w1b.float()
            if self.w2 is not None:
                w2 = self.w2.float()
            else:
                dim = self.w2b.shape[0]
                if self.t2 is not None:
                    w2 = torch.einsum("i j k l, j r, i p -> p r k l", self.t2.float(), self.w2b.float(),
                                      self.w2a.float())
                else:
                    w2 = self.w2a.float() @ self.w2b.float()
            if w2.ndim == 4:
                w1 = w1.unsqueeze(2).unsqueeze(2)
            diff = torch.kron(w1, w2)
        except (RuntimeError, AttributeError, TypeError) as exc:
            raise _loading_error(file, f"LoKr factors are incomplete or do not fit together ({exc})",
                                 layer) from None
        scale = self.alpha / dim if (self.alpha is not None and dim is not None) else 1.0
        _check_numel_shape(diff, target, file, layer)
        return diff.reshape(target) * scale


@dataclass
class DiffLayer:
    """A full weight difference (LyCORIS ``diff``), and optionally one for the bias (``diff_b``)."""

    diff: Any = None
    diff_b: Any = None
    dora_scale: Any = None

    def delta(self, target: tuple[int, ...], file: str, layer: str) -> Any:
        if self.diff is None:
            return None
        _check_shape(tuple(self.diff.shape), target, file, layer)
        return self.diff.float().reshape(target)


def _check_shape(natural: tuple[int, ...], target: tuple[int, ...], file: str, layer: str) -> None:
    """Exact shapes; a Linear ``[o, i]`` and a 1x1 conv ``[o, i, 1, 1]`` are the one allowed reshape."""
    natural, target = tuple(int(x) for x in natural), tuple(int(x) for x in target)
    if natural == target:
        return
    def squeeze(s: tuple[int, ...]) -> tuple[int, ...]:
        return s[:2] if len(s) == 4 and s[2:] == (1, 1) else s

    if squeeze(natural) == squeeze(target) and len(squeeze(natural)) == 2:
        return
    hint = " (the LoRA is transposed)" if tuple(reversed(natural[:2])) == target[:2] else ""
    raise _loading_error(file, f"gives a weight of shape {natural}, the model's is {target}{hint}", layer)


def _check_numel_shape(diff: Any, target: tuple[int, ...], file: str, layer: str) -> None:
    """LoHa/LoKr products: the product's own shape must be the target's (or its flattened form)."""
    shape = tuple(int(x) for x in diff.shape)
    target = tuple(int(x) for x in target)
    flat = (target[0], int(__import__("math").prod(target[1:]))) if len(target) > 1 else target
    if shape in (target, flat):
        return
    _check_shape(shape, target, file, layer)


Layer = LoraLayer | LohaLayer | LokrLayer | DiffLayer


class LoraFile(dict):
    """``{component: {module key: layer}}`` read from one file, with the file's ``name``.

    Module keys are dotted module paths (peft/diffusers files) or kohya's underscore-joined
    paths (diffusers or SGM block names); :func:`merge_lora` matches them to the real modules.
    """

    def __init__(self, name: str, layers: dict[str, dict[str, Layer]], family: str | None = None) -> None:
        super().__init__(layers)
        self.name = name
        self.family = family

    def guess_family(self) -> str | None:
        """``sdxl``, ``sd2`` or ``sd1``, as the whole file's names and shapes tell (``None``: cannot)."""
        return self.family


# -- reading -------------------------------------------------------------------------------------


def read_lora(path: str | Path, family: str | None = None, unet_config: Any = None,
              component: str | None = None) -> LoraFile:
    """The layers of a LoRA file, by component (see the module doc for the layouts).

    ``family`` (``sd`` or ``sdxl``, the model's) refuses a LoRA that is clearly for the other
    family; ``component`` reads only that component's tensors (the whole file's names are
    still checked); ``unet_config`` is accepted for compatibility (block names are mapped on
    merging).
    """
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    require_safetensors(p, "LoRA")
    try:
        with safe_open(str(p), framework="pt") as st:
            keys = list(st.keys())
            meta = dict(st.metadata() or {})
            names, unknown, refused = _parse_names(keys)
            if not (refused or unknown) and names:
                guess = _guess_family(names, lambda k: tuple(st.get_slice(k).get_shape()))
                tensors = {key: st.get_tensor(key) for (comp, _m), parts in names.items()
                           if component is None or comp == component for key in parts.values()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _loading_error(p.name, f"not a readable .safetensors file ({exc})") from None
    if refused:
        key, module, what = refused
        raise _loading_error(p.name, f"LyCORIS {what} layers are not supported (key {key!r}); supported: "
                                     f"LoRA, LoCon, LoHa, LoKr, DoRA, full diff", module)
    if not names:
        raise _loading_error(p.name, f"no LoRA layers found (keys like: {', '.join(sorted(keys)[:3])})")
    if unknown:
        raise _loading_error(p.name, f"{len(unknown)} keys in an unsupported layout (e.g. {unknown[0]!r}); "
                                     f"supported: kohya, peft/diffusers, LyCORIS")
    alphas = _peft_alphas(meta)
    out: dict[str, dict[str, Layer]] = {}
    for (comp, module), parts in names.items():
        if component is not None and comp != component:
            continue
        values = {part: tensors[key] for part, key in parts.items()}
        layer = _make_layer(values, alphas.get(comp), alphas.get((comp, module)), p.name, f"{comp}.{module}")
        if layer is not None:
            out.setdefault(comp, {})[module] = layer
    lf = LoraFile(p.name, out, family=guess)
    _check_family(lf, family)
    return lf


def _parse_names(keys: list[str]) -> tuple[dict[tuple[str, str], dict[str, str]], list[str],
                                           tuple[str, str, str] | None]:
    """``({(component, module): {part: key}}, unknown keys, (key, module, what) of a refused layer)``."""
    names: dict[tuple[str, str], dict[str, str]] = {}
    unknown: list[str] = []
    for key in keys:
        if key.startswith("bundle_emb."):
            continue  # textual inversions bundled with the LoRA (kohya/A1111): not applied, the layers are
        comp, module, part = _split_key(key)
        if comp is None:
            unknown.append(key)
        elif part in _REFUSED_PARTS:
            return names, unknown, (key, module, _REFUSED_PARTS[part])
        else:
            names.setdefault((comp, module), {})[part] = key
    return names, unknown, None


def _guess_family(names: dict[tuple[str, str], dict[str, str]], shape: Any) -> str | None:
    """``sdxl``, ``sd2`` or ``sd1`` from a file's layer names and, for cross-attention, the width
    its LoRA reads (``shape(key)`` gives a tensor's shape without loading it); ``None``: cannot tell."""
    if any(comp == "text_encoder_2" for comp, _m in names):
        return "sdxl"
    width = None
    for (comp, module), parts in names.items():
        if comp != "unet":
            continue
        if module.startswith(("label_emb", "add_embedding")):
            return "sdxl"
        if width is None and "down" in parts and re.search(r"attn2[._]to[._][kv]$", module):
            dims = shape(parts["down"])
            width = int(dims[1]) if len(dims) >= 2 else None
    return {768: "sd1", 1024: "sd2", 2048: "sdxl"}.get(width) if width is not None else None


def _make_layer(parts: dict[str, Any], comp_alpha: float | None, module_alpha: float | None, file: str,
                layer: str) -> Layer | None:
    if "peft_dora" in parts:
        parts = {**parts, "dora_scale": parts["peft_dora"]}
    raw_alpha = parts.get("alpha")
    alpha = float(raw_alpha) if raw_alpha is not None else (module_alpha if module_alpha is not None
                                                            else comp_alpha)
    dora = parts.get("dora_scale")
    names = set(parts) - {"alpha", "dora_scale", "peft_dora"}
    if not names:
        return None  # an alpha on its own (some trainers save alphas of untrained layers)
    if {"down", "up"} <= names and names <= {"down", "up", "mid"}:
        return LoraLayer(parts["down"], parts["up"], alpha, parts.get("mid"), dora, "peft_dora" in parts)
    if any(n.startswith("hada_") for n in names):
        need = {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}
        if not need <= names or ("hada_t1" in names) != ("hada_t2" in names):
            raise _loading_error(file, f"incomplete LoHa layer (has {sorted(names)})", layer)
        return LohaLayer(parts["hada_w1_a"], parts["hada_w1_b"], parts["hada_w2_a"], parts["hada_w2_b"],
                         parts.get("hada_t1"), parts.get("hada_t2"), alpha, dora)
    if any(n.startswith("lokr_") for n in names):
        ok1 = "lokr_w1" in names or {"lokr_w1_a", "lokr_w1_b"} <= names
        ok2 = "lokr_w2" in names or {"lokr_w2_a", "lokr_w2_b"} <= names
        if not (ok1 and ok2):
            raise _loading_error(file, f"incomplete LoKr layer (has {sorted(names)})", layer)
        return LokrLayer(parts.get("lokr_w1"), parts.get("lokr_w1_a"), parts.get("lokr_w1_b"),
                         parts.get("lokr_w2"), parts.get("lokr_w2_a"), parts.get("lokr_w2_b"),
                         parts.get("lokr_t2"), alpha, dora)
    if names <= {"diff", "diff_b"}:
        return DiffLayer(parts.get("diff"), parts.get("diff_b"), dora)
    raise _loading_error(file, f"incomplete or mixed layer (has {sorted(names)}; a LoRA layer needs "
                               f"both down and up)", layer)


_PEFT = re.compile(r"^(?P<m>.+)\.lora_(?P<p>A|B)(\.[A-Za-z0-9_]+)?\.weight$")
_OLD = re.compile(r"^(?P<m>.+)\.lora(_linear_layer)?\.(?P<p>down|up)\.weight$")
_PROCESSOR = re.compile(
    r"^(?P<m>.+?)(\.processor)?\.(?P<t>to_q|to_k|to_v|to_out)_lora\.(?P<p>down|up)\.weight$")
_TE_PROCESSOR = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
_UNET_PROCESSOR = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"}


def _split_key(key: str) -> tuple[str | None, str, str]:
    """``(component, module key, part)``; component ``None`` for a key in no known layout."""
    for prefix, comp in LORA_PREFIXES.items():
        if key.startswith(prefix):
            module, _, part = key[len(prefix):].partition(".")
            if part in _KOHYA_PARTS:
                return comp, module, _KOHYA_PARTS[part]
            if part in _REFUSED_PARTS:
                return comp, module, part
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
    m = _PROCESSOR.match(body)
    if m:
        names = _UNET_PROCESSOR if comp == "unet" else _TE_PROCESSOR
        return comp, f"{m.group('m')}.{names[m.group('t')]}", m.group("p")
    m = _OLD.match(body)
    if m:
        return comp, m.group("m"), m.group("p")
    if body.endswith(".lora_magnitude_vector") or body.endswith(".lora_magnitude_vector.weight"):
        return comp, body.split(".lora_magnitude_vector")[0], "peft_dora"
    if body.endswith(".alpha"):
        return comp, body[: -len(".alpha")], "alpha"
    return None, key, ""


def _peft_alphas(meta: dict[str, str]) -> dict[Any, float]:
    """Alphas from diffusers' ``lora_adapter_metadata``: per component, and per module pattern.

    diffusers writes it flat (``{"unet.lora_alpha": 8, "unet.alpha_pattern": {...}}``);
    nested (``{"unet": {"lora_alpha": 8}}``) and bare (``{"lora_alpha": 8}``) forms are read too.
    """
    raw = meta.get("lora_adapter_metadata")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    configs: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        comp, _, field = key.partition(".")
        if comp in COMPONENTS and field:
            configs.setdefault(comp, {})[field] = value
        elif comp in COMPONENTS and isinstance(value, dict):
            configs.setdefault(comp, {}).update(value)
    if "lora_alpha" in data:
        configs.setdefault("unet", {}).setdefault("lora_alpha", data["lora_alpha"])
    out: dict[Any, float] = {}
    for comp, cfg in configs.items():
        if isinstance(cfg.get("lora_alpha"), (int, float)):
            out[comp] = float(cfg["lora_alpha"])
        for pattern, alpha in (cfg.get("alpha_pattern") or {}).items():
            out[(comp, "pattern:" + str(pattern))] = float(alpha)
    return _PatternAlphas(out)


class _PatternAlphas(dict):
    """Looks ``(component, module)`` up in peft's ``alpha_pattern`` (a suffix regex per module)."""

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, tuple):
            comp, module = key
            for k, alpha in self.items():
                if isinstance(k, tuple) and k[0] == comp:
                    pattern = k[1][len("pattern:"):]
                    if re.match(rf"(.*\.)?({pattern})$", module):
                        return alpha
            return default
        return super().get(key, default)


def _check_family(lf: LoraFile, family: str | None) -> None:
    if family is None:
        return
    guess = lf.guess_family()
    if family == "sd" and guess == "sdxl":
        raise ModelError(f"LoRA {lf.name!r} is an SDXL LoRA (layers for SDXL's second text encoder or "
                         f"added embeddings, or 2048-wide cross-attention); the model is SD 1.x/2.x",
                         reason="family", path=lf.name)
    if family == "sdxl" and guess in ("sd1", "sd2"):
        raise ModelError(f"LoRA {lf.name!r} is an SD {guess[-1]}.x LoRA (its cross-attention is "
                         f"{ {'sd1': 768, 'sd2': 1024}[guess]} wide); the model is SDXL",
                         reason="family", path=lf.name)


# -- SGM (original Stable Diffusion) UNet names ----------------------------------------------------

_RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def ldm_unet_name(name: str, config: Any) -> str | None:
    """The original SGM/LDM name of a diffusers UNet module (``None``: it has none).

    How ComfyUI's ``unet_to_diffusers`` and diffusers' conversion scripts lay out the blocks:

    >>> cfg = {"layers_per_block": 2, "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}
    >>> ldm_unet_name("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", cfg)
    'input_blocks.4.1.transformer_blocks.0.attn1.to_q'
    >>> ldm_unet_name("down_blocks.0.downsamplers.0.conv", cfg)
    'input_blocks.3.0.op'
    >>> ldm_unet_name("up_blocks.0.upsamplers.0.conv", cfg), ldm_unet_name("up_blocks.1.resnets.2.conv2", cfg)
    ('output_blocks.2.1.conv', 'output_blocks.5.0.out_layers.3')
    """
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    lpb = get("layers_per_block", 2)
    up_types = list(get("up_block_types", []) or [])

    def per(i: int) -> int:
        return int(lpb[i] if isinstance(lpb, (list, tuple)) else lpb)

    def resnet(rest: list[str]) -> str:
        head = ".".join(rest[:1])
        return ".".join([_RESNET_LDM.get(head, head), *rest[1:]]) if rest else ""

    simple = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
              "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
              "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for k, v in simple.items():
        if name == k or name.startswith(k + "."):
            return v + name[len(k):]
    parts = name.split(".")
    try:
        if parts[0] == "down_blocks":
            i, kind = int(parts[1]), parts[2]
            offset = 1 + sum(per(b) + 1 for b in range(i))
            if kind == "downsamplers":
                return ".".join([f"input_blocks.{offset + per(i)}.0.op", *parts[5:]]) \
                    if parts[4:5] == ["conv"] else None
            j = int(parts[3])
            if kind == "resnets":
                return f"input_blocks.{offset + j}.0." + resnet(parts[4:]) if parts[4:] else None
            if kind == "attentions":
                return ".".join([f"input_blocks.{offset + j}.1", *parts[4:]])
        if parts[0] == "mid_block":
            kind, j = parts[1], int(parts[2])
            if kind == "resnets":
                return f"middle_block.{2 * j}." + resnet(parts[3:]) if parts[3:] else None
            if kind == "attentions":
                return ".".join(["middle_block.1", *parts[3:]])
        if parts[0] == "up_blocks":
            i, kind = int(parts[1]), parts[2]
            n = len(up_types) or 0
            offset = sum(per(n - 1 - b) + 1 for b in range(i)) if n else i * (per(0) + 1)
            layers = per(n - 1 - i) + 1 if n else per(0) + 1
            if kind == "upsamplers":
                has_attn = bool(up_types) and "CrossAttn" in str(up_types[i])
                return ".".join([f"output_blocks.{offset + layers - 1}.{2 if has_attn else 1}.conv",
                                 *parts[5:]]) if parts[4:5] == ["conv"] else None
            j = int(parts[3])
            if kind == "resnets":
                return f"output_blocks.{offset + j}.0." + resnet(parts[4:]) if parts[4:] else None
            if kind == "attentions":
                return ".".join([f"output_blocks.{offset + j}.1", *parts[4:]])
    except (IndexError, ValueError):
        return None
    return None


# -- merging -------------------------------------------------------------------------------------


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


def _aliases(module: Any, modules: dict[str, Any], component: str) -> dict[str, str]:
    """Underscore-joined names (diffusers and, for a UNet, SGM ones) -> the module's name."""
    out = {name.replace(".", "_"): name for name in modules}
    config = getattr(module, "config", None)
    if component == "unet" and config is not None:
        for name in modules:
            ldm = ldm_unet_name(name, config)
            if ldm is not None:
                out.setdefault(ldm, name)
                out.setdefault(ldm.replace(".", "_"), name)
    return out


def merge_lora(module: Any, layers: dict[str, dict[str, Layer]], component: str, weight: float) -> int:
    """Merge the ``component`` part of a LoRA into ``module`` in place; returns layers merged.

    Nothing is changed unless every layer fits: the deltas are all computed (and checked)
    before the first weight is touched.
    """
    import torch

    file = getattr(layers, "name", "LoRA")
    targets = layers.get(component, {})
    if not targets or weight == 0:
        return 0
    modules = dict(module.named_modules())
    by_underscore = _aliases(module, modules, component)
    missing = []
    updates: list[tuple[Any, Any, Any]] = []
    with torch.no_grad():
        for key, layer in targets.items():
            name = _find_module(key, modules, by_underscore)
            target = modules.get(name) if name is not None else None
            w = getattr(target, "weight", None)
            if w is None or not isinstance(w, torch.Tensor):
                missing.append(key)
                continue
            where = f"{component}.{key}"
            delta = layer.delta(tuple(w.shape), file, where)
            if delta is not None:
                delta = delta.to(w.device)  # float32, beside the weight (a CUDA model's on the GPU)
                if layer.dora_scale is not None and getattr(layer, "peft_dora", False):
                    new = _dora(layer.dora_scale, w.float(), weight * delta, 1.0, file, where)  # as peft
                    updates.append((w, new, None))
                elif layer.dora_scale is not None:
                    new = _dora(layer.dora_scale, w.float(), delta, weight, file, where)
                    updates.append((w, new, None))
                else:
                    updates.append((w, weight * delta, "add"))
            diff_b = getattr(layer, "diff_b", None)
            if diff_b is not None:
                b = getattr(target, "bias", None)
                if b is None or tuple(b.shape) != tuple(diff_b.shape):
                    raise _loading_error(file, f"diff_b {tuple(diff_b.shape)} does not fit the bias "
                                               f"{None if b is None else tuple(b.shape)}", where)
                updates.append((b, weight * diff_b.float(), "add"))
        if missing:
            hint = _family_hint(layers)
            raise _loading_error(file, f"does not fit this model's {component}: no module for {len(missing)} "
                                       f"layers{hint}", f"{component}.{missing[0]}")
        for w, value, how in updates:
            if how == "add":
                w += value.to(device=w.device, dtype=w.dtype)
            else:
                w.copy_(value.to(device=w.device, dtype=w.dtype))
    return len(targets)


def _family_hint(layers: Any) -> str:
    guess = layers.guess_family() if isinstance(layers, LoraFile) else None
    names = {"sd1": "an SD 1.x", "sd2": "an SD 2.x", "sdxl": "an SDXL"}
    return f" (it looks like {names[guess]} LoRA)" if guess else ""


def _dora(scale: Any, w: Any, delta: Any, strength: float, file: str, layer: str) -> Any:
    """DoRA as ComfyUI's ``weight_decompose``: ``dora_scale * (W + dW) / ||W + dW||``, then
    ``W + strength * (that - W)``. The norm runs over the axis ``dora_scale`` does not span:
    ``[1, in, ...]`` (LyCORIS/kohya: one magnitude per input) or ``[out]``/``[out, 1, ...]`` (peft)."""
    calc = w + delta
    s = scale.float().to(calc.device)
    out_dim, in_dim = calc.shape[0], calc.shape[1]
    if s.ndim == 1 and s.shape[0] == out_dim:
        s = s.reshape(out_dim, *[1] * (calc.ndim - 1))
    if s.shape[0] == 1 and s.ndim == calc.ndim and s.shape[1] == in_dim:
        norm = (calc.transpose(0, 1).reshape(in_dim, -1).norm(dim=1, keepdim=True)
                .reshape(in_dim, *[1] * (calc.ndim - 1)).transpose(0, 1))
    elif s.shape[0] == out_dim and s.numel() == out_dim:
        norm = calc.reshape(out_dim, -1).norm(dim=1, keepdim=True).reshape(out_dim, *[1] * (calc.ndim - 1))
        s = s.reshape(norm.shape)
    else:
        raise _loading_error(file, f"dora_scale {tuple(scale.shape)} fits neither axis of the weight "
                                   f"{tuple(w.shape)}", layer)
    calc = calc * (s / norm)
    return w + strength * (calc - w)
