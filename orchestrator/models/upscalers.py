"""Upscale model files through spandrel: ESRGAN, Real-ESRGAN (RRDB and the compact SRVGG),
SwinIR / Swin2SR / HAT and the other single-image architectures spandrel detects.

The model manager loads them (``ctx.models.upscaler(name, device=...)``), keeps them
resident under its budget and hands out an :class:`Upscaler`; the ``image.upscale_model``
block (``plugins/upscale``) runs them.

`spandrel <https://github.com/chaiNNer-org/spandrel>`_ is what ComfyUI loads upscalers with:
it detects the architecture and its hyper-parameters (the scale among them) from the state
dict alone. Files are read here, never unpickled: ``.safetensors`` with safetensors, and
``.pth``/``.pt``/``.ckpt`` only through ``torch.load(weights_only=True)``.

spandrel's package imports torchvision for two architectures we do not use (LaMa and
RestoreFormer), and PyPI's torchvision cannot sit beside the CPU torch this project pins.
Where torchvision is missing, :func:`registry` imports spandrel's architecture modules
without running the package's ``__init__`` (which imports them all) and builds a registry
of those that import, in spandrel's own detection order.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.errors import ModelError

# spandrel's MAIN_REGISTRY order (detection is first match), less LaMa and RestoreFormer
ARCHES = ("Compact", "SwiftSRGAN", "HAT", "GRL", "Swin2SR", "SwinIR", "GFPGAN", "OmniSR", "SCUNet", "FBCNN",
          "Uformer", "RGT", "DAT", "CRAFT", "KBNet", "DITN", "MMRealSR", "SPAN", "RealCUGAN", "SAFMN",
          "SAFMNBCIE", "DCTLSA", "FFTformer", "NAFNet", "ATD", "MixDehazeNet", "DRUNet", "DnCNN", "IPT",
          "DRCT", "ESRGAN", "PLKSR", "RetinexFormer", "HVICIDNet", "SeemoRe", "MoSR", "MoESR", "RCAN", "FDAT",
          "AuraSR")
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")

_lock = threading.Lock()
_registry: Any = None


def _error(message: str, reason: str = "format") -> ModelError:
    """A file that is not an upscale model we can load; the message names the file, not its folder."""
    return ModelError(message, reason=reason)


@dataclass(frozen=True)
class Upscaler:
    """A loaded upscale network and what spandrel read off its weights."""

    net: Any            # spandrel's ImageModelDescriptor (callable on [B, C, H, W] in 0..1)
    architecture: str
    scale: int
    input_channels: int
    output_channels: int
    tiling: str         # spandrel's recommendation: supported, discouraged, internal

    @property
    def module(self) -> Any:
        return self.net.model


def registry() -> Any:
    """spandrel's architecture registry (the full one when spandrel imports as a whole)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _load_registry()
        return _registry


def _load_registry() -> Any:
    try:
        import spandrel
    except ImportError as exc:
        if "torchvision" not in str(exc):
            raise
    else:
        return spandrel.MAIN_REGISTRY
    spec = importlib.util.find_spec("spandrel")
    if spec is None:  # pragma: no cover - spandrel is a dependency
        raise ImportError("spandrel is not installed")
    package = sys.modules.get("spandrel")
    if package is None:
        package = importlib.util.module_from_spec(spec)  # the package, its __init__ not run
        sys.modules["spandrel"] = package
    reg_mod = importlib.import_module("spandrel.__helpers.registry")
    reg = reg_mod.ArchRegistry()
    for name in ARCHES:
        try:
            mod = importlib.import_module(f"spandrel.architectures.{name}")
        except ImportError:
            continue  # an architecture with a dependency that is not here
        reg.add(reg_mod.ArchSupport.from_architecture(getattr(mod, f"{name}Arch")()))
    return reg


def read_state_dict(path: Path, display: str | None = None, legacy: str = "weights_only") -> dict[str, Any]:
    """The tensors of an upscaler file: safetensors, or a torch file through the weights-only loader
    (``legacy="refuse"``, the ``model_files.legacy`` setting, refuses torch files)."""
    import torch

    name = display or path.name
    kind = _sniff(path, name)
    if kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise _error(f"upscale model {name!r}: not a readable .safetensors file ({exc})") from None
    if kind in ("pickle", "zip"):
        if legacy == "refuse":
            raise _error(f"upscale model {name!r} is a legacy pickle (.pth/.pt); model_files.legacy is "
                         f"'refuse': convert it to .safetensors once", reason="pickle")
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise _error(f"upscale model {name!r}: cannot be read with torch's weights-only loader "
                         f"({first[:200]}); only plain state dicts load", reason="pickle") from None
        if not isinstance(data, dict):
            raise _error(f"upscale model {name!r}: holds a {type(data).__name__}, not a state dict")
        return data
    raise _error(f"upscale model {name!r}: not a .safetensors or .pth file (its content looks like {kind})")


def _sniff(path: Path, name: str) -> str:
    """``safetensors``, ``zip`` (``torch.save``), ``pickle`` (older torch files), ``unknown`` or ``empty``."""
    import struct

    try:
        with path.open("rb") as fh:
            head = fh.read(9)
    except OSError as exc:
        raise _error(f"upscale model {name!r}: cannot be read ({exc.strerror})", reason="missing") from None
    if head[:2] == b"PK":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 1 << 30:
        return "safetensors"
    return "unknown" if head else "empty"


def load_upscaler(path: str | Path, display: str | None = None, legacy: str = "weights_only") -> Upscaler:
    """The network in ``path``, on the CPU in float32 and in eval mode; errors call the file ``display``
    (default: its name), never by where it lives."""
    import torch

    p = Path(path)
    name = display or p.name
    state = read_state_dict(p, name, legacy)
    reg = registry()
    canonical = importlib.import_module("spandrel.__helpers.canonicalize").canonicalize_state_dict
    state = canonical(state)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
        what = f"entry {bad!r} is not a tensor" if bad else "holds no tensors"
        raise _error(f"upscale model {name!r}: {what}")
    try:
        desc = reg.load(state)
    except Exception as exc:  # noqa: BLE001 - spandrel raises many kinds for a file it cannot place
        kind = type(exc).__name__
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else kind
        if kind == "UnsupportedModelError":
            msg = "no known upscaler architecture matches its weights"
        raise _error(f"upscale model {name!r}: {msg}") from None
    if type(desc).__name__ != "ImageModelDescriptor":
        raise _error(f"upscale model {name!r}: a {desc.architecture.name} model ({desc.purpose}) is not "
                     f"an image-to-image upscaler")
    desc.eval()
    desc.model.requires_grad_(False)
    return Upscaler(net=desc, architecture=str(desc.architecture.name), scale=int(desc.scale),
                    input_channels=int(desc.input_channels), output_channels=int(desc.output_channels),
                    tiling=str(getattr(desc.tiling, "name", desc.tiling)).lower())
