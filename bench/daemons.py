"""Real daemon subprocesses for the daemon benchmark and the soak (as ``tests/daemon_process.py``).

The daemon loads the tests' blocks (``daemon_blocks``, ``fault_plugin``) and the suite's
(``bench.blocks``); it runs on a fresh state directory, port 0, with the engine asked for.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.core import ROOT, TESTS

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from daemon_process import Daemon

PLUGINS = "daemon_blocks,fault_plugin,bench.blocks"
FINAL = {"succeeded", "failed", "cancelled"}


def daemon(state: Path, engine: str = "local", *, workers: int | None = None,
           env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> Daemon:
    """A :class:`Daemon` (not started) with every test and bench block loaded."""
    state.mkdir(parents=True, exist_ok=True)
    args = ["--engine", engine, *extra]
    if workers is not None:
        args += ["--workers", str(workers)]
    full_env = {"ORCHESTRATOR_PLUGINS__EXTRA": PLUGINS, "RAY_USAGE_STATS_ENABLED": "0",
                "PYTHONPATH": f"{TESTS}:{ROOT}", **(env or {})}
    return Daemon(state, *args, env=full_env)


def noop_graph(value: int) -> dict[str, Any]:
    return {"nodes": {"n": {"block": "bench.noop", "params": {"value": value}}}}


async def submit_all(url: str, bodies: list[dict[str, Any]], *, retries: int = 50) -> list[dict[str, Any]]:
    """POST every body at once; answers (a 429/503 is retried after its ``Retry-After``)."""
    limits = httpx.Limits(max_connections=len(bodies) + 10, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one(body: dict[str, Any]) -> dict[str, Any]:
            for _ in range(retries):
                r = await client.post("/jobs", json=body)
                if r.status_code in (429, 503):
                    await asyncio.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
                    continue
                r.raise_for_status()
                return dict(r.json())
            raise RuntimeError("the daemon kept answering 429/503")

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def wait_final(url: str, ids: list[str], timeout: float = 300.0, poll: float = 0.05) -> dict[str, dict]:
    """Poll ``GET /jobs`` until every job of ``ids`` is final; their infos by id."""
    want = set(ids)
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            offset = 0
            while True:
                page = client.get("/jobs", params={"limit": 500, "offset": offset}).json()["jobs"]
                for j in page:
                    if j["id"] in want and j["state"] in FINAL:
                        seen[j["id"]] = j
                if len(page) < 500:
                    break
                offset += 500
            if len(seen) == len(want):
                return seen
            time.sleep(poll)
    missing = sorted(want - set(seen))
    raise TimeoutError(f"{len(missing)} jobs not final after {timeout:.0f} s, e.g. {missing[:3]}")
