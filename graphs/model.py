"""The workflow graph: a pydantic model of the graph JSON format, load/dump, networkx view.

A graph is a dict of named nodes. Each node names a block, wires its inputs to other
nodes' outputs with ``"node.port"`` references (a list of references for a port that
takes several), sets the block's params, and may carry a ``tile`` annotation::

    {"format": "orchestrator.graph/1",
     "nodes": {
       "load": {"block": "image.load", "params": {"path": "in.png"}},
       "gray": {"block": "image.grayscale", "inputs": {"image": "load.image"}},
       "save": {"block": "image.save", "inputs": {"image": "gray.image"}, "params": {"name": "out"}}}}

Nothing here knows any block: checking a graph against a catalog is
:func:`graphs.validate.validate`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from graphs.errors import GraphError, GraphValidationError

FORMAT = "orchestrator.graph/1"
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TileSpec(BaseModel):
    """How a node is tiled: tile ``size`` in pixels, ``overlap`` (or ``stride``) between tiles."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(..., ge=8, description="tile edge in pixels")
    overlap: int = Field(0, ge=0, description="overlap between neighbouring tiles in pixels")
    stride: int | None = Field(None, ge=1, description="step between tiles; default size - overlap")
    strategy: str | None = Field(None, description="tiling strategy; default: the block's own")
    circular: bool = Field(False, description="wrap around horizontally (360-degree panoramas)")

    def effective_stride(self) -> int:
        return self.stride if self.stride is not None else self.size - self.overlap


class Node(BaseModel):
    """One node: a block, its wired inputs, its params, an optional tile annotation."""

    model_config = ConfigDict(extra="forbid")

    block: str = Field(..., min_length=1, description="block id, e.g. 'sd.denoise'")
    inputs: dict[str, str | list[str]] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    tile: TileSpec | None = None
    meta: dict[str, Any] = Field(default_factory=dict, description="free-form: label, group")

    def references(self) -> Iterator[tuple[str, int | None, str]]:
        """Yield ``(input_name, index_or_None, reference)`` for every wired reference."""
        for name, ref in self.inputs.items():
            if isinstance(ref, list):
                for i, r in enumerate(ref):
                    yield name, i, r
            else:
                yield name, None, ref


def split_reference(ref: str) -> tuple[str, str]:
    """``"node.port"`` -> ``("node", "port")``; ``ValueError`` if it is not of that form.

    >>> split_reference("denoise.latent")
    ('denoise', 'latent')
    """
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise ValueError(f"reference {ref!r} is not of the form 'node.port'")
    node, port = ref.split(".")
    if not NODE_ID.match(node) or not PORT_NAME.match(port):
        raise ValueError(f"reference {ref!r} is not of the form 'node.port'")
    return node, port


class Graph(BaseModel):
    """A workflow graph (the ``orchestrator.graph/1`` JSON format)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["orchestrator.graph/1"] = FORMAT
    nodes: dict[str, Node] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(
        default_factory=dict, description="free-form: name, description, labels"
    )

    # problems found while loading that the model cannot hold (duplicate node ids)
    _load_errors: list[GraphError] = PrivateAttr(default_factory=list)

    @property
    def load_errors(self) -> list[GraphError]:
        return list(self._load_errors)

    # -- load / dump -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        """Build a graph from decoded JSON; every shape problem raised at once."""
        errors: list[GraphError] = []
        if not isinstance(data, dict):
            raise GraphValidationError(
                [GraphError(f"a graph is a JSON object, got {type(data).__name__}", type="format")]
            )
        try:
            graph = cls.model_validate(data)
        except ValidationError as exc:
            errors.extend(_shape_errors(exc))
            raise GraphValidationError(errors) from None
        for node_id in graph.nodes:
            if not NODE_ID.match(node_id):
                errors.append(
                    GraphError(
                        f"node id {node_id!r} must start with a letter or '_' and hold only "
                        "letters, digits, '_' and '-'",
                        type="format",
                        node=node_id,
                        field="id",
                        value=node_id,
                    )
                )
        if errors:
            raise GraphValidationError(errors)
        return graph

    @classmethod
    def from_json(cls, text: str | bytes) -> Graph:
        """Parse graph JSON. Duplicate node ids are kept as load errors for validation."""
        duplicates: list[GraphError] = []

        def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in pairs:
                if key in out and isinstance(value, dict) and "block" in value:
                    duplicates.append(
                        GraphError(
                            f"node id {key!r} is used more than once",
                            type="duplicate_node",
                            node=key,
                            field="id",
                            value=key,
                        )
                    )
                    continue
                out[key] = value
            return out

        try:
            data = json.loads(text, object_pairs_hook=hook)
        except json.JSONDecodeError as exc:
            raise GraphValidationError(
                [GraphError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                            type="format")]
            ) from None
        graph = cls.from_dict(dict(data) if isinstance(data, dict) else data)
        graph._load_errors = duplicates
        return graph

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Read a graph JSON file."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_dict(self) -> dict[str, Any]:
        """The graph as plain JSON data, without empty optional fields."""
        out: dict[str, Any] = {"format": self.format, "nodes": {}}
        for node_id, node in self.nodes.items():
            entry: dict[str, Any] = {"block": node.block}
            if node.inputs:
                entry["inputs"] = dict(node.inputs)
            if node.params:
                entry["params"] = dict(node.params)
            if node.tile is not None:
                entry["tile"] = node.tile.model_dump(exclude_defaults=True)
            if node.meta:
                entry["meta"] = dict(node.meta)
            out["nodes"][node_id] = entry
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    # -- views ---------------------------------------------------------------------------

    def edges(self) -> Iterator[tuple[str, str, str, str, int | None]]:
        """Yield ``(src_node, src_port, dst_node, dst_input, index)`` for every well-formed edge."""
        for dst, node in self.nodes.items():
            for name, index, ref in node.references():
                try:
                    src, port = split_reference(ref)
                except ValueError:
                    continue
                yield src, port, dst, name, index

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx view: nodes carry ``block``/``params``/``tile``; edges ``src_port``/``dst_input``.

        References to nodes that do not exist are left out (validation reports them).
        """
        g = nx.MultiDiGraph()
        for node_id, node in self.nodes.items():
            g.add_node(
                node_id,
                block=node.block,
                params=dict(node.params),
                tile=node.tile.model_dump() if node.tile else None,
            )
        for src, port, dst, name, index in self.edges():
            if src in self.nodes:
                g.add_edge(src, dst, key=f"{port}->{name}[{index}]" if index is not None
                           else f"{port}->{name}", src_port=port, dst_input=name, index=index)
        return g

    def topological_order(self) -> list[str]:
        """Node ids in an execution order (ties broken by id); ``GraphError`` on a cycle."""
        g = self.to_networkx()
        try:
            return list(nx.lexicographical_topological_sort(g))
        except nx.NetworkXUnfeasible:
            cycle = [u for u, _v, *_ in nx.find_cycle(g)]
            raise GraphError(
                f"nodes form a cycle: {' -> '.join(cycle + cycle[:1])}",
                type="cycle", node=cycle[0], field="inputs",
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and self.to_dict() == other.to_dict()


def _shape_errors(exc: ValidationError) -> list[GraphError]:
    """Turn pydantic's errors on a graph document into graph errors naming node and field."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        node = field = None
        if len(loc) >= 2 and loc[0] == "nodes":
            node = loc[1]
            field = ".".join(loc[2:]) or None
        else:
            field = ".".join(loc) or None
        where = f"node {node!r}" if node else "graph"
        what = f" field {field!r}" if field else ""
        value = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {_short(value)})"
        out.append(
            GraphError(
                f"{where}{what}: {err['msg']}{shown}",
                type="format",
                node=node,
                field=field,
                **({} if err["type"] == "missing" else {"value": _jsonable(value)}),
            )
        )
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
