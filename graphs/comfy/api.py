"""Reading ComfyUI's API format: ``{"3": {"class_type": "KSampler", "inputs": {...}}, ...}``.

An input's value is either a widget value (a number, a string, ...) or a link to another
node's output, ``["4", 0]`` (node id, output slot). The body of ComfyUI's ``POST /prompt``
(``{"prompt": {...}, "client_id": ...}``) is accepted too.

>>> nodes, problems = read_api({"4": {"class_type": "CheckpointLoaderSimple",
...                                   "inputs": {"ckpt_name": "v1-5.safetensors"}},
...                             "3": {"class_type": "KSampler", "inputs": {"model": [4, 0], "seed": 1}}})
>>> nodes["3"].inputs["model"], problems
(['4', 0], [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphs.errors import GraphError


@dataclass(frozen=True)
class ComfyNode:
    """One node of an API-format prompt."""

    id: str
    class_type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    title: str | None = None

    def link(self, name: str) -> tuple[str, int] | None:
        """``(node id, output slot)`` when input ``name`` is a link, else ``None``."""
        value = self.inputs.get(name)
        return (value[0], value[1]) if is_link(value) else None

    def links(self) -> list[tuple[str, str, int]]:
        """``(input name, node id, slot)`` for every linked input, in input order."""
        return [(name, v[0], v[1]) for name, v in self.inputs.items() if is_link(v)]


def is_link(value: Any) -> bool:
    """Whether an input value is a link ``[node_id, slot]``."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def unwrap(data: Any) -> Any:
    """The prompt inside a ``POST /prompt`` body, else ``data`` itself."""
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        inner = data["prompt"]
        if inner and all(isinstance(v, dict) and "class_type" in v for v in inner.values()):
            return inner
    return data


def is_api_prompt(data: Any) -> bool:
    """Whether decoded JSON looks like an API-format prompt."""
    data = unwrap(data)
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and "class_type" in v for v in data.values()))


def read_api(data: Any) -> tuple[dict[str, ComfyNode], list[GraphError]]:
    """``(nodes by id, problems)``; links are normalised to ``[str id, int slot]``."""
    data = unwrap(data)
    problems: list[GraphError] = []
    nodes: dict[str, ComfyNode] = {}
    if not isinstance(data, dict):
        return {}, [GraphError(f"an API-format prompt is a JSON object, got {type(data).__name__}",
                               type="format")]
    for key, raw in data.items():
        node_id = str(key)
        if not isinstance(raw, dict) or not isinstance(raw.get("class_type"), str):
            problems.append(GraphError(f"ComfyUI node {node_id!r} has no 'class_type'", type="format",
                                       node=node_id, field="class_type"))
            continue
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, dict):
            problems.append(GraphError(f"ComfyUI node {node_id!r}: 'inputs' is not an object", type="format",
                                       node=node_id, field="inputs"))
            inputs = {}
        meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else {}
        nodes[node_id] = ComfyNode(node_id, raw["class_type"], {k: _normalise(v) for k, v in inputs.items()},
                                   meta.get("title") or raw.get("title"))
    return nodes, problems


def _normalise(value: Any) -> Any:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int)
            and not isinstance(value[1], bool)):
        return [str(value[0]), value[1]]
    return value
