"""Tiled nodes on the Ray scheduler: tiles and views spread over every worker, the same results.

One scheduler with 1 worker, then one with 2 (the session's two logical GPUs), the real
ModelManager over the tiny models, and torch on one thread in the workers as here, so their
bits are the in-process executor's:

- MultiDiffusion equals diffusers' panorama pipeline (<= 1/255) on 1 and on 2 workers;
- the tiled VAE and the tiled upscale give the in-process executor's result exactly, so
  the result does not depend on the number of workers;
- with 2 workers both run tiles; cancelling stops every tile.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from orchestrator.errors import JobError
from orchestrator.runtime.executor import LocalExecutor

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
import sd_fixtures  # noqa: E402
from test_tiling_sd import TOL, panorama_graph, panorama_pipeline, tiled_vae, upscale_graph  # noqa: E402

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry
RESULTS: dict[str, dict[int, np.ndarray]] = {}  # what each pool size gave, to compare across sizes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiling-ray-inputs")
    sd_fixtures.write_png(d / "small.png", sd_fixtures.noise_image(32, seed=4))
    return d


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def pool(request, ray_session, inputs):
    """A scheduler with ``request.param`` workers (one at a time: they share two logical GPUs)."""
    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    config = WorkerConfig(entry_points=False, provider="fault_plugin:tiny_model_manager",
                          provider_kwargs={"cache_dir": str(sd_fixtures.tiny_cache_dir())},
                          sys_path=(str(TESTS),), cpu_threads=1)
    with Scheduler(config=config, gpus=request.param, input_root=inputs, cancel_grace=20.0) as s:
        s.wait_ready()
        yield request.param, s


@pytest.fixture(scope="module")
def local(catalog, models, inputs):
    return LocalExecutor(catalog, models=models, input_root=inputs)


def worker_names(events: list[dict], node: str) -> set[str]:
    return {w for e in events if e["event"] == "tile" and e["node"] == node for w in e.get("workers", {})}


def test_panorama_on_workers_equals_the_panorama_pipeline(pool, models, local):
    n, sched = pool
    graph = panorama_graph(256, 64, steps=3, tiled_decode=True)
    events: list[dict] = []
    ours = sched.run(graph, on_event=events.append).outputs
    ref = panorama_pipeline(models, 256, 64, steps=3)
    diff = float(np.abs(ours["decode"]["image"] - ref).max())
    print(f"panorama 256x64 on {n} worker(s): max abs pixel diff {diff:.3g}")
    assert diff <= TOL
    # the tiled decode of the same latent equals AutoencoderKL's tiled decode
    vae = tiled_vae(models, 64)
    try:
        with torch.no_grad():
            pixels = vae.decode(ours["denoise"]["latent"] / vae.config.scaling_factor).sample
    finally:
        vae.disable_tiling()
    tiled_ref = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    vae_diff = float(np.abs(ours["decode_tiled"]["image"] - tiled_ref).max())
    print(f"tiled VAE decode on {n} worker(s): max abs pixel diff {vae_diff:.3g}")
    assert vae_diff <= TOL
    # bit for bit the in-process executor's, whatever the number of workers
    mine = local.run(graph).outputs
    for node, port in (("denoise", "latent"), ("decode_tiled", "image")):
        assert np.array_equal(np.asarray(ours[node][port]), np.asarray(mine[node][port])), node
    assert len(worker_names(events, "denoise")) == n and len(worker_names(events, "decode_tiled")) == n
    steps = [e for e in events if e["event"] == "tile" and e["node"] == "denoise" and e["step"] == e["total"]]
    assert [e["sampler_step"] for e in steps] == [1, 2, 3]


def test_tiled_upscale_does_not_depend_on_the_number_of_workers(pool, local):
    n, sched = pool
    for strength in (0.0, 0.5):
        graph = upscale_graph(strength)
        ours = sched.run(graph).outputs
        image = ours["redraw"]["image"]
        if strength == 0.0:
            assert np.array_equal(image, ours["upscale"]["image"])
            continue
        RESULTS.setdefault("upscale", {})[n] = image
        assert np.array_equal(image, local.run(graph).outputs["redraw"]["image"])
    seen = RESULTS["upscale"]
    if len(seen) == 2:
        print(f"tiled upscale: 1 vs 2 workers identical: {np.array_equal(seen[1], seen[2])}")
        assert np.array_equal(seen[1], seen[2])


def test_cancelling_stops_every_tile(pool):
    _n, sched = pool
    graph = panorama_graph(512, 64, steps=40, seed=11)
    started = threading.Event()
    events: list[dict] = []

    def on_event(e):
        events.append(e)
        if e["event"] == "tile":
            started.set()

    handle = sched.submit(graph, on_event=on_event)
    assert started.wait(60), events
    t0 = time.monotonic()
    handle.cancel()
    with pytest.raises(JobError) as err:
        handle.result(timeout=30)
    assert err.value.type == "cancelled"
    stopped = time.monotonic() - t0
    last = max(e.get("sampler_step", 0) for e in events if e["event"] == "tile")
    assert last < 40 and stopped < 10
    idle = time.monotonic() + 10  # the workers are free again: nothing of the job runs there
    while any(w.get("running") for w in sched.worker_stats()) and time.monotonic() < idle:
        time.sleep(0.1)
    assert not any(w.get("running") for w in sched.worker_stats())
    assert sched.run(upscale_graph(0.0)).outputs["redraw"]["image"].shape == (1, 128, 128, 3)
