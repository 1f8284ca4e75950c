"""Per-node dispatch overhead of the scheduler, against a plain Ray actor-call loop.

Not a test. Starts its own local Ray (one logical GPU, so the scheduler has one worker
actor, like the baseline's one actor), then for chains and fan-outs of 10, 100 and 1000
no-op GPU nodes measures the wall time per node of

- the baseline: ``for _ in range(n): ray.get(actor.f.remote())`` on a plain actor;
- the scheduler: ``Scheduler.submit(compiled).result()`` (the graph compiled beforehand;
  the compile time is printed on its own);

and prints their ratio (goal: <= 1.5x per node, growing linearly with n). Then the cache:
a chain of sleeping nodes run once, then again with only its last node changed.

``--txt2img``: also a ``tiny-sd`` txt2img job through the scheduler (one worker, the cache
cleared before each run) against the plain diffusers pipeline in this process, alternating
runs, ratio of medians (goal: <= 1.10x).

    .venv/bin/python bench/bench_dispatch.py [--sizes 10 100 1000] [--repeat 3] [--txt2img]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))

import ray  # noqa: E402

from graphs import Graph, GraphBuilder  # noqa: E402
from orchestrator.runtime.compile import compile_graph  # noqa: E402
from orchestrator.runtime.scheduler import Scheduler  # noqa: E402
from orchestrator.runtime.worker import WorkerConfig  # noqa: E402

CONFIG = WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(str(TESTS),), entry_points=False)


@ray.remote(num_cpus=0)
class Baseline:
    def f(self, *args: Any) -> int:
        return 0


def chain(n: int, block: str = "faults.noop", port: str = "value", **params: Any) -> Graph:
    b = GraphBuilder()
    prev = b.add(block, id="n0", **params)
    for i in range(1, n):
        prev = b.add(block, id=f"n{i}", after=[prev[port]], **params)
    return b.build()


def fan_out(n: int) -> Graph:
    b = GraphBuilder()
    src = b.add("faults.noop", id="src")
    for i in range(1, n):
        b.add("faults.noop", id=f"n{i}", after=[src.value], value=i)
    return b.build()


def baseline_per_call(actor: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        ray.get(actor.f.remote())
    return (time.perf_counter() - t0) / n


def scheduler_per_node(sched: Scheduler, graph: Graph, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    compiled = compile_graph(graph, sched.catalog)
    t1 = time.perf_counter()
    sched.clear_cache()
    sched.submit(compiled).result()
    t2 = time.perf_counter()
    return (t2 - t1) / n, (t1 - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--txt2img", action="store_true", help="also txt2img on tiny-sd vs diffusers")
    ap.add_argument("--steps", type=int, default=20, help="txt2img sampler steps")
    ap.add_argument("--repeat-txt2img", type=int, default=9)
    args = ap.parse_args()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    sched = Scheduler(config=CONFIG)
    sched.wait_ready()
    actor = Baseline.remote()
    ray.get(actor.f.remote())
    sched.run(chain(5))  # warm up both paths
    baseline_per_call(actor, 200)

    print(f"{'shape':<8}{'n':>6}{'baseline us':>14}{'scheduler us':>14}{'ratio':>8}{'compile us':>12}")
    per_node: dict[str, list[float]] = {"chain": [], "fan-out": []}
    for shape, make in (("chain", chain), ("fan-out", fan_out)):
        for n in args.sizes:
            graph = make(n)
            base, ours, comp = [], [], []
            for _ in range(args.repeat):
                base.append(baseline_per_call(actor, n))
                s, c = scheduler_per_node(sched, graph, n)
                ours.append(s)
                comp.append(c)
            b, s, c = statistics.median(base), statistics.median(ours), statistics.median(comp)
            per_node[shape].append(s)
            print(f"{shape:<8}{n:>6}{b * 1e6:>14.0f}{s * 1e6:>14.0f}{s / b:>8.2f}{c * 1e6:>12.0f}")
    for shape, values in per_node.items():
        growth = values[-1] / values[0] if values[0] else float("nan")
        print(f"{shape}: per-node time at n={args.sizes[-1]} / at n={args.sizes[0]} = {growth:.2f} "
              "(1.0 = linear total time)")

    # the cache: a chain of 8 nodes of 0.2 s, then the same with only the last node changed
    n, seconds = 8, 0.2
    full = chain(n, "faults.sleep", "pid", seconds=seconds)
    changed = chain(n, "faults.sleep", "pid", seconds=seconds)
    changed.nodes[f"n{n - 1}"].params["tag"] = "changed"
    sched.clear_cache()
    t0 = time.perf_counter()
    sched.run(full)
    t1 = time.perf_counter()
    result = sched.run(changed)
    t2 = time.perf_counter()
    print(f"cache: full run {t1 - t0:.3f} s, re-run with the last node changed {t2 - t1:.3f} s "
          f"(ratio {(t2 - t1) / (t1 - t0):.3f}; {len(result.cached)}/{n} nodes from the cache)")
    sched.shutdown()
    if args.txt2img:
        bench_txt2img(args.steps, args.repeat_txt2img)
    ray.shutdown()


def bench_txt2img(steps: int, repeats: int) -> None:
    """The scheduler on a real model job against diffusers' own pipeline, same image."""
    import tempfile

    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    from orchestrator.models import ModelManager, ModelRegistry
    from plugins.sd.common import make_scheduler

    cache_dir = os.environ.get("ORCHESTRATOR_TEST_CACHE") or str(
        Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{os.getuid()}")
    prompt, size, seed = "a red fox in the snow", 64, 7
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt=prompt, negative_prompt="")
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=size, height=size)
    d = b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=steps,
              cfg=7.5, sampler="ddim", seed=seed)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model="tiny-sd")
    graph = b.build()
    config = WorkerConfig(entry_points=False, provider="fault_plugin:tiny_model_manager",
                          provider_kwargs={"cache_dir": cache_dir}, sys_path=(str(TESTS),),
                          cpu_threads=torch.get_num_threads())
    folder = ModelManager(ModelRegistry(cache_dir=cache_dir)).resolve("tiny-sd").folder
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), "ddim")
    pipe.set_progress_bar_config(disable=True)
    with Scheduler(config=config, gpus=0, cpu_workers=1) as sched:
        sched.wait_ready()

        def ours() -> np.ndarray:
            sched.clear_cache()
            return sched.run(graph).outputs["decode"]["image"]

        def theirs() -> np.ndarray:
            return pipe(prompt, negative_prompt="", height=size, width=size, num_inference_steps=steps,
                        guidance_scale=7.5, generator=torch.Generator().manual_seed(seed),
                        output_type="np").images

        for _ in range(2):  # warm-up: the worker loads the model once and keeps it
            a, b_ = ours(), theirs()
        times: dict[str, list[float]] = {"scheduler": [], "diffusers": []}
        pair = [("scheduler", ours), ("diffusers", theirs)]
        for i in range(repeats):
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"txt2img tiny-sd {size}x{size} {steps} steps: scheduler {med['scheduler'] * 1000:.0f} ms, "
          f"diffusers {med['diffusers'] * 1000:.0f} ms (medians of {repeats}), "
          f"ratio {med['scheduler'] / med['diffusers']:.3f}; max abs pixel diff {np.abs(a - b_).max():.2g}")


if __name__ == "__main__":
    main()
