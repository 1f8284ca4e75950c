"""Import ComfyUI workflows (API format, UI format, PNGs that carry them) as our graphs.

The import is the format and its machinery: API and UI format, subgraphs, links, reroutes,
primitives and bypassed nodes, PNG chunks, and the string, math and switch nodes it computes.
Which block a ComfyUI class becomes is a *mapping* (:class:`ComfyMapping`), and the mappings
live beside their blocks: each plugin returns its own from the ``register_comfy_mappings``
hook, the built-in plugins as any other (``orchestrator.plugins.comfy_mappings(host)`` gathers
them; ``orchestrator.plugins.builtin_comfy_mappings()`` where no plugin host is at hand). They
come in as ``extra_mappings``:

>>> from graphs.comfy import import_workflow
>>> prompt = {
...   "1": {"class_type": "LoadImage", "inputs": {"image": "fox.png"}},
...   "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
...   "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI/inverted", "images": ["2", 0]}}}
>>> mappings = [
...   {"class_type": "LoadImage", "block": "image.load", "params": {"path": "image"}, "outputs": ["image"]},
...   {"class_type": "ImageInvert", "block": "image.invert", "inputs": {"image": "image"},
...    "outputs": ["image"]},
...   {"class_type": "SaveImage", "block": "image.save", "inputs": {"images": "image"},
...    "params": {"name": "filename_prefix"}, "output_node": True}]
>>> graph, problems = import_workflow(prompt, extra_mappings=mappings)
>>> list(graph.nodes), graph.nodes["image_invert_2"].inputs
(['load_image_1', 'image_invert_2', 'save_image_3'], {'image': 'load_image_1.image'})
>>> problems
[]

Every problem is a :class:`~graphs.errors.GraphError` with a ``severity``: ``"error"``
(``unsupported_node``, one per ComfyUI node that has no block of ours; ``dropped_node``;
``unsupported_input``; ``format``; ``bad_mapping``; and, when a catalog is given, the
validation errors of the result) or ``"warning"`` (``approximated``, ``unmapped_model``).
For ComfyUI problems ``node`` is the ComfyUI node id and ``comfy_class`` its class.

``export_api`` turns a graph made of mapped blocks back into an API-format prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphs.catalog import Catalog
from graphs.comfy.api import ComfyNode, read_api
from graphs.comfy.export import export_api
from graphs.comfy.importer import Importer, mapping_table
from graphs.comfy.known import KNOWN
from graphs.comfy.mapping import (
    ComfyMapping,
    Cond,
    Const,
    Data,
    MaskedLatent,
    Model,
    NodeContext,
    Resource,
    Unresolved,
)
from graphs.comfy.png import png_text
from graphs.comfy.source import our_graph, read_source, to_api
from graphs.comfy.ui import ui_to_api
from graphs.errors import GraphError
from graphs.model import Graph
from graphs.validate import check

__all__ = [
    "ComfyImport", "ComfyMapping", "ComfyNode", "Cond", "Const", "Data", "MaskedLatent", "Model",
    "NodeContext", "Resource", "Unresolved", "export_api", "import_result", "import_workflow",
    "is_error", "parse_model_map", "png_text", "read_api", "read_workflow", "ui_to_api",
]


@dataclass
class ComfyImport:
    """What an import gives: the graph, every problem, and where it came from."""

    graph: Graph
    problems: list[GraphError] = field(default_factory=list)
    format: str = "api"  # "api", "ui", or "orchestrator" (a PNG of ours: its own graph)
    origin: str = "json"  # "json", "png:prompt", "png:workflow" or "png:orchestrator"
    prompt: dict[str, ComfyNode] = field(default_factory=dict)  # the API-format nodes

    @property
    def errors(self) -> list[GraphError]:
        return [p for p in self.problems if is_error(p)]

    @property
    def warnings(self) -> list[GraphError]:
        return [p for p in self.problems if not is_error(p)]


def is_error(problem: GraphError) -> bool:
    """Whether a problem is an error (not a warning)."""
    return problem.details.get("severity", "error") != "warning"


def _widget_names(table: Mapping[str, ComfyMapping]) -> Any:
    def names(class_type: str) -> Sequence[str] | None:
        m = table.get(class_type)
        if m is not None and m.widgets:
            return m.widgets
        info = KNOWN.get(class_type)
        return info.widget_names() if info is not None else None

    return names


def read_workflow(source: Any, extra_mappings: Iterable[Any] = ()) -> tuple[dict[str, ComfyNode], str, str,
                                                                           list[GraphError]]:
    """``(API-format nodes, format, origin, problems)`` of a workflow, UI format converted."""
    table, problems = mapping_table(extra_mappings)
    data, origin = read_source(source)
    nodes, fmt, more = to_api(data, _widget_names(table))
    return nodes, fmt, origin, problems + more


def import_result(source: Any, catalog: Catalog | None = None, model_map: Mapping[str, str] | None = None,
                  extra_mappings: Iterable[Any] | None = None) -> ComfyImport:
    """Import a workflow; see :func:`import_workflow`. Gives the format and origin too."""
    ours = our_graph(source)
    if ours is not None:  # a PNG of ours: its own graph, exactly (the ComfyUI chunks are for ComfyUI)
        graph = Graph.from_json(ours)
        found = [*graph.load_errors, *(check(graph, catalog) if catalog is not None else [])]
        for err in found:
            err.details.setdefault("severity", "error")
        return ComfyImport(graph, found, "orchestrator", "png:orchestrator", {})
    table, problems = mapping_table(extra_mappings or ())
    data, origin = read_source(source)
    nodes, fmt, more = to_api(data, _widget_names(table))
    importer = Importer(nodes, table, catalog, model_map)
    graph = importer.run()
    problems += more + importer.problems
    if catalog is not None:
        for err in check(graph, catalog):
            err.details.setdefault("severity", "error")
            problems.append(err)
    return ComfyImport(graph, problems, fmt, origin, nodes)


def import_workflow(source: Any, catalog: Catalog | None = None, model_map: Mapping[str, str] | None = None,
                    extra_mappings: Iterable[Any] | None = None) -> tuple[Graph, list[GraphError]]:
    """Import a ComfyUI workflow as ``(graph, problems)``.

    ``source``: decoded JSON, JSON text, JSON or PNG bytes, or a file path; API format
    (also a ``POST /prompt`` body), UI format, or a PNG with a ``prompt``/``workflow`` chunk.
    ``catalog``: the blocks available; classes whose block it lacks are reported as
    unsupported, and the result is validated against it (``None``: every block a mapping
    names is taken to be there, and nothing is validated). ``model_map``: ComfyUI model file
    names (or their stems) -> our model names (or LoRA/embedding/ONNX paths).
    ``extra_mappings``: :class:`ComfyMapping` objects or dicts, the plugins' from the
    ``register_comfy_mappings`` hook (``orchestrator.plugins.comfy_mappings``; the built-in
    plugins' included): without them only the nodes the import computes itself are mapped.

    Raises :class:`~graphs.errors.GraphValidationError` when ``source`` is not a
    ComfyUI workflow at all.
    """
    result = import_result(source, catalog, model_map, extra_mappings)
    return result.graph, result.problems


def parse_model_map(items: Iterable[str]) -> dict[str, str]:
    """``["v1-5-pruned-emaonly.safetensors=tiny-sd", ...]`` -> a model map; ``ValueError`` on a bad item.

    >>> parse_model_map(["sd15.safetensors=tiny-sd"])
    {'sd15.safetensors': 'tiny-sd'}
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, ours = item.rpartition("=")
        if not sep or not name.strip() or not ours.strip():
            raise ValueError(f"model map entry {item!r}: expected COMFY_NAME=OUR_NAME")
        out[name.strip()] = ours.strip()
    return out
