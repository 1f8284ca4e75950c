"""sd.denoise refuses a step count its scheduler cannot run (issue 20: ddim at 1000 steps raised
IndexError mid-loop): a structured ``input`` error naming ``params.steps``, before any step runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from graphs import GraphBuilder
from orchestrator.errors import BlockError
from orchestrator.runtime.executor import LocalExecutor

sys.path.insert(0, str(Path(__file__).parent))
import sd_fixtures

models = sd_fixtures.models
one_torch_thread = sd_fixtures.one_torch_thread
model_registry = sd_fixtures.model_registry


@pytest.fixture(scope="module")
def run(catalog, models):
    ex = LocalExecutor(catalog, models=models)
    return ex.run


def denoise_graph(steps: int, sampler: str):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", prompt="x")
    lat = b.add("sd.empty_latent", width=64, height=64)
    b.add("sd.denoise", id="d", cond=c.cond, latent=lat.latent, steps=steps, sampler=sampler)
    return b.build()


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "default", "lcm"])
def test_too_many_steps_is_a_structured_error_naming_steps(run, sampler):
    with pytest.raises(BlockError) as info:
        run(denoise_graph(1000, sampler))
    d = info.value.to_dict()
    assert d["type"] == "input" and d["node"] == "d" and d["field"] == "params.steps", d
    assert d["value"] == 1000 and d["bound"]["le"] < 1000, d
    assert "1000 steps" in d["message"] and "IndexError" not in d["message"]


def test_the_bound_it_names_runs(run, models):
    """The bound in the error is a step count that works (checked with the scheduler alone: a
    thousand tiny-sd steps would be slow), and a plain step count still runs."""
    from plugins.sd.common import make_scheduler
    from plugins.sd.denoise import check_steps

    with pytest.raises(BlockError) as info:
        check_steps(make_scheduler(models.info("tiny-sd").scheduler, "ddim"), 1000, "ddim", "d")
    bound = info.value.to_dict()["bound"]["le"]
    check_steps(make_scheduler(models.info("tiny-sd").scheduler, "ddim"), bound, "ddim", "d")
    for sampler in ("euler", "dpmpp_2m"):  # timesteps below 1000 at 1000 steps: allowed
        check_steps(make_scheduler(models.info("tiny-sd").scheduler, sampler), 1000, sampler, "d")
    out = run(denoise_graph(2, "ddim"))
    assert out is not None
