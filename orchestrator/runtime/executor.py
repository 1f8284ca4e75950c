"""The reference in-process executor.

It runs a compiled graph node by node in topological order on this machine. Its results
define the semantics every other executor (the Ray scheduler) must reproduce exactly:

- inputs are gathered from upstream outputs; a ``multiple`` input gets a list in the
  order of its references; an unwired optional input is not passed (its default applies);
- ``run`` gets validated params (``self.params``) and a :class:`Context` whose seed is
  derived from the node's content key;
- a block must return a dict with every declared output and nothing else;
- a block that raises fails the run with a ``block_failed`` :class:`BlockError` naming the
  node and carrying the block's own message;
- results of cacheable nodes are stored under their content key and reused;
- a tiled node (a resolved ``tile`` annotation) runs tile by tile through
  :func:`orchestrator.runtime.tiling.run_tiled`, its tiles one after the other in this process.

>>> from graphs import GraphBuilder
>>> from orchestrator.plugins import load_plugins
>>> catalog = load_plugins(entry_points=False).catalog
>>> b = GraphBuilder()
>>> img = b.add("image.solid", width=4, height=2, color=[1.0, 0.5, 0.0])
>>> gray = b.add("image.grayscale", image=img.image)
>>> result = LocalExecutor(catalog).run(b.build())
>>> result.outputs["grayscale"]["image"].shape
(1, 2, 4, 3)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphs import Graph
from orchestrator.blocks import Block
from orchestrator.catalog import Catalog
from orchestrator.context import Context, ModelProvider
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.batching import Batching
from orchestrator.runtime.cache import ResultCache
from orchestrator.runtime.compile import CompiledGraph, compile_graph
from orchestrator.runtime.limits import check_before_run, check_outputs
from orchestrator.runtime.tiling import Tiling, run_tiled
from orchestrator.state.outputs import DirectorySink

EventFn = Callable[[dict[str, Any]], None]


@dataclass
class RunResult:
    """What a run produced: every node's outputs, the files saved, timings and cache hits."""

    outputs: dict[str, dict[str, Any]]
    files: list[dict[str, str]]
    timings: dict[str, float] = field(default_factory=dict)
    cached: set[str] = field(default_factory=set)
    images: dict[str, Any] = field(default_factory=dict)


def gather_inputs(
    compiled: CompiledGraph, node_id: str, results: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The keyword arguments of ``node_id``'s ``run`` from upstream ``results``."""
    node = compiled.graph.nodes[node_id]
    kwargs: dict[str, Any] = {}
    for name, ref in node.inputs.items():
        refs = ref if isinstance(ref, list) else [ref]
        values = []
        for r in refs:
            src, port = r.split(".")
            values.append(results[src][port])
        spec_port = compiled.specs[node_id].input(name)
        kwargs[name] = values if (spec_port is not None and spec_port.multiple) else values[0]
    return kwargs


def execute_block(
    cls: type[Block], params: Any, ctx: Context, inputs: dict[str, Any],
    runner: Callable[[Block, Context, dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one block and check what it returns; errors name the node.

    ``runner(block, ctx, inputs)`` runs it instead of ``block.run`` (a tiled node:
    :func:`orchestrator.runtime.tiling.run_tiled`).
    """
    try:
        block = cls(params)
        if ctx.limits is not None:  # the run-time size gate of both engines
            check_before_run(ctx.node, cls.spec(), block.params, inputs, ctx.limits,
                             ctx.tile.as_dict() if ctx.tile else None)
        out = runner(block, ctx, inputs) if runner is not None else block.run(ctx, **inputs)
    except (BlockError, JobError) as exc:
        if exc.node is None:
            exc.node = ctx.node
        raise
    except Exception as exc:
        raise BlockError(
            f"node {ctx.node!r} ({ctx.block}) failed: {type(exc).__name__}: {exc}",
            type="block_failed", node=ctx.node, field=None, block=ctx.block,
            exception=type(exc).__name__,
        ) from exc
    declared = cls.outputs
    if not isinstance(out, dict):
        raise BlockError(
            f"node {ctx.node!r} ({ctx.block}) returned {type(out).__name__}, not a dict of outputs",
            type="bad_output", node=ctx.node,
        )
    missing = [k for k in declared if k not in out]
    extra = [k for k in out if k not in declared]
    if missing or extra:
        raise BlockError(
            f"node {ctx.node!r} ({ctx.block}) returned outputs {sorted(out)}, "
            f"declared {sorted(declared)}",
            type="bad_output", node=ctx.node, field="outputs", missing=missing, extra=extra,
        )
    if ctx.limits is not None:
        check_outputs(ctx.node, cls.spec(), out, ctx.limits)
    return out


class LocalExecutor:
    """Runs graphs in this process, one node at a time."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        models: ModelProvider | None = None,
        outputs_dir: str | Path | None = None,
        input_root: str | Path | None = None,
        confine_inputs: bool = False,
        cache: ResultCache | None = None,
        device: str = "cpu",
        limits: Any = None,
        batching: Batching | None = None,
    ) -> None:
        self.catalog = catalog
        self.batching = batching  # cross-job batching shared with other runs (orchestrator.runtime.batching)
        self.limits = limits  # orchestrator.runtime.limits.SizeLimits (or config Limits); None: unchecked
        self.models = models
        self.outputs_dir = Path(outputs_dir) if outputs_dir is not None else None
        self.input_root = Path(input_root) if input_root is not None else None
        self.confine_inputs = confine_inputs
        self.cache = cache
        self.device = device

    def run(
        self,
        graph: Graph | CompiledGraph,
        *,
        job: str | None = None,
        on_event: EventFn | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Validate and run ``graph``; raise the first node's error, or return its results."""
        compiled = graph if isinstance(graph, CompiledGraph) else compile_graph(graph, self.catalog)
        sink = DirectorySink(self.outputs_dir, compiled.graph.to_json(indent=None))
        emit = on_event or (lambda _e: None)
        results: dict[str, dict[str, Any]] = {}
        timings: dict[str, float] = {}
        cached: set[str] = set()
        for node_id in compiled.order:
            if is_cancelled is not None and is_cancelled():
                raise JobError(f"job cancelled before node {node_id!r}", type="cancelled",
                               node=node_id)
            spec = compiled.specs[node_id]
            key = compiled.keys[node_id]
            hit = self.cache.get(key) if (self.cache is not None and spec.cacheable) else None
            if hit is not None:
                results[node_id] = hit
                cached.add(node_id)
                emit({"event": "node_finished", "node": node_id, "block": spec.id,
                      "cached": True, "seconds": 0.0})
                continue
            emit({"event": "node_started", "node": node_id, "block": spec.id})
            tile = compiled.graph.nodes[node_id].tile
            cls = self.catalog.block_class(spec.id)
            with self._node(cls, compiled.params[node_id], emit, f"{job}/{node_id}") as scope:
                ctx = Context(
                    node=node_id, block=spec.id, seed=compiled.seed(node_id), device=self.device,
                    job=job, models=scope.models if scope else self.models, outputs=sink,
                    input_root=self.input_root, confine_inputs=self.confine_inputs,
                    on_event=scope.on_event if scope else emit, is_cancelled=is_cancelled,
                    limits=self.limits, tile=Tiling.of(tile), block_class=self._block_class,
                )
                t0 = time.perf_counter()
                out = execute_block(cls, compiled.params[node_id], ctx,
                                    gather_inputs(compiled, node_id, results),
                                    runner=run_tiled if tile else None)
            timings[node_id] = time.perf_counter() - t0
            results[node_id] = out
            if self.cache is not None and spec.cacheable:
                self.cache.put(key, out)
            emit({"event": "node_finished", "node": node_id, "block": spec.id, "cached": False,
                  "seconds": timings[node_id]})
        return RunResult(outputs=results, files=sink.saved, timings=timings, cached=cached,
                         images=sink.images)

    def _node(self, cls: type[Block], params: Any, emit: EventFn, label: str) -> Any:
        """The node's turn and batching scope (None inside without batching)."""
        if self.batching is None:
            return nullcontext(None)
        return self.batching.node(self.models, emit, lane=self.batching.lane(cls, params), label=label)

    def _block_class(self, block_id: str, version: str | None = None, node: str | None = None) -> type[Block]:
        return self.catalog.block_class(block_id)
