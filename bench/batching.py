"""(7) Cross-job batching: 1, 2, 4 and 8 concurrent txt2img jobs, batched vs one at a time.

The daemon's local engine runs the jobs in both modes, side by side in one run (alternating
after a warm-up): *batched* is the engine with ``[batching]`` on (max_batch 8), the jobs
admitted as the job service admits them (:meth:`LocalEngine.has_room`), their UNet, text-
encoder and VAE-decode calls merged by :mod:`orchestrator.runtime.batching`; *one at a time*
is the engine with batching off, the same jobs run one after the other. All jobs are handed
over at once; a job's latency is from then to its end. Each job has its own prompt and seed.
The images of both modes must agree within 1/255 (the largest difference is in the notes).
Peak memory is the process's resident set, sampled while each mode runs (one model manager
serves both).

Models: ``tiny-sd`` (64x64, 20 ddim steps; 4 in ``--quick``), and an SD-1.5-shaped model
with random weights built here from the published configs (no download; about 4 GB in
fp32), 128x128 and 2 steps, one repetition (about 6 minutes on 2 CPU cores), left out of
``--quick`` and with ``BENCH_BATCHING_SD15=0``. One torch thread on a small shared
machine, as the other benchmarks.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.core import ROOT, Context, Row, median

NAME = "batching"
TITLE = "cross-job batching: jobs/s of N concurrent txt2img jobs, batched vs one at a time"
CONCURRENCY = (1, 2, 4, 8)


def cache_dir() -> Path:
    return Path(os.environ.get("ORCHESTRATOR_TEST_CACHE") or
                Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{os.getuid()}")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The largest resident set seen while inside (sampled every few milliseconds)."""

    def __enter__(self) -> PeakRSS:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def graph(model: str, i: int, size: int, steps: int) -> Any:
    from graphs import Graph

    doc = json.loads((ROOT / "graphs" / "library" / "txt2img.json").read_text())
    nodes = doc["nodes"]
    for node in nodes.values():
        if "model" in node["params"]:
            node["params"]["model"] = model
    nodes["cond"]["params"]["prompt"] = f"a red fox in the snow, variation {i}"
    nodes["latent"]["params"].update(width=size, height=size)
    nodes["denoise"]["params"].update(steps=steps, seed=1000 + i, cfg=7.5, sampler="ddim")
    del nodes["save"]
    return Graph.from_dict(doc)


def engine(settings_overrides: dict[str, Any], provider: Any, batching: bool) -> Any:
    from orchestrator.config import load_settings
    from orchestrator.plugins import load_plugins
    from orchestrator.runtime.engine import LocalEngine

    settings = load_settings(config_file=None, env={}, overrides={
        **settings_overrides, "cache": {"max_entries": 0}, "batching": {"enabled": batching}})
    eng = LocalEngine(load_plugins(entry_points=False).catalog, settings)
    eng.models = provider  # one model manager for both modes: the same weights, counted once
    return eng


def run_jobs(eng: Any, compiled: list[Any]) -> tuple[list[float], list[Any]]:
    """Hand every job to ``eng`` at once, admitted as the job service admits them; each
    job's latency (from the start) and its image."""
    cond = threading.Condition()
    eng.on_room = lambda: _notify(cond)
    t0 = time.perf_counter()
    latency: list[float] = [0.0] * len(compiled)
    images: list[Any] = [None] * len(compiled)
    errors: list[BaseException] = []
    running: set[int] = set()
    threads = []

    def job(i: int) -> None:
        try:
            result = eng.run(compiled[i], job=f"bench{i}", priority=0, outputs_dir=None,
                             on_event=lambda _e: None, is_cancelled=lambda: False)
            images[i] = result.outputs["decode"]["image"]
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
        finally:
            latency[i] = time.perf_counter() - t0
            with cond:
                running.discard(i)
                cond.notify_all()

    for i in range(len(compiled)):
        with cond:
            while not eng.has_room(len(running)):
                cond.wait(1.0)
            running.add(i)
        t = threading.Thread(target=job, args=(i,), daemon=True)
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    eng.on_room = None
    if errors:
        raise errors[0]
    return latency, images


def _notify(cond: threading.Condition) -> None:
    with cond:
        cond.notify_all()


def measure(ctx: Context, label: str, model: str, size: int, steps: int, provider: Any,
            overrides: dict[str, Any], reps: int, warmup: int,
            concurrency: tuple[int, ...] = CONCURRENCY) -> list[Row]:
    import numpy as np

    from orchestrator.runtime.compile import compile_graph

    batched, alone = engine(overrides, provider, True), engine(overrides, provider, False)
    first = [compile_graph(graph(model, 999, size, steps), batched.catalog)]
    run_jobs(batched, first)  # loads the model (once: both engines share the provider)
    run_jobs(alone, first)
    rows = []
    case = f"{label} {size}x{size}, {steps} ddim steps, cfg 7.5"
    for n in concurrency:
        compiled = [compile_graph(graph(model, i, size, steps), batched.catalog) for i in range(n)]
        samples: dict[str, list[float]] = {"batched": [], "alone": []}
        lat: dict[str, list[float]] = {"batched": [], "alone": []}
        peak: dict[str, int] = {"batched": 0, "alone": 0}
        images: dict[str, list[Any]] = {}
        before = batched.batching.stats()
        for r in range(warmup + reps):
            for mode in (("batched", "alone") if r % 2 == 0 else ("alone", "batched")):
                eng = batched if mode == "batched" else alone
                with PeakRSS() as rss:
                    t0 = time.perf_counter()
                    latency, imgs = run_jobs(eng, compiled)
                    wall = time.perf_counter() - t0
                if r >= warmup:
                    samples[mode].append(n / wall)
                    lat[mode].extend(latency)
                    peak[mode] = max(peak[mode], rss.peak)
                images[mode] = imgs
        after = batched.batching.stats()
        diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                   for a, b in zip(images["batched"], images["alone"], strict=True))
        calls = after["calls"] - before["calls"]
        batches = after["batches"] - before["batches"]
        ctx.log(f"[{NAME}] {label} x{n}: {median(samples['batched']):.2f} vs {median(samples['alone']):.2f} "
                f"jobs/s, {calls / max(1, batches):.1f} calls per model batch, max diff {diff:.2g}")
        rows.append(Row(
            NAME, f"{n} concurrent job(s), {case}", median(samples["batched"]), median(samples["alone"]),
            unit="jobs/s", ours_label="batched", base_label="one at a time",
            note=(f"median latency per job {median(lat['batched']):.3f} s vs {median(lat['alone']):.3f} s; "
                  f"peak RSS {peak['batched'] / 2**20:.0f} vs {peak['alone'] / 2**20:.0f} MiB; "
                  f"{calls / max(1, batches):.1f} model calls per batched call (UNet, text encoder, VAE "
                  f"decode); "
                  f"max pixel diff {diff:.2g} (limit 1/255); {reps} reps"),
            extra={"samples": samples["batched"], "base_samples": samples["alone"],
                   "latency": lat["batched"], "base_latency": lat["alone"], "peak_rss": peak["batched"],
                   "base_peak_rss": peak["alone"], "max_abs_diff": diff, "model_calls": calls,
                   "model_batches": batches}))
        assert diff <= 1 / 255, f"{label} x{n}: batched images differ from one at a time by {diff}"
    return rows


def unet_ceiling(ctx: Context, provider: Any, model: str, size: int, n: int = 8, reps: int = 20) -> Row:
    """The most batching can give on this machine: one UNet call on ``n`` jobs' inputs (two
    samples each, under guidance) against ``n`` calls of one job's, alternating."""
    import torch

    from bench.core import alternate

    unet = provider.load(model, "unet")
    cfg = dict(unet.config)
    side = size // 8
    one = (torch.randn(2, cfg["in_channels"], side, side), torch.tensor(500),
           torch.randn(2, 77, cfg["cross_attention_dim"]))
    many = tuple(t.repeat(n, *([1] * (t.ndim - 1))) if t.ndim else t for t in one)

    def call(x: Any, t: Any, e: Any) -> None:
        with torch.no_grad():
            unet(x, t, encoder_hidden_states=e, return_dict=False)

    t = alternate({"batched": lambda: call(*many), "alone": lambda: [call(*one) for _ in range(n)]},
                  reps, warmup=3)
    gain = median(t["alone"]) / median(t["batched"])
    return Row(NAME, f"the UNet alone, {model} {size}x{size}: one call for {n} jobs (batch {2 * n}) vs {n} "
               f"calls of batch 2", median(t["batched"]), median(t["alone"]), ours_label="one call",
               base_label=f"{n} calls",
               note=f"what batching can give at most at {n} jobs: x{gain:.2f}; {reps} reps")


def run(ctx: Context) -> list[Row]:
    import torch

    from orchestrator.models import ModelManager, ModelRegistry

    threads = 1 if (os.cpu_count() or 1) <= 4 else torch.get_num_threads()
    torch.set_num_threads(threads)
    state = Path(tempfile.mkdtemp(prefix="bench-batching-"))
    overrides = {"state_dir": str(state), "cache_dir": str(cache_dir()), "device": "cpu"}
    tiny = ModelManager(ModelRegistry(cache_dir=cache_dir()))
    rows = [unet_ceiling(ctx, tiny, "tiny-sd", 64, reps=ctx.n(5, 20))]
    rows += measure(ctx, "tiny-sd", "tiny-sd", 64, 4 if ctx.quick else 20, tiny, overrides,
                   reps=ctx.n(2, 7), warmup=ctx.w(1, 1))
    if ctx.quick or os.environ.get("BENCH_BATCHING_SD15") == "0":
        rows.append(Row(NAME, "SD-1.5-shaped random model (128x128)", None,
                        note="left out of --quick and with BENCH_BATCHING_SD15=0 (a 4 GB model, "
                             "about 6 minutes on 2 CPU cores)"))
        return rows
    from bench.gpu import build_folder

    folder = build_folder("sd15", cache_dir() / "bench-sd15-random", small=False, device="cpu")
    sd15 = ModelManager(ModelRegistry([{"name": "bench-sd15", "source": str(folder)}], cache_dir=cache_dir()))
    rows += measure(ctx, "SD-1.5-shaped (random weights)", "bench-sd15", 128, 2, sd15, overrides,
                    reps=ctx.n(1, 1), warmup=0, concurrency=(1, 2, 4, 8))
    return rows
