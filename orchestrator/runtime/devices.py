"""Which torch device a requested one means here (torch is imported only when asked)."""

from __future__ import annotations


def resolve_device(requested: str | None) -> str:
    """``"cuda"``/``"gpu"``/``"auto"`` -> ``"cuda"`` when CUDA is present, else ``"cpu"``."""
    import torch

    req = (requested or "cpu").lower()
    if req in ("auto", "gpu") or req.startswith("cuda"):
        if torch.cuda.is_available():
            return "cuda" if req in ("auto", "gpu") else req
        return "cpu"
    return req
