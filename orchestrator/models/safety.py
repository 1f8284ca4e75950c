"""Refusing pickles: what a weights file really is, judged by its content, not its name.

A pickle can run arbitrary code when it is loaded, and ``.ckpt``, ``.pt``, ``.pth`` and
many ``.bin`` files are pickles (``torch.save`` writes a pickle, or a zip archive holding
one). Weights are accepted only as ``.safetensors`` (and ONNX for ONNX blocks), whatever
the file is called; a pickle is refused with a message that says how to convert it.

>>> import tempfile, os, pickle
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "model.safetensors")        # a pickle with an innocent name
>>> with open(p, "wb") as fh:
...     pickle.dump({"weight": [1.0]}, fh)
>>> sniff(p)
'pickle'
>>> try:
...     require_safetensors(p)
... except ModelError as exc:
...     print(exc.to_dict()["type"], "pickle" in str(exc))
model True
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from orchestrator.models.errors import ModelError

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
CONVERT_HINT = (
    "convert it once with `orchestrator models convert FILE` (torch's weights-only loader, "
    "weights under state_dict included), which writes FILE.safetensors"
)


def sniff(path: str | Path) -> str:
    """What a file is, from its first bytes.

    One of ``"safetensors"``, ``"pickle"`` (a pickle stream, or a zip archive holding one, as
    ``torch.save`` writes), ``"zip"``, ``"onnx"``, ``"gguf"``, ``"empty"``, ``"unknown"``.
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(16)
        if not head:
            return "empty"
        if len(head) >= 9:
            (n,) = struct.unpack("<Q", head[:8])
            if 2 <= n <= min(size - 8, 100_000_000) and head[8:9] == b"{":
                fh.seek(8)
                try:
                    json.loads(fh.read(n))
                    return "safetensors"
                except (ValueError, UnicodeDecodeError):
                    pass
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any(n.endswith((".pkl", "data.pkl")) or "/data/" in n for n in names):
            return "pickle"
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[:4] == b"GGUF":
        return "gguf"
    if _looks_like_protobuf_onnx(head):
        return "onnx"
    if head[:1] in (b"(", b"}", b"]") and _parses_as_pickle(p):
        return "pickle"  # protocol 0/1 pickles have no header
    return "unknown"


def _looks_like_protobuf_onnx(head: bytes) -> bool:
    # ModelProto starts with field 1 (ir_version, varint: 0x08) or, rarely, another field tag
    return head[:1] == b"\x08" and len(head) > 2 and head[1] < 0x20


def _parses_as_pickle(path: Path) -> bool:
    import pickletools

    with path.open("rb") as fh:
        data = fh.read(4096)
    try:
        ops = 0
        for _op, _arg, _pos in pickletools.genops(data):
            ops += 1
            if ops >= 8:
                return True
    except Exception:  # noqa: BLE001 - any failure to parse means "not a pickle"
        return False
    return ops > 0


def pickle_refusal(path: str | Path, what: str = "weights file") -> ModelError:
    """The error for a pickle: names the file, says why it is refused and how to convert it."""
    return ModelError(
        f"{what} {str(path)!r} is a pickle (torch .ckpt/.pt/.bin format). Pickles can run "
        f"arbitrary code when loaded, so they are refused whatever the file is called; "
        f"use a .safetensors file instead: {CONVERT_HINT}",
        type="model", reason="pickle", path=str(path),
    )


def require_safetensors(path: str | Path, what: str = "weights file") -> Path:
    """``path`` if it is a safetensors file; a :class:`ModelError` saying what it is otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{what} {str(path)!r} does not exist", type="model", reason="missing",
                         path=str(path))
    kind = sniff(p)
    if kind == "safetensors":
        return p
    if kind == "pickle":
        raise pickle_refusal(p, what)
    raise ModelError(
        f"{what} {str(path)!r} is not a safetensors file (its content looks like: {kind}); "
        f"weights are read only from .safetensors files",
        type="model", reason="format", path=str(path), format=kind,
    )


def check_weights_folder(folder: str | Path, what: str = "model folder") -> None:
    """Refuse a diffusers/transformers component folder whose only weights are pickles."""
    f = Path(folder)
    files = [p for p in f.iterdir() if p.is_file()] if f.is_dir() else []
    safe = [p for p in files if p.suffix == ".safetensors"]
    for p in safe:
        require_safetensors(p, what)
    if safe:
        return
    for p in files:
        if p.suffix in PICKLE_SUFFIXES and sniff(p) == "pickle":
            raise pickle_refusal(p, what)
