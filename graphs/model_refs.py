"""Model references as graphs carry them: a name (``"tiny-sd"``) or ``{"name": ..., "loras": [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_name(ref: Any) -> str | None:
    """The name in a model reference: a string, a mapping's ``"name"`` or an object's ``.name``
    (a block's parsed model param); ``None`` when it has no string name.

    >>> model_name("tiny-sd"), model_name({"name": "tiny-sd", "loras": []}), model_name({"loras": []})
    ('tiny-sd', 'tiny-sd', None)
    """
    if isinstance(ref, str):
        return ref
    name = ref.get("name") if isinstance(ref, Mapping) else getattr(ref, "name", None)
    return name if isinstance(name, str) else None
