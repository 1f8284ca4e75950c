"""The Ray scheduler: the reference executor's semantics, the cache, model affinity, faults
(SIGKILL, poison node, timeout, failing block), cancellation, priorities, placement.

One scheduler (two workers on the session's two logical GPUs) serves most tests; tests that
need their own pool use CPU workers, which do not compete for the GPUs.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphs import Graph, GraphBuilder
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.runtime.scheduler import Scheduler
from orchestrator.runtime.worker import WorkerConfig

TESTS = str(Path(__file__).parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
fault_plugin = importlib.import_module("fault_plugin")

MODEL_BYTES = 1024 * 4
CONFIG = WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(TESTS,), entry_points=False,
                      provider="fault_plugin:CountingProvider",
                      provider_kwargs={"budget_bytes": 3 * MODEL_BYTES})


@pytest.fixture(scope="module")
def sched(ray_session):
    s = Scheduler(config=CONFIG, max_retries=2, cancel_grace=5.0)
    s.wait_ready()
    yield s
    s.shutdown()


def same(a: Any, b: Any) -> bool:
    """Deep equality of outputs: arrays and tensors by dtype, shape and value."""
    if type(a).__module__.startswith("torch") and hasattr(a, "dtype"):
        import torch

        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


class Events:
    """Collects events; ``wait_for`` blocks until one matches."""

    def __init__(self, hook=None) -> None:
        self.items: list[dict] = []
        self.hook = hook
        self.cond = threading.Condition()

    def __call__(self, event: dict) -> None:
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()
        if self.hook is not None:
            self.hook(event)

    def wait_for(self, timeout: float = 30.0, **match: Any) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.items:
                    if all(e.get(k) == v for k, v in match.items()):
                        return e
                left = deadline - time.monotonic()
                assert left > 0, f"no event {match} in {self.items}"
                self.cond.wait(left)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.items if e["event"] == kind]


def pid_of(sched: Scheduler, worker: str) -> int:
    return next(w["pid"] for w in sched.workers() if w["name"] == worker)


# -- graphs for the equivalence tests ------------------------------------------------------------


def image_pipeline() -> Graph:
    b = GraphBuilder()
    img = b.add("image.solid", width=6, height=4, color=[0.9, 0.4, 0.1], batch=2)
    gray = b.add("image.grayscale", image=img.image)
    b.add("image.save", id="save", image=gray.image, name="gray")
    return b.build()


def diamond() -> Graph:
    """Seeded GPU nodes and CPU nodes, a multiple input whose order matters, an optional input."""
    b = GraphBuilder()
    n1 = b.add("faults.noise", id="n1", width=5, height=3)
    n2 = b.add("faults.noise", id="n2", width=5, height=3)
    inv = b.add("faults.invert", image=n1.image)
    gray = b.add("image.grayscale", image=n2.image)
    b.add("faults.mix", id="mix", images=[gray.image, inv.image, n1.image])
    b.add("faults.mix", id="mix_rev", images=[n1.image, inv.image, gray.image])
    return b.build()


def models_graph() -> Graph:
    b = GraphBuilder()
    a = b.add("faults.model", id="a", model="eq-1")
    b.add("faults.model", id="b", model="eq-2", scale=2.0, after=a.value)
    b.add("faults.model", id="c", model="eq-1", scale=-1.0)
    return b.build()


def long_chain() -> Graph:
    b = GraphBuilder()
    prev = b.add("faults.noop", id="c0", value=0)
    for i in range(1, 25):
        prev = b.add("faults.noop", id=f"c{i}", value=i, after=[prev.value])
    b.add("faults.cpu_noop", id="tail", after=[prev.value], value=99)
    return b.build()


GRAPHS = {"image_pipeline": image_pipeline, "diamond": diamond, "models": models_graph,
          "long_chain": long_chain}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_outputs_equal_the_reference_executor(sched, name, tmp_path):
    graph = GRAPHS[name]()
    local = LocalExecutor(sched.catalog, models=fault_plugin.CountingProvider(),
                          outputs_dir=tmp_path).run(graph)
    sched.clear_cache()
    ours = sched.run(graph, outputs_dir=tmp_path)
    assert set(ours.outputs) == set(local.outputs) == set(graph.nodes)
    for node in graph.nodes:
        assert same(ours.outputs[node], local.outputs[node]), node
    assert ours.files == local.files
    assert same(ours.images, local.images)
    assert set(ours.timings) == set(local.timings) and not ours.cached


@pytest.fixture(scope="module")
def sd_pool(ray_session, tmp_path_factory):
    """One CPU worker with the real ModelManager over the tiny models, inputs in a folder."""
    pytest.importorskip("plugins.sd")
    import torch
    from sd_fixtures import noise_image, rect_mask, tiny_cache_dir, write_png

    inputs = tmp_path_factory.mktemp("sd-inputs")
    write_png(inputs / "input.png", noise_image(64))
    write_png(inputs / "mask.png", rect_mask(64))
    config = WorkerConfig(entry_points=False, provider="fault_plugin:tiny_model_manager",
                          provider_kwargs={"cache_dir": str(tiny_cache_dir())}, sys_path=(TESTS,),
                          cpu_threads=torch.get_num_threads())
    with Scheduler(config=config, gpus=0, cpu_workers=1, input_root=inputs) as s:
        yield s, inputs


@pytest.mark.parametrize("template", [
    "txt2img",
    pytest.param("img2img", marks=pytest.mark.slow),
    pytest.param("inpaint", marks=pytest.mark.slow),
    pytest.param("hires_fix", marks=pytest.mark.slow),
    pytest.param("sdxl_txt2img", marks=pytest.mark.slow),
])
def test_library_templates_equal_the_reference_executor(sd_pool, template, tmp_path):
    """Templates on the tiny models through a real worker and the real ModelManager: the same
    tensors, bit for bit (with the worker's torch threads set to the driver's)."""
    from sd_fixtures import tiny_cache_dir

    from graphs import load_template
    from orchestrator.models import ModelManager, ModelRegistry

    sched, inputs = sd_pool
    graph = load_template(template)
    for node in graph.nodes.values():
        if "steps" in node.params:
            node.params["steps"] = 2
    local = LocalExecutor(sched.catalog, models=ModelManager(ModelRegistry(cache_dir=tiny_cache_dir())),
                          outputs_dir=tmp_path, input_root=inputs).run(graph)
    ours = sched.run(graph, outputs_dir=tmp_path)
    for node in graph.nodes:
        assert same(ours.outputs[node], local.outputs[node]), node
    assert ours.files == local.files and same(ours.images, local.images)


def test_a_failing_block_fails_its_job_like_the_reference_and_the_worker_goes_on(sched):
    b = GraphBuilder()
    a = b.add("faults.noop", id="a")
    b.add("faults.fail", id="bad", after=a.value, message="bad things")
    graph = b.build()
    with pytest.raises(BlockError) as local:
        LocalExecutor(sched.catalog).run(graph)
    ev = Events()
    with pytest.raises(BlockError) as ours:
        sched.run(graph, on_event=ev)
    assert ours.value.to_dict() == local.value.to_dict()
    assert ours.value.message == "node 'bad' (faults.fail) failed: ValueError: bad things"
    worker = ev.wait_for(event="node_started", node="bad")["worker"]
    pid = pid_of(sched, worker)
    assert sched.run(graph_of_sleeps(2, 0.0, "after-fail")).outputs  # the pool serves the next job
    assert pid_of(sched, worker) == pid  # the same process: nothing was killed


def test_a_failing_chain_node_does_not_run_what_was_queued_behind_it(sched):
    b = GraphBuilder()
    prev = b.add("faults.noop", id="c0")
    prev = b.add("faults.fail", id="c1", after=prev.value, message="chain breaks")
    for i in range(2, 6):
        prev = b.add("faults.noop", id=f"c{i}", after=[prev.value])
    ev = Events()
    with pytest.raises(BlockError, match="chain breaks"):
        sched.run(b.build(), on_event=ev)
    assert {e["node"] for e in ev.of("node_started")} <= {"c0", "c1", "c2"}
    assert not [e for e in ev.of("node_finished") if e["node"] not in ("c0",)]


# -- the cache -------------------------------------------------------------------------------------


def graph_of_sleeps(
    n: int, seconds: float, tag: str, last_tag: str | None = None, prefix: str = "s"
) -> Graph:
    """A chain of ``n`` sleeping nodes ``s0 -> s1 -> ...``."""
    b = GraphBuilder()
    prev = None
    for i in range(n):
        t = last_tag if (last_tag is not None and i == n - 1) else tag
        kw = {"after": [prev.pid]} if prev is not None else {}
        prev = b.add("faults.sleep", id=f"{prefix}{i}", seconds=seconds, tag=t, **kw)
    return b.build()


def test_cache_across_jobs_by_content_whatever_the_node_ids(sched):
    g = graph_of_sleeps(4, 0.05, "cache")
    first = sched.run(g)
    assert not first.cached
    again = sched.run(g)
    assert again.cached == set(g.nodes) and not again.timings
    assert same(again.outputs, first.outputs)
    renamed = graph_of_sleeps(4, 0.05, "cache", prefix="other_")
    assert sched.run(renamed).cached == set(renamed.nodes)
    changed = sched.run(graph_of_sleeps(4, 0.05, "cache", last_tag="new"))
    assert changed.cached == {"s0", "s1", "s2"} and set(changed.timings) == {"s3"}
    stats = sched.stats()["cache"]
    assert stats["hits"] >= 3 + 4 + 4 and stats["entries"] >= 5


def test_the_cache_is_bounded():
    from orchestrator.runtime.jobs import ObjectCache

    c = ObjectCache(max_entries=3, max_bytes=1000)
    for i in range(5):
        c.put(str(i), f"ref{i}", 100)
    assert len(c) == 3 and "0" not in c and c.bytes == 300
    c.put("big", "ref", 900)  # the oldest go until the bytes fit again
    assert list(c._data) == ["4", "big"] and c.bytes == 1000
    c.put("huge", "ref", 5000)
    assert "huge" not in c


# -- events --------------------------------------------------------------------------------------------


def test_events_progress_before_finish_and_every_node_reported(sched):
    b = GraphBuilder()
    s = b.add("faults.steps", id="s", steps=5, delay=0.05)
    b.add("faults.noop", id="n", after=[s.steps])
    ev = Events()
    sched.run(b.build(), on_event=ev)
    kinds = [(e["event"], e["node"]) for e in ev.items]
    assert kinds == [("node_started", "s")] + [("step", "s")] * 5 + [
        ("node_finished", "s"), ("node_started", "n"), ("node_finished", "n")]
    assert [e["step"] for e in ev.of("step")] == [1, 2, 3, 4, 5]


# -- models ----------------------------------------------------------------------------------------------


def loads(sched: Scheduler, model: str) -> int:
    return sum(w["models"]["load_counts"].get(model, 0) for w in sched.worker_stats())


def test_model_affinity_loads_once_and_the_next_job_reuses_it(sched):
    def job(*models: str, scale: float = 1.0) -> Graph:
        b = GraphBuilder()
        for i, model in enumerate(models):
            b.add("faults.model", id=f"m{i}", model=model, scale=scale)
        return b.build()

    ev = Events()
    sched.run(job("aff-1", "aff-2"), on_event=ev)  # two nodes at once: one on each worker
    where = {e["node"]: e["worker"] for e in ev.of("node_started")}
    w1, w2 = where["m0"], where["m1"]
    assert w1 != w2
    for scale in (2.0, 3.0):  # later jobs go where their model already is
        ev = Events()
        sched.run(job("aff-2", "aff-1", scale=scale), on_event=ev)
        assert {e["node"]: e["worker"] for e in ev.of("node_started")} == {"m0": w2, "m1": w1}
    assert loads(sched, "aff-1") == 1 and loads(sched, "aff-2") == 1
    held = {w["name"]: w["models"] for w in sched.workers()}
    assert "aff-1" in held[w1] and "aff-2" in held[w2]


def test_eviction_is_seen_by_the_scheduler(sched):
    """Four models through one worker under a three-model budget: the first is evicted."""
    b = GraphBuilder()
    prev = None
    for i in range(4):
        kw = {"after": prev.value} if prev is not None else {}
        prev = b.add("faults.model", id=f"m{i}", model=f"lru-{i}", **kw)
    ev = Events()
    sched.run(b.build(), on_event=ev)
    (name,) = {e["worker"] for e in ev.of("node_started")}  # a chain stays on its worker
    held = next(w["models"] for w in sched.workers() if w["name"] == name)
    assert "lru-0" not in held and {"lru-1", "lru-2", "lru-3"} <= set(held)
    stats = next(w for w in sched.worker_stats() if w["name"] == name)["models"]
    assert stats["resident"] == ["lru-1", "lru-2", "lru-3"] and stats["bytes"] == 3 * MODEL_BYTES


# -- faults ------------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_node_is_replaced_and_the_node_retried(sched):
    killed: list[int] = []

    def kill_on_first_step(event: dict) -> None:
        if event["event"] == "step" and not killed:
            pid = pid_of(sched, started["worker"])
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    started: dict = {}

    def hook(event: dict) -> None:
        if event["event"] == "node_started" and event["node"] == "victim":
            started.update(event)
        kill_on_first_step(event)

    b = GraphBuilder()
    v = b.add("faults.steps", id="victim", steps=15, delay=0.04)
    b.add("faults.noop", id="after", after=[v.steps])
    ev = Events(hook)
    result = sched.run(b.build(), on_event=ev)
    assert killed and result.outputs["victim"]["steps"] == 15
    assert result.outputs["victim"]["pid"] != killed[0]
    retry = ev.wait_for(event="node_retry", node="victim")
    assert retry["attempt"] == 1 and "died" in retry["error"]
    sched.wait_ready(60)
    pids = {w["pid"] for w in sched.workers()}
    assert killed[0] not in pids and len(pids) == 2


def test_a_poison_node_fails_its_job_after_bounded_retries_while_others_complete(sched):
    b = GraphBuilder()
    b.add("faults.exit", id="poison")
    poison = sched.submit(b.build(), job="poison-job")
    ev = Events()
    others = [sched.submit(graph_of_sleeps(3, 0.1, f"bystander-{i}"), on_event=ev) for i in range(2)]
    with pytest.raises(JobError) as exc:
        poison.result(timeout=120)
    err = exc.value
    assert err.type == "worker_died" and err.node == "poison" and err.details["attempts"] == 3
    assert "lost its worker 3 times" in err.message and "giving up after 2 retries" in err.message
    for h in others:
        assert len(h.result(timeout=120).outputs) == 3
    sched.wait_ready(60)  # the pool healed
    assert len(sched.run(graph_of_sleeps(2, 0.0, "healed")).outputs) == 2


def test_a_hung_block_times_out_and_its_worker_is_replaced(sched):
    b = GraphBuilder()
    b.add("faults.hang", id="hang")
    t0 = time.monotonic()
    with pytest.raises(JobError) as exc:
        sched.run(b.build(), node_timeout=1.0)
    assert exc.value.type == "timeout" and exc.value.node == "hang"
    assert "timed out after 1 s" in exc.value.message
    assert time.monotonic() - t0 < 120  # the hang is endless: any bound shows the timeout acted
    sched.wait_ready(60)
    assert sched.run(graph_of_sleeps(1, 0.0, "after-hang")).outputs


# -- cancellation ------------------------------------------------------------------------------------------


def test_cancel_stops_the_running_node_at_a_step_and_frees_its_worker(sched):
    b = GraphBuilder()
    s = b.add("faults.steps", id="long", steps=400, delay=0.01)
    b.add("faults.noop", id="never", after=[s.steps])
    ev = Events()
    handle = sched.submit(b.build(), on_event=ev)
    ev.wait_for(event="step", node="long")
    worker = ev.wait_for(event="node_started", node="long")["worker"]
    pid = pid_of(sched, worker)
    t0 = time.monotonic()
    assert handle.cancel() is True
    with pytest.raises(JobError) as exc:
        handle.result(timeout=30)
    assert exc.value.type == "cancelled" and time.monotonic() - t0 < 60
    assert len(ev.of("step")) < 400 and "never" not in {e["node"] for e in ev.of("node_started")}
    assert handle.cancel() is False  # over
    state = next(w for w in sched.workers() if w["name"] == worker)
    assert state["queued"] == 0 and state["pid"] == pid  # freed, not killed


def test_run_polls_is_cancelled_like_the_reference_executor(sched):
    b = GraphBuilder()
    b.add("faults.steps", id="long", steps=400, delay=0.01)
    flag = threading.Event()
    ev = Events(lambda e: flag.set() if e["event"] == "step" else None)
    with pytest.raises(JobError) as exc:
        sched.run(b.build(), on_event=ev, is_cancelled=flag.is_set)
    assert exc.value.type == "cancelled" and len(ev.of("step")) < 400


# -- placement, priorities, fairness ------------------------------------------------------------------------


def test_a_fan_out_is_placed_over_both_logical_gpus(sched):
    b = GraphBuilder()
    for i in range(4):
        b.add("faults.sleep", id=f"f{i}", seconds=0.3, tag="fan")
    ev = Events()
    result = sched.run(b.build(), on_event=ev)
    used = {e["worker"] for e in ev.of("node_started")}
    assert len(used) == 2
    assert len({out["pid"] for out in result.outputs.values()}) == 2
    gpu_ids = {tuple(w["gpu_ids"]) for w in sched.workers() if w["name"] in used}
    assert gpu_ids == {("0",), ("1",)}


def fan(n: int, seconds: float, tag: str) -> Graph:
    b = GraphBuilder()
    for i in range(n):
        b.add("faults.sleep", id=f"{tag}{i}", seconds=seconds, tag=tag)
    return b.build()


@pytest.fixture(scope="module")
def one_worker(ray_session):
    """A pool of one CPU worker, no queueing: strict order (needs no GPU)."""
    s = Scheduler(config=CONFIG, gpus=0, cpu_workers=1, queue_depth=1)
    s.wait_ready()
    yield s
    s.shutdown()


def test_higher_priority_first_then_fair_shares(one_worker):
    order: list[str] = []
    lock = threading.Lock()

    def record(event: dict) -> None:
        if event["event"] == "node_started":
            with lock:
                order.append(event["node"])

    first = Events()
    low = one_worker.submit(fan(3, 0.25, "low"), on_event=lambda e: (record(e), first(e)))
    first.wait_for(event="node_started")
    other = one_worker.submit(fan(2, 0.1, "other"), on_event=record)
    high = one_worker.submit(fan(2, 0.1, "high"), priority=10, on_event=record)
    for h in (low, other, high):
        h.result(timeout=60)
    assert order[:3] == ["low0", "high0", "high1"]
    # then the two equal-priority jobs take turns, the one served least recently first
    assert order[3:] == ["other0", "low1", "other1", "low2"]


@pytest.mark.slow  # ~25-55 s on 2 cores; the fast run keeps the Ray engine in test_scheduler
def test_a_late_high_priority_job_waits_for_at_most_the_queued_node(ray_session):
    with Scheduler(config=CONFIG, gpus=0, cpu_workers=1, queue_depth=2) as s:
        s.wait_ready()
        order: list[str] = []
        started = Events()

        def record(event: dict) -> None:
            if event["event"] == "node_started":
                order.append(event["node"])
            started(event)

        low = s.submit(fan(4, 0.2, "low"), on_event=record)
        started.wait_for(event="node_started")
        high = s.submit(fan(2, 0.05, "high"), priority=5, on_event=record)
        low.result(timeout=60)
        high.result(timeout=60)
    assert order[:4] == ["low0", "low1", "high0", "high1"]


def test_scheduler_is_an_engine_with_stats_and_refuses_work_after_shutdown(ray_session):
    s = Scheduler(config=CONFIG, gpus=0, cpu_workers=1)
    stats = s.stats()
    assert stats["engine"] == "ray" and len(stats["workers"]) == 1 and s.capacity >= 1
    s.shutdown()
    with pytest.raises(JobError, match="shut down"):
        s.submit(fan(1, 0.0, "x"))


def test_the_daemon_gets_a_ray_engine_from_its_settings(ray_session, tmp_path):
    from orchestrator.config import load_settings
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.ray_engine import RayEngine
    from orchestrator.server.daemon import make_engine

    settings = load_settings(env={"ORCHESTRATOR_STATE_DIR": str(tmp_path), "ORCHESTRATOR_WORKERS": "1"},
                             config_file=None)
    host = load_plugins(entry_points=False)
    engine = RayEngine(host.catalog, settings, gpus=0)  # the GPUs are this module's scheduler's
    try:
        assert engine.config.provider == "orchestrator.models:provider_from_settings"
        b = GraphBuilder()
        img = b.add("image.solid", width=3, height=2)
        b.add("image.grayscale", image=img.image)
        result = engine.run(b.build(), job="daemon-job", priority=0, outputs_dir=tmp_path / "out",
                            on_event=lambda e: None, is_cancelled=lambda: False)
        assert result.outputs["grayscale"]["image"].shape == (1, 2, 3, 3)
        stats = engine.stats()
        assert stats["engine"] == "ray" and len(stats["workers"]) == 1
        assert stats["workers"][0]["nodes_run"] == 2  # no GPU: the CPU worker runs every block
    finally:
        engine.shutdown()
    assert callable(make_engine)


def test_workers_that_cannot_be_placed_fail_gpu_jobs_with_a_clear_error(sched):
    """Both GPUs belong to ``sched``: a second GPU pool cannot start; its GPU jobs fail, CPU
    jobs still run."""
    with Scheduler(config=CONFIG, gpus=1, start_timeout=1.0) as other:
        b = GraphBuilder()
        b.add("faults.noop", id="gpu_node")
        with pytest.raises(JobError) as exc:
            other.run(b.build())
        assert exc.value.type == "worker_died" and "no worker started within 1 s" in exc.value.message
        b = GraphBuilder()
        b.add("faults.cpu_noop", id="cpu_node", value=5)
        assert other.run(b.build()).outputs["cpu_node"] == {"value": 5}


def test_a_cpu_task_error_is_the_blocks_own(sched):
    """A light CPU block (a Ray task here) that fails: the same error, relative paths resolved
    where the caller is, as in-process."""
    b = GraphBuilder()
    b.add("image.load", id="load", path="no-such-dir/missing.png")
    graph = b.build()
    with pytest.raises(BlockError) as local:
        LocalExecutor(sched.catalog).run(graph)
    ev = Events()
    with pytest.raises(BlockError) as ours:
        sched.run(graph, on_event=ev)
    assert ev.wait_for(event="node_started")["worker"] == "task"
    assert ours.value.to_dict() == local.value.to_dict() and ours.value.type == "input"
