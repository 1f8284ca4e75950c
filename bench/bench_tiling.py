"""Benchmark (not a test): a real tiled job on 1 and on 2 Ray workers, tile cost swept.

The job is a MultiDiffusion panorama on ``tiny-sd`` (``sd.denoise`` with a tile annotation):
at every step its views go to the workers in one chunk per worker, one UNet call per view,
and are averaged by the coordinator. The same compiled job runs on a scheduler with 1
worker and on one with 2, side by side, alternating (ABBA) after a warm-up; the figure is
the ratio of medians.

*Tile cost* is what one view costs a worker: the tiny UNet's own compute (a few ms here)
plus a fixed wait added to every UNet call (``--costs``, ms). The wait stands for GPU time:
a worker waiting on its GPU leaves the host CPU free, so the sweep measures what the
orchestration (the coordinator, Ray calls, the per-step sync) costs against ideal
parallelism, independently of how many CPU cores the machine has. A second sweep uses only
real compute (larger windows), where the two workers also compete for this machine's CPU
cores (2, shared with other developers here: expect noise).

Reported: the speedup t(1 worker) / t(2 workers) per tile cost (goal: >= 1.7x from 50 ms on),
the break-even tile cost (2 workers as fast as 1), and the UNet view evaluations per step
against diffusers' panorama pipeline for the same images.

Run: ``python bench/bench_tiling.py [--quick] [--costs 0,10,50,100] [--reps 3]``. The suite
(``python -m bench``) adds :func:`suite_rows` to its ``tiling`` benchmark.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS = 4
VIEWS = 16  # views per step of the benchmark's panorama: an even split over 2 workers


# -- a provider whose UNet calls cost what the benchmark says ------------------------------------


class _SlowUNet:
    """The UNet, each call preceded by a wait (read from a file, so one pool serves the sweep)."""

    def __init__(self, unet: Any, delay: Any) -> None:
        self._unet = unet
        self._delay = delay

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wait = self._delay()
        if wait > 0:
            time.sleep(wait)
        return self._unet(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unet, name)


class SlowProvider:
    """``ModelManager`` over the tiny models whose UNet waits ``delay_file``'s seconds per call."""

    def __init__(self, cache_dir: str, delay_file: str) -> None:
        from orchestrator.models import ModelManager, ModelRegistry

        self.models = ModelManager(ModelRegistry(cache_dir=cache_dir))
        self.delay_file = delay_file
        self._seen: tuple[float, float] = (-1.0, 0.0)  # (mtime, delay)

    def _delay(self) -> float:
        try:
            mtime = os.stat(self.delay_file).st_mtime
        except OSError:
            return 0.0
        if mtime != self._seen[0]:
            self._seen = (mtime, float(Path(self.delay_file).read_text() or 0))
        return self._seen[1]

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        obj = self.models.load(ref, component, device=device)
        return _SlowUNet(obj, self._delay) if component == "unet" else obj

    def report(self) -> dict[str, Any]:
        return self.models.report()


def set_delay(path: Path, ms: float) -> None:
    path.write_text(str(ms / 1000.0))
    t = time.time() + 1  # a distinct mtime even on coarse clocks
    os.utime(path, (t, t))


# -- the job ----------------------------------------------------------------------------------------


def panorama(window: int = 64, stride: int = 32, views: int = VIEWS, steps: int = STEPS,
             seed: int = 3) -> Any:
    """A 1-row panorama of ``views`` views of ``window`` px every ``stride`` px (one UNet call each)."""
    from graphs import GraphBuilder, TileSpec

    width = window + (views - 1) * stride
    b = GraphBuilder()
    c = b.add("sd.encode_prompt", id="cond", model="tiny-sd", prompt="a mountain lake at dawn",
              negative_prompt="blurry")
    lat = b.add("sd.empty_latent", id="latent", model="tiny-sd", width=width, height=window)
    b.add("sd.denoise", id="denoise", cond=c.cond, latent=lat.latent, model="tiny-sd", steps=steps, cfg=7.5,
          sampler="ddim", seed=seed)
    g = b.build()
    g.nodes["denoise"].tile = TileSpec(size=window, stride=stride)
    return g


def pools(delay_file: Path) -> tuple[Any, Any]:
    """A scheduler with 1 worker and one with 2 (3 logical GPUs where there is no real one)."""
    import ray
    from sd_fixtures import tiny_cache_dir

    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=max(2, os.cpu_count() or 2), num_gpus=3, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, namespace="orchestrator-bench-tiling")
    config = WorkerConfig(entry_points=False, provider="bench.bench_tiling:SlowProvider",
                          provider_kwargs={"cache_dir": str(tiny_cache_dir()), "delay_file": str(delay_file)},
                          sys_path=(str(ROOT), str(TESTS)), cpu_threads=1)
    one, two = Scheduler(config=config, gpus=1), Scheduler(config=config, gpus=2)
    one.wait_ready(300)
    two.wait_ready(300)
    return one, two


def time_job(sched: Any, graph: Any) -> float:
    from orchestrator.runtime.compile import compile_graph

    compiled = compile_graph(graph, sched.catalog)
    sched.clear_cache()
    t0 = time.perf_counter()
    sched.submit(compiled).result()
    return time.perf_counter() - t0


def alternate(one: Any, two: Any, graph: Any, reps: int, warmup: int = 1) -> tuple[list[float], list[float]]:
    """ABBA: 1 worker then 2, then 2 then 1, ...; the first ``warmup`` rounds are dropped."""
    t1: list[float] = []
    t2: list[float] = []
    for i in range(warmup + reps):
        order = [(one, t1), (two, t2)] if i % 2 == 0 else [(two, t2), (one, t1)]
        for sched, out in order:
            seconds = time_job(sched, graph)
            if i >= warmup:
                out.append(seconds)
    return t1, t2


def break_even(points: list[tuple[float, float]]) -> tuple[float | None, str]:
    """The tile cost (ms) where the speedup crosses 1, from ``(cost, speedup)`` sorted by cost."""
    if not points:
        return None, "nothing measured"
    if points[0][1] >= 1.0:
        return points[0][0], "at or below the smallest tile cost measured"
    for (c0, s0), (c1, s1) in itertools.pairwise(points):
        if s0 < 1.0 <= s1:
            f = (1.0 - s0) / (s1 - s0)
            if c0 <= 0:
                return c0 + f * (c1 - c0), "interpolated"
            return math.exp(math.log(c0) + f * (math.log(c1) - math.log(c0))), "interpolated"
    return None, f"2 workers never beat 1 up to {points[-1][0]:.0f} ms per tile"


# -- view evaluations: ours against the panorama pipeline --------------------------------------------


def view_counts() -> list[dict[str, Any]]:
    """UNet view evaluations per step, ours and the pipeline's, for some images and tilings;
    the pipeline's from its own ``get_views``; one (small) also counted by running both."""
    import diffusers

    from graphs.tiling import view_count
    from plugins.sd.multidiffusion import get_views

    rows = []
    for width, height, size, stride in [(2048, 512, 512, 64), (2048, 512, 64, 48), (256, 64, 64, 48),
                                        (1000, 512, 512, 64), (512, 1536, 512, 128)]:
        ours = len(get_views(height // 8, width // 8, size // 8, stride // 8))
        pipe_views = diffusers.StableDiffusionPanoramaPipeline.get_views(
            None, height, width, window_size=size // 8, stride=stride // 8)
        rows.append({"image": f"{width}x{height}", "window": size, "stride": stride, "ours": ours,
                     "pipeline": len(pipe_views),
                     "graphs.tiling.view_count": view_count(width, height, size, stride)})
    rows.append(measured_calls())
    return rows


def measured_calls() -> dict[str, Any]:
    """UNet forward calls per step, counted on the in-process executor and on the pipeline (256x64)."""
    import torch
    from sd_fixtures import tiny_cache_dir
    from test_tiling_sd import panorama_graph, panorama_pipeline

    from orchestrator.models import ModelManager, ModelRegistry
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.executor import LocalExecutor

    torch.set_num_threads(1)
    models = ModelManager(ModelRegistry(cache_dir=tiny_cache_dir()))
    unet = models.load("tiny-sd", "unet")
    calls: list[int] = []
    hook = unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        LocalExecutor(load_plugins(entry_points=False).catalog, models=models).run(
            panorama_graph(256, 64, stride=48, steps=2, view_batch=2))
        ours = list(calls)
        calls.clear()
        panorama_pipeline(models, 256, 64, stride=48, steps=2, view_batch=2, output_type="latent")
        pipe = list(calls)
    finally:
        hook.remove()
    return {"image": "256x64", "window": 64, "stride": 48, "view_batch": 2,
            "ours_calls_per_step": len(ours) // 2, "pipeline_calls_per_step": len(pipe) // 2,
            "ours_rows_per_step": sum(ours) // 2, "pipeline_rows_per_step": sum(pipe) // 2}


# -- the run ------------------------------------------------------------------------------------------


def measure(costs: list[float], windows: list[int], reps: int, steps: int,
            log: Any = print) -> dict[str, Any]:
    import tempfile

    delay_file = Path(tempfile.mkdtemp(prefix="bench-tiling-")) / "delay"
    set_delay(delay_file, 0.0)
    one, two = pools(delay_file)
    out: dict[str, Any] = {"steps": steps, "views": VIEWS, "reps": reps, "cpus": os.cpu_count(),
                           "waited": [], "compute": []}
    try:
        graph = panorama(steps=steps)
        for cost in costs:
            set_delay(delay_file, cost)
            t1, t2 = alternate(one, two, graph, reps)
            m1, m2 = statistics.median(t1), statistics.median(t2)
            tile_ms = m1 / (steps * VIEWS) * 1000
            out["waited"].append({"wait_ms": cost, "tile_ms": tile_ms, "one": t1, "two": t2,
                                  "speedup": m1 / m2})
            log(f"  wait {cost:>5.0f} ms/view: tile {tile_ms:6.1f} ms  1 worker {m1:6.2f} s  "
                f"2 workers {m2:6.2f} s  speedup x{m1 / m2:.2f}")
        set_delay(delay_file, 0.0)
        for window in windows:
            g = panorama(window=window, stride=window // 2, steps=steps)
            t1, t2 = alternate(one, two, g, reps)
            m1, m2 = statistics.median(t1), statistics.median(t2)
            tile_ms = m1 / (steps * VIEWS) * 1000
            out["compute"].append({"window": window, "tile_ms": tile_ms, "one": t1, "two": t2,
                                   "speedup": m1 / m2})
            log(f"  window {window:>4} px, compute only: tile {tile_ms:6.1f} ms  1 worker {m1:6.2f} s  "
                f"2 workers {m2:6.2f} s  speedup x{m1 / m2:.2f}")
    finally:
        one.shutdown()
        two.shutdown()
    points = sorted((r["tile_ms"], r["speedup"]) for r in out["waited"])
    out["break_even_ms"], out["break_even_how"] = break_even(points)
    points = sorted((r["tile_ms"], r["speedup"]) for r in out["compute"])
    out["break_even_compute_ms"], out["break_even_compute_how"] = break_even(points)
    return out


def suite_rows(quick: bool) -> list[dict[str, Any]]:
    """Rows for the suite's ``tiling`` benchmark (see ``bench/tiling.py``)."""
    res = measure([0.0, 50.0] if quick else [0.0, 10.0, 25.0, 50.0, 100.0], [] if quick else [16, 32, 64],
                  reps=1 if quick else 3, steps=2 if quick else STEPS, log=lambda m: None)
    rows = []
    for r in res["waited"] + res["compute"]:
        what = (f"{r['wait_ms']:.0f} ms wait per UNet call" if "wait_ms" in r
                else f"{r['window']} px windows, compute only")
        rows.append({"case": f"MultiDiffusion panorama, {VIEWS} views x {res['steps']} steps, {what} "
                             f"(tile {r['tile_ms']:.1f} ms): 2 workers vs 1",
                     "ours": statistics.median(r["two"]), "base": statistics.median(r["one"]), "unit": "s",
                     "ours_label": "2 workers", "base_label": "1 worker",
                     "note": f"speedup x{r['speedup']:.2f}", "extra": r})
    cost = res["break_even_ms"]
    rows.append({"case": "MultiDiffusion break-even tile cost (2 workers as fast as 1)",
                 "ours": cost / 1000 if cost is not None else None, "unit": "s",
                 "note": res["break_even_how"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two tile costs, one repetition")
    ap.add_argument("--costs", help="waits per UNet call to sweep, ms (comma-separated)")
    ap.add_argument("--windows", help="window sizes for the compute-only sweep, px (comma-separated)")
    ap.add_argument("--reps", type=int, help="timed repetitions per side (after one warm-up round)")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = ap.parse_args(argv)
    costs = [float(c) for c in args.costs.split(",")] if args.costs else (
        [0.0, 50.0] if args.quick else [0.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0])
    windows = [int(w) for w in args.windows.split(",")] if args.windows else (
        [] if args.quick else [16, 32, 64, 128])
    reps = args.reps or (1 if args.quick else 3)
    steps = 2 if args.quick else STEPS
    print(f"MultiDiffusion panorama on tiny-sd: {VIEWS} views x {steps} steps, 1 vs 2 workers, "
          f"{reps} rep(s) ABBA after a warm-up; {os.cpu_count()} CPU(s) here")
    res = measure(costs, windows, reps, steps)
    cost, how = res["break_even_ms"], res["break_even_how"]
    shown = f"{cost:.1f} ms" if cost is not None else "none"
    print(f"break-even tile cost (GPU-like waits): {shown} ({how})")
    if res["compute"]:
        cost, how = res["break_even_compute_ms"], res["break_even_compute_how"]
        shown = f"{cost:.1f} ms" if cost is not None else "none"
        print(f"break-even tile cost (compute only, {os.cpu_count()} shared cores): {shown} ({how})")
    big = [r for r in res["waited"] if r["tile_ms"] >= 50]
    if big:
        print("speedup once a tile costs >= 50 ms: " + ", ".join(
            f"{r['tile_ms']:.0f} ms x{r['speedup']:.2f}" for r in big))
    res["views"] = view_counts()
    print("UNet view evaluations per step (ours vs the panorama pipeline):")
    for r in res["views"]:
        print("  " + json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
