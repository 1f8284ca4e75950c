"""(1) txt2img on ``tiny-sd``: our executor and our scheduler against the plain diffusers pipeline.

The same graph as ``bench/bench_txt2img.py`` (encode prompt, empty latent, denoise, VAE
decode), the same seed, steps, sampler and guidance as ``StableDiffusionPipeline``; the
three run in alternation after a warm-up. The in-process executor runs it here; the
scheduler on one CPU worker actor that keeps the model loaded (its result cache cleared
before each run, so every node runs). The images must be the same: the largest pixel
difference is in the notes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench.core import TESTS, Context, Row, alternate, median, ray_up, spread

NAME = "txt2img"
TITLE = "executor and scheduler vs the plain diffusers pipeline on tiny-sd (ratio, identical output)"


def cache_dir() -> str:
    return os.environ.get("ORCHESTRATOR_TEST_CACHE") or str(
        Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{os.getuid()}")


def run(ctx: Context) -> list[Row]:
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    from bench import bench_txt2img as bt
    from orchestrator.models import ModelManager, ModelRegistry
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.executor import LocalExecutor
    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig
    from plugins.sd.common import make_scheduler

    # one torch thread where cores are few and shared: OpenMP threads that spin while other
    # processes hold the cores turn a 0.3 s image into a 10 s one, at random
    threads = 1 if (os.cpu_count() or 1) <= 4 else torch.get_num_threads()
    torch.set_num_threads(threads)
    size, steps, cfg, sampler, seed = 64, (4 if ctx.quick else 20), 7.5, "ddim", 7
    reps = ctx.n(3, 9)
    graph = bt.graph("tiny-sd", steps, size, sampler, cfg, seed)

    manager = ModelManager(ModelRegistry(cache_dir=cache_dir()))
    folder = manager.resolve("tiny-sd").folder
    executor = LocalExecutor(load_plugins(entry_points=False).catalog, models=manager)
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), sampler)
    pipe.set_progress_bar_config(disable=True)

    ray_up(ctx)
    config = WorkerConfig(entry_points=False, provider="fault_plugin:tiny_model_manager",
                          provider_kwargs={"cache_dir": cache_dir()}, sys_path=(str(TESTS),),
                          cpu_threads=threads)
    images: dict[str, Any] = {}
    with Scheduler(config=config, gpus=0, cpu_workers=1) as sched:
        sched.wait_ready()

        def executor_run() -> None:
            images["executor"] = executor.run(graph).outputs["decode"]["image"]

        def scheduler_run() -> None:
            sched.clear_cache()
            images["scheduler"] = sched.run(graph).outputs["decode"]["image"]

        def diffusers_run() -> None:
            images["diffusers"] = pipe(bt.PROMPT, negative_prompt=bt.NEGATIVE, height=size, width=size,
                                       num_inference_steps=steps, guidance_scale=cfg,
                                       generator=torch.Generator().manual_seed(seed), output_type="np").images

        t = alternate({"executor": executor_run, "scheduler": scheduler_run, "diffusers": diffusers_run},
                      reps, warmup=ctx.w(1, 2))
    ref = np.asarray(images["diffusers"])
    case = f"tiny-sd {size}x{size}, {steps} steps {sampler}, cfg {cfg}, {threads} torch thread(s)"
    rows = []
    for who, label in (("executor", "LocalExecutor"), ("scheduler", "Scheduler, 1 worker")):
        diff = float(np.abs(np.asarray(images[who]) - ref).max())
        same = "identical image" if diff == 0 else f"max pixel diff {diff:.2g}"
        rows.append(Row(NAME, f"{label} vs StableDiffusionPipeline, {case}", median(t[who]),
                        median(t["diffusers"]), ours_label=label, base_label="diffusers",
                        note=f"{same}; ours {spread(t[who])}; {reps} reps",
                        extra={"samples": t[who], "base_samples": t["diffusers"], "max_abs_diff": diff}))
    return rows
