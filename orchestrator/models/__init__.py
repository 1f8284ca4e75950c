"""Models: references, the registry, the built-in tiny models and the model manager.

>>> from orchestrator.models import ModelRef
>>> ModelRef.parse({"name": "tiny-sd", "loras": [{"path": "dog.safetensors", "weight": 0.7}]}).key()
'tiny-sd+lora(dog.safetensors@0.7)'
"""

from __future__ import annotations

from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.manager import ModelInfo, ModelManager, resolve_device
from orchestrator.models.ref import EmbeddingRef, LoraRef, ModelRef
from orchestrator.models.registry import ModelEntry, ModelRegistry, ResolvedModel

__all__ = [
    "EmbeddingRef",
    "LoraRef",
    "ModelEntry",
    "ModelError",
    "ModelInfo",
    "ModelManager",
    "ModelRef",
    "ModelRegistry",
    "ResolvedModel",
    "provider_from_settings",
    "registry_from_settings",
    "resolve_device",
]


def registry_from_settings(settings: Any, extra_entries: list[dict[str, Any]] | None = None) -> ModelRegistry:
    """The registry of ``settings.models`` (after ``extra_entries``, e.g. from plugins)."""
    entries = list(extra_entries or []) + list(getattr(settings, "models", []) or [])
    return ModelRegistry(entries, cache_dir=settings.effective_cache_dir)


def provider_from_settings(settings: Any, *, budget_bytes: int | None = None) -> ModelManager:
    """A :class:`ModelManager` over the configured models (what ``orchestrator run`` uses)."""
    return ModelManager(registry_from_settings(settings), budget_bytes=budget_bytes)
