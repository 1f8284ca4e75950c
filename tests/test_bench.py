"""The benchmark suite runs end to end (a cheap benchmark) and writes its Markdown and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))


def test_python_m_bench_quick_writes_markdown_and_json_with_ratios(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "planning", "-o", str(tmp_path), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["quick"] is True and report["machine"]["cpus"]
    [entry] = report["benchmarks"]
    assert entry["name"] == "planning" and entry["status"] == "ok", entry
    plan, cache = entry["rows"]
    assert plan["ours"] > 0 and plan["base"] > 0 and plan["ratio"] == plan["ours"] / plan["base"]
    assert cache["ours"] == cache["base"] == 500 and cache["ratio"] == 1.0  # every renumbered node hit
    md = (tmp_path / "bench.md").read_text()
    assert "| benchmark | case | ours | baseline | ratio | notes |" in md
    assert f"| {plan['ratio']:.2f} |" in md and "| 1.00 |" in md
    assert md in out.stdout  # the table is printed too


def test_orchestrator_bench_runs_the_suite_and_refuses_unknown_names(tmp_path, capsys):
    from orchestrator.cli.main import main

    assert main(["bench", "--quick", "--only", "planning", "-o", str(tmp_path), "-q"]) == 0
    assert (tmp_path / "bench.md").is_file() and (tmp_path / "bench.json").is_file()
    assert main(["bench", "--only", "no_such_bench"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_gpu_benchmarks_skip_cleanly_without_cuda(monkeypatch):
    import bench.gpu as gpu

    monkeypatch.delenv("BENCH_GPU_DRY_RUN", raising=False)
    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    assert "no CUDA" in gpu.skip_reason()
    cfg = gpu.shrink(gpu.SDXL_UNET)  # the dry run's configs keep the published layout
    assert cfg["down_block_types"] == gpu.SDXL_UNET["down_block_types"]
    assert len(cfg["block_out_channels"]) == len(gpu.SDXL_UNET["block_out_channels"])


def test_the_bench_modules_doctests_pass():
    import doctest

    import bench.blocks
    import bench.core
    import bench.tiling

    for module in (bench.core, bench.blocks, bench.tiling):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
