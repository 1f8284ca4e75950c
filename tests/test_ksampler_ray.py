"""ComfyUI-native sampling on the Ray scheduler: the custom-sampling values (SIGMAS, SAMPLER, NOISE,
GUIDER) travel between workers, and the latent is the in-process executor's, bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graphs import GraphBuilder
from orchestrator.runtime.executor import LocalExecutor

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
import sd_fixtures  # noqa: E402

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sched(ray_session, tmp_path_factory):
    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    config = WorkerConfig(entry_points=False, provider="fault_plugin:tiny_model_manager",
                          provider_kwargs={"cache_dir": str(sd_fixtures.tiny_cache_dir())},
                          sys_path=(str(TESTS),), cpu_threads=1)
    with Scheduler(config=config, gpus=1, input_root=tmp_path_factory.mktemp("in")) as s:
        s.wait_ready()
        yield s


def graph():
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", model="tiny-sdxl", prompt="a fox", negative_prompt="blurry")
    lat = b.add("sd.empty_latent", model="tiny-sdxl", width=64, height=64, batch=2)
    sig = b.add("sd.sigmas", model="tiny-sdxl", scheduler="karras", steps=4)
    split = b.add("sd.split_sigmas", sigmas=sig.sigmas, step=2)
    first = b.add("sd.sample_custom", id="first", noise=b.add("sd.noise", seed=5).noise,
                  guider=b.add("sd.guider", cond=c.cond, model="tiny-sdxl", cfg=4.0).guider,
                  sampler=b.add("sd.sampler_select", sampler="dpmpp_2m_sde", eta=0.5).sampler,
                  sigmas=split.high, latent=lat.latent)
    b.add("sd.ksampler", id="k", cond=c.cond, latent=first.latent, model="tiny-sdxl", seed=5, steps=4,
          scheduler="karras", sampler="dpmpp_sde", start_step=2, add_noise=False)
    return b.build()


def test_native_sampling_on_a_worker_equals_in_process(sched, catalog, models):
    ours = sched.run(graph()).outputs
    mine = LocalExecutor(catalog, models=models).run(graph()).outputs
    for node in ("first", "k"):
        assert torch.equal(ours[node]["latent"], mine[node]["latent"]), node
