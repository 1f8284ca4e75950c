"""Models: references, the registry, the built-in tiny models and the model manager.

>>> from orchestrator.models import ModelRef
>>> ModelRef.parse({"name": "tiny-sd", "loras": [{"path": "dog.safetensors", "weight": 0.7}]}).key()
'tiny-sd+lora(dog.safetensors@0.7)'
"""

from __future__ import annotations

from typing import Any

from orchestrator.models.errors import ModelError
from orchestrator.models.folders import ModelFolders
from orchestrator.models.manager import ModelInfo, ModelManager, resolve_device
from orchestrator.models.ref import EmbeddingRef, LoraRef, ModelRef
from orchestrator.models.registry import ModelEntry, ModelRegistry, ResolvedModel

__all__ = [
    "EmbeddingRef",
    "LoraRef",
    "ModelEntry",
    "ModelError",
    "ModelFolders",
    "ModelInfo",
    "ModelManager",
    "ModelRef",
    "ModelRegistry",
    "ResolvedModel",
    "allows_paths",
    "folders_from_settings",
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


def allows_paths(settings: Any, *, trusted: bool = False) -> bool:
    """Whether model names may be raw paths: ``model_files.allow_paths``, else ``trusted``.

    ``trusted`` is the in-process CLI running the user's own graph; the daemon and its
    workers are never trusted, so by default a request names models, never paths.
    """
    files = getattr(settings, "model_files", None)
    setting = getattr(files, "allow_paths", None)
    return bool(trusted) if setting is None else bool(setting)


def folders_from_settings(settings: Any) -> ModelFolders:
    """The model folders of ``settings.model_files`` (roots and extra_model_paths.yaml files)."""
    files = getattr(settings, "model_files", None)
    return ModelFolders(getattr(files, "roots", None) or [], getattr(files, "extra_model_paths", None) or [])


def registry_from_settings(settings: Any, extra_entries: list[dict[str, Any]] | None = None, *,
                           plugins: bool = True, trusted: bool = False) -> ModelRegistry:
    """The registry of ``settings.models``, after the plugins' entries and ``extra_entries``.

    Later entries win: the user's config over plugins over built-ins. The model folders
    come from ``settings.model_files``; raw paths are accepted only where
    :func:`allows_paths` says so (``trusted``: the in-process CLI).
    """
    entries = plugin_model_entries(settings) if plugins else []
    entries += list(extra_entries or []) + list(getattr(settings, "models", []) or [])
    agent = getattr(settings, "agent", None)
    operator_files = [getattr(agent, "scorer", None)]  # the operator's own ONNX scorer may be a file
    return ModelRegistry(entries, cache_dir=settings.effective_cache_dir,
                         folders=folders_from_settings(settings),
                         allow_paths=allows_paths(settings, trusted=trusted),
                         trusted={f: "onnx" for f in operator_files if isinstance(f, str)},
                         legacy=getattr(getattr(settings, "model_files", None), "legacy", "weights_only"))


def provider_from_settings(settings: Any, *, budget_bytes: int | None = None, trusted: bool = False
                           ) -> ModelManager:
    """A :class:`ModelManager` over the configured models and model folders.

    ``trusted=True`` is for the in-process CLI on the user's own graph (raw paths allowed
    unless ``model_files.allow_paths`` is false); the daemon's engines use the default.
    """
    return ModelManager(registry_from_settings(settings, trusted=trusted), budget_bytes=budget_bytes)
