"""Palette blocks: extracting the main colours of an image, mapping an image onto a palette."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from graphs import GraphBuilder
from orchestrator import BlockError, Context
from orchestrator.runtime.executor import LocalExecutor
from plugins.image.palette import PaletteApply, PaletteExtract

RED, BLUE = [0.9, 0.1, 0.2], [0.1, 0.3, 0.8]


def extract(image: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
    ctx = Context(node="pal", block="image.palette_extract", seed=seed)
    return PaletteExtract(params).run(ctx, image=image)["palette"]


def apply(image: np.ndarray, palette: np.ndarray, **params: Any) -> np.ndarray:
    ctx = Context(node="map", block="image.palette_apply", seed=0)
    return PaletteApply(params).run(ctx, image=image, palette=palette)["image"]


def two_colours(b: int = 1) -> np.ndarray:
    img = np.empty((b, 8, 8, 3), dtype=np.float32)
    img[...] = RED
    img[:, :, :3] = BLUE                            # 3 of 8 columns blue, the rest red
    return img


def clusters(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image of four well-separated noisy colour clusters, and the cluster centres."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.3, 0.3, 0.9]])
    pix = centres[rng.integers(0, 4, n)] + rng.normal(0.0, 0.03, (n, 3))
    return np.clip(pix, 0, 1).astype(np.float32).reshape(1, 40, n // 40, 3), centres


@pytest.mark.parametrize("method", ["kmeans", "median_cut"])
def test_a_two_colour_image_gives_both_colours_most_frequent_first(method):
    pal = extract(two_colours(), colors=2, method=method)
    assert pal.dtype == np.float32 and pal.shape == (2, 3)
    assert pal.tolist() == [pytest.approx(RED), pytest.approx(BLUE)]


def test_fewer_distinct_colours_than_asked_gives_only_those():
    pal = extract(two_colours(b=2), colors=8)
    assert pal.shape == (2, 3) and pal.tolist() == [pytest.approx(RED), pytest.approx(BLUE)]


def test_kmeans_finds_noisy_clusters():
    img, centres = clusters()
    for seed in range(3):
        pal = extract(img, seed=seed, colors=4)
        assert pal.shape == (4, 3)
        dist = np.linalg.norm(pal[:, None] - centres[None], axis=-1)
        assert sorted(dist.argmin(axis=1).tolist()) == [0, 1, 2, 3]   # one colour per cluster
        assert dist.min(axis=1).max() < 0.01


def test_median_cut_splits_equal_boxes_at_their_median():
    colours = np.array([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.3, 0.3, 0.9],
                        [0.6, 0.6, 0.6], [0.9, 0.9, 0.1], [0.5, 0.1, 0.6], [0.0, 0.5, 0.5]])
    img = np.repeat(colours, 10, axis=0).astype(np.float32).reshape(1, 8, 10, 3)
    pal = extract(img, colors=4, method="median_cut")
    assert pal.shape == (4, 3)                      # 8 colours in 4 boxes of two each
    pairs = np.linalg.norm(colours[:, None] - pal[None], axis=-1).argmin(axis=1)
    assert np.bincount(pairs).tolist() == [2, 2, 2, 2]
    for j in range(4):
        assert pal[j] == pytest.approx(colours[pairs == j].mean(axis=0), abs=1e-6)


def test_extraction_is_deterministic_for_a_seed():
    img = np.random.default_rng(3).random((2, 64, 64, 3), dtype=np.float32)
    first = extract(img, seed=5, colors=6, max_samples=1000)
    assert np.array_equal(first, extract(img, seed=5, colors=6, max_samples=1000))
    assert first.shape == (6, 3) and 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal(extract(img, method="median_cut", colors=6),
                          extract(img, seed=9, method="median_cut", colors=6))


def test_gray_and_rgba_images_use_their_colour():
    gray = np.zeros((1, 4, 4, 1), dtype=np.float32)
    gray[:, :2] = 1.0
    assert sorted(extract(gray, colors=2).tolist()) == [[0.0] * 3, [1.0] * 3]
    rgba = np.concatenate([two_colours(), np.full((1, 8, 8, 1), 0.5, np.float32)], axis=-1)
    assert extract(rgba, colors=2).shape == (2, 3)


def test_apply_maps_each_pixel_to_the_nearest_colour():
    img = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    pal = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.2, 0.6, 0.9]], np.float32)
    out = apply(img, pal)
    assert out.shape == img.shape and out.dtype == np.float32
    brute = np.linalg.norm(img[..., None, :] - pal, axis=-1).argmin(axis=-1)
    assert np.array_equal(out, pal[brute])


@pytest.mark.parametrize("dither", [False, True])
def test_apply_output_holds_only_palette_colours(dither):
    img = np.random.default_rng(1).random((2, 20, 30, 3), dtype=np.float32)
    pal = extract(img, colors=5)
    out = apply(img, pal, dither=dither)
    used = np.unique(out.reshape(-1, 3), axis=0)
    assert all(any(np.array_equal(u, p) for p in pal) for u in used)


def test_dithering_keeps_the_mean_of_a_gradient():
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)
    img = np.broadcast_to(ramp[None, None, :, None], (1, 32, 64, 3)).copy()
    pal = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    plain, dithered = apply(img, pal), apply(img, pal, dither=True)
    column_means = dithered[0, :, :, 0].reshape(32, 8, 8).mean(axis=(0, 2))   # 8 bands
    band_means = ramp.reshape(8, 8).mean(axis=1)
    assert np.abs(column_means - band_means).max() < 0.06
    assert np.abs(plain[0, :, :, 0].reshape(32, 8, 8).mean(axis=(0, 2)) - band_means).max() > 0.2


def test_apply_keeps_alpha():
    img = np.zeros((1, 2, 2, 4), dtype=np.float32)
    img[..., 3] = 0.25
    out = apply(img, np.array([[0.5, 0.5, 0.5]], np.float32))
    assert out.shape == (1, 2, 2, 4) and np.all(out[..., 3] == 0.25) and np.all(out[..., :3] == 0.5)


def test_apply_refuses_bad_palettes():
    img = np.zeros((1, 2, 2, 3), dtype=np.float32)
    with pytest.raises(BlockError) as info:
        apply(img, np.zeros((3, 4), np.float32))
    assert (info.value.type, info.value.field) == ("input", "inputs.palette")
    with pytest.raises(BlockError, match="at most 256") as info:
        apply(img, np.zeros((300, 3), np.float32), dither=True)
    assert info.value.field == "inputs.palette"


def test_palette_graph(catalog, tmp_path):
    img = (two_colours()[0] * 255 + 0.5).astype(np.uint8)
    img[0, 0] = [0, 255, 0]                         # one stray green pixel
    Image.fromarray(img).save(tmp_path / "in.png")
    b = GraphBuilder()
    src = b.add("image.load", id="src", path="in.png")
    pal = b.add("image.palette_extract", id="pal", image=src.image, colors=2)
    b.add("image.palette_apply", id="flat", image=src.image, palette=pal.palette)
    outputs = LocalExecutor(catalog, input_root=tmp_path).run(b.build()).outputs
    palette, flat = outputs["pal"]["palette"], outputs["flat"]["image"]
    assert palette.shape == (2, 3)
    assert np.unique(flat.reshape(-1, 3), axis=0).shape[0] == 2
    assert flat[0, 0, 0].tolist() in palette.tolist()
