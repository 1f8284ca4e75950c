"""Helpers of the reliability suite: daemons with the stress blocks, waiting, socket tables, fake plugins."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from pathlib import Path
from typing import Any

import httpx
from daemon_process import ROOT, TESTS, Daemon

HERE = Path(__file__).resolve().parent
FINAL = {"succeeded", "failed", "cancelled"}


def make_daemon(state: Path, *extra: str, env: dict[str, str] | None = None,
                pythonpath: list[Path] = ()) -> Daemon:
    """A daemon (not started) with the tests' blocks and the stress blocks (``stress_blocks``)."""
    state.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(str(p) for p in [*pythonpath, HERE, TESTS, ROOT])
    return Daemon(state, *extra, env={"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0",
                                      "ORCHESTRATOR_PLUGINS__EXTRA": "daemon_blocks,stress_blocks",
                                      **(env or {})})


def slow_graph(steps: int = 1, step_s: float = 0.0, value: float = 0.5, name: str | None = None) -> dict:
    nodes: dict[str, Any] = {"s": {"block": "test.slow", "params": {"steps": steps, "step_s": step_s,
                                                                    "value": value}}}
    if name is not None:
        nodes["save"] = {"block": "image.save", "inputs": {"image": "s.image"}, "params": {"name": name}}
    return {"nodes": nodes}


async def submit_many(url: str, bodies: list[dict]) -> list[httpx.Response]:
    """POST every body at once from one async client (as many connections as bodies)."""
    limits = httpx.Limits(max_connections=len(bodies) + 5, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return list(await asyncio.gather(*(client.post("/jobs", json=b) for b in bodies)))


def all_jobs(url: str, headers: dict[str, str] | None = None) -> list[dict]:
    out: list[dict] = []
    with httpx.Client(base_url=url, timeout=60, headers=headers) as c:
        while True:
            page = c.get("/jobs", params={"limit": 500, "offset": len(out)}).json()["jobs"]
            out += page
            if len(page) < 500:
                return out


def wait_final(url: str, ids: list[str], timeout: float = 180.0,
               headers: dict[str, str] | None = None) -> dict[str, dict]:
    """Every job of ``ids`` once final, by id (``TimeoutError`` naming the stragglers)."""
    want = set(ids)
    deadline = time.monotonic() + timeout
    while True:
        final = {j["id"]: j for j in all_jobs(url, headers) if j["id"] in want and j["state"] in FINAL}
        if len(final) == len(want):
            return final
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(want) - len(final)} of {len(want)} jobs not final after {timeout} s")
        time.sleep(0.2)


def process_tree(pid: int) -> list[Any]:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def listeners(pid: int) -> list[dict[str, Any]]:
    """Listening TCP sockets of ``pid`` and its descendants, from the OS's socket table."""
    import psutil

    procs = {}
    for p in process_tree(pid):
        try:
            procs[p.pid] = " ".join(p.cmdline())[:120] or p.name()
        except psutil.Error:
            continue
    out = []
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in procs:
            out.append({"ip": c.laddr.ip, "port": c.laddr.port, "pid": c.pid, "cmd": procs[c.pid]})
    return out


def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%")[0]).is_loopback


def fake_distribution(root: Path, dist: str, entry: str, module: str, source: str) -> Path:
    """An installed-looking distribution under ``root`` (put it on ``PYTHONPATH``) with one
    ``orchestrator.plugins`` entry point ``entry = module``; ``module.py`` holds ``source``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[orchestrator.plugins]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")
    return root
