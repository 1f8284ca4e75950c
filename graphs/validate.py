"""Validate a graph against a block catalog, reporting every problem at once.

>>> from graphs import Graph, validate
>>> validate(Graph(), {})  # an empty graph is valid
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from graphs.catalog import BlockSpec, Catalog
from graphs.errors import GraphError, GraphValidationError
from graphs.model import Graph, Node, split_reference
from graphs.tiling import tile_problems
from graphs.types import is_compatible


def check(graph: Graph, catalog: Catalog) -> list[GraphError]:
    """Every problem of ``graph`` against ``catalog``, in node order; empty when valid."""
    errors: list[GraphError] = list(graph.load_errors)
    for node_id, node in graph.nodes.items():
        spec = catalog.get(node.block)
        if spec is None:
            errors.append(_unknown_block(node_id, node, catalog))
        errors.extend(_check_inputs(graph, catalog, node_id, node, spec))
        if spec is not None:
            errors.extend(_check_params(node_id, node, spec))
            errors.extend(_check_tile(node_id, node, spec))
    errors.extend(_check_cycles(graph))
    return errors


def validate(graph: Graph, catalog: Catalog) -> None:
    """Raise :class:`GraphValidationError` with every problem, or return ``None``."""
    errors = check(graph, catalog)
    if errors:
        raise GraphValidationError(errors)


def check_document(data: Any, catalog: Catalog) -> tuple[Graph | None, list[GraphError]]:
    """Parse decoded JSON (or JSON text) and check it: ``(graph or None, every problem)``."""
    try:
        graph = Graph.from_json(data) if isinstance(data, (str, bytes)) else Graph.from_dict(data)
    except GraphValidationError as exc:
        return None, exc.errors
    return graph, check(graph, catalog)


def _unknown_block(node_id: str, node: Node, catalog: Catalog) -> GraphError:
    family = node.block.split(".")[0]
    near = sorted(b for b in catalog if b.split(".")[0] == family)[:8]
    hint = f"; blocks of family {family!r}: {', '.join(near)}" if near else ""
    return GraphError(
        f"node {node_id!r}: unknown block {node.block!r}{hint}",
        type="unknown_block", node=node_id, field="block", value=node.block,
    )


def _check_inputs(
    graph: Graph, catalog: Catalog, node_id: str, node: Node, spec: BlockSpec | None
) -> list[GraphError]:
    errors: list[GraphError] = []
    for name, ref_or_list in node.inputs.items():
        port = spec.input(name) if spec else None
        if spec is not None and port is None:
            known = ", ".join(p.name for p in spec.inputs) or "none"
            errors.append(GraphError(
                f"node {node_id!r}: block {spec.id!r} has no input {name!r} (inputs: {known})",
                type="unknown_input", node=node_id, field=f"inputs.{name}", value=ref_or_list,
            ))
        if isinstance(ref_or_list, list) and port is not None and not port.multiple:
            errors.append(GraphError(
                f"node {node_id!r}: input {name!r} takes one reference, got a list of "
                f"{len(ref_or_list)}",
                type="bad_reference", node=node_id, field=f"inputs.{name}", value=ref_or_list,
            ))
        refs = ref_or_list if isinstance(ref_or_list, list) else [ref_or_list]
        for i, ref in enumerate(refs):
            field = f"inputs.{name}" + (f"[{i}]" if isinstance(ref_or_list, list) else "")
            errors.extend(_check_reference(graph, catalog, node_id, field, ref, port))
    if spec is not None:
        for port in spec.inputs:
            if not port.optional and port.name not in node.inputs:
                errors.append(GraphError(
                    f"node {node_id!r}: required input {port.name!r} ({port.type}) is not wired",
                    type="missing_input", node=node_id, field=f"inputs.{port.name}",
                ))
    return errors


def _check_reference(
    graph: Graph, catalog: Catalog, node_id: str, field: str, ref: Any, port: Any
) -> list[GraphError]:
    try:
        src, src_port = split_reference(ref)
    except ValueError as exc:
        return [GraphError(f"node {node_id!r} {field}: {exc}", type="bad_reference",
                           node=node_id, field=field, value=ref)]
    if src not in graph.nodes:
        return [GraphError(
            f"node {node_id!r} {field}: reference {ref!r} names no node {src!r}",
            type="dangling_reference", node=node_id, field=field, value=ref,
        )]
    src_spec = catalog.get(graph.nodes[src].block)
    if src_spec is None:
        return []  # the unknown block is reported on its own node
    out = src_spec.output(src_port)
    if out is None:
        known = ", ".join(p.name for p in src_spec.outputs) or "none"
        return [GraphError(
            f"node {node_id!r} {field}: node {src!r} ({src_spec.id}) has no output "
            f"{src_port!r} (outputs: {known})",
            type="dangling_reference", node=node_id, field=field, value=ref,
        )]
    if port is not None and not is_compatible(out.type, port.type):
        return [GraphError(
            f"node {node_id!r} {field}: {ref!r} is {out.type}, input {port.name!r} wants {port.type}",
            type="type_mismatch", node=node_id, field=field, value=ref,
            expected=port.type, got=out.type,
        )]
    return []


def _check_params(node_id: str, node: Node, spec: BlockSpec) -> list[GraphError]:
    errors = []
    for p in spec.check_params(node.params):
        field = f"params.{p.field}"
        if p.missing:
            msg = f"node {node_id!r}: required param {p.field!r} is missing"
            errors.append(GraphError(msg, type="invalid_param", node=node_id, field=field))
            continue
        bound = ""
        if p.bound:
            (k, v), = p.bound.items()
            bound = f" (bound {k}={v!r})"
        msg = f"node {node_id!r}: param {p.field!r} = {p.value!r}: {p.message}{bound}"
        details: dict[str, Any] = {"value": p.value}
        if p.bound:
            details["bound"] = p.bound
        errors.append(GraphError(msg, type="invalid_param", node=node_id, field=field, **details))
    return errors


def _check_tile(node_id: str, node: Node, spec: BlockSpec) -> list[GraphError]:
    tile = node.tile
    if tile is None:
        return []
    if spec.tiling is None:
        return [GraphError(
            f"node {node_id!r}: block {spec.id!r} does not tile, but the node has a tile annotation",
            type="invalid_tile", node=node_id, field="tile", value=tile.model_dump(),
        )]
    errors = []
    if tile.overlap >= tile.size:
        errors.append(GraphError(
            f"node {node_id!r}: tile overlap {tile.overlap} must be smaller than size {tile.size}",
            type="invalid_tile", node=node_id, field="tile.overlap", value=tile.overlap,
            bound={"lt": tile.size},
        ))
    if tile.stride is not None and tile.stride > tile.size:
        errors.append(GraphError(
            f"node {node_id!r}: tile stride {tile.stride} larger than size {tile.size} leaves gaps",
            type="invalid_tile", node=node_id, field="tile.stride", value=tile.stride,
            bound={"le": tile.size},
        ))
    if tile.strategy is not None and tile.strategy != spec.tiling:
        errors.append(GraphError(
            f"node {node_id!r}: block {spec.id!r} tiles by {spec.tiling!r}, not {tile.strategy!r}",
            type="invalid_tile", node=node_id, field="tile.strategy", value=tile.strategy,
        ))
    return errors or tile_problems(node_id, tile, spec)  # what the strategy cannot run


def _check_cycles(graph: Graph) -> list[GraphError]:
    g = nx.DiGraph(graph.to_networkx())
    errors = []
    for component in nx.strongly_connected_components(g):
        members = sorted(component)
        if len(members) == 1 and not g.has_edge(members[0], members[0]):
            continue
        cycle = [u for u, _v in nx.find_cycle(g.subgraph(members), source=members[0])]
        path = " -> ".join(cycle + cycle[:1])
        errors.append(GraphError(
            f"nodes form a cycle: {path}", type="cycle", node=members[0], field="inputs",
            nodes=members,
        ))
    return errors
