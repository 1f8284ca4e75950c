"""Write graphs in Python.

>>> b = GraphBuilder()
>>> img = b.add("image.load", path="in.png")
>>> gray = b.add("image.grayscale", image=img.image)
>>> save = b.add("image.save", id="out", image=gray.image, name="gray")
>>> sorted(b.build().nodes)
['grayscale', 'load', 'out']
>>> b.build().nodes["out"].inputs
{'image': 'grayscale.image'}

Keyword arguments whose value is an output (``handle.port``, ``handle["port"]``) or a
list of outputs become inputs; every other keyword is a param. ``id=`` names the node,
``tile=`` annotates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphs.model import NODE_ID, Graph, Node, TileSpec


@dataclass(frozen=True)
class Output:
    """A reference to one output port of a node."""

    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


class NodeHandle:
    """What :meth:`GraphBuilder.add` returns: attribute or item access gives an :class:`Output`."""

    def __init__(self, node_id: str) -> None:
        self.id = node_id

    def __getattr__(self, port: str) -> Output:
        if port.startswith("__"):
            raise AttributeError(port)
        return Output(self.id, port)

    def __getitem__(self, port: str) -> Output:
        return Output(self.id, port)

    def __repr__(self) -> str:
        return f"NodeHandle({self.id!r})"


class GraphBuilder:
    """Accumulates nodes; :meth:`build` returns a :class:`~graphs.model.Graph`."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self._nodes: dict[str, Node] = {}
        self._meta = dict(meta or {})

    def add(
        self,
        block: str,
        *,
        id: str | None = None,
        tile: TileSpec | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> NodeHandle:
        """Add a node running ``block``; returns a handle whose attributes are its outputs."""
        node_id = id or self._fresh_id(block)
        if node_id in self._nodes:
            raise ValueError(f"node id {node_id!r} is already in the graph")
        if not NODE_ID.match(node_id):
            raise ValueError(f"node id {node_id!r} is not a valid id")
        inputs: dict[str, str | list[str]] = {}
        params: dict[str, Any] = {}
        for key, value in kwargs.items():
            if isinstance(value, Output):
                inputs[key] = str(value)
            elif isinstance(value, list) and value and all(isinstance(v, Output) for v in value):
                inputs[key] = [str(v) for v in value]
            else:
                params[key] = value
        tile_spec = TileSpec.model_validate(tile) if isinstance(tile, dict) else tile
        self._nodes[node_id] = Node(block=block, inputs=inputs, params=params, tile=tile_spec)
        return NodeHandle(node_id)

    def build(self) -> Graph:
        return Graph(nodes=dict(self._nodes), meta=dict(self._meta))

    def _fresh_id(self, block: str) -> str:
        base = block.rsplit(".", 1)[-1].replace("-", "_") or "node"
        if not NODE_ID.match(base):
            base = "node"
        candidate, n = base, 2
        while candidate in self._nodes:
            candidate, n = f"{base}_{n}", n + 1
        return candidate
