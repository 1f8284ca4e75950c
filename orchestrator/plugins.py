"""Loading plugins: the built-ins and every installed ``orchestrator.plugins`` entry point.

Built-in blocks are plugins too, registered exactly as a third-party package's are. A
plugin that fails to import, implements a hook that does not exist, raises in a hook or
declares a bad block is reported (``PluginHost.problems``) and skipped; the others load.
A block id registered twice is refused, naming both plugins. ``strict=True`` turns any
problem into a :class:`~orchestrator.errors.PluginError` at start-up instead.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from graphs.comfy.mapping import ComfyMapping
from graphs.library import Template, builtin_templates, templates_from_dir
from orchestrator import hookspecs
from orchestrator.blocks import Block
from orchestrator.catalog import Catalog
from orchestrator.config import ConfigError, Settings
from orchestrator.errors import BlockError, PluginError

ENTRY_POINT_GROUP = "orchestrator.plugins"
BUILTIN_PLUGINS: tuple[str, ...] = ("plugins.image", "plugins.sd", "plugins.onnx", "plugins.compose",
                                     "plugins.upscale")


@dataclass
class PluginInfo:
    """A plugin the host knows of: its name, where it came from, what it registered."""

    name: str
    source: str  # "builtin" or "entry point <dist> <version>"
    module: str
    blocks: list[str] = field(default_factory=list)
    loaded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "module": self.module,
                "blocks": list(self.blocks), "loaded": self.loaded}


class PluginHost:
    """Owns the pluggy ``PluginManager``; builds the block catalog from every plugin."""

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        builtins: Iterable[str] = BUILTIN_PLUGINS,
        entry_points: bool = True,
        extra: Iterable[tuple[str, Any]] = (),
        strict: bool = False,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.allow = None if allow is None else set(allow)
        self.strict = strict
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[BlockError] = []
        self.catalog = Catalog()
        self.templates: dict[str, Template] = {}
        self._owner: dict[str, str] = {}
        for module in builtins:
            self._add_module(f"builtin.{module.rsplit('.', 1)[-1]}", module, "builtin")
        if entry_points:
            for ep in _entry_points():
                if self.allow is not None and ep.name not in self.allow:
                    continue
                dist = getattr(ep, "dist", None)
                source = f"entry point of {dist.name} {dist.version}" if dist else "entry point"
                self._add_entry_point(ep, source)
        for name, obj in extra:
            self._register(name, obj, "in-process", getattr(obj, "__name__", repr(obj)))
        self._collect()
        if self.strict and self.problems:
            raise PluginError(self.problems)

    # -- loading ---------------------------------------------------------------------------

    def _problem(self, plugin: str, message: str, type: str = "plugin", **details: Any) -> None:
        self.problems.append(BlockError(f"plugin {plugin!r}: {message}", type=type,
                                        plugin=plugin, **details))

    def _add_module(self, name: str, module: str, source: str) -> None:
        try:
            obj = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            self.plugins[name] = PluginInfo(name, source, module)
            self._problem(name, f"failed to import {module!r}: {type(exc).__name__}: {exc}")
            return
        self._register(name, obj, source, module)

    def _add_entry_point(self, ep: importlib.metadata.EntryPoint, source: str) -> None:
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001
            self.plugins[ep.name] = PluginInfo(ep.name, source, ep.value)
            self._problem(ep.name, f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}")
            return
        self._register(ep.name, obj, source, ep.value)

    def _register(self, name: str, obj: Any, source: str, module: str) -> None:
        info = PluginInfo(name, source, module)
        self.plugins[name] = info
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001
            self._problem(name, f"cannot register: {exc}")
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self._problem(name, f"implements a hook that does not exist: {exc}")
            return
        info.loaded = True

    def _call(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call one hook on each plugin separately, so one failing plugin spares the rest."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():  # registration order
            try:
                value = impl.function()
            except Exception as exc:  # noqa: BLE001
                self._problem(impl.plugin_name, f"{hook_name}() raised {type(exc).__name__}: {exc}")
                continue
            if value is not None:
                results.append((impl.plugin_name, value))
        return results

    def _collect(self) -> None:
        for plugin, classes in self._call("register_blocks"):
            for cls in classes:
                self._add_block(plugin, cls)
        for t in builtin_templates():
            self.templates[t.name] = t
        for plugin, items in self._call("register_templates"):
            for item in items:
                try:
                    found = [item] if isinstance(item, Template) else templates_from_dir(item)
                except Exception as exc:  # noqa: BLE001
                    self._problem(plugin, f"bad template {item!r}: {exc}")
                    continue
                for t in found:
                    if t.name in self.templates:
                        self._problem(plugin, f"template {t.name!r} is already defined",
                                      type="duplicate_template")
                    else:
                        self.templates[t.name] = t

    def _add_block(self, plugin: str, cls: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Block)) or cls._spec is None:
            self._problem(plugin, f"{cls!r} is not a block class decorated with @block",
                          type="declaration")
            return
        block_id = cls.spec().id
        if block_id in self._owner:
            other = self._owner[block_id]
            self._problem(
                plugin,
                f"block id {block_id!r} is already registered by plugin {other!r}; "
                f"refused from {plugin!r}",
                type="duplicate_block", block=block_id, plugins=[other, plugin],
            )
            return
        self._owner[block_id] = plugin
        self.catalog.add(cls, plugin)
        self.plugins[plugin].blocks.append(block_id)

    def call_hook(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call any hook per plugin (e.g. ``register_models``); failures become problems."""
        return self._call(hook_name)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def load_plugins(
    *,
    allow: Iterable[str] | None = None,
    entry_points: bool = True,
    extra: Iterable[tuple[str, ModuleType | Any]] = (),
    strict: bool = False,
) -> PluginHost:
    """Load the built-in plugins, the allowed entry points and ``extra`` in-process plugins."""
    return PluginHost(allow=allow, entry_points=entry_points, extra=extra, strict=strict)



@dataclass
class ExtraPlugins:
    """The ``plugins.extra`` modules after importing them."""

    imported: list[tuple[str, ModuleType]]  # (plugin name, module), for ``load_plugins(extra=...)``
    kept: list[str]  # the specs that imported, in their order
    broken: list[BlockError]  # one per spec that did not (type "plugin", ``__cause__`` the error)


def import_extra_plugins(specs: Iterable[str]) -> ExtraPlugins:
    """Import the ``plugins.extra`` modules, each ``"module"`` or ``"name=module"``."""
    out = ExtraPlugins([], [], [])
    for spec in specs:
        name, _, module = spec.rpartition("=")
        name = name or module
        try:
            out.imported.append((name, importlib.import_module(module)))
        except Exception as exc:  # noqa: BLE001 - a plugin's import error is reported, not fatal
            error = BlockError(f"plugin {name!r}: failed to import {module!r}: {type(exc).__name__}: {exc}",
                               type="plugin", plugin=name)
            error.__cause__ = exc
            out.broken.append(error)
        else:
            out.kept.append(spec)
    return out


def plugin_host_from_settings(settings: Settings) -> tuple[PluginHost, Settings]:
    """The plugin host ``settings`` describe, and the settings with any broken extra left out.

    An extra plugin module (``plugins.extra``) that fails to import is reported in
    ``host.problems`` and left out of the returned settings (so the workers skip it too), as
    an entry point that fails to import is; with ``plugins.strict`` it raises ``ConfigError``.
    """
    extra = import_extra_plugins(settings.plugins.extra)
    if extra.broken and settings.plugins.strict:
        raise ConfigError("; ".join(str(b) for b in extra.broken) + " (plugins.strict is set)")
    if extra.broken:
        plugins = settings.plugins.model_copy(update={"extra": extra.kept})
        settings = settings.model_copy(update={"plugins": plugins})
    host = load_plugins(allow=settings.plugins.allow, strict=settings.plugins.strict, extra=extra.imported)
    host.problems.extend(extra.broken)
    return host, settings


def comfy_mappings(host: PluginHost) -> list[Any]:
    """Every plugin's ComfyUI mappings (``register_comfy_mappings``), as ``graphs.comfy``'s import
    functions take them (``extra_mappings``): the other plugins' first, in plugin order, then the
    built-in plugins' for the classes no other plugin maps. So a plugin's mapping replaces a built-in
    one of its class, and where two plugins map a class the first wins (the import reports the other).
    """
    builtin: list[Any] = []
    others: list[Any] = []
    for plugin, items in host.call_hook("register_comfy_mappings"):
        info = host.plugins.get(plugin)
        if not isinstance(items, (list, tuple)):  # not a list: one bad item, which the import reports
            items = [items]
        (builtin if info is not None and info.source == "builtin" else others).extend(items)
    return merge_comfy_mappings(others, builtin)


def merge_comfy_mappings(first: Iterable[Any], then: Iterable[Any]) -> list[Any]:
    """``first``, then the mappings of ``then`` whose ComfyUI class none of ``first`` maps."""
    out = list(first)
    taken = {_class_type(m) for m in out} - {None}
    return out + [m for m in then if _class_type(m) not in taken]


def builtin_comfy_mappings(extra: Iterable[Any] = ()) -> list[Any]:
    """The built-in plugins' ComfyUI mappings, after ``extra`` ones (which replace built-in ones of their
    class): the ``extra_mappings`` of ``graphs.comfy.import_workflow`` and ``import_result`` where no
    plugin host is at hand (a script, a test). ``graphs.comfy`` itself maps only ComfyUI's primitive,
    string, math and switch nodes (computed at import); every other class is mapped by the plugin
    whose blocks it imports onto.

    >>> from graphs.comfy import import_workflow
    >>> prompt = {
    ...   "4": {"class_type": "CheckpointLoaderSimple",
    ...         "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    ...   "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    ...   "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
    ...   "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    ...   "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 20, "cfg": 8,
    ...         "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["4", 0],
    ...         "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    ...   "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    ...   "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}}
    >>> graph, problems = import_workflow(prompt, model_map={"v1-5-pruned-emaonly": "tiny-sd"},
    ...                                   extra_mappings=builtin_comfy_mappings())
    >>> list(graph.nodes)
    ['clip_text_encode_6', 'empty_latent_image_5', 'ksampler_3', 'vae_decode_8', 'save_image_9']
    >>> graph.nodes["ksampler_3"].block, graph.nodes["clip_text_encode_6"].params["negative_prompt"]
    ('sd.ksampler', 'blurry')
    >>> problems
    []
    """
    return merge_comfy_mappings(extra, _builtin_comfy_mappings())


@functools.cache
def _builtin_comfy_mappings() -> tuple[Any, ...]:
    return tuple(comfy_mappings(load_plugins(entry_points=False)))


def _class_type(mapping: Any) -> str | None:
    """The ComfyUI class of a mapping (object or dict); None for a malformed one (the import reports it)."""
    value = mapping.class_type if isinstance(mapping, ComfyMapping) else \
        mapping.get("class_type") if isinstance(mapping, Mapping) else None
    return value if isinstance(value, str) else None
