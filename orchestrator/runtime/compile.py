"""Compiling a graph: validate it, expand transforms, give every node its content key.

Transforms: :func:`graphs.tiling.tile` resolves ``tile`` annotations into tiled nodes
(run tile by tile by both executors, see :mod:`orchestrator.runtime.tiling`).

The in-process executor and the Ray scheduler both run what this returns, so they agree
on order, params and keys.

Keys and input files: a node that reads an input file (a param marked ``input_file`` in
its schema, e.g. ``image.load``'s ``path``) has the file's content digest in its key when
the graph is compiled against an input folder (:func:`key_input_files`; the daemon's two
engines do it for every job), so a replaced file re-runs its node and everything after
it. Seeds stay derived from the keys without digests: the same graph gives the same
seeds in the daemon and in ``orchestrator run``, whatever the files hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from graphs import BlockSpec, Graph, content_keys, validate
from graphs.tiling import tile
from orchestrator.catalog import Catalog
from orchestrator.state.input_paths import input_digest, input_file_params


@dataclass(frozen=True)
class CompiledGraph:
    """A validated graph ready to run."""

    graph: Graph
    order: list[str]
    keys: dict[str, str]
    specs: dict[str, BlockSpec]
    params: dict[str, Any]  # node id -> validated params object (defaults filled in)
    seed_keys: dict[str, str] | None = None  # keys seeds derive from, when ``keys`` cover files

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
        return int((self.seed_keys or self.keys)[node_id][:15], 16)


def compile_graph(graph: Graph, catalog: Catalog, *, input_root: str | Path | None = None,
                  confine_inputs: bool = True) -> CompiledGraph:
    """Validate ``graph`` (raising every problem at once) and prepare it to run; with
    ``input_root``, keys cover the content of the input files nodes read."""
    validate(graph, catalog)
    graph = tile(graph, catalog)
    order = graph.topological_order()
    specs = {n: catalog[graph.nodes[n].block] for n in order}
    params = {n: specs[n].parse_params(graph.nodes[n].params) for n in order}
    keys = content_keys(graph, catalog.versions())
    compiled = CompiledGraph(graph=graph, order=order, keys=keys, specs=specs, params=params)
    if input_root is None:
        return compiled
    return key_input_files(compiled, input_root, confine_inputs=confine_inputs)


def input_digests(compiled: CompiledGraph, input_root: str | Path, *,
                  confine_inputs: bool = True) -> dict[str, dict[str, str]]:
    """``{node: {param: content digest}}`` of the input files each node reads."""
    out: dict[str, dict[str, str]] = {}
    for node_id in compiled.order:
        spec = compiled.specs[node_id]
        names = input_file_params(spec.params_model)
        params = compiled.graph.nodes[node_id].params
        files = {p: input_digest(input_root, params[p], confine=confine_inputs)
                 for p in names if isinstance(params.get(p), str)}
        if files:
            out[node_id] = files
    return out


def key_input_files(compiled: CompiledGraph, input_root: str | Path, *,
                    confine_inputs: bool = True) -> CompiledGraph:
    """``compiled`` with keys that also cover the content of the input files its nodes read
    under ``input_root`` (unchanged when no node reads one); seeds do not change."""
    digests = input_digests(compiled, input_root, confine_inputs=confine_inputs)
    if not digests:
        return compiled
    versions = {spec.id: spec.version for spec in compiled.specs.values()}
    keys = content_keys(compiled.graph, versions, digests)
    return replace(compiled, keys=keys, seed_keys=compiled.seed_keys or compiled.keys)


def stale_keys(compiled: CompiledGraph, input_root: str | Path, *,
               confine_inputs: bool = True) -> set[str]:
    """The keys of ``compiled`` (keyed by :func:`key_input_files`) whose input files no longer
    hold what they held when it was keyed, and of every node after them. An engine drops them
    from its cache after a run: a file replaced while its job ran cannot leave its new content
    cached under the old content's key."""
    if compiled.seed_keys is None:
        return set()
    plain = replace(compiled, keys=compiled.seed_keys, seed_keys=None)
    now = key_input_files(plain, input_root, confine_inputs=confine_inputs).keys
    return {key for node, key in compiled.keys.items() if now.get(node) != key}
