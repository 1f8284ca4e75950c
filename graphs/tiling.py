"""Tiling: turn a graph's ``tile`` annotations into the tiled nodes the executors run.

A node with a ``tile`` annotation (:class:`~graphs.model.TileSpec`) is run tile by tile:
its work is cut into tiles (or *views*) that the Ray scheduler spreads over every worker
and merges back, and that the in-process executor runs one after the other, with the same
result. How a block tiles is its own declaration (``BlockSpec.tiling``):

``split``           the block runs on each tile of its one IMAGE input separately; the
                    IMAGE outputs are merged with feathered (linearly ramped) seams.
``multidiffusion``  a denoise: at every sampler step each view (a window of the latent)
                    is denoised and the overlapping views are averaged into the next
                    latent (MultiDiffusion, arXiv:2302.08113).
``vae``             a VAE encode or decode: tiles with overlap, blended at the seams as
                    diffusers' ``AutoencoderKL`` does with tiling enabled.

:func:`tile` is the transform ``compile_graph`` applies after validation: it returns a
copy of the graph in which every annotation is *resolved* (the strategy filled in from the
block, ``stride`` explicit and ``overlap = size - stride``), so that equivalent
annotations give the same content key, and it refuses what a strategy cannot run, every
problem at once. The executors recognise a tiled node by its resolved annotation.

Sizes are in image pixels. Latent strategies work on the latent, ``LATENT_SCALE`` (8)
pixels per latent cell for the Stable Diffusion VAEs, so their sizes and strides must be
multiples of 8.

>>> from graphs import BlockSpec, PortSpec, Graph
>>> catalog = {"sd.denoise": BlockSpec("sd.denoise", "1.0.0", tiling="multidiffusion",
...                                     outputs=(PortSpec("latent", "LATENT"),))}
>>> g = Graph.from_dict({"nodes": {"d": {"block": "sd.denoise", "tile": {"size": 64, "overlap": 16}}}})
>>> tile(g, catalog).nodes["d"].tile.model_dump()
{'size': 64, 'overlap': 16, 'stride': 48, 'strategy': 'multidiffusion', 'circular': False}
>>> g.nodes["d"].tile.stride is None  # the input is untouched
True
>>> tile_starts(100, 40, 30), view_count(256, 64, 64, 48)
([0, 30, 60], 5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from graphs.catalog import BlockSpec
from graphs.errors import GraphError, GraphValidationError
from graphs.model import Graph, TileSpec

LATENT_SCALE = 8  # image pixels per latent cell (the SD VAEs)
LATENT_STRATEGIES = ("multidiffusion", "vae")
SPLIT_OUTPUTS = ("IMAGE", "MASK")

__all__ = ["LATENT_SCALE", "resolve", "tile", "tile_problems", "tile_starts", "tiled_nodes",
           "view_count"]


def resolve(spec: TileSpec, strategy: str) -> TileSpec:
    """``spec`` with ``strategy`` set, ``stride`` explicit and ``overlap = size - stride``."""
    stride = spec.effective_stride()
    return TileSpec(size=spec.size, overlap=spec.size - stride, stride=stride, strategy=strategy,
                    circular=spec.circular)


def tile_problems(node_id: str, spec: TileSpec, block: BlockSpec) -> list[GraphError]:
    """What ``block``'s strategy cannot run in the annotation ``spec`` (beyond validation's checks)."""
    strategy = spec.strategy or block.tiling
    errors: list[GraphError] = []

    def bad(message: str, field: str, value: object, **details: object) -> None:
        errors.append(GraphError(f"node {node_id!r}: {message}", type="invalid_tile", node=node_id,
                                 field=field, value=value, **details))

    if block.tiling is None or strategy != block.tiling:
        return errors  # reported by validation
    stride = spec.effective_stride()
    if strategy in LATENT_STRATEGIES:
        if spec.size % LATENT_SCALE:
            bad(f"{strategy} tiles work on the latent: size {spec.size} must be a multiple of "
                f"{LATENT_SCALE} pixels", "tile.size", spec.size, multiple_of=LATENT_SCALE)
        if stride % LATENT_SCALE:
            bad(f"{strategy} tiles work on the latent: the stride {stride} (size - overlap) must be "
                f"a multiple of {LATENT_SCALE} pixels", "tile.stride" if spec.stride else "tile.overlap",
                stride, multiple_of=LATENT_SCALE)
    if spec.circular and strategy != "multidiffusion":
        bad(f"circular tiles wrap a panorama around: only the multidiffusion strategy has them, "
            f"{block.id!r} tiles by {strategy!r}", "tile.circular", True)
    if strategy == "split":
        images = [p.name for p in block.inputs if p.type == "IMAGE" and not p.multiple]
        if len(images) != 1:
            bad(f"split tiling cuts one IMAGE input; {block.id!r} has {len(images)}", "tile", None,
                inputs=images)
        others = [p.name for p in block.outputs if p.type not in SPLIT_OUTPUTS]
        if others:
            bad(f"split tiling merges IMAGE and MASK outputs only; {block.id!r} also outputs "
                f"{', '.join(others)}", "tile", None, outputs=others)
    return errors


def tile(graph: Graph, catalog: Mapping[str, BlockSpec]) -> Graph:
    """A copy of ``graph`` with every ``tile`` annotation resolved (see :func:`resolve`).

    Raises :class:`~graphs.errors.GraphValidationError` with every annotation a strategy
    cannot run. Nodes of blocks the catalog lacks are left alone (validation reports them).
    The input is never mutated; without annotations it is returned as it is.
    """
    if not tiled_nodes(graph):
        return graph
    out = graph.model_copy(deep=True)
    errors: list[GraphError] = []
    for node_id, node in out.nodes.items():
        block = catalog.get(node.block)
        if node.tile is None or block is None or block.tiling is None:
            continue
        problems = tile_problems(node_id, node.tile, block)
        if problems:
            errors.extend(problems)
            continue
        node.tile = resolve(node.tile, node.tile.strategy or block.tiling)
    if errors:
        raise GraphValidationError(errors)
    return out


def tiled_nodes(graph: Graph) -> list[str]:
    """The nodes that carry a tile annotation, in the graph's order."""
    return [n for n, node in graph.nodes.items() if node.tile is not None]


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Where tiles of ``size`` start along an axis of ``length``: every ``stride``, the last
    one moved back to end flush with the edge; one tile when the axis is no longer than one.

    >>> tile_starts(100, 40, 30), tile_starts(30, 40, 30), tile_starts(64, 16, 16)
    ([0, 30, 60], [0], [0, 16, 32, 48])
    """
    if length <= size:
        return [0]
    n = math.ceil((length - size) / stride) + 1
    return [i * stride for i in range(n - 1)] + [length - size]


def view_count(width: int, height: int, size: int, stride: int, circular: bool = False) -> int:
    """How many MultiDiffusion views cover a ``width`` x ``height`` image (pixels), as the
    panorama pipeline places them, plus a last row or column flush with the edge where the
    stride does not reach it (the pipeline leaves that strip out).

    >>> view_count(2048, 512, 512, 64), view_count(256, 64, 64, 48), view_count(256, 64, 64, 48, True)
    (25, 5, 5)
    """
    def along(length: int, wrap: bool) -> int:
        if length <= size:
            return 1
        if wrap:
            return length // stride
        return (length - size) // stride + 1 + (1 if (length - size) % stride else 0)

    return along(height, False) * along(width, circular)
