"""What every benchmark of the suite shares: rows of figures, timing in alternation, Ray, reports.

A benchmark is a module with ``NAME``, ``TITLE``, ``run(ctx) -> list[Row]`` and, when it
may not run everywhere, ``skip_reason() -> str | None``. It measures *ours* and a
*baseline* side by side in the same run (alternating, after a warm-up) and returns
:class:`Row` s; the ratio of medians is the result, since absolute times on a shared
machine mean little.

>>> r = Row("demo", "a case", ours=0.012, base=0.010, unit="s")
>>> round(r.ratio, 2), fmt_value(r.ours, r.unit)
(1.2, '12.0 ms')
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
RESULTS = Path(__file__).resolve().parent / "results"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass
class Row:
    """One figure: ours against a baseline (``base``), both medians in ``unit``.

    ``unit`` is ``"s"`` for times (shown as s/ms/us), or a plain unit (``"jobs/s"``,
    ``"hits"``) shown as is. ``ratio`` is ours / baseline unless given; for times lower is
    better. ``extra`` carries whatever else the benchmark wants in the JSON.
    """

    bench: str
    case: str
    ours: float | None
    base: float | None = None
    unit: str = "s"
    ours_label: str = "ours"
    base_label: str = ""
    ratio: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.ours is not None and self.base:
            self.ratio = self.ours / self.base


@dataclass
class Context:
    """What a benchmark is told: quick or full, repetitions, where to write, how to log."""

    quick: bool = False
    reps: int | None = None  # None: the benchmark's own default for quick/full
    warmup: int | None = None
    out_dir: Path = RESULTS
    verbose: bool = True
    state: dict[str, Any] = field(default_factory=dict)  # shared between benchmarks (Ray, ...)

    def n(self, quick: int, full: int) -> int:
        """Repetitions: ``--reps`` if given, else ``quick`` or ``full``."""
        if self.reps is not None:
            return max(1, self.reps)
        return quick if self.quick else full

    def w(self, quick: int = 1, full: int = 2) -> int:
        """Warm-up runs: ``--warmup`` if given, else ``quick`` or ``full``."""
        if self.warmup is not None:
            return max(0, self.warmup)
        return quick if self.quick else full

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"  {msg}", file=sys.stderr, flush=True)


def alternate(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each of ``fns`` ``reps`` times, interleaved (A B, B A, A B, ...) after ``warmup`` rounds.

    Interleaving makes load from other processes hit every contender alike. Returns the
    wall times in seconds by name.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(reps):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: list[float]) -> str:
    """``min-max`` of a sample, for the notes."""
    if not values:
        return ""
    return f"{fmt_value(min(values), 's')}-{fmt_value(max(values), 's')}"


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        a = abs(v)
        if a >= 1:
            return f"{v:.2f} s"
        if a >= 1e-3:
            return f"{v * 1e3:.1f} ms"
        return f"{v * 1e6:.0f} us"
    if unit in ("", "x"):
        return f"{v:.3g}{unit}"
    if abs(v) >= 100:
        return f"{v:.0f} {unit}"
    return f"{v:.3g} {unit}"


# -- Ray ---------------------------------------------------------------------------------------


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def ray_up(ctx: Context) -> Any:
    """A local Ray for the suite, started once: every CPU, and three logical GPUs where there is
    no real one (so GPU blocks run on worker actors, one per logical GPU, as on a GPU box)."""
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {}
        if not cuda_available():
            kwargs["num_gpus"] = 3  # a 1-worker and a 2-worker scheduler side by side
        ray.init(address="local", num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False,
                 log_to_driver=False, configure_logging=False, namespace="orchestrator-bench",
                 object_store_memory=1 << 30, **kwargs)
        ctx.state["ray"] = True
    return ray


def ray_down(ctx: Context) -> None:
    if ctx.state.pop("ray", False):
        import ray

        ray.shutdown()


def bench_config(**kw: Any) -> Any:
    """Worker config that loads the suite's blocks (:mod:`bench.blocks`) and the tests' fault blocks."""
    from orchestrator.runtime.worker import WorkerConfig

    kw.setdefault("entry_points", False)
    return WorkerConfig(extra_plugins=("bench=bench.blocks", "faults=fault_plugin"),
                        sys_path=(str(ROOT), str(TESTS)), **kw)


def bench_catalog() -> Any:
    """The built-in blocks plus :mod:`bench.blocks` (in this process)."""
    from bench import blocks
    from orchestrator.plugins import load_plugins

    return load_plugins(entry_points=False, extra=[("bench", blocks)]).catalog


# -- machine and reports -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "processor": _cpu_name()}
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    for mod in ("ray", "diffusers", "onnxruntime"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    info.setdefault("gpu", None)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown document: the machine, then one table of every row."""
    m = report["machine"]
    gpu = m.get("gpu") or "none"
    lines = [f"# Benchmarks ({'quick' if report['quick'] else 'full'} run, {report['started']})", "",
             f"Machine: {m.get('processor')}, {m.get('cpus')} CPUs, GPU: {gpu}; python {m.get('python')}, "
             f"torch {m.get('torch')}, ray {m.get('ray')}, diffusers {m.get('diffusers')}; load average "
             f"at start {m.get('load_average')}. Ratios are ours / baseline of medians measured side by "
             "side in this run (lower is better for times).", "",
             "| benchmark | case | ours | baseline | ratio | notes |",
             "|---|---|---|---|---|---|"]
    for b in report["benchmarks"]:
        if b["status"] != "ok":
            lines.append(f"| {b['name']} | {b['status']} | - | - | - | {_cell(b.get('reason', ''))} |")
            continue
        for r in b["rows"]:
            ours = fmt_value(r["ours"], r["unit"])
            if r["ours_label"] not in ("", "ours"):
                ours = f"{ours} ({r['ours_label']})"
            base = fmt_value(r["base"], r["unit"]) if r["base"] is not None else "-"
            if r["base"] is not None and r["base_label"]:
                base = f"{base} ({r['base_label']})"
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
            lines.append(f"| {b['name']} | {_cell(r['case'])} | {_cell(ours)} | {_cell(base)} | {ratio} "
                         f"| {_cell(r['note'])} |")
    lines += ["", f"Total time: {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "bench") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return md, js


def row_dict(r: Row) -> dict[str, Any]:
    return asdict(r)
