"""Model references as graphs carry them: a name (``"tiny-sd"``) or ``{"name": ..., "loras": [...]}``."""

from __future__ import annotations

import json
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


def model_key(ref: Any) -> str | None:
    """A hashable identity of a model reference: its name, or the whole reference as sorted JSON
    (what worker affinity, node lanes and caches key on).

    >>> model_key("tiny-sd"), model_key({"name": "tiny-sd", "loras": []}), model_key(None)
    ('tiny-sd', '{"loras": [], "name": "tiny-sd"}', None)
    """
    if ref is None:
        return None
    if isinstance(ref, str):
        return ref
    if hasattr(ref, "model_dump"):
        ref = ref.model_dump(mode="json")
    try:
        return json.dumps(ref, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(ref)
