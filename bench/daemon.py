"""(5) Daemon throughput and latency: no-op jobs against raw Ray tasks.

A real daemon subprocess (the in-process engine, then the Ray engine with one worker)
gets ``n`` one-node no-op jobs submitted at once over HTTP; the figure is the wall time
per job from the first submission to the last job finished (every job is written to
SQLite before it is answered, and every state change after). The baseline is ``n`` no-op
Ray tasks submitted at once. Then *submit-to-start latency*, one job at a time: from the
moment the client sends ``POST /jobs`` to the job's ``started_at``, against the moment a
Ray task starts after ``.remote()``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import Context, Row, fmt_value, median, ray_up

NAME = "daemon"
TITLE = "daemon throughput (no-op jobs/s) and submit-to-start latency vs raw Ray tasks"


def run(ctx: Context) -> list[Row]:
    ray = ray_up(ctx)

    # one CPU each (Ray's default): task workers are reused; with num_cpus=0 Ray starts a new
    # worker process for nearly every task of a burst
    @ray.remote
    def noop(i: int) -> int:
        return i

    @ray.remote
    def started() -> float:
        return time.time()

    n = 20 if ctx.quick else 200
    lat_n = ctx.n(5, 20)
    for _ in range(3):
        ray.get([noop.remote(i) for i in range(n)])  # warm the task workers

    def ray_throughput() -> float:
        t0 = time.perf_counter()
        ray.get([noop.remote(i) for i in range(n)])
        return (time.perf_counter() - t0) / n

    def ray_latency() -> float:
        t0 = time.time()
        return ray.get(started.remote()) - t0

    rows: list[Row] = []
    engines = [("local", None), ("ray", 1)]
    for engine, workers in engines:
        with tempfile.TemporaryDirectory(prefix=f"bench-daemon-{engine}-") as tmp:
            rows += _engine_rows(ctx, Path(tmp), engine, workers, n, lat_n, ray_throughput, ray_latency)
    return rows


def _engine_rows(ctx: Context, state: Path, engine: str, workers: int | None, n: int, lat_n: int,
                 ray_throughput: Any, ray_latency: Any) -> list[Row]:
    """The daemon's figures for one engine, each alternated with its Ray baseline."""
    import httpx

    from bench.daemons import daemon, noop_graph, submit_all, wait_final

    d = daemon(state, engine, workers=workers, env={"ORCHESTRATOR_LIMITS__QUEUED": str(max(1000, 2 * n))})
    t_start = time.perf_counter()
    d.start(timeout=240)
    ctx.log(f"{engine} engine daemon up in {time.perf_counter() - t_start:.1f} s")
    value = iter(range(10**9))
    try:
        with httpx.Client(base_url=d.url, timeout=60) as client:
            def one() -> dict[str, Any]:
                t0 = time.time()
                job = client.post("/jobs", json={"graph": noop_graph(next(value))}).json()
                info = wait_final(d.url, [job["id"]], timeout=120, poll=0.005)[job["id"]]
                return {"latency": info["started_at"] - t0, "state": info["state"]}

            for _ in range(3):  # warm-up: the first job of a Ray engine starts its task workers
                one()
            lat, base_lat = [], []
            for _ in range(lat_n):
                lat.append(one())
                base_lat.append(ray_latency())
        walls: list[float] = []
        base_walls: list[float] = []
        failed: list[str] = []
        for _ in range(ctx.n(1, 3)):  # bursts of n jobs, each after a burst of n Ray tasks
            base_walls.append(ray_throughput())
            bodies = [{"graph": noop_graph(next(value))} for _ in range(n)]
            t0 = time.time()
            answers = asyncio.run(submit_all(d.url, bodies))
            infos = wait_final(d.url, [a["id"] for a in answers], timeout=600)
            walls.append(max(i["finished_at"] for i in infos.values()) - t0)
            failed += [i["state"] for i in infos.values() if i["state"] != "succeeded"]
        wall = median(walls)
    finally:
        d.terminate()
    bad = failed + [x["state"] for x in lat if x["state"] != "succeeded"]
    label = f"{engine} engine" + (f", {workers} worker" if workers else "")
    per_job = wall / n
    base_per_task = median(base_walls)
    lat_m = median([x["latency"] for x in lat])
    base_latency = median(base_lat)
    return [
        Row(NAME, f"{n} no-op jobs submitted at once, time per job ({label})", per_job, base_per_task,
            ours_label="daemon", base_label="no-op Ray task",
            note=f"{1 / per_job:.0f} jobs/s vs {1 / base_per_task:.0f} tasks/s"
                 + (f"; NOT SUCCEEDED: {len(bad)}" if bad else "; all succeeded"),
            extra={"jobs": n, "wall_s": walls}),
        Row(NAME, f"submit-to-start latency, one job at a time ({label})", lat_m, base_latency,
            ours_label="daemon", base_label="Ray task start",
            note=f"median of {lat_n}; worst {fmt_value(max(x['latency'] for x in lat), 's')}",
            extra={"samples": [x["latency"] for x in lat]}),
    ]
