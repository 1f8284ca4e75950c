"""Tiling without models: the graph transform, the tile geometry, the generic split strategy,
the in-process tile runner (progress, cancellation), and how tiled nodes compile.

The Stable Diffusion strategies (MultiDiffusion, tiled VAE, tiled upscale) are in
``test_tiling_sd.py`` (in-process, against diffusers) and ``test_tiling_ray.py`` (workers).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import Field

from graphs import (
    BlockSpec,
    Graph,
    GraphBuilder,
    GraphValidationError,
    PortSpec,
    TileSpec,
    check,
    content_keys,
)
from graphs.tiling import resolve, tile, tile_starts, tiled_nodes, view_count
from orchestrator import Block, Context, In, Out, Params, block, hookimpl
from orchestrator.errors import JobCancelled
from orchestrator.plugins import load_plugins
from orchestrator.runtime.compile import compile_graph
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.runtime.tiling import (
    LocalTileRunner,
    Tiling,
    function_name,
    merge_tiles,
    split_image,
    tile_seed,
)
from orchestrator.runtime.tiling_ray import chunks
from plugins.sd.multidiffusion import get_views

# -- blocks that tile by "split", to run the generic strategy without models ---------------------


@block("tiletest.invert", version="1.0.0")
class Invert(Block):
    """1 - image, pixel by pixel."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}
    tiling = "split"

    def run(self, ctx, image):
        return {"image": 1.0 - image}


@block("tiletest.double", version="1.0.0")
class Double(Block):
    """Nearest-neighbour upscale by 2 (an 'upscaler'), and a mask of where the image is bright."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE", "mask": "MASK"}
    tiling = "split"

    def run(self, ctx, image):
        big = image.repeat(2, axis=1).repeat(2, axis=2)
        return {"image": big, "mask": (big[..., 0] > 0.5).astype(np.float32)}


@block("tiletest.noise", version="1.0.0")
class Noise(Block):
    """Noise from the node's seed (or the seed param): shows which seed each tile got."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}
    tiling = "split"

    class Params(Params):
        seed: int | None = Field(None, ge=0)

    def run(self, ctx, image):
        rng = np.random.default_rng(ctx.seed if self.params.seed is None else self.params.seed)
        return {"image": np.full_like(image, rng.random(), dtype=np.float32)}


@block("tiletest.pair", version="1.0.0")
class Pair(Block):
    """Two image inputs: cannot split."""

    inputs = {"a": In("IMAGE"), "b": In("IMAGE")}
    outputs = {"image": Out("IMAGE"), "score": Out("FLOAT")}
    tiling = "split"

    def run(self, ctx, a, b):
        return {"image": a, "score": 0.0}


@pytest.fixture(scope="module")
def catalog():
    plugin = SimpleNamespace(register_blocks=hookimpl(lambda: [Invert, Double, Noise, Pair]))
    host = load_plugins(entry_points=False, extra=[("tiletest", plugin)])
    assert not host.problems, [p.to_dict() for p in host.problems]
    return host.catalog


def image(h=50, w=70, seed=0):
    return np.random.default_rng(seed).random((2, h, w, 3), dtype=np.float32)


def source_graph(block_id: str, tile_spec: dict | None, **params) -> Graph:
    b = GraphBuilder()
    src = b.add("image.solid", id="src", width=8, height=8)
    b.add(block_id, id="t", image=src.image, **params)
    g = b.build()
    if tile_spec is not None:
        g.nodes["t"].tile = TileSpec(**tile_spec)
    return g


# -- the transform -----------------------------------------------------------------------------


def test_tile_resolves_annotations_and_leaves_its_input_alone(catalog):
    g = Graph.from_dict({"nodes": {
        "d": {"block": "sd.denoise", "tile": {"size": 64, "overlap": 16}},
        "v": {"block": "sd.vae_decode", "tile": {"size": 64, "stride": 48}},
        "i": {"block": "tiletest.invert", "tile": {"size": 32}},
        "plain": {"block": "image.grayscale"}}})
    before = g.to_dict()
    out = tile(g, catalog)
    assert g.to_dict() == before
    assert out.nodes["d"].tile == TileSpec(size=64, overlap=16, stride=48, strategy="multidiffusion")
    assert out.nodes["v"].tile == TileSpec(size=64, overlap=16, stride=48, strategy="vae")
    assert out.nodes["i"].tile == TileSpec(size=32, overlap=0, stride=32, strategy="split")
    assert out.nodes["plain"].tile is None and tiled_nodes(out) == ["d", "v", "i"]
    # equivalent annotations resolve alike, so they share content keys
    versions = catalog.versions()
    assert content_keys(out, versions)["d"] == content_keys(
        tile(Graph.from_dict({"nodes": {"d": {"block": "sd.denoise", "tile": {
            "size": 64, "stride": 48, "strategy": "multidiffusion"}}}}), catalog), versions)["d"]
    untiled = Graph.from_dict({"nodes": {"plain": {"block": "image.grayscale"}}})
    assert tile(untiled, catalog) is untiled  # nothing to do: no copy


def test_tile_refuses_what_a_strategy_cannot_run_all_at_once(catalog):
    g = Graph.from_dict({"nodes": {
        "d": {"block": "sd.denoise", "tile": {"size": 60, "overlap": 12}},
        "e": {"block": "sd.vae_encode", "tile": {"size": 64, "overlap": 12}},
        "v": {"block": "sd.vae_decode", "tile": {"size": 64, "overlap": 16, "circular": True}},
        "p": {"block": "tiletest.pair", "tile": {"size": 32}}}})
    with pytest.raises(GraphValidationError) as err:
        tile(g, catalog)
    got = [(e.node, e.field) for e in err.value.errors]
    assert got == [("d", "tile.size"), ("e", "tile.overlap"), ("v", "tile.circular"), ("p", "tile"),
                   ("p", "tile")]
    assert all(e.type == "invalid_tile" for e in err.value.errors)
    assert "multiple of 8" in err.value.errors[0].message
    assert "one IMAGE input" in err.value.errors[3].message and "score" in err.value.errors[4].message
    # validation reports them too, so the CLI, the API and the agent's repair loop see them
    assert [(e.node, e.field) for e in check(g, catalog) if e.type == "invalid_tile"] == got


def test_compile_runs_the_transform_after_validation(catalog):
    g = source_graph("tiletest.invert", {"size": 8, "overlap": 2})
    compiled = compile_graph(g, catalog)
    assert compiled.graph.nodes["t"].tile == resolve(TileSpec(size=8, overlap=2), "split")
    assert compiled.keys != compile_graph(source_graph("tiletest.invert", None), catalog).keys
    bad = source_graph("tiletest.invert", {"size": 8, "strategy": "vae"})
    with pytest.raises(GraphValidationError, match="tiles by 'split', not 'vae'"):
        compile_graph(bad, catalog)


# -- geometry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height", "size", "stride", "circular"), [
    (256, 64, 64, 48, False), (2048, 512, 512, 64, False), (160, 64, 64, 48, False),
    (64, 192, 64, 32, False), (256, 64, 64, 32, True), (48, 40, 64, 32, False)])
def test_view_count_agrees_with_the_views_and_they_cover_the_latent(width, height, size, stride, circular):
    views = get_views(height // 8, width // 8, size // 8, stride // 8, circular)
    assert len(views) == view_count(width, height, size, stride, circular)
    covered = np.zeros((height // 8, width // 8), bool)
    for h0, h1, w0, w1 in views:
        covered[h0:h1, w0:w1] = True
        if circular and w1 > width // 8:
            covered[h0:h1, : w1 - width // 8] = True
    assert covered.all()


def test_tile_starts_end_flush_and_chunks_balance():
    for length, size, stride in [(100, 40, 30), (64, 16, 16), (17, 8, 3), (8, 8, 4)]:
        starts = tile_starts(length, size, stride)
        assert starts[0] == 0 and starts[-1] == max(0, length - size)
        assert all(0 < b - a <= stride for a, b in itertools.pairwise(starts))
    assert [len(c) for c in chunks(7, 2)] == [4, 3] and [len(c) for c in chunks(2, 5)] == [1, 1]


def test_merge_of_unmodified_tiles_is_exact_and_scaled_tiles_land_scaled():
    img = image()
    tiles, positions = split_image(img, 32, 20)
    assert np.array_equal(merge_tiles(tiles, positions, (32, 32), (50, 70)), img)
    doubled = [t.repeat(2, axis=1).repeat(2, axis=2) for t in tiles]
    assert np.array_equal(merge_tiles(doubled, positions, (32, 32), (50, 70)),
                          img.repeat(2, axis=1).repeat(2, axis=2))
    masks = [t[..., 0] for t in tiles]
    assert np.array_equal(merge_tiles(masks, positions, (32, 32), (50, 70)), img[..., 0])


# -- the split strategy through the executor -------------------------------------------------------


def run_node(catalog, block_id, img, tile_spec, **params):
    """Run ``block_id`` on ``img`` (tiled when ``tile_spec``) through the in-process executor."""
    from orchestrator.runtime.tiling import Tiling, run_tiled

    cls = catalog.block_class(block_id)
    events: list[dict] = []
    ctx = Context(node="t", block=block_id, seed=42, on_event=events.append,
                  tile=Tiling.of(tile_spec and resolve(TileSpec(**tile_spec), "split")),
                  block_class=lambda b, v=None, n=None: catalog.block_class(b))
    block_ = cls(params)
    out = run_tiled(block_, ctx, {"image": img}) if tile_spec else block_.run(ctx, image=img)
    return out, events


def test_split_equals_the_untiled_block_where_the_block_is_local(catalog):
    img = image()
    for block_id in ("tiletest.invert", "tiletest.double"):
        whole, _ = run_node(catalog, block_id, img, None)
        tiled, events = run_node(catalog, block_id, img, {"size": 24, "overlap": 6})
        assert whole.keys() == tiled.keys()
        for port in whole:
            assert np.array_equal(whole[port], tiled[port]), (block_id, port)
        assert events[-1]["event"] == "tile" and events[-1]["step"] == events[-1]["total"] == 12
        assert events[-1]["workers"] == {"local": 12}


def test_split_tiles_get_seeds_of_their_own_also_from_a_seed_param(catalog):
    img = np.zeros((1, 40, 40, 3), np.float32)
    a, _ = run_node(catalog, "tiletest.noise", img, {"size": 16})
    b, _ = run_node(catalog, "tiletest.noise", img, {"size": 16})
    assert np.array_equal(a["image"], b["image"])  # deterministic
    corners = {float(a["image"][0, y, x, 0]) for y, x in [(0, 0), (0, 39), (39, 0), (39, 39)]}
    assert len(corners) == 4  # every tile its own noise
    c, _ = run_node(catalog, "tiletest.noise", img, {"size": 16}, seed=5)
    d, _ = run_node(catalog, "tiletest.noise", img, {"size": 16}, seed=6)
    assert float(c["image"][0, 0, 0, 0]) != float(c["image"][0, 39, 39, 0])
    assert not np.array_equal(c["image"], d["image"]) and not np.array_equal(a["image"], c["image"])
    assert tile_seed(5, 0) != tile_seed(5, 1) != tile_seed(6, 1)


def test_a_tiled_graph_runs_in_the_executor(catalog):
    b = GraphBuilder()
    src = b.add("image.solid", id="src", width=30, height=20, color=[0.2, 0.4, 0.6])
    b.add("tiletest.double", id="t", image=src.image)
    g = b.build()
    g.nodes["t"].tile = TileSpec(size=8, overlap=2)
    events: list[dict] = []
    out = LocalExecutor(catalog).run(g, on_event=events.append).outputs["t"]
    assert out["image"].shape == (1, 40, 60, 3)
    np.testing.assert_allclose(out["image"], 0 * out["image"] + [0.2, 0.4, 0.6], atol=1e-6)
    assert [e["node"] for e in events if e["event"] == "tile"][-1] == "t"


# -- the in-process runner ----------------------------------------------------------------------


def _square(tctx, item, shared):
    return item * item + shared


def _count(tctx, item, shared):
    shared["calls"] += 1
    return item


def test_local_runner_maps_in_order_and_stops_when_cancelled():
    events: list[dict] = []
    calls = {"calls": 0}
    ctx = Context(node="n", block="b", seed=0, job="j", on_event=events.append,
                  is_cancelled=lambda: calls["calls"] >= 5)
    runner = LocalTileRunner(ctx)
    assert runner.map(_square, [1, 2], shared=1, detail={"sampler_step": 1, "sampler_total": 3}) == [2, 5]
    assert events[-1] == {"event": "tile", "node": "n", "block": "b", "step": 2, "total": 2,
                          "sampler_step": 1, "sampler_total": 3, "workers": {"local": 2}}
    with pytest.raises(JobCancelled):
        runner.map(_count, list(range(10)), shared=calls)
    assert calls["calls"] == 5  # no tile ran after the cancel


def test_tile_functions_are_named_module_functions_and_tilings_resolve():
    assert function_name(_square) == f"{__name__}:_square"
    with pytest.raises(ValueError, match="module-level"):
        function_name(lambda tctx, item, shared: item)
    t = Tiling.from_dict({"size": 64, "overlap": 16, "strategy": "vae"})
    assert (t.stride, t.overlap, t.circular) == (48, 16, False)
    spec = BlockSpec("x.y", "1.0.0", outputs=(PortSpec("image", "IMAGE"),), tiling="split")
    assert spec.tiling == "split"
