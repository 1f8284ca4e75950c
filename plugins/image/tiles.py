"""Splitting an image into overlapping tiles and merging tiles back with feathered seams.

A ``TILES`` value is a plain dict:

=============  ==================================================================
``tiles``      list of float32 arrays ``[B, th, tw, C]``, row by row, left to right
``positions``  list of ``(y, x)``: each tile's top-left corner in the image
``tile_size``  ``(th, tw)``: every tile's height and width (the size param, or less
               for an image smaller than a tile)
``image_size`` ``(H, W)`` of the image that was split
``overlap``    the overlap asked for; the last row and column are moved back to end at
               the image's edge, so they may overlap their neighbour more
``grid``       ``(rows, cols)``
=============  ==================================================================

Other nodes may process the tiles in between, as long as they keep their number and
shape, or scale them all by the same factor (an upscaler): ``image.tile_merge`` then
scales the layout to match. Merging an unmodified split gives back the image exactly.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="tiles", block="image.tile_split", seed=0)
>>> img = np.random.default_rng(0).random((1, 50, 70, 3), dtype=np.float32)
>>> tiles = TileSplit({"size": 32, "overlap": 8}).run(ctx, image=img)["tiles"]
>>> tiles["grid"], tiles["positions"][:3]
((2, 3), [(0, 0), (0, 24), (0, 38)])
>>> np.array_equal(TileMerge().run(ctx, tiles=tiles)["image"], img)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from orchestrator import Block, Context, Params, block
from plugins.image.common import check_image, input_error


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start of each tile along an axis: every ``size - overlap``, the last one flush with the end.

    >>> tile_starts(100, 40, 10), tile_starts(30, 40, 10)
    ([0, 30, 60], [0])
    """
    if length <= size:
        return [0]
    stride = size - overlap
    n = math.ceil((length - size) / stride) + 1
    return [i * stride for i in range(n - 1)] + [length - size]


def axis_weights(starts: list[int], index: int, size: int) -> np.ndarray:
    """Feather weights (float64, all > 0) of tile ``index`` along one axis.

    Linear ramps over the overlap with the previous and the next tile, 1 elsewhere.
    """
    w = np.ones(size, dtype=np.float64)
    ramp = np.arange(1, size + 1, dtype=np.float64)
    if index > 0:
        over = starts[index - 1] + size - starts[index]
        w = np.minimum(w, ramp / (over + 1))
    if index < len(starts) - 1:
        over = starts[index] + size - starts[index + 1]
        w = np.minimum(w, ramp[::-1] / (over + 1))
    return w


@block("image.tile_split", version="1.0.0")
class TileSplit(Block):
    """Split an image into overlapping tiles of ``size`` x ``size`` pixels (see TILES)."""

    inputs = {"image": "IMAGE"}
    outputs = {"tiles": "TILES"}

    class Params(Params):
        size: int = Field(512, ge=8, le=8192, description="tile edge in pixels")
        overlap: int = Field(64, ge=0, le=4096, description="overlap between neighbouring tiles in pixels")

        @field_validator("overlap")
        @classmethod
        def _smaller_than_size(cls, overlap: int, info: ValidationInfo) -> int:
            size = info.data.get("size")
            if size is not None and overlap >= size:
                raise ValueError(f"overlap {overlap} must be smaller than the tile size {size}")
            return overlap

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        image = check_image(ctx, image)
        h, w = image.shape[1:3]
        th, tw = min(self.params.size, h), min(self.params.size, w)
        ys = tile_starts(h, th, self.params.overlap)
        xs = tile_starts(w, tw, self.params.overlap)
        positions = [(y, x) for y in ys for x in xs]
        tiles: dict[str, Any] = {
            "tiles": [image[:, y:y + th, x:x + tw].copy() for y, x in positions],
            "positions": positions,
            "tile_size": (th, tw),
            "image_size": (h, w),
            "overlap": self.params.overlap,
            "grid": (len(ys), len(xs)),
        }
        return {"tiles": tiles}


def _scaled(value: int, new: int, old: int) -> int:
    """``round(value * new / old)`` in exact integer arithmetic (halves round up)."""
    return (2 * value * new + old) // (2 * old)


@block("image.tile_merge", version="1.0.0")
class TileMerge(Block):
    """Merge tiles back into one image, blending the overlaps with linear ramps."""

    inputs = {"tiles": "TILES"}
    outputs = {"image": "IMAGE"}

    def run(self, ctx: Context, tiles: dict[str, Any]) -> dict:
        arrays, (th, tw), (h, w) = self._check(ctx, tiles)
        b, th2, tw2, c = arrays[0].shape
        positions = [(_scaled(y, th2, th), _scaled(x, tw2, tw)) for y, x in tiles["positions"]]
        ys, xs = sorted({y for y, _ in positions}), sorted({x for _, x in positions})
        acc = np.zeros((b, _scaled(h, th2, th), _scaled(w, tw2, tw), c), dtype=np.float64)
        total = np.zeros(acc.shape[1:3], dtype=np.float64)
        for i, (tile, (y, x)) in enumerate(zip(arrays, positions, strict=True)):
            ctx.progress(i + 1, len(arrays), kind="tile")
            weight = np.outer(axis_weights(ys, ys.index(y), th2), axis_weights(xs, xs.index(x), tw2))
            acc[:, y:y + th2, x:x + tw2] += tile * weight[..., None]
            total[y:y + th2, x:x + tw2] += weight
        return {"image": (acc / total[..., None]).astype(np.float32)}

    @staticmethod
    def _check(ctx: Context, tiles: Any) -> tuple[list[np.ndarray], tuple[int, int], tuple[int, int]]:
        keys = ("tiles", "positions", "tile_size", "image_size")
        if not isinstance(tiles, dict) or any(k not in tiles for k in keys):
            raise input_error(ctx, "inputs.tiles", f"must be a TILES dict with keys {', '.join(keys)}")
        arrays = [np.asarray(t, dtype=np.float32) for t in tiles["tiles"]]
        if not arrays or len(arrays) != len(tiles["positions"]):
            raise input_error(ctx, "inputs.tiles", f"has {len(arrays)} tiles for "
                              f"{len(tiles['positions'])} positions")
        for i, t in enumerate(arrays):
            if t.ndim != 4 or t.shape != arrays[0].shape:
                raise input_error(ctx, "inputs.tiles", f"tile {i} has shape {t.shape}, tile 0 "
                                  f"{arrays[0].shape}: all tiles must be [B, th, tw, C] of one shape")
        th, tw = (int(v) for v in tiles["tile_size"])
        h, w = (int(v) for v in tiles["image_size"])
        return arrays, (th, tw), (h, w)


BLOCKS = [TileSplit, TileMerge]
