"""The reference in-process executor: order, inputs, seeds, errors, cache, events, outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graphs import Graph, GraphBuilder, GraphValidationError
from orchestrator import Block, In, JobCancelled, Out, Params, block, hookimpl
from orchestrator.errors import BlockError, JobError
from orchestrator.plugins import load_plugins
from orchestrator.runtime.cache import ResultCache
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.state.outputs import GRAPH_CHUNK

CALLS: list[str] = []


@block("t.noise", version="1.0.0")
class Noise(Block):
    """Random numbers from the node's seeded generator."""

    outputs = {"values": Out("ANY")}

    def run(self, ctx):
        CALLS.append(ctx.node)
        return {"values": ctx.rng.random(4)}


@block("t.sum", version="1.0.0")
class Sum(Block):
    """Sum of several inputs plus an optional one."""

    inputs = {"items": In("ANY", multiple=True), "extra": In("ANY", optional=True)}
    outputs = {"total": Out("FLOAT")}

    def run(self, ctx, items, extra=None):
        CALLS.append(ctx.node)
        return {"total": float(sum(np.sum(i) for i in items) + (0.0 if extra is None else np.sum(extra)))}


@block("t.fail", version="1.0.0")
class Fail(Block):
    """Raises."""

    outputs = {"x": Out("INT")}

    def run(self, ctx):
        raise ZeroDivisionError("division by zero in my block")


@block("t.wrong", version="1.0.0")
class Wrong(Block):
    """Returns an undeclared output."""

    outputs = {"x": Out("INT")}

    def run(self, ctx):
        return {"y": 1}


@block("t.steps", version="1.0.0")
class Steps(Block):
    """A loop that reports progress."""

    outputs = {"x": Out("INT")}

    class Params(Params):
        n: int = 3

    def run(self, ctx):
        for i in range(self.params.n):
            ctx.progress(i + 1, self.params.n)
        return {"x": self.params.n}


@hookimpl
def register_blocks():
    return [Noise, Sum, Fail, Wrong, Steps]


@pytest.fixture(scope="module")
def cat():
    import sys

    host = load_plugins(entry_points=False, extra=[("t", sys.modules[__name__])])
    assert not host.problems
    return host.catalog


def test_multiple_and_optional_inputs_and_seeds(cat):
    b = GraphBuilder()
    a = b.add("t.noise", id="a")
    a2 = b.add("t.noise", id="a2")
    b.add("t.sum", id="s", items=[a.values, a2.values])
    out = LocalExecutor(cat).run(b.build()).outputs
    # same block, same params: same content key, same seed
    assert np.array_equal(out["a"]["values"], out["a2"]["values"])
    assert out["s"]["total"] == pytest.approx(2 * out["a"]["values"].sum())
    again = LocalExecutor(cat).run(b.build()).outputs
    assert np.array_equal(again["a"]["values"], out["a"]["values"])  # reproducible


def test_block_failure_names_node_and_keeps_message(cat):
    b = GraphBuilder()
    b.add("t.fail", id="bad")
    with pytest.raises(BlockError) as info:
        LocalExecutor(cat).run(b.build())
    d = info.value.to_dict()
    assert d["type"] == "block_failed" and d["node"] == "bad"
    assert "division by zero in my block" in d["message"] and d["exception"] == "ZeroDivisionError"


def test_wrong_outputs_are_reported(cat):
    b = GraphBuilder()
    b.add("t.wrong", id="w")
    with pytest.raises(BlockError) as info:
        LocalExecutor(cat).run(b.build())
    assert info.value.to_dict()["missing"] == ["x"] and info.value.to_dict()["extra"] == ["y"]


def test_invalid_graph_is_refused_before_running(cat):
    CALLS.clear()
    g = Graph.from_dict({"nodes": {"a": {"block": "t.noise"}, "s": {"block": "t.sum"}}})
    with pytest.raises(GraphValidationError):
        LocalExecutor(cat).run(g)
    assert CALLS == []


def test_cache_serves_unchanged_nodes_whatever_their_ids(cat):
    cache = ResultCache()
    ex = LocalExecutor(cat, cache=cache)
    b = GraphBuilder()
    a = b.add("t.noise", id="a")
    b.add("t.sum", id="s", items=[a.values])
    CALLS.clear()
    ex.run(b.build())
    assert CALLS == ["a", "s"]
    b2 = GraphBuilder()
    a = b2.add("t.noise", id="renamed")
    b2.add("t.sum", id="s2", items=[a.values], extra=a.values)  # only the last step changed
    CALLS.clear()
    result = ex.run(b2.build())
    assert CALLS == ["s2"] and result.cached == {"renamed"}


def test_events_and_cancellation(cat):
    b = GraphBuilder()
    b.add("t.steps", id="loop", n=3)
    events = []
    LocalExecutor(cat).run(b.build(), on_event=events.append)
    assert [(e["event"], e.get("step")) for e in events] == [
        ("node_started", None), ("step", 1), ("step", 2), ("step", 3), ("node_finished", None)]
    flag = {"on": False}

    def cancel_at_two(event):
        if event.get("step") == 2:
            flag["on"] = True

    with pytest.raises(JobCancelled) as info:
        LocalExecutor(cat).run(b.build(), on_event=cancel_at_two, is_cancelled=lambda: flag["on"])
    assert info.value.to_dict()["node"] == "loop"
    with pytest.raises(JobError, match="cancelled"):
        LocalExecutor(cat).run(b.build(), is_cancelled=lambda: True)


def test_saved_png_embeds_the_graph(catalog, tmp_path):
    b = GraphBuilder()
    img = b.add("image.solid", width=5, height=3, color=[1.0, 0.0, 0.5], batch=2)
    b.add("image.save", image=img.image, name="pink")
    graph = b.build()
    result = LocalExecutor(catalog, outputs_dir=tmp_path).run(graph)
    assert [f["name"] for f in result.files] == ["pink_0", "pink_1"]
    png = Image.open(tmp_path / "pink_1.png")
    assert png.size == (5, 3) and png.getpixel((2, 1)) == (255, 0, 128)
    assert Graph.from_json(png.text[GRAPH_CHUNK]) == graph
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_save_is_never_served_from_cache(catalog, tmp_path):
    b = GraphBuilder()
    img = b.add("image.solid", width=2, height=2)
    b.add("image.save", image=img.image, name="x")
    ex = LocalExecutor(catalog, outputs_dir=tmp_path, cache=ResultCache())
    ex.run(b.build())
    (tmp_path / "x.png").unlink()
    result = ex.run(b.build())
    assert (tmp_path / "x.png").exists() and result.cached == {"solid"}


def test_bad_output_name_is_an_input_error(catalog):
    b = GraphBuilder()
    img = b.add("image.solid", width=2, height=2)
    b.add("image.save", id="s", image=img.image, name="ok")
    g = b.build()
    g.nodes["s"].params["name"] = "../escape"
    with pytest.raises(GraphValidationError) as info:
        LocalExecutor(catalog).run(g)
    assert info.value.errors[0].to_dict()["field"] == "params.name"


def test_inputs_confined_to_the_input_root(catalog, tmp_path):
    inside = tmp_path / "in"
    inside.mkdir()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(inside / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    b = GraphBuilder()
    b.add("image.load", id="l", path="a.png")
    ex = LocalExecutor(catalog, input_root=inside, confine_inputs=True)
    img = ex.run(b.build()).outputs["l"]["image"]
    assert img.shape == (1, 4, 4, 3) and round(float(img[0, 0, 0, 2]) * 255) == 30
    b2 = GraphBuilder()
    b2.add("image.load", id="l", path="../secret.png")
    with pytest.raises(BlockError) as info:
        ex.run(b2.build())
    assert info.value.to_dict()["field"] == "params.path" and "'..'" in info.value.message


def test_models_without_a_registry_fail_clearly(catalog):
    from orchestrator.context import Context

    ctx = Context(node="n", block="x.y", seed=1)
    with pytest.raises(BlockError, match="no model registry") as info:
        ctx.models.load("tiny-sd")
    assert info.value.to_dict()["type"] == "model"
