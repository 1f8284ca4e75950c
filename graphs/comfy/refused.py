"""ComfyUI core classes the import refuses on purpose, and why.

Each is reported as ``unsupported_node`` with the reason below (``details["reason"]``),
rather than approximated: the result would not be the image ComfyUI makes.
"""

from __future__ import annotations

_STYLE = "style models (T2I-Adapter style, Redux) have no block of ours"

REFUSED: dict[str, str] = {
    "StyleModelLoader": _STYLE,
    "StyleModelApply": _STYLE,
}


def refusal(class_type: str) -> str | None:
    """Why the import refuses ``class_type``, or ``None`` when it does not on purpose."""
    return REFUSED.get(class_type)
