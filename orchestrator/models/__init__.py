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
    "plugin_model_entries",
    "provider_from_settings",
    "registry_from_settings",
    "resolve_device",
]


def plugin_model_entries(settings: Any) -> list[dict[str, Any]]:
    """Model entries that plugins return from their ``register_models`` hook."""
    import importlib

    from orchestrator.plugins import load_plugins

    plugins = getattr(settings, "plugins", None)
    extra = []
    for module in getattr(plugins, "extra", []) or []:
        try:
            extra.append((module, importlib.import_module(module)))
        except ImportError:
            continue  # reported by the plugin host where plugins are loaded for blocks
    host = load_plugins(allow=getattr(plugins, "allow", None), extra=extra)
    entries: list[dict[str, Any]] = []
    for _plugin, items in host.call_hook("register_models"):
        entries.extend(dict(item) for item in items)
    return entries


def registry_from_settings(settings: Any, extra_entries: list[dict[str, Any]] | None = None, *,
                           plugins: bool = True) -> ModelRegistry:
    """The registry of ``settings.models``, after the plugins' entries and ``extra_entries``.

    Later entries win: the user's config over plugins over built-ins.
    """
    entries = plugin_model_entries(settings) if plugins else []
    entries += list(extra_entries or []) + list(getattr(settings, "models", []) or [])
    return ModelRegistry(entries, cache_dir=settings.effective_cache_dir)


def provider_from_settings(settings: Any, *, budget_bytes: int | None = None) -> ModelManager:
    """A :class:`ModelManager` over the configured models (what ``orchestrator run`` uses)."""
    return ModelManager(registry_from_settings(settings), budget_bytes=budget_bytes)
