"""Compiling a graph: validate it, expand transforms, give every node its content key.

Transforms: :func:`graphs.tiling.tile` resolves ``tile`` annotations into tiled nodes
(run tile by tile by both executors, see :mod:`orchestrator.tiling`).

The in-process executor and the Ray scheduler both run what this returns, so they agree
on order, params and keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphs import BlockSpec, Graph, content_keys, validate
from graphs.tiling import tile
from orchestrator.catalog import Catalog


@dataclass(frozen=True)
class CompiledGraph:
    """A validated graph ready to run."""

    graph: Graph
    order: list[str]
    keys: dict[str, str]
    specs: dict[str, BlockSpec]
    params: dict[str, Any]  # node id -> validated params object (defaults filled in)

    def dependencies(self, node_id: str) -> set[str]:
        """The nodes whose outputs ``node_id`` reads."""
        return {src for src, _p, dst, _n, _i in self.graph.edges() if dst == node_id}

    def consumers(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {n: set() for n in self.graph.nodes}
        for src, _p, dst, _n, _i in self.graph.edges():
            out[src].add(dst)
        return out

    def seed(self, node_id: str) -> int:
        """The node's default seed, derived from its content key (same on every worker)."""
        return int(self.keys[node_id][:15], 16)


def compile_graph(graph: Graph, catalog: Catalog) -> CompiledGraph:
    """Validate ``graph`` (raising every problem at once) and prepare it to run."""
    validate(graph, catalog)
    graph = tile(graph, catalog)
    order = graph.topological_order()
    specs = {n: catalog[graph.nodes[n].block] for n in order}
    params = {n: specs[n].parse_params(graph.nodes[n].params) for n in order}
    keys = content_keys(graph, catalog.versions())
    return CompiledGraph(graph=graph, order=order, keys=keys, specs=specs, params=params)
