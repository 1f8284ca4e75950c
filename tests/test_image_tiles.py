"""Tile blocks: split into overlapping tiles, merge back with feathered overlaps."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from graphs import GraphBuilder
from orchestrator import BlockError, Context
from orchestrator.runtime.executor import LocalExecutor
from plugins.image.tiles import TileMerge, TileSplit, axis_weights, tile_starts


def split(image: np.ndarray, **params: Any) -> dict[str, Any]:
    ctx = Context(node="split", block="image.tile_split", seed=0)
    return TileSplit(params).run(ctx, image=image)["tiles"]


def merge(tiles: dict[str, Any], events: list[dict[str, Any]] | None = None) -> np.ndarray:
    ctx = Context(node="merge", block="image.tile_merge", seed=0,
                  on_event=events.append if events is not None else None)
    return TileMerge().run(ctx, tiles=tiles)["image"]


def noise(h: int, w: int, b: int = 2, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((b, h, w, c), dtype=np.float32)


@pytest.mark.parametrize("hw", [(64, 64), (50, 70), (37, 23), (8, 8), (100, 33), (129, 257), (5, 200)])
@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (16, 4), (17, 5), (32, 8), (32, 31), (64, 16)])
def test_merging_an_unmodified_split_is_exact(hw, size, overlap):
    img = noise(*hw, c=4 if size == 17 else 3, seed=size + overlap)
    tiles = split(img, size=size, overlap=overlap)
    out = merge(tiles)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert np.array_equal(out, img)


def test_split_layout():
    img = noise(50, 70, b=1)
    tiles = split(img, size=32, overlap=8)
    assert tiles["grid"] == (2, 3) and tiles["tile_size"] == (32, 32)
    assert tiles["image_size"] == (50, 70) and tiles["overlap"] == 8
    assert tiles["positions"] == [(0, 0), (0, 24), (0, 38), (18, 0), (18, 24), (18, 38)]
    for tile, (y, x) in zip(tiles["tiles"], tiles["positions"], strict=True):
        assert tile.shape == (1, 32, 32, 3) and np.array_equal(tile, img[:, y:y + 32, x:x + 32])
    small = split(noise(10, 20, b=1), size=64, overlap=8)    # smaller than one tile
    assert small["grid"] == (1, 1) and small["tile_size"] == (10, 20)


def test_tile_starts_cover_the_axis_and_end_flush():
    for length in range(8, 120):
        for size, overlap in ((8, 0), (16, 5), (32, 16)):
            starts = tile_starts(length, size, overlap)
            assert starts[0] == 0 and starts[-1] == max(0, length - size)
            assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts))


def test_feather_weights_are_positive_ramps_that_sum_to_one_in_an_overlap():
    starts = [0, 24, 48]
    left, middle = axis_weights(starts, 0, 32), axis_weights(starts, 1, 32)
    assert np.all(left > 0) and np.all(middle > 0)
    assert np.all(left[:24] == 1.0) and np.all(np.diff(left[24:]) < 0)
    assert np.allclose(left[24:] + middle[:8], 1.0)


def test_a_seam_between_different_tiles_is_a_linear_ramp():
    tiles = split(np.zeros((1, 16, 40, 3), np.float32), size=24, overlap=8)
    assert tiles["positions"] == [(0, 0), (0, 16)]
    tiles["tiles"][1] = np.ones_like(tiles["tiles"][1])
    row = merge(tiles)[0, 5, :, 0]
    assert np.all(row[:16] == 0.0) and np.all(row[24:] == 1.0)
    assert np.allclose(row[16:24], np.arange(1, 9) / 9.0)


def test_tiles_scaled_by_a_factor_merge_at_that_scale():
    img = noise(37, 50, b=1)
    tiles = split(img, size=16, overlap=4)
    tiles["tiles"] = [t.repeat(2, axis=1).repeat(2, axis=2) for t in tiles["tiles"]]
    out = merge(tiles)
    assert np.array_equal(out, img.repeat(2, axis=1).repeat(2, axis=2))


def test_merge_reports_progress_per_tile():
    events: list[dict[str, Any]] = []
    tiles = split(noise(30, 30), size=16, overlap=4)
    merge(tiles, events)
    assert [e["step"] for e in events] == list(range(1, len(tiles["tiles"]) + 1))
    assert {e["event"] for e in events} == {"tile"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("positions"), "TILES dict"),
        (lambda t: t["tiles"].pop(), "tiles for"),
        (lambda t: t["tiles"].__setitem__(1, np.zeros((1, 8, 8, 3), np.float32)), "tile 1 has shape"),
    ],
)
def test_merge_refuses_broken_tiles(change, message):
    tiles = split(noise(30, 30), size=16, overlap=4)
    change(tiles)
    with pytest.raises(BlockError, match=message) as info:
        merge(tiles)
    assert (info.value.type, info.value.field, info.value.node) == ("input", "inputs.tiles", "merge")


def test_overlap_must_be_smaller_than_the_tile():
    with pytest.raises(ValidationError, match="smaller than the tile size"):
        TileSplit.Params(size=32, overlap=32)


def test_split_and_merge_through_the_executor(catalog, tmp_path):
    pixels = (noise(45, 70, b=1)[0] * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    b = GraphBuilder()
    img = b.add("image.load", id="src", path="in.png")
    tiles = b.add("image.tile_split", id="split", image=img.image, size=32, overlap=8)
    b.add("image.tile_merge", id="merge", tiles=tiles.tiles)
    outputs = LocalExecutor(catalog, input_root=tmp_path).run(b.build()).outputs
    assert outputs["split"]["tiles"]["grid"] == (2, 3)
    assert np.array_equal(outputs["merge"]["image"], outputs["src"]["image"])
