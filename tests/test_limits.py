"""Size limits (orchestrator/runtime/limits.py): the submit-time check along the graph and the run-time
gate in execute_block that both engines use."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from pydantic import Field

from graphs import Graph
from orchestrator import Block, In, Out, Params, block, hookimpl
from orchestrator.config import Limits
from orchestrator.errors import BlockError
from orchestrator.plugins import load_plugins
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.runtime.limits import SizeLimits, check_limits, finite_json, number
from orchestrator.runtime.worker import WorkerCore

MADE: list[tuple[int, ...]] = []  # shapes the third-party blocks below really allocated


@block("third.tile_copies", version="1.0.0")
class TileCopies(Block):
    """A third-party block: repeats an image ``repeat`` times and scales it by ``factor``."""

    inputs = {"image": In("IMAGE")}
    outputs = {"image": Out("IMAGE")}

    class Params(Params):
        repeat: int = Field(1, ge=1, le=1000)
        factor: float = Field(1.0, gt=0, le=100.0)

    def run(self, ctx, image):
        b, h, w, c = image.shape
        shape = (b * self.params.repeat, int(h * self.params.factor), int(w * self.params.factor), c)
        MADE.append(shape)
        return {"image": np.zeros(shape, np.float32)}


@block("third.liar", version="1.0.0")
class Liar(Block):
    """Declares no size param, returns a big image anyway (the after-run check's case)."""

    inputs = {"image": In("IMAGE")}
    outputs = {"image": Out("IMAGE")}

    def run(self, ctx, image):
        return {"image": np.zeros((1, 600, 600, 3), np.float32)}


@block("third.invert", version="1.0.0")
class Invert(Block):
    """A block that tiles (split): 1 - image."""

    inputs = {"image": In("IMAGE")}
    outputs = {"image": Out("IMAGE")}
    tiling = "split"

    def run(self, ctx, image):
        return {"image": 1.0 - image}


@hookimpl
def register_blocks():
    return [TileCopies, Liar, Invert]


@pytest.fixture(scope="module")
def host():
    return load_plugins(entry_points=False, extra=[("third", sys.modules[__name__])])


@pytest.fixture(scope="module")
def catalog(host):
    return host.catalog


LIM = SizeLimits(pixels=512 * 512, batch=8, batch_pixels=4 * 512 * 512, steps=50, scale=4.0, tiles=64)


def problems(catalog, nodes, lim=LIM):
    return [(p["node"], p["field"], p["type"]) for p in check_limits(Graph.from_dict({"nodes": nodes}),
                                                                      lim, catalog)]


def solid(w=256, h=256, **more):
    return {"block": "image.solid", "params": {"width": w, "height": h, **more}}


# -- reading values as pydantic does ----------------------------------------------------------


def test_numbers_are_read_as_pydantic_reads_them():
    values = (True, 7, 4096.0, 2.5, "512", " 12 ", "1e3")
    assert [number(v) for v in values] == [1, 7, 4096, 2.5, 512, 12, 1000]
    assert [number(v) for v in ("\u0663", "\uff11", float("nan"), float("inf"), None, [1], "x")] == [None] * 7


@pytest.mark.parametrize("params", [
    {"width": 1e9, "height": 64},            # a float far over
    {"width": 4096.0, "height": 4096.0},     # floats that are whole numbers
    {"width": "4096", "height": "4096"},     # numeric strings pydantic would take
    {"width": 2048, "height": 2048, "batch": True},
])
def test_floats_strings_and_bools_count(catalog, params):
    found = problems(catalog, {"a": {"block": "image.solid", "params": params}})
    assert ("a", "params.width", "limit") in found


def test_steps_and_batch_whatever_their_type(catalog):
    found = problems(catalog, {"d": {"block": "sd.denoise", "params": {"steps": 1e9}},
                               "e": {"block": "sd.empty_latent", "params": {"width": 64, "height": 64,
                                                                             "batch": 64.0}}})
    assert ("d", "params.steps", "limit") in found and ("e", "params.batch", "limit") in found


def test_batch_times_pixels(catalog):
    assert problems(catalog, {"a": solid(512, 512, batch=4)}) == []
    assert problems(catalog, {"a": solid(512, 512, batch=5)}) == [("a", "params.batch", "limit")]


# -- sizes followed along the graph ---------------------------------------------------------------


def test_a_resize_of_a_known_image_is_checked_by_what_it_makes(catalog):
    nodes = {"a": solid(256, 256), "r": {"block": "image.resize", "inputs": {"image": "a.image"},
                                         "params": {"scale": 2.5}}}
    assert problems(catalog, nodes) == [("r", "params.scale", "limit")]
    nodes["r"]["params"] = {"scale": 2.0}
    assert problems(catalog, nodes) == []
    nodes["r"]["params"] = {"width": 1024}  # the height follows the aspect ratio: 1024 x 1024
    assert problems(catalog, nodes) == [("r", "params.width", "limit")]


def test_pads_add_up_downstream(catalog):
    nodes = {"a": solid(400, 400),
             "p": {"block": "image.pad", "inputs": {"image": "a.image"},
                   "params": {"left": 300, "right": 20}},
             "g": {"block": "image.grayscale", "inputs": {"image": "p.image"}}}
    assert problems(catalog, nodes) == [("p", "params.left", "limit")]


def test_defaults_come_from_the_schema(catalog):
    """sd.latent_upscale's scale defaults to 2: a 400 px latent becomes 800 px."""
    nodes = {"e": {"block": "sd.empty_latent", "params": {"width": 400, "height": 400}},
             "u": {"block": "sd.latent_upscale", "inputs": {"latent": "e.latent"}},
             "d": {"block": "sd.vae_decode", "inputs": {"latent": "u.latent"}}}
    assert problems(catalog, nodes) == [("u", "params.scale", "limit")]


def test_a_factor_is_bounded_where_the_input_is_unknown(catalog):
    nodes = {"l": {"block": "image.load", "params": {"path": "x.png"}},
             "r": {"block": "image.resize", "inputs": {"image": "l.image"}, "params": {"scale": 8}}}
    assert problems(catalog, nodes) == [("r", "params.scale", "limit")]


def test_tile_counts_of_splits_and_annotations(catalog):
    split = {"a": solid(512, 512), "t": {"block": "image.tile_split", "inputs": {"image": "a.image"},
                                         "params": {"size": 16, "overlap": 8}}}
    assert problems(catalog, split) == [("t", "params.overlap", "limit")]
    tiled = {"e": {"block": "sd.empty_latent", "params": {"width": 512, "height": 512}},
             "d": {"block": "sd.vae_decode", "inputs": {"latent": "e.latent"},
                   "tile": {"size": 64, "stride": 8}}}
    assert ("d", "tile.stride", "limit") in problems(catalog, tiled)
    tiled["d"]["tile"] = {"size": 256, "overlap": 64}
    assert problems(catalog, tiled) == []


def test_third_party_params_are_read_by_name_and_schema(catalog):
    nodes = {"a": solid(128, 128), "c": {"block": "third.tile_copies", "inputs": {"image": "a.image"},
                                         "params": {"repeat": 9}}}
    assert ("c", "params.repeat", "limit") in problems(catalog, nodes)
    nodes["c"]["params"] = {"factor": 5}
    assert problems(catalog, nodes) == [("c", "params.factor", "limit")]
    nodes["c"]["params"] = {"factor": 3, "repeat": 2}  # 384 px x 2 = 294,912 px: fine; x 3 is not
    assert problems(catalog, nodes) == []
    nodes["c"]["params"] = {"factor": 3, "repeat": 8}  # 384 px x 8 = 1,179,648 px in the batch
    assert problems(catalog, nodes) == [("c", "params.repeat", "limit")]


def test_non_finite_and_huge_values_in_params_are_named(catalog):
    g = Graph.from_dict({"nodes": {"a": {"block": "image.solid", "params": {
        "color": [float("nan"), 0, 0], "width": 10**40}}}})
    found = {(p["field"], p["type"]) for p in check_limits(g, LIM, catalog)}
    assert ("params.color[0]", "invalid_value") in found and ("params.width", "invalid_value") in found


def test_node_count_and_config_limits(catalog):
    lim = Limits(nodes=3)
    g = Graph.from_dict({"nodes": {f"n{i}": solid(8, 8) for i in range(4)}})
    assert [p["field"] for p in check_limits(g, lim, catalog)] == ["nodes"]
    assert SizeLimits.of(Limits()).pixels == 8192 * 8192 and SizeLimits.of({"pixels": 5}).pixels == 5


def test_templates_pass_the_default_limits(catalog):
    from graphs import builtin_templates

    for t in builtin_templates():
        assert check_limits(t.graph, Limits(), catalog) == [], t.name


def test_finite_json():
    assert finite_json({"a": [float("inf"), -0.5, 2**70, True]}) == {"a": [None, -0.5, str(2**70), True]}


# -- the run-time gate ----------------------------------------------------------------------------


@pytest.fixture()
def image_file(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(path)
    return path


def test_an_unknown_input_size_is_checked_when_the_node_runs(host, image_file):
    """Submit time cannot know the file is 400x300; the node fails before it resizes."""
    g = Graph.from_dict({"nodes": {
        "l": {"block": "image.load", "params": {"path": image_file.name}},
        "r": {"block": "image.resize", "inputs": {"image": "l.image"}, "params": {"scale": 2}}}})
    assert check_limits(g, LIM, host.catalog) == []
    ex = LocalExecutor(host.catalog, input_root=image_file.parent, limits=LIM)
    with pytest.raises(BlockError) as info:
        ex.run(g)
    d = info.value.to_dict()
    assert (d["type"], d["node"], d["field"], d["value"], d["bound"]) == (
        "limit", "r", "params.scale", 800 * 600, {"le": LIM.pixels})
    g.nodes["r"].params = {"scale": 1.25}
    assert ex.run(g).outputs["r"]["image"].shape == (1, 375, 500, 3)


def test_the_gate_stops_a_block_before_it_allocates(host, image_file):
    MADE.clear()
    g = Graph.from_dict({"nodes": {
        "l": {"block": "image.load", "params": {"path": image_file.name}},
        "c": {"block": "third.tile_copies", "inputs": {"image": "l.image"}, "params": {"repeat": 20}}}})
    with pytest.raises(BlockError) as info:
        LocalExecutor(host.catalog, input_root=image_file.parent, limits=LIM).run(g)
    assert (info.value.type, info.value.node, info.value.field) == ("limit", "c", "params.repeat")
    assert MADE == []


def test_what_a_block_returns_is_measured_too(host):
    g = Graph.from_dict({"nodes": {"a": solid(8, 8),
                                   "x": {"block": "third.liar", "inputs": {"image": "a.image"}}}})
    with pytest.raises(BlockError) as info:
        LocalExecutor(host.catalog, limits=LIM).run(g)
    assert (info.value.type, info.value.node, info.value.field) == ("limit", "x", "outputs.image")
    assert LocalExecutor(host.catalog).run(g).outputs["x"]["image"].shape[1] == 600  # no limits: runs


def test_a_tiled_node_with_too_many_tiles_fails_at_run_time(host, image_file):
    g = Graph.from_dict({"nodes": {
        "l": {"block": "image.load", "params": {"path": image_file.name}},
        "g": {"block": "third.invert", "inputs": {"image": "l.image"}, "tile": {"size": 16, "stride": 8}}}})
    assert check_limits(g, LIM, host.catalog) == []
    with pytest.raises(BlockError) as info:
        LocalExecutor(host.catalog, input_root=image_file.parent, limits=LIM).run(g)
    assert (info.value.type, info.value.node, info.value.field) == ("limit", "g", "tile.stride")


def test_the_worker_applies_the_job_limits(host, monkeypatch):
    """The Ray engine's path: the job's options carry the limits to WorkerCore.run_node."""
    core = WorkerCore()
    monkeypatch.setattr(core, "block_class", lambda block_id, version=None, node=None:
                        host.catalog.block_class(block_id))
    image = np.zeros((1, 300, 400, 3), np.float32)
    out, meta = core.run_node("image.resize", {"scale": 2}, {"image": image}, seed=0, node="r",
                              options={"limits": LIM.to_dict()})
    assert out is None and meta["error"].to_dict()["type"] == "limit"
    assert meta["error"].to_dict()["field"] == "params.scale"
    out, meta = core.run_node("image.resize", {"scale": 1.25}, {"image": image}, seed=0, node="r",
                              options={"limits": LIM.to_dict()})
    assert meta["error"] is None and out["image"].shape == (1, 375, 500, 3)


def test_a_block_can_check_a_size_it_learns_only_when_it_runs():
    from orchestrator.context import Context

    ctx = Context(node="up", block="x.upscale", seed=0, limits=LIM)
    ctx.check_size(512, 512)
    with pytest.raises(BlockError) as info:
        ctx.check_size(2048, 2048, field="params.model")
    assert (info.value.type, info.value.node, info.value.field) == ("limit", "up", "params.model")
    Context(node="up", block="x.upscale", seed=0).check_size(10**6, 10**6)  # no limits: no check


def test_a_resize_that_covers_a_box_is_measured_by_what_it_allocates(catalog):
    """A 4000x16 strip filled into 256x256 keeps its aspect: 64,000 x 256 pixels before a crop."""
    nodes = {"a": solid(4000, 16), "r": {"block": "image.resize", "inputs": {"image": "a.image"},
                                         "params": {"width": 256, "height": 256, "aspect": "fill"}}}
    assert problems(catalog, nodes) == [("r", "params.width", "limit")]
    nodes["r"]["params"]["aspect"] = "crop"
    assert problems(catalog, nodes) == [("r", "params.width", "limit")]
    nodes["r"]["params"]["aspect"] = "fit"
    assert problems(catalog, nodes) == []


def test_finite_json_of_any_depth():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    copy = finite_json({"x": deep, "n": float("-inf")})
    assert copy["n"] is None
    assert finite_json({"b": 1, "a": [1, 2, {"c": 3}]}) == {"b": 1, "a": [1, 2, {"c": 3}]}
    assert list(finite_json({"b": 1, "a": 2})) == ["b", "a"]
