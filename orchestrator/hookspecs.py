"""The plugin hooks. A plugin is a module (or object) with ``@hookimpl`` functions.

Third-party packages expose their plugin module through the ``orchestrator.plugins``
entry-point group::

    [project.entry-points."orchestrator.plugins"]
    my_blocks = "my_package.blocks"

Every hook is called once per plugin; the host merges what they return. A plugin that
needs its own port types declares them at import, before its blocks, with
``orchestrator.register_port_type("DEPTH", parent="IMAGE")``.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "orchestrator"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_blocks() -> list[Any]:
    """Return the block classes (decorated with ``@block``) this plugin provides.

    The host merges every plugin's list. A block id that another plugin already
    registered is refused with a message naming both plugins; a class that is not a
    declared block is reported and skipped, and the plugin's other blocks still load.
    """


@hookspec
def register_templates() -> list[Any]:
    """Return workflow templates: folders of graph JSON files, or ``graphs.Template`` objects.

    The agent reads them next to the built-in library. Names must be unique.
    """


@hookspec
def register_models() -> list[dict[str, Any]]:
    """Return model entries (dicts with ``name``, ``source`` and options) to add to the registry.

    Entries from the user's config win over plugin entries of the same name.
    """


@hookspec
def register_comfy_mappings() -> list[Any]:
    """Return mappings that import the ComfyUI node classes this plugin's blocks reimplement.

    The built-in plugins map ComfyUI's core classes this way too (``plugins/sd/comfy_*.py``,
    ``plugins/image/comfy_nodes.py``, ...). Each item is an ``orchestrator.ComfyMapping`` (its
    ``convert`` function gets an ``orchestrator.NodeContext``) or a dict of its fields, e.g.
    ``{"class_type": "ImageInvertPlus", "block": "myplugin.invert", "inputs": {"image": "image"},
    "params": {"amount": "strength"}, "outputs": ["image"], "widgets": ["strength"]}``
    (ComfyUI input -> our input, our param -> ComfyUI widget, our output per ComfyUI output
    slot, ComfyUI's widget order for UI-format files). ``orchestrator import-comfy`` and
    ``POST /import/comfy`` call it on every plugin and merge the lists in plugin order: a
    plugin's mapping replaces a built-in one of the same class, and the first plugin to map
    a class wins. A mapping is used only when the catalog has its block; a bad one is
    reported among the import's problems (type ``bad_mapping``).
    """
