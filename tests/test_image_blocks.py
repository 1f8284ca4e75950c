"""The built-in image blocks: load/save, transforms, masks, compositing, edges.

Each block is run directly (the class with params, a real ``Context``) and a few through
a real graph on the ``LocalExecutor``. Palette and tile blocks have their own modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from graphs import Graph, GraphBuilder
from orchestrator import Block, BlockError, Context
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.state.outputs import GRAPH_CHUNK, DirectorySink
from plugins.image.composite import Blend
from plugins.image.edges import Canny, Sketch
from plugins.image.io import LoadImage, LoadMask, SaveImage, SolidImage
from plugins.image.masks import ImageToMask, MaskGrow, MaskResize, MaskToImage
from plugins.image.transform import Crop, Grayscale, Pad, Resize


def run(cls: type[Block], params: dict[str, Any] | None = None, ctx: Context | None = None,
        **inputs: Any) -> dict[str, Any]:
    """Run one block directly, the way the executor does."""
    ctx = ctx or Context(node="n", block=cls.id, seed=0)
    return cls(params or {}).run(ctx, **inputs)


def gradient(h: int = 6, w: int = 8, b: int = 1) -> np.ndarray:
    """[b, h, w, 3]: red ramps left to right, green top to bottom, blue per batch item."""
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)
    img = np.zeros((b, h, w, 3), dtype=np.float32)
    img[..., 0] = x
    img[..., 1] = y[:, None]
    img[..., 2] = np.arange(b, dtype=np.float32)[:, None, None] / max(b, 1)
    return img


def write_png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray((image * 255.0 + 0.5).astype(np.uint8)).save(path)
    return path


def error_of(exc_info: pytest.ExceptionInfo[BlockError]) -> dict[str, Any]:
    return exc_info.value.to_dict()


# -- load, save, solid ---------------------------------------------------------------------

def test_solid_makes_a_batch_of_one_colour():
    img = run(SolidImage, {"width": 5, "height": 3, "color": [1.0, 0.5, 0.25], "batch": 2})["image"]
    assert img.shape == (2, 3, 5, 3) and img.dtype == np.float32
    assert np.array_equal(img[1, 2, 4], np.array([1.0, 0.5, 0.25], dtype=np.float32))


def test_save_then_load_round_trips_within_one_level(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((1, 7, 9, 3), dtype=np.float32)
    ctx = Context(node="save", block="image.save", seed=0, outputs=DirectorySink(tmp_path),
                  input_root=tmp_path)
    files = run(SaveImage, {"name": "pic"}, ctx, image=img)["files"]
    assert files == str(tmp_path / "pic.png")
    back = run(LoadImage, {"path": "pic.png"}, ctx)["image"]
    assert back.shape == img.shape and back.dtype == np.float32
    assert np.abs(back - img).max() <= 1.0 / 255.0


def test_save_writes_one_file_per_batch_item(tmp_path):
    ctx = Context(node="save", block="image.save", seed=0, outputs=DirectorySink(tmp_path))
    files = run(SaveImage, {"name": "b"}, ctx, image=gradient(b=2))["files"].splitlines()
    assert [Path(f).name for f in files] == ["b_0.png", "b_1.png"]
    assert all(Path(f).is_file() for f in files)


def test_saved_png_carries_the_graph(catalog, tmp_path):
    b = GraphBuilder()
    img = b.add("image.solid", width=6, height=4, color=[0.0, 1.0, 0.0])
    b.add("image.save", id="out", image=img.image, name="green")
    graph = b.build()
    result = LocalExecutor(catalog, outputs_dir=tmp_path).run(graph)
    path = Path(result.outputs["out"]["files"])
    assert path == tmp_path / "green.png"
    with Image.open(path) as png:
        assert Graph.from_json(png.text[GRAPH_CHUNK]) == graph
        assert np.asarray(png.convert("RGB"))[0, 0].tolist() == [0, 255, 0]


def test_load_keeps_alpha_on_request(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    ctx = Context(node="load", block="image.load", seed=0, input_root=tmp_path)
    assert run(LoadImage, {"path": "a.png"}, ctx)["image"].shape == (1, 2, 3, 3)
    img = run(LoadImage, {"path": "a.png", "alpha": True}, ctx)["image"]
    assert img.shape == (1, 2, 3, 4)
    assert img[0, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.0, 128 / 255])


def test_load_mask_reads_a_channel(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, :, :3] = 255        # top row white
    rgba[:, 1, 3] = 255         # right column opaque
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    ctx = Context(node="load", block="image.load_mask", seed=0, input_root=tmp_path)
    lum = run(LoadMask, {"path": "m.png"}, ctx)["mask"]
    assert lum.shape == (1, 2, 2) and lum[0].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    alpha = run(LoadMask, {"path": "m.png", "channel": "alpha", "invert": True}, ctx)["mask"]
    assert alpha[0].tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_load_of_a_missing_file_names_the_path(tmp_path):
    ctx = Context(node="load", block="image.load", seed=0, input_root=tmp_path)
    with pytest.raises(BlockError) as info:
        run(LoadImage, {"path": "nope.png"}, ctx)
    err = error_of(info)
    assert (err["type"], err["field"], err["node"]) == ("input", "params.path", "load")
    assert "nope.png" in err["message"]


@pytest.mark.parametrize("cls", [LoadImage, LoadMask])
def test_load_of_a_file_that_is_no_image_names_the_path(tmp_path, cls):
    (tmp_path / "notes.png").write_text("not an image")
    ctx = Context(node="load", block=cls.id, seed=0, input_root=tmp_path)
    with pytest.raises(BlockError) as info:
        run(cls, {"path": "notes.png"}, ctx)
    err = error_of(info)
    assert (err["type"], err["field"]) == ("input", "params.path")
    assert "notes.png" in err["message"] and "not a readable image" in err["message"]


def test_load_error_through_the_executor_names_the_node(catalog, tmp_path):
    b = GraphBuilder()
    b.add("image.load", id="src", path="missing.png")
    with pytest.raises(BlockError) as info:
        LocalExecutor(catalog, input_root=tmp_path).run(b.build())
    assert (info.value.node, info.value.field, info.value.type) == ("src", "params.path", "input")


# -- grayscale, resize, crop, pad ----------------------------------------------------------

def test_grayscale_uses_601_luma():
    img = np.array([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]], dtype=np.float32)
    out = run(Grayscale, {}, image=img)["image"]
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0, :, 0].tolist() == pytest.approx([0.299, 0.587, 0.114])
    assert run(Grayscale, {"channels": 1}, image=gradient(b=2))["image"].shape == (2, 6, 8, 1)


def test_resize_nearest_doubles_pixels():
    img = gradient(3, 4, b=2)
    out = run(Resize, {"scale": 2.0, "method": "nearest"}, image=img)["image"]
    assert np.array_equal(out, img.repeat(2, axis=1).repeat(2, axis=2))


def test_resize_bilinear_interpolates_a_gradient():
    img = gradient(2, 8)
    out = run(Resize, {"width": 16, "height": 2, "method": "bilinear"}, image=img)["image"]
    src = np.clip((np.arange(16) + 0.5) / 2.0 - 0.5, 0.0, 7.0)  # pixel-centre aligned
    assert out.shape == (1, 2, 16, 3)
    assert out[0, 0, :, 0] == pytest.approx(src / 7.0, abs=1e-6)


def test_resize_area_halving_averages_pixel_pairs():
    img = gradient(4, 8, b=2)
    out = run(Resize, {"scale": 0.5, "method": "area"}, image=img)["image"]
    expected = img.reshape(2, 2, 2, 4, 2, 3).mean(axis=(2, 4))
    assert out == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_resize_clips_overshoot_into_range(method):
    img = np.zeros((1, 8, 8, 3), dtype=np.float32)
    img[:, :, 4:] = 1.0
    out = run(Resize, {"width": 21, "height": 21, "method": method}, image=img)["image"]
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({"width": 50}, (25, 50)),                                   # height follows the aspect
        ({"height": 50}, (50, 100)),
        ({"scale": 0.3}, (30, 60)),
        ({"width": 64, "height": 64}, (64, 64)),                     # stretch
        ({"width": 64, "height": 64, "aspect": "fit"}, (32, 64)),
        ({"width": 64, "height": 64, "aspect": "fill"}, (64, 128)),
        ({"width": 64, "height": 64, "aspect": "crop"}, (64, 64)),
        ({"width": 61, "height": 37, "multiple_of": 8}, (40, 64)),
    ],
)
def test_resize_sizes(params, shape):
    img = np.zeros((2, 100, 200, 3), dtype=np.float32)
    assert run(Resize, params, image=img)["image"].shape == (2, *shape, 3)


def test_resize_crop_keeps_the_centre():
    img = gradient(10, 40)
    out = run(Resize, {"width": 10, "height": 10, "aspect": "crop", "method": "bilinear"},
              image=img)["image"]
    red = out[0, 0, :, 0]
    assert out.shape == (1, 10, 10, 3)
    assert 0.3 < red.min() < red.max() < 0.7 and np.all(np.diff(red) > 0)


@pytest.mark.parametrize("params", [{}, {"scale": 2.0, "width": 10}, {"scale": 0}])
def test_resize_params_say_how_to_size(params):
    with pytest.raises(ValidationError, match="scale"):
        Resize.Params(**params)


def test_crop_cuts_the_rectangle():
    img = gradient(6, 8, b=2)
    out = run(Crop, {"x": 2, "y": 1, "width": 5, "height": 3}, image=img)["image"]
    assert np.array_equal(out, img[:, 1:4, 2:7])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"x": 8, "y": 0, "width": 1, "height": 1}, "params.x"),
        ({"x": 0, "y": 6, "width": 1, "height": 1}, "params.y"),
        ({"x": 4, "y": 0, "width": 5, "height": 1}, "params.width"),
        ({"x": 0, "y": 3, "width": 1, "height": 4}, "params.height"),
    ],
)
def test_crop_outside_the_image_names_the_param(params, field):
    ctx = Context(node="cut", block="image.crop", seed=0)
    with pytest.raises(BlockError) as info:
        run(Crop, params, ctx, image=gradient(6, 8))
    err = error_of(info)
    assert (err["type"], err["field"], err["node"]) == ("input", field, "cut")
    name = field.split(".")[1]
    assert f"{field} {params[name]}" in err["message"]


def test_pad_constant_and_its_mask():
    img = gradient(4, 5, b=2)
    out = run(Pad, {"left": 2, "top": 1, "right": 3, "bottom": 0, "color": [0.0, 0.0, 1.0]}, image=img)
    padded, mask = out["image"], out["mask"]
    assert padded.shape == (2, 5, 10, 3) and mask.shape == (2, 5, 10)
    assert np.array_equal(padded[:, 1:, 2:7], img)
    assert np.all(padded[:, 0] == [0.0, 0.0, 1.0]) and np.all(padded[:, :, 7:] == [0.0, 0.0, 1.0])
    assert mask.sum() == 2 * (5 * 10 - 4 * 5)
    assert np.all(mask[:, 1:, 2:7] == 0.0) and np.all(mask[:, 0] == 1.0)


def test_pad_edge_and_reflect():
    img = gradient(3, 4)
    edge = run(Pad, {"left": 2, "right": 1, "mode": "edge"}, image=img)["image"]
    assert np.array_equal(edge[:, :, 0], img[:, :, 0]) and np.array_equal(edge[:, :, 1], img[:, :, 0])
    assert np.array_equal(edge[:, :, -1], img[:, :, -1])
    mirror = run(Pad, {"top": 2, "mode": "reflect"}, image=img)["image"]
    assert np.array_equal(mirror[:, 0], img[:, 2]) and np.array_equal(mirror[:, 1], img[:, 1])


def test_pad_rgba_with_an_rgb_colour_is_opaque_and_a_bad_colour_is_named():
    img = np.zeros((1, 2, 2, 4), dtype=np.float32)
    out = run(Pad, {"left": 1, "color": [1.0, 1.0, 1.0]}, image=img)["image"]
    assert out[0, 0, 0].tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(BlockError) as info:
        run(Pad, {"left": 1, "color": [1.0, 1.0]}, image=img)
    assert error_of(info)["field"] == "params.color"


# -- masks ---------------------------------------------------------------------------------

def test_mask_grow_shrink_and_feather():
    mask = np.zeros((2, 21, 21), dtype=np.float32)
    mask[:, 5:16, 5:16] = 1.0
    grown = run(MaskGrow, {"grow": 2}, mask=mask)["mask"]
    assert np.all(grown[:, 3:18, 5:16] == 1.0) and grown[:, :2].sum() == 0.0
    shrunk = run(MaskGrow, {"grow": -2}, mask=mask)["mask"]
    assert np.all(shrunk[:, 7:14, 7:14] == 1.0) and shrunk[:, 5:7].sum() == 0.0
    soft = run(MaskGrow, {"blur": 2.0}, mask=mask)["mask"]
    assert 0.0 < soft[0, 10, 5] < 1.0 and soft[0, 10, 10] == pytest.approx(1.0, abs=0.02)
    assert soft.sum() == pytest.approx(mask.sum(), rel=1e-2)
    inverted = run(MaskGrow, {"invert": True}, mask=mask)["mask"]
    assert np.array_equal(inverted, 1.0 - mask)


def test_mask_resize_to_a_size_or_like_an_image():
    mask = np.array([[[0.0, 1.0], [1.0, 0.0]]], dtype=np.float32)
    out = run(MaskResize, {"width": 4, "height": 4, "method": "nearest"}, mask=mask)["mask"]
    assert np.array_equal(out, mask.repeat(2, axis=1).repeat(2, axis=2))
    like = np.zeros((1, 6, 3, 3), dtype=np.float32)
    assert run(MaskResize, {}, mask=mask, like=like)["mask"].shape == (1, 6, 3)
    with pytest.raises(BlockError) as info:
        run(MaskResize, {"width": 4}, mask=mask)
    assert error_of(info)["field"] == "params.height"


def test_mask_and_image_convert_both_ways():
    mask = np.random.default_rng(1).random((2, 3, 4), dtype=np.float32)
    img = run(MaskToImage, {}, mask=mask)["image"]
    assert img.shape == (2, 3, 4, 3)
    assert np.allclose(run(ImageToMask, {}, image=img)["mask"], mask, atol=1e-6)
    assert np.array_equal(run(ImageToMask, {"channel": "red", "invert": True}, image=img)["mask"], 1 - mask)
    with pytest.raises(BlockError) as info:
        run(ImageToMask, {"channel": "alpha"}, image=img)
    assert error_of(info)["field"] == "params.channel"


# -- blend ---------------------------------------------------------------------------------

def solid(color: list[float], h: int = 4, w: int = 4, b: int = 1) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, dtype=np.float32), (b, h, w, len(color))).copy()


def test_blend_with_a_half_mask_shows_b_where_the_mask_is_one():
    a, b = solid([1.0, 0.0, 0.0]), solid([0.0, 0.0, 1.0])
    mask = np.zeros((1, 4, 4), dtype=np.float32)
    mask[:, :, :2] = 1.0
    out = run(Blend, {}, a=a, b=b, mask=mask)["image"]
    assert np.array_equal(out[:, :, :2], b[:, :, :2]) and np.array_equal(out[:, :, 2:], a[:, :, 2:])


def test_blend_opacity_and_soft_mask_mix_linearly():
    a, b = solid([1.0, 0.0, 0.0]), solid([0.0, 0.0, 1.0])
    half = run(Blend, {"opacity": 0.5}, a=a, b=b)["image"]
    assert np.allclose(half, 0.5 * (a + b))
    mask = np.full((1, 4, 4), 0.5, dtype=np.float32)
    quarter = run(Blend, {"opacity": 0.5}, a=a, b=b, mask=mask)["image"]
    assert np.allclose(quarter, 0.75 * a + 0.25 * b)


@pytest.mark.parametrize(
    ("mode", "a", "b", "expected"),
    [
        ("multiply", 0.25, 0.5, 0.125),
        ("screen", 0.25, 0.5, 0.625),
        ("overlay", 0.25, 0.5, 0.25),
        ("overlay", 0.75, 0.5, 0.75),
        ("overlay", 0.75, 0.2, 0.6),
        ("soft_light", 0.25, 0.5, 0.25),
        ("darken", 0.25, 0.5, 0.25),
        ("lighten", 0.25, 0.5, 0.5),
        ("difference", 0.25, 0.5, 0.25),
        ("add", 0.75, 0.5, 1.0),
        ("subtract", 0.75, 0.5, 0.25),
    ],
)
def test_blend_modes(mode, a, b, expected):
    out = run(Blend, {"mode": mode}, a=solid([a] * 3), b=solid([b] * 3))["image"]
    assert out == pytest.approx(np.full(out.shape, expected), abs=1e-6)


def test_blend_uses_b_alpha_and_keeps_a_alpha_over():
    a = solid([1.0, 0.0, 0.0, 0.5])
    b = solid([0.0, 1.0, 0.0, 0.5])
    out = run(Blend, {}, a=a, b=b)["image"]
    assert out.shape == a.shape
    assert out[0, 0, 0].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.75])


def test_blend_broadcasts_a_batch_of_one():
    a, b = solid([0.0, 0.0, 0.0]), solid([1.0, 1.0, 1.0], b=3)
    assert run(Blend, {"opacity": 0.5}, a=a, b=b)["image"].shape == (3, 4, 4, 3)
    with pytest.raises(BlockError) as info:
        run(Blend, {}, a=solid([0.0] * 3, b=2), b=b)
    assert error_of(info)["field"] == "inputs.b"


def test_blend_reports_sizes_that_do_not_match():
    ctx = Context(node="mix", block="image.blend", seed=0)
    with pytest.raises(BlockError) as info:
        run(Blend, {}, ctx, a=solid([0.0] * 3, 4, 4), b=solid([0.0] * 3, 4, 6))
    err = error_of(info)
    assert (err["type"], err["field"], err["node"]) == ("input", "inputs.b", "mix")
    assert "6x4" in err["message"] and "4x4" in err["message"]
    with pytest.raises(BlockError) as info:
        run(Blend, {}, ctx, a=solid([0.0] * 3), b=solid([0.0] * 3), mask=np.zeros((1, 2, 2)))
    assert error_of(info)["field"] == "inputs.mask"


def test_outpaint_style_graph_pad_then_blend(catalog):
    b = GraphBuilder()
    red = b.add("image.solid", id="red", width=4, height=4, color=[1.0, 0.0, 0.0])
    pad = b.add("image.pad", id="pad", image=red.image, left=2)
    blue = b.add("image.solid", id="blue", width=6, height=4, color=[0.0, 0.0, 1.0])
    b.add("image.blend", id="mix", a=pad.image, b=blue.image, mask=pad.mask)
    out = LocalExecutor(catalog).run(b.build()).outputs["mix"]["image"]
    assert out.shape == (1, 4, 6, 3)
    assert np.all(out[:, :, :2] == [0.0, 0.0, 1.0]) and np.all(out[:, :, 2:] == [1.0, 0.0, 0.0])


def test_transform_chain_through_the_executor(catalog, tmp_path):
    write_png(tmp_path / "in.png", gradient(20, 30)[0])
    b = GraphBuilder()
    src = b.add("image.load", id="src", path="in.png")
    small = b.add("image.resize", id="small", image=src.image, width=15)
    cut = b.add("image.crop", id="cut", image=small.image, x=5, y=0, width=5, height=10)
    b.add("image.grayscale", id="gray", image=cut.image, channels=1)
    outputs = LocalExecutor(catalog, input_root=tmp_path).run(b.build()).outputs
    assert outputs["small"]["image"].shape == (1, 10, 15, 3)
    assert np.array_equal(outputs["cut"]["image"], outputs["small"]["image"][:, :, 5:10])
    assert outputs["gray"]["image"].shape == (1, 10, 5, 1)


def test_crop_error_through_the_executor(catalog):
    b = GraphBuilder()
    img = b.add("image.solid", width=8, height=8)
    b.add("image.crop", id="cut", image=img.image, x=9, width=2, height=2)
    with pytest.raises(BlockError) as info:
        LocalExecutor(catalog).run(b.build())
    assert (info.value.node, info.value.field, info.value.type) == ("cut", "params.x", "input")


# -- edges ---------------------------------------------------------------------------------

def square(size: int = 32, lo: int = 10, hi: int = 22, b: int = 1) -> np.ndarray:
    img = np.zeros((b, size, size, 3), dtype=np.float32)
    img[:, lo:hi, lo:hi] = 1.0
    return img


def test_canny_finds_the_edge_of_a_square():
    edges = run(Canny, {}, image=square(b=2))["image"]
    assert edges.shape == (2, 32, 32, 3) and edges.dtype == np.float32
    assert set(np.unique(edges).tolist()) == {0.0, 1.0}
    assert np.array_equal(edges[..., 0], edges[..., 2])
    ys, xs = np.nonzero(edges[0, ..., 0])
    border = np.minimum(np.minimum(np.abs(ys - 9.5), np.abs(ys - 21.5)),
                        np.minimum(np.abs(xs - 9.5), np.abs(xs - 21.5)))
    assert border.max() <= 1.0                      # every edge pixel hugs the square's outline
    for side in (edges[0, 9:11, 12:20], edges[0, 21:23, 12:20],
                 edges[0, 12:20, 9:11], edges[0, 12:20, 21:23]):
        assert side[..., 0].any(axis=0 if side.shape[0] == 2 else 1).all()   # all four sides
    assert edges[0, 13:19, 13:19].sum() == 0 and edges[0, :5].sum() == 0


def test_canny_thresholds():
    soft = square() * 0.1                           # a weak step: below a high threshold
    assert run(Canny, {"low": 10, "high": 20}, image=soft)["image"].any()
    assert not run(Canny, {"low": 100, "high": 200}, image=soft)["image"].any()
    assert not run(Canny, {"blur": 1.0}, image=np.full((1, 8, 8, 3), 0.5, np.float32))["image"].any()
    with pytest.raises(ValidationError, match="below the low threshold"):
        Canny.Params(low=200, high=100)


def test_sketch_darkens_lines_and_whitens_flat_areas():
    img = np.ones((2, 32, 32, 3), dtype=np.float32)
    img[:, :, 15:17] = 0.2                          # a dark vertical line
    out = run(Sketch, {"blur": 3.0}, image=img)["image"]
    assert out.shape == (2, 32, 32, 3)
    assert out[0, 10, 15, 0] < 0.5 and out[0, 10, 0, 0] == pytest.approx(1.0)
    inverted = run(Sketch, {"blur": 3.0, "invert": True}, image=img)["image"]
    assert np.allclose(inverted, 1.0 - out)
    darker = run(Sketch, {"blur": 3.0, "gamma": 2.0}, image=img)["image"]
    assert darker[0, 10, 15, 0] < out[0, 10, 15, 0]
    assert np.all(run(Sketch, {}, image=np.zeros((1, 8, 8, 3), np.float32))["image"] == 1.0)


def test_edges_through_the_executor(catalog):
    b = GraphBuilder()
    img = b.add("image.solid", width=16, height=16, color=[0.0, 0.0, 0.0])
    pad = b.add("image.pad", image=img.image, left=8, mode="constant", color=[1.0])
    b.add("image.canny", id="edges", image=pad.image)
    b.add("image.sketch", id="lines", image=pad.image, invert=True)
    outputs = LocalExecutor(catalog).run(b.build()).outputs
    edges = outputs["edges"]["image"]
    assert edges.shape == (1, 16, 24, 3)
    assert np.flatnonzero(edges[0, 8, :, 0]).tolist() in ([7], [8])
    assert outputs["lines"]["image"].shape == (1, 16, 24, 3)


def test_every_image_block_is_registered_and_documents_its_params(catalog):
    ids = {k for k in catalog if k.startswith("image.")}
    assert {"image.load", "image.load_mask", "image.save", "image.solid", "image.grayscale",
            "image.resize", "image.crop", "image.pad", "image.blend", "image.palette_extract",
            "image.palette_apply", "image.canny", "image.sketch", "image.tile_split",
            "image.tile_merge", "image.mask_grow", "image.mask_resize"} <= ids
    for block_id in ids:
        spec = catalog[block_id]
        assert spec.version == "1.0.0" and spec.description
        for name, prop in spec.params_schema().get("properties", {}).items():
            assert prop.get("description"), f"{block_id} param {name!r} has no description"
