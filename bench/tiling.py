"""(4) Tile speedup on 1 vs 2 workers, and the break-even tile cost.

A tiled node becomes one task per tile, fanned out over every worker and merged back. This
measures what that fan-out buys: a source, ``tiles`` tile tasks of a fixed amount of CPU
work each (``bench.work``, calibrated to a cost in milliseconds on this machine), and a
merge, run by a scheduler with 1 worker and by one with 2 workers, in alternation. The
speedup is t(1 worker) / t(2 workers); the *break-even tile cost* is the per-tile cost above
which 2 workers beat 1 (interpolated between the measured costs): below it, dispatch
overhead eats the parallelism.

Hook for the tiling transform: when ``bench/bench_tiling.py`` exists and defines
``suite_rows(quick: bool) -> list[dict]`` (each dict: ``case``, ``ours``, ``base``, ``unit``,
and optionally ``ours_label``, ``base_label``, ``ratio``, ``note``, ``extra``), its rows are
added here, measured on real tiled graphs.
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path
from typing import Any

from bench.core import Context, Row, bench_config, median, ray_up

NAME = "tiling"
TITLE = "tile speedup on 1 vs 2 workers and the break-even tile cost"


def tile_graph(tiles: int, iters: int, salt: int = 0) -> Any:
    """A source, ``tiles`` work nodes reading it, and a gather of their results."""
    from graphs import GraphBuilder

    b = GraphBuilder()
    src = b.add("bench.source", id="src", nbytes=4096, value=salt % 256)
    outs = [b.add("bench.work", id=f"tile{i}", after=[src.data], iters=iters, tag=i).value
            for i in range(tiles)]
    b.add("bench.gather", id="merge", items=outs)
    return b.build()


def break_even(points: list[tuple[float, float]]) -> tuple[float | None, str]:
    """The cost from which on 2 workers are at least as fast as 1, from ``(cost, speedup)``
    points sorted by cost: interpolated (log scale) after the last point below 1.

    >>> break_even([(1.0, 0.5), (4.0, 1.5)])[0]
    2.0
    >>> break_even([(1.0, 1.2), (4.0, 1.5)])
    (1.0, 'at or below the smallest cost measured')
    >>> break_even([(1.0, 1.2), (4.0, 0.9)])[0] is None
    True
    """
    if not points:
        return None, "nothing measured"
    below = [i for i, (_c, s) in enumerate(points) if s < 1.0]
    if not below:
        return points[0][0], "at or below the smallest cost measured"
    i = below[-1]
    if i == len(points) - 1:
        return None, f"2 workers not faster than 1 at {points[-1][0]:g} ms per tile"
    (c0, s0), (c1, s1) = points[i], points[i + 1]
    f = (1.0 - s0) / (s1 - s0)
    return math.exp(math.log(c0) + f * (math.log(c1) - math.log(c0))), "interpolated"


def run(ctx: Context) -> list[Row]:
    ray_up(ctx)
    from bench.blocks import calibrate
    from orchestrator.runtime.compile import compile_graph
    from orchestrator.runtime.scheduler import Scheduler

    rows = _from_bench_tiling(ctx)
    rate = calibrate()  # spin iterations per second on one core here
    costs_ms = [1.0, 20.0] if ctx.quick else [0.5, 2.0, 8.0, 32.0, 128.0]
    tiles = 8 if ctx.quick else 16
    reps = ctx.n(2, 9)
    points: list[tuple[float, float]] = []
    with Scheduler(config=bench_config(), gpus=1) as one, Scheduler(config=bench_config(), gpus=2) as two:
        one.wait_ready()
        two.wait_ready()
        for cost in costs_ms:
            iters = max(1, int(rate * cost / 1000))
            t: dict[str, list[float]] = {"one": [], "two": []}
            used: set[str] = set()
            for i in range(ctx.w(1, 1) + reps):
                for who in (("one", "two") if i % 2 == 0 else ("two", "one")):
                    sched = one if who == "one" else two
                    compiled = compile_graph(tile_graph(tiles, iters, salt=i), sched.catalog)
                    sched.clear_cache()
                    on_event = _collect(used) if who == "two" else None
                    t0 = time.perf_counter()
                    sched.submit(compiled, on_event=on_event).result()
                    if i >= ctx.w(1, 1):
                        t[who].append(time.perf_counter() - t0)
            t1, t2 = median(t["one"]), median(t["two"])
            points.append((cost, t1 / t2))
            ctx.log(f"{tiles} tiles x {cost:g} ms: 1 worker {t1 * 1e3:.0f} ms, 2 workers {t2 * 1e3:.0f} ms")
            rows.append(Row(NAME, f"{tiles} tiles of {cost:g} ms of CPU work each: 2 workers vs 1", t2, t1,
                            ours_label="2 workers", base_label="1 worker",
                            note=f"speedup x{t1 / t2:.2f} (ideal x2 on 2 free cores); tiles ran on "
                                 f"{len(used)} workers",
                            extra={"samples": t, "cost_ms": cost, "iters": iters, "tiles": tiles}))
    cost, how = break_even(points)
    rows.append(Row(NAME, "break-even tile cost (2 workers as fast as 1)",
                    cost / 1000 if cost is not None else None, unit="s",
                    note=f"{how}; speedups {', '.join(f'{c:g} ms: x{s:.2f}' for c, s in points)}",
                    extra={"points": points, "spin_rate": rate}))
    return rows


def _collect(used: set[str]) -> Any:
    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "node_started" and str(event.get("node", "")).startswith("tile"):
            used.add(str(event.get("worker")))

    return on_event


def _from_bench_tiling(ctx: Context) -> list[Row]:
    """Rows from ``bench/bench_tiling.py``'s ``suite_rows`` (see the module doc), if it has one."""
    if not Path(__file__).with_name("bench_tiling.py").is_file():
        return []
    module = importlib.import_module("bench.bench_tiling")
    fn = getattr(module, "suite_rows", None)
    if fn is None:
        ctx.log("bench/bench_tiling.py has no suite_rows(quick); only the fan-out figures are measured")
        return []
    return [Row(NAME, **d) for d in fn(quick=ctx.quick)]
