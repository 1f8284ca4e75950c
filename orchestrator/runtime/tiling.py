"""Running tiled nodes: one code path for the in-process executor and the Ray workers.

A *tiled node* is one whose compiled graph carries a resolved ``tile`` annotation (see
:mod:`graphs.tiling`). Both executors run it through :func:`run_tiled` instead of its
block's ``run``:

- ``split`` is generic and lives here (:func:`run_split`): the block's one IMAGE input is
  cut into overlapping tiles, the block's own ``run`` runs on each tile (with a seed of its
  own, derived from the node's seed and the tile's index; a ``seed`` param that is set is
  varied per tile the same way), and the IMAGE and MASK outputs
  are merged with linear ramps over the overlaps (exact where the tiles were left as they
  were; tiles scaled by a common factor, as an upscaler does, are placed scaled).
- any other strategy is the block's own: it defines ``run_tiled(ctx, tiling, **inputs)``
  (``tiling`` is a :class:`Tiling`) and fans its work out through ``ctx.tiles``.

**Fan-out.** ``ctx.tiles`` is a *tile runner*: ``map(fn, items, shared=...)`` calls the
*tile function* ``fn(tctx, item, shared)`` for every item and returns the results in
order. ``fn`` is a module-level function (a worker imports it by name); ``tctx`` is a
:class:`~orchestrator.context.Context` on whichever worker runs it (its models, its
device, the job's cancellation); ``shared`` is sent once per call of ``map``, not per item.
:class:`LocalTileRunner` runs the items here, one after the other; the Ray runner
(:mod:`orchestrator.runtime.tiling_ray`) gives each worker of the pool one contiguous chunk and
gathers the results. An item's result must depend on the item and ``shared`` only, never
on where it runs or how items are grouped: so a tiled node gives the same result on one
worker as on ten.

Progress: ``tile`` events (``step`` of ``total`` tiles; ``sampler_step`` of
``sampler_total`` when the block says which sampler step they belong to), at most one per
``PROGRESS_EVERY_S`` plus the last, which says how many tiles each worker ran
(``workers``). Cancelling the job stops every tile: the runner checks between items and
the Ray runner tells every worker.

>>> import numpy as np
>>> from orchestrator.context import Context
>>> ctx = Context(node="n", block="b", seed=1)
>>> ctx.tiles.map(_double, [1, 2, 3], shared=10)
[12, 14, 16]
>>> img = np.random.default_rng(0).random((1, 50, 70, 3), dtype=np.float32)
>>> tiles, positions = split_image(img, size=32, stride=24)
>>> len(tiles), positions[:3]
(6, [(0, 0), (0, 24), (0, 38)])
>>> np.array_equal(merge_tiles(tiles, positions, (32, 32), (50, 70)), img)
True
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from graphs.tiling import SPLIT_OUTPUTS, tile_starts
from orchestrator.errors import BlockError

if TYPE_CHECKING:
    from orchestrator.blocks import Block
    from orchestrator.context import Context

PROGRESS_EVERY_S = 0.1
TileFn = Callable[[Any, Any, Any], Any]
# how tiles find a block's class: (block id, version, node) -> the class (the worker's catalog)
BlockClassFn = Callable[[str, str, str], Any]


@dataclass(frozen=True)
class Tiling:
    """A resolved tile annotation as a block's ``run_tiled`` gets it (sizes in image pixels)."""

    strategy: str
    size: int
    overlap: int
    stride: int
    circular: bool = False

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Tiling:
        stride = spec.get("stride") or spec["size"] - spec.get("overlap", 0)
        return cls(strategy=str(spec.get("strategy") or "split"), size=int(spec["size"]),
                   overlap=int(spec["size"]) - int(stride), stride=int(stride),
                   circular=bool(spec.get("circular", False)))

    @classmethod
    def of(cls, tile: Tiling | Mapping[str, Any] | Any | None) -> Tiling | None:
        """The tiling of a node's resolved ``tile`` annotation (a ``graphs.model.TileSpec``, its
        dict, or a Tiling), or None for a node that is not tiled."""
        if tile is None or isinstance(tile, Tiling):
            return tile
        spec = tile.model_dump() if hasattr(tile, "model_dump") else dict(tile)
        return cls.from_dict(spec) if spec else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TileRunner(Protocol):
    """Runs tile functions (see the module doc)."""

    workers: int  # over how many workers the items of one ``map`` are spread

    def map(self, fn: TileFn, items: Sequence[Any], *, shared: Any = None,
            detail: dict[str, Any] | None = None) -> list[Any]:
        """``[fn(tctx, item, shared) for item in items]``, wherever they run; ``detail`` goes
        into the ``tile`` progress events (e.g. ``{"sampler_step": 3, "sampler_total": 20}``)."""
        ...


# -- tile functions by name -------------------------------------------------------------------


def function_name(fn: TileFn) -> str:
    """``"module:qualname"`` of a module-level function (what a worker imports)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or resolve_function(name) is not fn:
        raise ValueError(f"tile function {name} must be a module-level function")
    return name


def resolve_function(name: str) -> TileFn:
    module, _, attr = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def tile_context(ctx: Context) -> Context:
    """The context tile functions get from ``ctx``: same node, models, device, cancellation
    and block catalog, not tiled itself (its tiles run here), no progress events and nowhere
    to save files."""
    return replace(ctx, on_event=None, outputs=None, tile=None, tile_runner=None)


class Progress:
    """Throttled ``tile`` events for one ``map``; checks cancellation on every report."""

    def __init__(self, ctx: Context, total: int, detail: dict[str, Any] | None) -> None:
        self.ctx = ctx
        self.total = total
        self.detail = detail or {}
        self.last = 0.0

    def report(self, done: int, **final: Any) -> None:
        """``done`` tiles of ``total`` are done; ``final`` goes into the last event only."""
        now = time.monotonic()
        last = done >= self.total
        if self.ctx.on_event is not None and (last or now - self.last >= PROGRESS_EVERY_S):
            self.last = now
            self.ctx.on_event({"event": "tile", "node": self.ctx.node, "block": self.ctx.block,
                               "step": done, "total": self.total, **self.detail, **(final if last else {})})
        self.ctx.check_cancelled()


class LocalTileRunner:
    """Runs tile functions in this process, one item after the other."""

    workers = 1

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tctx = tile_context(ctx)

    def map(self, fn: TileFn, items: Sequence[Any], *, shared: Any = None,
            detail: dict[str, Any] | None = None) -> list[Any]:
        progress = Progress(self.ctx, len(items), detail)
        out = []
        for i, item in enumerate(items):
            self.ctx.check_cancelled()
            out.append(fn(self.tctx, item, shared))
            progress.report(i + 1, workers={"local": len(items)})
        return out


def _double(tctx: Context, item: int, shared: int) -> int:
    """A tile function for the doctest."""
    return 2 * item + shared


# -- running a tiled node ------------------------------------------------------------------------


def tiling_of(ctx: Context) -> Tiling:
    if ctx.tile is None:
        raise BlockError(f"node {ctx.node!r} is not tiled", type="input", node=ctx.node, field="tile")
    return ctx.tile


def run_tiled(block: Block, ctx: Context, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run ``block`` as the tiled node ``ctx`` describes (``ctx.tile``)."""
    tiling = tiling_of(ctx)
    own = getattr(block, "run_tiled", None)
    if own is not None:
        return own(ctx, tiling, **inputs)
    if tiling.strategy == "split":
        return run_split(block, ctx, tiling, inputs)
    raise BlockError(f"node {ctx.node!r}: block {block.id!r} declares tiling {tiling.strategy!r} "
                     f"but defines no run_tiled(ctx, tiling, **inputs)", type="declaration",
                     node=ctx.node, field="tile", block=block.id)


def tile_seed(seed: int, index: int) -> int:
    """The seed of tile ``index`` of a node whose seed is ``seed`` (63 bits, like node seeds)."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
    return int(digest[:15], 16)


def split_input(block: Block) -> str:
    names = [n for n, p in type(block).inputs.items() if p.type == "IMAGE" and not p.multiple]
    if len(names) != 1:
        raise BlockError(f"block {block.id!r} cannot split: it has {len(names)} IMAGE inputs",
                         type="declaration", block=block.id)
    return names[0]


def split_image(image: np.ndarray, size: int, stride: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Tiles of at most ``size`` x ``size`` (row by row) of an image ``[B, H, W, ...]`` and
    their top-left corners; the last row and column end flush with the edges."""
    h, w = image.shape[1:3]
    th, tw = min(size, h), min(size, w)
    positions = [(y, x) for y in tile_starts(h, th, stride) for x in tile_starts(w, tw, stride)]
    return [np.ascontiguousarray(image[:, y:y + th, x:x + tw]) for y, x in positions], positions


def axis_weights(starts: list[int], index: int, size: int) -> np.ndarray:
    """Feather weights (all > 0) of tile ``index`` along one axis: linear ramps over the
    overlaps with the previous and the next tile, 1 elsewhere."""
    w = np.ones(size, dtype=np.float64)
    ramp = np.arange(1, size + 1, dtype=np.float64)
    if index > 0:
        over = starts[index - 1] + size - starts[index]
        w = np.minimum(w, ramp / (over + 1))
    if index < len(starts) - 1:
        over = starts[index] + size - starts[index + 1]
        w = np.minimum(w, ramp[::-1] / (over + 1))
    return w


def _scaled(value: int, new: int, old: int) -> int:
    return (2 * value * new + old) // (2 * old)


def merge_tiles(tiles: Sequence[np.ndarray], positions: Sequence[tuple[int, int]],
                tile_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Blend tiles ``[B, th', tw', C]`` (or masks ``[B, th', tw']``) cut at ``positions`` from an
    image of ``image_size`` in tiles of ``tile_size`` back into one image, scaled by
    ``th'/th`` when the tiles were (an upscaler)."""
    arrays = [np.asarray(t) for t in tiles]
    mask = arrays[0].ndim == 3
    if mask:
        arrays = [a[..., None] for a in arrays]
    (th, tw), (h, w) = tile_size, image_size
    b, th2, tw2, c = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != arrays[0].shape:
            raise ValueError(f"tile {i} came back as {a.shape[1:3]}, tile 0 as {arrays[0].shape[1:3]}: "
                             f"a split block must give every tile the same size")
    pos = [(_scaled(y, th2, th), _scaled(x, tw2, tw)) for y, x in positions]
    ys, xs = sorted({y for y, _ in pos}), sorted({x for _, x in pos})
    acc = np.zeros((b, _scaled(h, th2, th), _scaled(w, tw2, tw), c), dtype=np.float64)
    total = np.zeros(acc.shape[1:3], dtype=np.float64)
    for a, (y, x) in zip(arrays, pos, strict=True):
        weight = np.outer(axis_weights(ys, ys.index(y), th2), axis_weights(xs, xs.index(x), tw2))
        acc[:, y:y + th2, x:x + tw2] += a * weight[..., None]
        total[y:y + th2, x:x + tw2] += weight
    out = (acc / total[..., None]).astype(arrays[0].dtype)
    return out[..., 0] if mask else out


def run_split(block: Block, ctx: Context, tiling: Tiling, inputs: dict[str, Any]) -> dict[str, Any]:
    """The generic ``split`` strategy (see the module doc)."""
    name = split_input(block)
    image = np.asarray(inputs[name])
    if image.ndim != 4:
        raise BlockError(f"node {ctx.node!r}: input {name!r} must be [batch, height, width, channels] "
                         f"to be split, got shape {tuple(image.shape)}", type="input", node=ctx.node,
                         field=f"inputs.{name}")
    tiles, positions = split_image(image, tiling.size, tiling.stride)
    seed = getattr(block.params, "seed", None)  # a seed param, when set, is varied per tile too
    items = [{"seed": tile_seed(ctx.seed, i), "image": t,
              "params": None if seed is None else {"seed": tile_seed(seed, i)}} for i, t in enumerate(tiles)]
    shared = {"block": block.id, "version": block.version, "params": block.params, "input": name,
              "inputs": {k: v for k, v in inputs.items() if k != name}}
    results = ctx.tiles.map(run_block_tile, items, shared=shared)
    th, tw = tiles[0].shape[1:3]
    out: dict[str, Any] = {}
    for port, spec in type(block).outputs.items():
        values = [r[port] for r in results]
        if spec.type not in SPLIT_OUTPUTS:
            raise BlockError(f"node {ctx.node!r}: split tiling cannot merge output {port!r} ({spec.type})",
                             type="declaration", node=ctx.node, field="tile")
        try:
            out[port] = merge_tiles(values, positions, (th, tw), image.shape[1:3])
        except ValueError as exc:
            raise BlockError(f"node {ctx.node!r}: {exc}", type="input", node=ctx.node,
                             field=f"outputs.{port}") from None
    return out


def run_block_tile(tctx: Context, item: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Tile function of ``split``: the block's own ``run`` on one tile, with the tile's seed."""
    if tctx.block_class is None:  # pragma: no cover - contexts from the executors always carry one
        raise BlockError(f"node {tctx.node!r}: no block catalog to run tiles with", type="plugin")
    cls = tctx.block_class(shared["block"], shared["version"], tctx.node)
    ctx = replace(tctx, seed=item["seed"])
    params = shared["params"]
    if item.get("params"):
        params = params.model_copy(update=item["params"])
    out = cls(params).run(ctx, **{shared["input"]: item["image"]}, **shared["inputs"])
    return {port: out[port] for port in cls.outputs}
