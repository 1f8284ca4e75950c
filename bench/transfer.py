"""(6) Moving arrays of 32 KiB, 128 KiB and 12 MiB from one worker to another.

Ours: a two-node job on a scheduler with two worker actors, ``bench.source`` (makes the
array) on one and ``bench.consume`` (reads every byte) on the other; the array travels as
a Ray object reference, never through the scheduler. The baseline does the same with raw
Ray: ``b.consume.remote(a.make.remote(n))`` on two plain actors. For scale, the notes give
``ray.get(ray.put(array))`` in this process. Whether the consumer really ran on the other
worker is checked from the job's events and reported.
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, bench_config, fmt_value, median, ray_up

NAME = "transfer"
TITLE = "32 KiB / 128 KiB / 12 MiB arrays between workers vs raw Ray and ray.put/ray.get"
SIZES = {"32 KiB": 32 << 10, "128 KiB": 128 << 10, "12 MiB": 12 << 20}


def run(ctx: Context) -> list[Row]:
    ray = ray_up(ctx)
    import numpy as np

    from graphs import GraphBuilder
    from orchestrator.runtime.compile import compile_graph
    from orchestrator.runtime.scheduler import Scheduler

    @ray.remote(num_cpus=0)
    class Raw:
        def make(self, nbytes: int, value: int) -> Any:
            return np.full(nbytes, value, dtype=np.uint8)

        def consume(self, data: Any) -> int:
            return int(np.asarray(data).sum(dtype=np.uint64))

    a, b = Raw.remote(), Raw.remote()
    ray.get([a.make.remote(1, 0), b.consume.remote(np.zeros(1, np.uint8))])
    reps = ctx.n(3, 10)
    rows = []
    # queue_depth=1: no chaining onto the producer's worker, so the consumer goes to the idle one
    with Scheduler(config=bench_config(), gpus=2, queue_depth=1) as sched:
        sched.wait_ready()
        value = 7
        for label, nbytes in SIZES.items():
            expected = nbytes * value
            crossed = 0
            t: dict[str, list[float]] = {"ours": [], "raw": [], "put_get": []}
            for i in range(ctx.w(1, 2) + reps):
                bld = GraphBuilder()
                src = bld.add("bench.source", id="make", nbytes=nbytes, value=value)
                bld.add("bench.consume", id="read", data=src.data, tag=i)
                compiled = compile_graph(bld.build(), sched.catalog)
                arr = np.full(nbytes, value, dtype=np.uint8)
                workers: dict[str, str] = {}

                def on_event(e: dict[str, Any], workers: dict[str, str] = workers) -> None:
                    if e.get("event") == "node_started":
                        workers[str(e["node"])] = str(e.get("worker"))

                def ours(compiled: Any = compiled, on_event: Any = on_event) -> int:
                    sched.clear_cache()
                    return int(sched.submit(compiled, on_event=on_event).result().outputs["read"]["value"])

                def raw(nbytes: int = nbytes) -> int:
                    return int(ray.get(b.consume.remote(a.make.remote(nbytes, value))))

                def put_get(arr: Any = arr) -> int:
                    return int(ray.get(ray.put(arr)).nbytes)

                order = [("ours", ours), ("raw", raw), ("put_get", put_get)]
                for who, fn in order if i % 2 == 0 else order[::-1]:
                    t0 = time.perf_counter()
                    out = fn()
                    dt = time.perf_counter() - t0
                    if who != "put_get" and out != expected:
                        raise AssertionError(f"{who}: {label} array arrived wrong ({out} != {expected})")
                    if i >= ctx.w(1, 2):
                        t[who].append(dt)
                if i >= ctx.w(1, 2) and workers.get("make") != workers.get("read"):
                    crossed += 1
            ours_m, raw_m, pg = median(t["ours"]), median(t["raw"]), median(t["put_get"])
            ctx.log(f"{label}: ours {ours_m * 1e3:.1f} ms, raw {raw_m * 1e3:.1f} ms, put/get {pg * 1e3:.2f}")
            rows.append(Row(NAME, f"{label} array from one worker to another (make, move, read)",
                            ours_m, raw_m,
                            ours_label="scheduler job", base_label="raw actor calls",
                            note=f"ray.get(ray.put(a)) {fmt_value(pg, 's')}; consumer on the other worker in "
                                 f"{crossed}/{reps} runs",
                            extra={"samples": t, "nbytes": nbytes, "crossed": crossed}))
    for h in (a, b):
        ray.kill(h)
    return rows
