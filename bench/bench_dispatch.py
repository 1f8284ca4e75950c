"""Per-node dispatch overhead of the scheduler, against a plain Ray actor-call loop.

Not a test. Starts its own local Ray (one logical GPU, so the scheduler has one worker
actor, like the baseline's one actor), then for chains and fan-outs of 10, 100 and 1000
no-op GPU nodes measures the wall time per node of

- the baseline: ``for _ in range(n): ray.get(actor.f.remote())`` on a plain actor;
- the scheduler: ``Scheduler.submit(compiled).result()`` (the graph compiled beforehand;
  the compile time is printed on its own);

and prints their ratio (goal: <= 1.5x per node, growing linearly with n). Then the cache:
a chain of sleeping nodes run once, then again with only its last node changed.

    .venv/bin/python bench/bench_dispatch.py [--sizes 10 100 1000] [--repeat 3]
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
from orchestrator.compile import compile_graph  # noqa: E402
from orchestrator.scheduler import Scheduler  # noqa: E402
from orchestrator.worker import WorkerConfig  # noqa: E402

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
    ray.shutdown()


if __name__ == "__main__":
    main()
