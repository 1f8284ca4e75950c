"""Cross-job batching on the Ray scheduler: concurrent jobs' denoise nodes run side by side on
one worker, their UNet calls merged; images equal the in-process ones within 1/255."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
import sd_fixtures  # noqa: E402
from test_batching import JOIN_S, _graph, _reference  # noqa: E402

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

pytestmark = pytest.mark.slow
JOBS = 3


@pytest.fixture(scope="module")
def sched(ray_session, tmp_path_factory):
    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    # the denoise nodes of JOBS jobs meet at their UNet load (batching_provider), then batch;
    # the batcher's wait is long: it goes on arrivals and departures, never on this clock
    config = WorkerConfig(entry_points=False, provider="batching_provider:meeting_tiny_models",
                          provider_kwargs={"cache_dir": str(sd_fixtures.tiny_cache_dir()), "parties": JOBS},
                          sys_path=(str(TESTS),), cpu_threads=1, batch_max=8, batch_wait_ms=60_000.0)
    with Scheduler(config=config, gpus=1, input_root=tmp_path_factory.mktemp("in")) as s:
        s.wait_ready()
        yield s


def _submit_all(sched, graphs, on_event=None):
    return [sched.submit(g, job=f"ray{i}", on_event=on_event(i) if on_event else None)
            for i, g in enumerate(graphs)]


def test_jobs_on_one_worker_batch_and_match_in_process(sched, models):
    graphs = [
        _graph("txt2img", prompt="a red fox in the snow", seed=1, cfg=7.5, steps=6),
        _graph("txt2img", prompt="a lighthouse at dusk", seed=2, cfg=1.0, steps=8),
        _graph("txt2img", prompt="a bowl of fruit", negative_prompt="blurry", seed=3, cfg=4.0, steps=5),
    ]
    refs = _reference(models, graphs)
    handles = _submit_all(sched, graphs)
    worst = 0.0
    for h, ref in zip(handles, refs, strict=True):
        img = h.result(timeout=JOIN_S).outputs["decode"]["image"]
        diff = float(np.abs(np.asarray(img) - np.asarray(ref)).max())
        assert diff <= 1 / 255
        worst = max(worst, diff)
    print(f"\nRay scheduler: largest pixel difference batched vs alone {worst:.3g}")
    stats = sched.pool.slots[0].worker.stats()["batching"]
    assert stats["largest"] == JOBS and stats["batched_calls"] >= JOBS * 4, stats
    assert stats["participants"] == 0 and stats["running"] == 0


def test_cancelling_one_job_on_the_worker_leaves_the_others(sched, models):
    graphs = [_graph("txt2img", prompt=f"prompt {i}", seed=30 + i, steps=8) for i in range(JOBS - 1)]
    graphs.append(_graph("txt2img", prompt="the long one", seed=99, steps=400))
    refs = _reference(models, graphs[:-1])
    stepped = threading.Event()

    def on_event(i):
        def fn(e):
            if i == JOBS - 1 and e.get("event") == "step" and e.get("step", 0) >= 2:
                stepped.set()
        return fn

    handles = _submit_all(sched, graphs, on_event)
    assert stepped.wait(JOIN_S)
    assert sched.cancel(handles[-1].id)
    for h, ref in zip(handles[:-1], refs, strict=True):
        img = h.result(timeout=JOIN_S).outputs["decode"]["image"]
        assert float(np.abs(np.asarray(img) - np.asarray(ref)).max()) <= 1 / 255
    with pytest.raises(Exception) as info:
        handles[-1].result(timeout=JOIN_S)
    assert getattr(info.value, "type", None) == "cancelled"
