"""Condition extractors and masks, each on a synthetic image whose answer is known.

The square image: black, with a red 16x16 square at x, y = 24..40 on a 64x64 canvas.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from graphs import GraphBuilder
from orchestrator import Context
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor
from plugins.compose.colorize import Colorize
from plugins.compose.detail import RegionCrop, RegionPaste
from plugins.compose.embed import CLIP_MEAN, CLIP_STD, ImageEmbed
from plugins.compose.masks import MaskFromColor, MaskRect, MaskThreshold
from plugins.compose.segment import MaskFromLabels, Segmentation, color_table
from plugins.image.edges import Canny, Sketch
from plugins.image.palette import PaletteExtract
from plugins.image.transform import Grayscale

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

RED = (1.0, 0.0, 0.0)


def square_image(colour=RED, background=(0.0, 0.0, 0.0)) -> np.ndarray:
    img = np.zeros((1, 64, 64, 3), np.float32)
    img[:] = background
    img[0, 24:40, 24:40] = colour
    return img


def square_mask() -> np.ndarray:
    m = np.zeros((1, 64, 64), np.float32)
    m[0, 24:40, 24:40] = 1.0
    return m


def ctx(block: str = "compose.test", models=None) -> Context:
    return Context(node="n", block=block, seed=0, models=models)


# -- extractors that plugins.image already has -----------------------------------------------


def test_palette_of_a_two_colour_image_is_its_two_colours() -> None:
    palette = PaletteExtract({"colors": 4}).run(ctx(), image=square_image())["palette"]
    assert palette.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]  # black covers more, so first


def test_intensity_is_the_luma() -> None:
    gray = Grayscale({"channels": 1}).run(ctx(), image=square_image())["image"]
    assert gray[0, 30, 30, 0] == pytest.approx(0.299) and gray[0, 0, 0, 0] == 0.0


def test_edges_and_sketch_of_a_square_lie_on_its_outline() -> None:
    edges = Canny({}).run(ctx(), image=square_image((1.0, 1.0, 1.0)))["image"][0, ..., 0]
    ys, xs = np.nonzero(edges)
    assert len(ys) > 0
    assert {ys.min(), ys.max(), xs.min(), xs.max()} <= {23, 24, 39, 40}  # on the square's border
    assert edges[30, 30] == 0 and edges[5, 5] == 0
    sketch = Sketch({"blur": 2.0}).run(ctx(), image=square_image((1.0, 1.0, 1.0), (0.5, 0.5, 0.5)))["image"]
    s = sketch[0, ..., 0]
    assert s[5, 5] == pytest.approx(1.0) and s[32, 32] == pytest.approx(1.0)  # flat areas white
    assert s[32, 23] < 0.8 and s[32, 23] < s[32, 20]  # darker towards the bright square's edge


# -- depth and segmentation through the generic ONNX block -------------------------------------


def _save(path: Path, nodes, inputs, outputs, initializers=()) -> str:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path.name


def conv_model(path: Path, weight: np.ndarray, bias: np.ndarray) -> str:
    """A random 1x1 convolution from RGB to ``len(weight)`` channels: a tiny 'depth' or 'segmenter'."""
    out = weight.shape[0]
    w = numpy_helper.from_array(weight.reshape(out, 3, 1, 1).astype(np.float32), "w")
    b = numpy_helper.from_array(bias.astype(np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"])
    return _save(path, [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", out, "h", "w"])], [w, b])


@pytest.fixture(scope="module")
def onnx_run(catalog, models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    ex = LocalExecutor(catalog, models=models, input_root=folder)

    def go(graph):
        return ex.run(graph).outputs

    return folder, go


def test_depth_and_detection_through_onnx_find_the_square(onnx_run) -> None:
    folder, go = onnx_run
    rng = np.random.default_rng(1)
    name = conv_model(folder / "depth.onnx", rng.uniform(0.1, 1.0, (1, 3)), rng.uniform(-1, 1, 1))
    sd_fixtures.write_png(folder / "square.png", (square_image()[0] * 255).astype(np.uint8))
    b = GraphBuilder()
    img = b.add("image.load", path="square.png")
    depth = b.add("onnx.run", id="depth", image=img.image, model=name, output_range="minmax")
    # the same net as a 'detector': its heat map, thresholded, finds the region for a detail pass
    near = b.add("compose.mask_threshold", id="near", image=depth.image, threshold=0.5)
    b.add("compose.region_crop", id="crop", image=img.image, mask=near.mask, margin=0.0, size=32)
    out = go(b.build())
    assert out["depth"]["image"].shape == (1, 64, 64, 1)
    np.testing.assert_array_equal(out["depth"]["image"][..., 0], square_mask())  # near = 1, far = 0
    assert out["crop"]["region"]["box"] == [24, 24, 16, 16]


def test_segmentation_through_onnx_gives_labels_colours_and_masks(onnx_run) -> None:
    folder, go = onnx_run
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(5, 3)), rng.normal(size=5)
    name = conv_model(folder / "segment.onnx", weight, bias)
    expected = [int(np.argmax(weight @ np.asarray(c) + bias)) for c in ((0, 0, 0), RED)]
    assert expected[0] != expected[1]  # the random net tells the two colours apart
    sd_fixtures.write_png(folder / "square.png", (square_image()[0] * 255).astype(np.uint8))
    b = GraphBuilder()
    img = b.add("image.load", path="square.png")
    scores = b.add("onnx.run", id="scores", image=img.image, model=name)
    seg = b.add("compose.segmentation", id="seg", scores=scores["values"], like=img.image)
    b.add("compose.mask_from_labels", id="mask", labels=seg.labels, classes=[expected[1]])
    out = go(b.build())
    labels = out["seg"]["labels"]
    assert labels.dtype == np.int32 and set(np.unique(labels)) == set(expected)
    np.testing.assert_array_equal(out["mask"]["mask"], square_mask())
    assert out["seg"]["image"][0, 30, 30].tolist() == color_table(5)[expected[1]].tolist()


def test_segmentation_resizes_labels_and_refuses_other_shapes() -> None:
    labels = np.array([[[0, 1], [2, 3]]], np.float32)
    like = np.zeros((1, 4, 4, 3), np.float32)
    out = Segmentation({}).run(ctx(), scores=labels, like=like)["labels"]
    assert out.tolist() == [[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]]
    with pytest.raises(BlockError) as exc:
        Segmentation({}).run(ctx(), scores=np.zeros((2, 3)))
    assert exc.value.field == "inputs.scores"
    np.testing.assert_allclose(color_table(3), [[0, 0, 0], [128 / 255, 0, 0], [0, 128 / 255, 0]], atol=1e-7)


# -- style / semantics --------------------------------------------------------------------------


def test_image_embedding_of_a_flat_colour(models) -> None:
    c = ctx("compose.image_embed", models)
    small = np.full((1, 48, 48, 3), 0.25, np.float32)
    wide = np.full((1, 40, 96, 3), 0.25, np.float32)
    a = ImageEmbed({}).run(c, image=small)["embedding"]
    b = ImageEmbed({"model": "tiny-ip-adapter"}).run(c, image=wide)["embedding"]  # the same encoder
    assert a.shape == (1, 32)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # a flat image looks the same at any size
    encoder = models.load("tiny-clip-vision", "image_encoder")
    pixels = torch.from_numpy(((0.25 - CLIP_MEAN) / CLIP_STD).astype(np.float32)).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = encoder(pixels.expand(1, 3, 32, 32)).image_embeds
    torch.testing.assert_close(a, ref, rtol=0, atol=1e-5)
    red = ImageEmbed({"normalize": True}).run(c, image=square_image())["embedding"]
    assert float(red.norm()) == pytest.approx(1.0) and not torch.allclose(red, a / a.norm())


# -- masks ----------------------------------------------------------------------------------------


def test_colour_key_mask_is_the_square() -> None:
    image = square_image() * 0.98 + 0.01  # not quite the key colour
    mask = MaskFromColor({"color": list(RED), "tolerance": 0.05}).run(ctx(), image=image)["mask"]
    np.testing.assert_array_equal(mask, square_mask())
    soft = MaskFromColor({"color": list(RED), "tolerance": 0.0, "softness": 0.1}).run(ctx(), image=image)
    assert 0 < soft["mask"][0, 30, 30] < 1 and soft["mask"][0, 0, 0] == 0
    inverted = MaskFromColor({"color": list(RED), "tolerance": 0.05, "invert": True}).run(ctx(), image=image)
    np.testing.assert_array_equal(inverted["mask"], 1 - square_mask())


def test_rectangle_mask() -> None:
    mask = MaskRect({"box": [24, 24, 16, 16]}).run(ctx(), like=square_image())["mask"]
    np.testing.assert_array_equal(mask, square_mask())
    frac = MaskRect({"box": [0.375, 0.375, 0.25, 0.25], "units": "fraction", "width": 64, "height": 64})
    np.testing.assert_array_equal(frac.run(ctx())["mask"], square_mask())
    with pytest.raises(BlockError) as exc:
        MaskRect({"box": [70, 0, 4, 4], "width": 64, "height": 64}).run(ctx())
    assert exc.value.field == "params.box"
    with pytest.raises(BlockError) as exc:
        MaskRect({"box": [0, 0, 4, 4]}).run(ctx())
    assert exc.value.field == "params.width"


def test_threshold_and_label_masks() -> None:
    depth = square_image((0.8, 0.8, 0.8), (0.2, 0.2, 0.2))
    near = MaskThreshold({"threshold": 0.5}).run(ctx(), image=depth)["mask"]
    np.testing.assert_array_equal(near, square_mask())
    far = MaskThreshold({"threshold": 0.5, "below": True}).run(ctx(), image=depth)["mask"]
    np.testing.assert_array_equal(far, 1 - square_mask())
    labels = square_mask().astype(np.int32) * 7
    np.testing.assert_array_equal(MaskFromLabels({"classes": [7]}).run(ctx(), labels=labels)["mask"],
                                  square_mask())
    np.testing.assert_array_equal(MaskFromLabels({"classes": [0, 3]}).run(ctx(), labels=labels)["mask"],
                                  1 - square_mask())


# -- palette colourization ------------------------------------------------------------------------


def test_colorize_maps_intensity_onto_the_palette() -> None:
    gray = square_image((0.9, 0.9, 0.9), (0.1, 0.1, 0.1))
    palette = np.array([[1.0, 0.8, 0.0], [0.0, 0.0, 0.5]], np.float32)  # bright yellow, dark blue
    out = Colorize({}).run(ctx(), image=gray, palette=palette)["image"]
    np.testing.assert_allclose(out[0, 30, 30], palette[0], atol=1e-6)  # bright -> the brighter colour
    np.testing.assert_allclose(out[0, 0, 0], palette[1], atol=1e-6)
    three = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 1, 64, 1).repeat(3, -1)
    out = Colorize({"even": True}).run(ctx(), image=ramp, palette=three)["image"][0, 0]
    np.testing.assert_allclose(out[[0, -1]], three[[0, 2]], atol=1e-6)
    assert np.all(np.diff(out @ np.array([0.299, 0.587, 0.114])) >= -1e-6)  # light order kept


# -- the region detail pass -----------------------------------------------------------------------


def test_region_crop_finds_grows_and_resizes_the_region() -> None:
    image = square_image()
    out = RegionCrop({"size": 64, "margin": 0.5}).run(ctx(), image=image, mask=square_mask())
    assert out["region"]["box"] == [16, 16, 32, 32] and out["image"].shape == (1, 64, 64, 3)
    assert out["mask"][0, 32, 32] == 1.0 and out["mask"][0, 2, 2] == 0.0
    np.testing.assert_allclose(out["image"][0, 24:40, 24:40], np.broadcast_to(RED, (16, 16, 3)), atol=1e-5)
    boxed = RegionCrop({"box": [24, 24, 16, 16], "margin": 0.0, "size": 32}).run(ctx(), image=image)
    assert boxed["region"]["box"] == [24, 24, 16, 16] and boxed["image"].shape == (1, 32, 32, 3)
    edge = RegionCrop({"box": [0, 0, 8, 8], "margin": 1.0, "size": 32}).run(ctx(), image=image)
    assert edge["region"]["box"] == [0, 0, 24, 24]  # kept inside the image


def test_region_paste_puts_the_render_back_feathered() -> None:
    image = square_image()
    crop = RegionCrop({"box": [24, 24, 16, 16], "margin": 0.5, "size": 64})
    region = crop.run(ctx(), image=image)["region"]
    patch = np.full((1, 64, 64, 3), 0.5, np.float32)
    hard = RegionPaste({"blend": "box", "feather": 0}).run(ctx(), image=image, patch=patch, region=region)
    expected = image.copy()
    expected[0, 16:48, 16:48] = 0.5
    np.testing.assert_allclose(hard["image"], expected, atol=1e-6)
    soft = RegionPaste({"blend": "mask", "grow": 2, "feather": 4}).run(ctx(), image=image, patch=patch,
                                                                        region=region)["image"]
    assert soft[0, 32, 32, 1] == pytest.approx(0.5, abs=1e-3)  # inside: the patch
    assert 0 < soft[0, 22, 32, 1] < 0.5  # the edge: blended
    assert np.array_equal(soft[0, :14], image[0, :14])  # outside the crop: untouched
    same = RegionPaste({}).run(ctx(), image=image, patch=crop.run(ctx(), image=image)["image"], region=region)
    assert np.abs(same["image"] - image).mean() < 0.005  # the crop pasted back changes ~nothing


def test_an_empty_region_passes_the_image_through() -> None:
    image = square_image()
    out = RegionCrop({"size": 32}).run(ctx(), image=image, mask=np.zeros((1, 64, 64), np.float32))
    assert out["region"]["empty"] and out["image"].shape == (1, 32, 32, 3)
    back = RegionPaste({}).run(ctx(), image=image, patch=np.ones((1, 32, 32, 3), np.float32),
                               region=out["region"])
    np.testing.assert_array_equal(back["image"], image)
    with pytest.raises(BlockError) as exc:
        RegionCrop({}).run(ctx(), image=image)
    assert exc.value.field == "inputs.mask"
