"""The worker: its logic without Ray (running, errors, cancellation, progress, models), then
the Ray actor facade (GPU placement, concurrent cancel, errors translated, shutdown)."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from graphs import GraphBuilder
from orchestrator.errors import BlockError, JobCancelled, JobError
from orchestrator.runtime.compile import compile_graph
from orchestrator.runtime.executor import LocalExecutor, execute_block
from orchestrator.runtime.worker import (
    RecordingSink,
    Worker,
    WorkerConfig,
    WorkerCore,
    decode_meta,
    encode_meta,
    plugin_host,
    provider_stats,
    resolve_slots,
    translate_error,
)
from orchestrator.state.outputs import DirectorySink

TESTS = str(Path(__file__).parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
fault_plugin = importlib.import_module("fault_plugin")

MODEL_BYTES = 1024 * 4  # CountingProvider's default "weights": 1024 float32


def config(**provider_kwargs) -> WorkerConfig:
    return WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(TESTS,), entry_points=False,
                        provider="fault_plugin:CountingProvider", provider_kwargs=provider_kwargs)


@pytest.fixture()
def core() -> WorkerCore:
    return WorkerCore(config(), name="w0")


# -- the plain class --------------------------------------------------------------------------


def test_runs_a_node_like_the_reference_executor(core):
    catalog = plugin_host(core.config).catalog
    b = GraphBuilder()
    b.add("faults.noise", id="n", width=5, height=3)
    compiled = compile_graph(b.build(), catalog)
    local = LocalExecutor(catalog).run(compiled).outputs["n"]
    out, meta = core.run_node("faults.noise", {"width": 5, "height": 3}, {}, seed=compiled.seed("n"),
                              job="j", node="n", version="1.0.0")
    assert meta["error"] is None and meta["worker"] == "w0"
    # the pixels plus the small overhead of the array and dict objects (cache.measure_bytes)
    assert 5 * 3 * 3 * 4 <= meta["nbytes"] < 5 * 3 * 3 * 4 + 1024
    np.testing.assert_array_equal(out["image"], local["image"])


def test_a_block_that_raises_is_an_error_in_meta_not_an_exception(core):
    out, meta = core.run_node("faults.fail", {"message": "nope"}, {}, seed=0, job="j", node="bad")
    assert out is None
    err = meta["error"]
    assert isinstance(err, BlockError) and err.type == "block_failed" and err.node == "bad"
    assert err.message == "node 'bad' (faults.fail) failed: ValueError: nope"
    assert "ValueError: nope" in meta["traceback"]
    # the same message as the reference executor's
    cls = core.block_class("faults.fail")
    with pytest.raises(BlockError) as local:
        from orchestrator.context import Context

        execute_block(cls, {"message": "nope"}, Context(node="bad", block="faults.fail", seed=0), {})
    assert local.value.to_dict() == err.to_dict()
    # and the worker serves the next node
    out, meta = core.run_node("faults.noop", {"value": 3}, {}, seed=0)
    assert out == {"value": 3} and meta["error"] is None


def test_unknown_block_and_version_skew_are_plugin_errors(core):
    _, meta = core.run_node("nope.block", {}, {}, seed=0, node="x")
    assert meta["error"].type == "plugin" and "not registered on worker 'w0'" in meta["error"].message
    _, meta = core.run_node("faults.noop", {}, {}, seed=0, node="x", version="9.9.9")
    assert meta["error"].type == "plugin" and "compiled against 9.9.9" in meta["error"].message


def test_cancel_before_and_during_a_node(core):
    core.cancel("j1")
    _, meta = core.run_node("faults.noop", {}, {}, seed=0, job="j1", node="a")
    assert isinstance(meta["error"], JobCancelled)

    def cancel_soon() -> None:
        time.sleep(0.15)
        assert core.cancel("j2") is True  # it is running here

    t = threading.Thread(target=cancel_soon)
    t.start()
    t0 = time.monotonic()
    _, meta = core.run_node("faults.steps", {"steps": 200, "delay": 0.01}, {}, seed=0, job="j2", node="s")
    t.join()
    assert time.monotonic() - t0 < 60  # answered; the step count below shows where it stopped
    assert meta["error"].type == "cancelled" and meta["error"].node == "s"
    steps = [e["step"] for e in meta["events"]]
    assert steps and steps == list(range(1, len(steps) + 1)) and len(steps) < 200
    # other jobs are not affected
    out, _ = core.run_node("faults.steps", {"steps": 2, "delay": 0.0}, {}, seed=0, job="j3")
    assert out["steps"] == 2


def test_progress_events_are_long_polled_per_node(core):
    got: list[dict] = []

    def poll() -> None:
        time.sleep(0.05)
        while True:
            events = core.drain_events("j", "s", timeout=1.0)
            if not events:
                return
            got.extend(events)

    t = threading.Thread(target=poll)
    t.start()
    _, meta = core.run_node("faults.steps", {"steps": 10, "delay": 0.03}, {}, seed=0, job="j", node="s")
    t.join(5)
    assert not t.is_alive()  # the poll returned once the node was over
    steps = [e["step"] for e in got + meta["events"]]
    assert steps == list(range(1, 11)) and got  # none lost, none twice, some arrived while running
    assert core.drain_events("j", "s", timeout=5.0) == []  # over: returns at once


def test_models_load_once_and_stats_report_them(core):
    for _ in range(3):
        _out, meta = core.run_node("faults.model", {"model": "m1"}, {}, seed=1)
        assert meta["error"] is None
    stats = core.stats()
    assert stats["models"]["load_counts"] == {"m1": 1} and stats["models"]["resident"] == ["m1"]
    assert stats["models"]["bytes"] == MODEL_BYTES and stats["nodes_run"] == 3
    assert stats["rss_bytes"] > 0 and stats["device"] == "cpu" and stats["running"] is None


def test_lru_eviction_under_a_small_budget():
    core = WorkerCore(config(budget_bytes=2 * MODEL_BYTES), name="small")
    for name in ("m1", "m2", "m1", "m3"):  # m1 used again: m2 is now the least recent
        _, meta = core.run_node("faults.model", {"model": name}, {}, seed=0)
        assert meta["error"] is None
    models = core.stats()["models"]
    assert models["resident"] == ["m1", "m3"] and models["bytes"] <= 2 * MODEL_BYTES
    assert models["load_counts"] == {"m1": 1, "m2": 1, "m3": 1}
    core.run_node("faults.model", {"model": "m2"}, {}, seed=0)  # evicted before: loaded again
    assert core.stats()["models"]["load_counts"]["m2"] == 2
    assert core.stats()["models"]["resident"] == ["m3", "m2"]


def test_no_provider_means_a_clear_model_error():
    core = WorkerCore(WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(TESTS,),
                                   entry_points=False))
    _, meta = core.run_node("faults.model", {"model": "m1"}, {}, seed=0, node="m")
    assert meta["error"].type == "model" and "needs model 'm1'" in meta["error"].message
    assert provider_stats(None) == {}


def test_model_manager_reports_in_the_same_shape():
    class FakeManager:  # orchestrator.models.ModelManager's report()
        def report(self):
            return {"held": [{"model": "tiny-sd", "component": "unet", "bytes": 10},
                             {"model": "tiny-sd", "component": "vae", "bytes": 5}],
                    "bytes_used": 15, "budget_bytes": 100, "load_counts": {"tiny-sd": 2},
                    "hits": 4, "evictions": 1}

    assert provider_stats(FakeManager()) == {
        "resident": ["tiny-sd"], "loads": 2, "load_counts": {"tiny-sd": 2}, "bytes": 15,
        "budget": 100, "hits": 4, "evictions": 1}


def test_saved_images_are_recorded_with_the_paths_a_directory_sink_gives(tmp_path):
    image = np.zeros((2, 4, 4, 3), np.float32)
    rec = RecordingSink(tmp_path)
    real = DirectorySink(tmp_path)
    assert rec.save_image("n", "out", image) == real.save_image("n", "out", image)
    assert [r[:2] for r in rec.records] == [("n", "out")]
    assert RecordingSink(None).save_image("n", "one", image[:1]) == ["one"]
    with pytest.raises(BlockError, match="must be 1-100 letters"):
        rec.save_image("n", "../x", image)
    with pytest.raises(BlockError, match=r"wants \[B, H, W, C\]"):
        rec.save_image("n", "x", image[0])


def test_slots_and_meta_travel_as_plain_data():
    assert resolve_slots({"a": (1, "x"), "b": [[0, "y"]]}, ({"y": 2}, {"x": 1})) == {"a": 1, "b": [2]}
    err = BlockError("boom", type="block_failed", node="n", block="b")
    back = decode_meta(encode_meta({"error": err}))["error"]
    assert back.to_dict() == err.to_dict()


def test_ray_errors_become_ours():
    from ray import exceptions as rex

    assert translate_error(rex.GetTimeoutError(), node="n").type == "timeout"
    assert translate_error(rex.TaskCancelledError(), node="n").type == "cancelled"
    died = translate_error(rex.ActorDiedError(), node="n", worker="gpu0.1")
    assert died.type == "worker_died" and died.node == "n" and "gpu0.1" in died.message
    mine = BlockError("x", type="model")
    assert translate_error(mine) is mine


# -- the Ray actor ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_worker(ray_session):
    w = Worker(config(), "gpu-test")
    yield w
    w.shutdown()


def test_actor_runs_on_a_logical_gpu(gpu_worker):
    info = gpu_worker.info()
    assert info["name"] == "gpu-test" and len(info["gpu_ids"]) == 1 and info["device"] == "cpu"
    out, meta = gpu_worker.run("faults.model", {"model": "m1"}, {}, seed=3)
    assert out["value"].shape == (8,) and meta["models"]["resident"] == ["m1"]
    assert gpu_worker.run("faults.sleep", {"seconds": 0}, {})[0]["pid"] == info["pid"]
    # inputs travel with the request
    out, _ = gpu_worker.run("faults.mix", {}, {"images": [np.ones((1, 2, 2, 3), np.float32)]})
    assert out["image"].shape == (1, 2, 2, 3)


def test_actor_block_error_is_raised_as_ours(gpu_worker):
    with pytest.raises(BlockError, match="ValueError: kaput"):
        gpu_worker.run("faults.fail", {"message": "kaput"}, {}, node="f")
    assert gpu_worker.run("faults.noop", {"value": 1}, {})[0] == {"value": 1}


def test_actor_cancel_lands_while_a_node_runs(gpu_worker):
    _out_ref, meta_ref = gpu_worker.submit(
        {"block": "faults.steps", "params": {"steps": 300, "delay": 0.01}, "inputs": {}, "seed": 0,
         "job": "jc", "node": "s"})
    time.sleep(0.3)
    t0 = time.monotonic()
    gpu_worker.cancel("jc")  # served by the control group while run() is busy
    import ray

    meta = decode_meta(ray.get(meta_ref, timeout=10))
    assert time.monotonic() - t0 < 60  # the step count shows it stopped early, not the clock
    assert meta["error"].type == "cancelled" and len(meta["events"]) < 300
    stats = gpu_worker.stats()
    assert stats["running"] is None and stats["cancelled_jobs"] >= 1


def first_error(call, seconds: float = 30.0) -> JobError:
    """The error ``call`` raises once the actor is gone (``ray.kill`` lands asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call()
        except JobError as exc:
            return exc
        time.sleep(0.1)
    raise AssertionError("the actor still answers")


def test_actor_killed_is_worker_died_and_shutdown_is_clean(ray_session):
    w = Worker(config(), "doomed", gpu=False, num_cpus=0)
    assert w.info()["pid"] > 0
    w.kill()
    err = first_error(lambda: w.info(timeout=10))
    assert err.type == "worker_died" and "worker process died" in err.message
    w2 = Worker(config(), "polite", gpu=False, num_cpus=0)
    w2.info()
    w2.shutdown(timeout=10)
    assert first_error(lambda: w2.stats(timeout=10)).type == "worker_died"
