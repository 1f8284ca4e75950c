"""The benchmark suite: run every benchmark (or some), print and write one report.

::

    python -m bench                      # everything, full size (CPU: about 10 minutes)
    python -m bench --quick              # few repetitions, small sizes (CI smoke)
    python -m bench --only dispatch --only planning -o /tmp/out
    python -m bench --list
    python -m bench soak [--jobs 300]    # the reliability soak (bench/soak.py)
    orchestrator bench ...               # the same, from the CLI

Writes ``bench.md`` (a Markdown table) and ``bench.json`` (every figure, the samples, the
machine) into ``bench/results/`` or ``-o DIR``. Exit status 0 when every benchmark that ran
succeeded (skipped ones, e.g. the GPU ones without CUDA, are fine), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.core import RESULTS, Context, machine, markdown, ray_down, row_dict, write_report

# name -> module (bench.<module>); run in this order
BENCHMARKS: dict[str, str] = {
    "txt2img": "bench.txt2img",      # (1) executor and scheduler vs diffusers on tiny-sd
    "dispatch": "bench.dispatch",    # (2) per-node overhead vs a raw Ray call loop
    "planning": "bench.planning",    # (3) compiling 500 nodes; cache hits after renumbering
    "tiling": "bench.tiling",        # (4) tile speedup on 1 vs 2 workers, break-even tile cost
    "daemon": "bench.daemon",        # (5) no-op jobs/s and submit-to-start latency vs Ray tasks
    "transfer": "bench.transfer",    # (6) arrays between workers vs ray.put/ray.get
    "batching": "bench.batching",    # (7) N concurrent txt2img jobs, batched vs one at a time
    "gpu": "bench.gpu",              # full-size SD 1.5 / SDXL on CUDA (skipped without)
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="benchmarks: " + ", ".join(BENCHMARKS)
                                 + "; `soak` runs bench/soak.py")
    ap.add_argument("--quick", action="store_true", help="few repetitions, small sizes (CI smoke)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this benchmark (repeatable, or comma-separated)")
    ap.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave this one out")
    ap.add_argument("-o", "--out", type=Path, default=RESULTS, help=f"output folder (default {RESULTS})")
    ap.add_argument("--reps", type=int, default=None, help="repetitions of every measurement")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up runs before measuring")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return ap


def _names(items: list[str]) -> list[str]:
    return [n.strip() for item in items for n in item.split(",") if n.strip()]


def run(names: list[str], ctx: Context) -> dict[str, Any]:
    """Run the benchmarks ``names`` in suite order; the report as a dict."""
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": ctx.quick,
                              "machine": machine(), "benchmarks": []}
    t_all = time.perf_counter()
    try:
        for name in BENCHMARKS:
            if name not in names:
                continue
            entry: dict[str, Any] = {"name": name, "status": "ok", "rows": []}
            t0 = time.perf_counter()
            try:
                module = importlib.import_module(BENCHMARKS[name])
                entry["title"] = getattr(module, "TITLE", name)
                reason = module.skip_reason() if hasattr(module, "skip_reason") else None
                if reason:
                    entry.update(status="skipped", reason=reason)
                    ctx.log(f"[{name}] skipped: {reason}")
                else:
                    ctx.log(f"[{name}] {entry['title']}")
                    entry["rows"] = [row_dict(r) for r in module.run(ctx)]
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the rest
                entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                             traceback=traceback.format_exc(limit=8))
                ctx.log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            report["benchmarks"].append(entry)
            ctx.log(f"[{name}] {entry['status']} in {entry['seconds']:.0f} s")
    finally:
        ray_down(ctx)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "soak":
        from bench import soak

        return soak.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.list:
        for name, mod in BENCHMARKS.items():
            print(f"{name:<10} {getattr(importlib.import_module(mod), 'TITLE', '')}")
        return 0
    names = _names(args.only) or list(BENCHMARKS)
    unknown = [n for n in names + _names(args.skip) if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    names = [n for n in names if n not in _names(args.skip)]
    ctx = Context(quick=args.quick, reps=args.reps, warmup=args.warmup, out_dir=args.out,
                  verbose=not args.quiet)
    report = run(names, ctx)
    md, js = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {md} and {js}")
    return 0 if all(b["status"] != "failed" for b in report["benchmarks"]) else 1
