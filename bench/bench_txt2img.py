"""txt2img on tiny-sd: our in-process executor against the plain diffusers pipeline, in one run.

Both load the same folder, use the same seed, steps, sampler and guidance, and make the same
image (checked). Runs alternate (ours, theirs, ours, ...) after a warm-up, so that load from
other processes hits both alike; the figure is the ratio of median wall times (goal <= 1.05).

    python bench/bench_txt2img.py [--steps 20] [--size 64] [--repeats 15] [--sampler ddim]

``--profile`` prints where our run spends its time beyond the pipeline's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from graphs import GraphBuilder
from orchestrator.models import ModelManager, ModelRegistry
from orchestrator.plugins import load_plugins
from orchestrator.runtime.executor import LocalExecutor
from plugins.sd.common import make_scheduler

PROMPT = "a red fox in the snow, highly detailed"
NEGATIVE = "blurry"


def graph(model: str, steps: int, size: int, sampler: str, cfg: float, seed: int):
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model=model, prompt=PROMPT, negative_prompt=NEGATIVE)
    lat = b.add("sd.empty_latent", id="latent", model=model, width=size, height=size)
    d = b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model=model, steps=steps, cfg=cfg,
              sampler=sampler, seed=seed)
    b.add("sd.vae_decode", id="decode", latent=d.latent, model=model)
    return b.build()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-sd")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--cache-dir", default=os.environ.get("ORCHESTRATOR_TEST_CACHE")
                    or str(Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{os.getuid()}"))
    ap.add_argument("--profile", action="store_true", help="cProfile one run of ours")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers import StableDiffusionPipeline

    manager = ModelManager(ModelRegistry(cache_dir=args.cache_dir))
    folder = manager.resolve(args.model).folder
    executor = LocalExecutor(load_plugins(entry_points=False).catalog, models=manager)
    g = graph(args.model, args.steps, args.size, args.sampler, args.cfg, seed=7)

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = make_scheduler(dict(pipe.scheduler.config), args.sampler)
    pipe.set_progress_bar_config(disable=True)

    def ours() -> np.ndarray:
        return executor.run(g).outputs["decode"]["image"]

    def theirs() -> np.ndarray:
        return pipe(PROMPT, negative_prompt=NEGATIVE, height=args.size, width=args.size,
                    num_inference_steps=args.steps, guidance_scale=args.cfg,
                    generator=torch.Generator().manual_seed(7), output_type="np").images

    for _ in range(args.warmup):
        a, b = ours(), theirs()
    diff = float(np.abs(a - b).max())
    times: dict[str, list[float]] = {"ours": [], "diffusers": []}
    pair = [("ours", ours), ("diffusers", theirs)]
    for i in range(args.repeats):
        for name, fn in pair if i % 2 == 0 else pair[::-1]:  # ABBA order
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["ours"] / med["diffusers"]
    print(f"txt2img {args.model} {args.size}x{args.size}, {args.steps} steps {args.sampler}, cfg {args.cfg}, "
          f"{args.repeats} runs each, torch threads {torch.get_num_threads()}")
    print(f"  images equal: max abs diff {diff:.3g}")
    for k in ("ours", "diffusers"):
        v = sorted(times[k])
        print(f"  {k:<10} median {med[k] * 1000:8.1f} ms   min {v[0] * 1000:8.1f}   max {v[-1] * 1000:8.1f}")
    print(f"  ratio ours/diffusers (median): {ratio:.3f}  (goal <= 1.05)")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            ours()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
