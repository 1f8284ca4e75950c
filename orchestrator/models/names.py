"""Model names a request may use, and the raw paths it may not.

A request (a graph sent to the daemon) names models: checkpoints, VAEs, ControlNets, LoRAs,
embeddings, ONNX files, IP-Adapters, CLIP vision encoders. Each name must resolve to a
configured model entry, a built-in, or a file found in a configured model folder, looked
up *by name* in an index: a name is never joined onto a folder. :func:`raw_path_form`
says why a string is a path rather than a name, so the refusal can say so without
touching the disk.

>>> raw_path_form("/etc/passwd"), raw_path_form("~/x.safetensors"), raw_path_form("../x")
('absolute', 'home', 'parent')
>>> raw_path_form("file:///etc/passwd"), raw_path_form("C:\\\\x.ckpt"), raw_path_form("a//b")
('url', 'url', 'empty_part')
>>> raw_path_form("sub/dreamshaper.safetensors") is None, raw_path_form("tiny-sd") is None
(True, True)
"""

from __future__ import annotations

import re

# the kinds of model file a request can name, and the param that usually names each
KINDS = ("checkpoint", "vae", "lora", "embedding", "controlnet", "upscaler", "clip_vision", "ip_adapter",
         "onnx", "hypernetwork", "diffusion_model", "text_encoder", "gligen")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
MAX_NAME = 512


def raw_path_form(name: str) -> str | None:
    """Why ``name`` is a raw path (``absolute``, ``home``, ``parent``, ``url``, ...), or None.

    ``None`` means it has the shape of a name (``dreamshaper``, ``sub/x.safetensors``);
    whether such a name exists is the index's business.
    """
    if not name:
        return "empty"
    if len(name) > MAX_NAME:
        return "too_long"
    if "\x00" in name or any(ord(c) < 32 for c in name):
        return "control_character"
    if name.startswith("~"):
        return "home"
    if "\\" in name or _SCHEME.match(name):
        return "url"  # file:, http:, hf:, C:\ (a drive), ...
    if name.startswith("/"):
        return "absolute"
    parts = name.split("/")
    if any(p in ("..",) for p in parts):
        return "parent"
    if any(p in ("", ".") for p in parts):
        return "empty_part"
    return None


FORM_TEXT = {
    "empty": "an empty name",
    "too_long": f"longer than {MAX_NAME} characters",
    "control_character": "has control characters",
    "home": "a path in a home folder (~)",
    "url": "a URL or drive path",
    "absolute": "an absolute path",
    "parent": "a path with '..'",
    "empty_part": "a path with empty or '.' parts",
}


def shown(name: str, limit: int = 120) -> str:
    """``name`` as an error message quotes it: repr, cut to ``limit`` characters."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 4] + "...'"
