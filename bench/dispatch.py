"""(2) Per-node dispatch overhead of the scheduler against a raw Ray actor-call loop.

Chains and fan-outs of 10, 100 and 1000 no-op nodes that run on one worker actor (one
logical GPU), against ``for _ in range(n): ray.get(actor.f.remote())`` on a plain actor:
wall time per node, the graph compiled beforehand (compile time is its own figure in
``planning``). The pieces come from ``bench/bench_dispatch.py``, which still runs alone.
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, bench_config, median, ray_up

NAME = "dispatch"
TITLE = "per-node dispatch overhead vs a raw Ray call loop (10/100/1000-node graphs)"


def run(ctx: Context) -> list[Row]:
    ray = ray_up(ctx)
    from bench import bench_dispatch as bd
    from orchestrator.runtime.compile import compile_graph
    from orchestrator.runtime.scheduler import Scheduler

    sizes = [10, 100] if ctx.quick else [10, 100, 1000]
    reps = ctx.n(2, 5)
    rows: list[Row] = []
    with Scheduler(config=bench_config(), gpus=1, cpu_workers=None) as sched:
        sched.wait_ready()
        actor = bd.Baseline.remote()
        ray.get(actor.f.remote())
        for _ in range(ctx.w(1, 2)):  # warm both paths
            sched.run(bd.chain(20))
            bd.baseline_per_call(actor, 100)
        for shape, make in (("chain", bd.chain), ("fan-out", bd.fan_out)):
            for n in sizes:
                compiled = compile_graph(make(n), sched.catalog)
                base, ours = [], []
                for i in range(reps):
                    order = ("base", "ours") if i % 2 == 0 else ("ours", "base")
                    for who in order:
                        if who == "base":
                            base.append(bd.baseline_per_call(actor, n))
                        else:
                            ours.append(_per_node(sched, compiled, n))
                b, s = median(base), median(ours)
                ctx.log(f"{shape} {n}: ours {s * 1e6:.0f} us/node, ray {b * 1e6:.0f} us/call")
                rows.append(Row(NAME, f"{shape} of {n} no-op nodes, per node", s, b,
                                base_label="ray.get(actor.f.remote()) loop",
                                note=f"{reps} reps; whole job {s * n * 1e3:.0f} ms",
                                extra={"ours": ours, "base": base, "n": n, "shape": shape}))
        ray.kill(actor)
    # growth: per-node time at the largest size over the smallest (1.0: linear total time)
    for shape in ("chain", "fan-out"):
        mine = [r for r in rows if r.extra["shape"] == shape]
        if len(mine) > 1 and mine[0].ours:
            growth = mine[-1].ours / mine[0].ours
            mine[-1].note += f"; per-node time x{growth:.2f} of n={mine[0].extra['n']}"
    return rows


def _per_node(sched: Any, compiled: Any, n: int) -> float:
    """Wall time per node of one job (the cache cleared first, so every node runs)."""
    sched.clear_cache()
    t0 = time.perf_counter()
    sched.submit(compiled).result()
    return (time.perf_counter() - t0) / n
