"""Hypernetworks (A1111's, as ComfyUI's ``comfy_extras/nodes_hypernetwork.py`` applies them).

A hypernetwork file holds, per attention width ``dim`` (320, 640, 768, 1280, ...), two small
MLPs: one for the attention's key input, one for its value input. ComfyUI patches every
attention (self- and cross-) so that, where the key input's width is a ``dim`` of the file,
``k = k + mlp_k(k) * strength`` and ``v = v + mlp_v(v) * strength`` before the projections.
Our UNets are diffusers modules: :func:`apply_hypernetwork` wraps each ``to_k``/``to_v``
projection whose input width the file covers, which is the same computation.

Files:

- A1111's ``.pt``: ``{dim: [state_dict_k, state_dict_v], "activation_func": ..., "is_layer_norm":
  ..., "use_dropout": ..., "activate_output": ..., "last_layer_dropout": ...}``, read ONLY
  with torch's weights-only loader (a file it refuses is a :class:`ModelError`, reason
  ``pickle``); ``model_files.legacy = "refuse"`` refuses them all.
- ``.safetensors`` (no common layout exists; this one is ours): tensors
  ``"{dim}.{0|1}.{layer}.weight|bias"`` and the options as metadata strings
  (``activation_func``, ``is_layer_norm``, ...: ``"true"``/``"false"``).

Layers are built as ComfyUI builds them: ``Linear`` layers in key order, the activation after
each but the last (after the last too with ``activate_output``), a ``LayerNorm`` after a
linear when ``is_layer_norm`` (its weights are the next key), dropout inert at inference.

>>> sorted(ACTIVATIONS)[:3]
['elu', 'leakyrelu', 'linear']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.safety import sniff

ACTIVATIONS = ("linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign", "mish")
OPTIONS = ("activation_func", "is_layer_norm", "use_dropout", "activate_output", "last_layer_dropout")
MAX_DIM = 65536


@dataclass
class Hypernetwork:
    """Per input width, the key and value MLPs (``torch.nn.Sequential``), and the file's name."""

    name: str
    layers: dict[int, tuple[Any, Any]]


def _bad(name: str, why: str, **details: Any) -> ModelError:
    return ModelError(f"hypernetwork {name!r}: {why}", reason="format", path=name, **details)


def _raw(path: Path, legacy: str) -> tuple[dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """``({dim: [sd_k, sd_v]}, options)`` from a ``.pt`` or ``.safetensors`` file."""
    import torch

    from orchestrator.models.embeddings import load_weights_only

    kind = sniff(path)
    if kind == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as st:
                meta = st.metadata() or {}
                flat = {k: st.get_tensor(k) for k in st.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise _bad(path.name, f"not a readable .safetensors file ({exc})") from None
        nets: dict[int, list[dict[str, Any]]] = {}
        for key, tensor in flat.items():
            parts = key.split(".", 2)
            if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in ("0", "1"):
                raise _bad(path.name, f"tensor {key!r} is not named '<dim>.<0|1>.<layer>.weight'", key=key)
            nets.setdefault(int(parts[0]), [{}, {}])[int(parts[1])][parts[2]] = tensor
        options: dict[str, Any] = {k: meta[k] for k in OPTIONS if k in meta}
        for k in OPTIONS[1:]:
            if k in options:
                options[k] = str(options[k]).lower() == "true"
        return nets, options
    if kind not in ("pickle", "zip"):
        raise _bad(path.name, f"neither an A1111 .pt hypernetwork nor a .safetensors file (content: {kind})")
    data = load_weights_only(path, "hypernetwork", legacy)
    nets = {}
    for key, value in data.items():
        try:
            dim = int(key)
        except (TypeError, ValueError):
            continue
        if not (isinstance(value, (list, tuple)) and len(value) >= 2
                and all(isinstance(v, dict) for v in value[:2])):
            raise _bad(path.name, f"entry {dim} is not a pair of state dicts (key, value)", dim=dim)
        nets[dim] = [dict(value[0]), dict(value[1])]
        for sd in nets[dim]:
            if not all(isinstance(t, torch.Tensor) for t in sd.values()):
                raise _bad(path.name, f"entry {dim} holds something other than tensors", dim=dim)
    return nets, {k: data[k] for k in OPTIONS if k in data}


def _mlp(sd: dict[str, Any], options: dict[str, Any], name: str, dim: int) -> Any:
    """One MLP, built as ComfyUI's ``load_hypernetwork_patch`` builds it."""
    import torch

    act = {"linear": torch.nn.Identity, "relu": torch.nn.ReLU, "leakyrelu": torch.nn.LeakyReLU,
           "elu": torch.nn.ELU, "swish": torch.nn.Hardswish, "tanh": torch.nn.Tanh,
           "sigmoid": torch.nn.Sigmoid, "softsign": torch.nn.Softsign, "mish": torch.nn.Mish}
    activation = str(options.get("activation_func", "linear"))
    norm = bool(options.get("is_layer_norm", False))
    linears = [k[: -len(".weight")] for k in sd if k.endswith(".weight")]
    layers: list[Any] = []
    width = dim
    i = 0
    while i < len(linears):
        lin = linears[i]
        weight, bias = sd[f"{lin}.weight"], sd.get(f"{lin}.bias")
        if weight.ndim != 2 or bias is None or tuple(bias.shape) != (weight.shape[0],):
            raise _bad(name, f"layer {lin!r} of width {dim} is not a linear layer with a bias", dim=dim)
        if weight.shape[1] != width:
            raise _bad(name, f"layer {lin!r} of width {dim} takes {weight.shape[1]} inputs, not {width}",
                       dim=dim)
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        layer.load_state_dict({"weight": weight.float(), "bias": bias.float()})
        layers.append(layer)
        width = weight.shape[0]
        last = i == len(linears) - 1
        if activation != "linear" and (not last or options.get("activate_output", False)):
            layers.append(act[activation]())
        if norm:
            i += 1
            if i >= len(linears):
                raise _bad(name, f"width {dim}: is_layer_norm, but layer {lin!r} has no norm after it",
                           dim=dim)
            ln = linears[i]
            ln_w, ln_b = sd[f"{ln}.weight"], sd.get(f"{ln}.bias")
            if ln_w.ndim != 1 or ln_b is None or ln_w.shape[0] != width:
                raise _bad(name, f"layer {ln!r} of width {dim} is not a layer norm of width {width}", dim=dim)
            norm_layer = torch.nn.LayerNorm(ln_w.shape[0])
            norm_layer.load_state_dict({"weight": ln_w.float(), "bias": ln_b.float()})
            layers.append(norm_layer)
        i += 1  # dropout (use_dropout) does nothing at inference: not added
    if not layers:
        raise _bad(name, f"width {dim} has no layers", dim=dim)
    if width != dim:
        raise _bad(name, f"width {dim}: its MLP gives {width} outputs, not {dim}", dim=dim)
    return torch.nn.Sequential(*layers).eval().requires_grad_(False)


def read_hypernetwork(path: str | Path, legacy: str = "weights_only") -> Hypernetwork:
    """The hypernetwork in ``path`` (see the module doc), or a :class:`ModelError` naming the file."""
    p = Path(path)
    nets, options = _raw(p, legacy)
    activation = str(options.get("activation_func", "linear"))
    if activation not in ACTIVATIONS:
        raise _bad(p.name, f"activation_func {activation!r} is not one of {', '.join(ACTIVATIONS)}",
                   value=activation)
    if not nets:
        raise _bad(p.name, "no layers (no entries keyed by an attention width)")
    layers = {}
    for dim, (sd_k, sd_v) in nets.items():
        if not 0 < dim <= MAX_DIM:
            raise _bad(p.name, f"attention width {dim} is out of range", dim=dim)
        layers[dim] = (_mlp(sd_k, options, p.name, dim), _mlp(sd_v, options, p.name, dim))
    return Hypernetwork(p.name, layers)


class HypernetworkProjection:
    """Marker base for wrapped projections (see :func:`apply_hypernetwork`)."""


def _wrapped(projection: Any, mlp: Any, strength: float) -> Any:
    import torch

    class Wrapped(torch.nn.Module, HypernetworkProjection):
        """``projection(x + mlp(x) * strength)``: ComfyUI's hypernetwork patch on a k/v input; several
        hypernetworks apply in the order they were added, as ComfyUI runs its attention patches."""

        def __init__(self) -> None:
            super().__init__()
            self.projection = projection
            self.hypernetwork = torch.nn.ModuleList([mlp])
            self.strengths = [float(strength)]

        def add(self, more: Any, more_strength: float) -> None:
            self.hypernetwork.append(more)
            self.strengths.append(float(more_strength))

        @property
        def weight(self) -> Any:
            return self.projection.weight

        @property
        def in_features(self) -> int:
            return self.projection.in_features

        def forward(self, x: Any) -> Any:
            for h, s in zip(self.hypernetwork, self.strengths, strict=True):
                h.to(device=x.device, dtype=x.dtype)
                x = x + h(x) * s
            return self.projection(x)

    return Wrapped()


def apply_hypernetwork(unet: Any, net: Hypernetwork, strength: float) -> int:
    """Wrap the ``to_k``/``to_v`` projections of every attention of ``unet`` whose input width
    ``net`` covers; returns how many attentions it patched (none: a :class:`ModelError`)."""
    from diffusers.models.attention_processor import Attention

    patched = 0
    for module in unet.modules():
        if not isinstance(module, Attention):
            continue
        width = int(module.to_k.in_features)
        if width not in net.layers:
            continue
        mlp_k, mlp_v = net.layers[width]
        for name, mlp in (("to_k", mlp_k), ("to_v", mlp_v)):
            current = getattr(module, name)
            if isinstance(current, HypernetworkProjection):
                current.add(mlp, strength)  # type: ignore[attr-defined]
            else:
                setattr(module, name, _wrapped(current, mlp, strength))
        patched += 1
    if not patched:
        widths = sorted({int(m.to_k.in_features) for m in unet.modules() if isinstance(m, Attention)})
        raise _bad(net.name, f"covers attention widths {sorted(net.layers)}, but this model's attentions "
                             f"take {widths}: it was made for another model family")
    return patched
