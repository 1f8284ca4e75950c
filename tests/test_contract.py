"""One HTTP contract: the app's routes, the sync client and the async client against protocol.py.

``CLIENT_ROUTES`` names which client method covers which route; ``SERVER_ONLY_ROUTES`` the routes
of ours no client method covers. These tests fail when a route is served that neither table
names, when a table route is not served, when a client method is missing from either client, or
when a method sends its requests somewhere else than its table entry says.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from orchestrator import protocol
from orchestrator.client import AsyncClient, AsyncJob, Client, Job
from orchestrator.protocol import CLIENT_ROUTES, SERVER_ONLY_ROUTES, JobState

TOKEN = "s3cret-token-for-the-contract"
BASE = "http://127.0.0.1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOT_ROUTES = {"COMFY_PREFIXES", "COMFY_WEBSOCKETS", "EDITOR", "IDEMPOTENCY_HEADER", "TOKEN_ENV", "URL_ENV"}


@pytest.fixture(scope="module")
def host():
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings

    return plugin_host(load_settings(config_file=False, env={}, overrides={}))


@pytest.fixture()
def app(tmp_path, host):
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "token": TOKEN})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(host.catalog, settings), outputs_root=tmp_path / "outputs")
    guard = create_app(service, settings)
    guard.store, guard.outputs_root = store, tmp_path / "outputs"
    yield guard
    store.close()


def served(app) -> set[tuple[str, str]]:
    """(path, method) of every HTTP route of the app, ComfyUI's included."""
    out = set()
    for route in app.app.routes:
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                out.add((route.path, method))
    return out


def documented(app) -> set[tuple[str, str]]:
    """(path, method) of the routes in the OpenAPI document (ours; ComfyUI's are left out of it)."""
    return {(r.path, m) for r in app.app.routes if isinstance(r, APIRoute) and r.include_in_schema
            for m in r.methods}


def route_constants() -> dict[str, str]:
    return {k: v for k, v in vars(protocol).items()
            if k.isupper() and isinstance(v, str) and v.startswith("/") and k not in NOT_ROUTES}


def test_every_documented_route_is_in_the_contract(app) -> None:
    contract = set(CLIENT_ROUTES.values()) | set(SERVER_ONLY_ROUTES)
    missing = documented(app) - contract
    assert not missing, f"routes served but named in neither CLIENT_ROUTES nor SERVER_ONLY_ROUTES: {missing}"
    assert {p for p, _m in contract} <= set(route_constants().values())


def test_every_contract_route_is_served(app) -> None:
    contract = set(CLIENT_ROUTES.values()) | set(SERVER_ONLY_ROUTES)
    missing = contract - served(app)
    assert not missing, f"routes in protocol.py the app does not serve: {missing}"
    unused = set(route_constants().values()) - {p for p, _m in contract}
    assert not unused, f"route constants in neither table: {unused}"


def test_the_openapi_document_is_the_contract(app) -> None:
    doc = TestClient(app, base_url=BASE, headers=AUTH).get("/openapi.json").json()
    paths = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    assert paths == {(p, m) for p, m in set(CLIENT_ROUTES.values()) | set(SERVER_ONLY_ROUTES)
                     if (p, m) in documented(app)}
    assert paths == documented(app)


def _method(cls_client: type, cls_job: type, name: str) -> Any:
    owner, _, attr = name.rpartition(".")
    return getattr(cls_job if owner == "Job" else cls_client, attr, None)


@pytest.mark.parametrize("name", sorted(CLIENT_ROUTES))
def test_both_clients_have_every_method(name) -> None:
    sync = _method(Client, Job, name)
    asynchronous = _method(AsyncClient, AsyncJob, name)
    assert callable(sync), f"Client has no {name}"
    assert asynchronous is not None, f"AsyncClient has no {name}"
    assert inspect.iscoroutinefunction(asynchronous) or inspect.isasyncgenfunction(asynchronous), name


@pytest.mark.parametrize(("sync", "asynchronous", "prefix"),
                         [(Client, AsyncClient, ""), (Job, AsyncJob, "Job.")])
def test_every_public_method_is_in_the_table(sync, asynchronous, prefix) -> None:
    plumbing = {"close", "job"} if prefix else {"close"}
    for cls in (sync, asynchronous):
        public = {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
        named = {n[len(prefix):] for n in CLIENT_ROUTES if (n.startswith("Job.") == bool(prefix))}
        assert public - plumbing - named == set(), f"{cls.__name__} methods no table entry names"


def _template(path: str) -> str | None:
    """The route constant ``path`` is an instance of."""
    for route in sorted(route_constants().values(), key=lambda r: -len(r)):
        pattern = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(route)) + "$"
        if re.match(pattern, path):
            return route
    return None


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _finished_job(app) -> str:
    """A succeeded graph job with one PNG output, written at test time."""
    job, _ = app.store.create(kind="graph", request={}, graph={"nodes": {}})
    app.store.claim_next()
    folder = Path(app.outputs_root) / job["id"]
    folder.mkdir(parents=True)
    (folder / "image.png").write_bytes(_png())
    app.store.add_output(job["id"], "image", "save", str(folder / "image.png"))
    app.store.finish(job["id"], JobState.SUCCEEDED)
    return job["id"]


def calls(done: str, queued: str, out: Path) -> dict[str, Any]:
    """One call per table entry: name -> (target, method name, args, kwargs)."""
    png = _png()
    return {
        "submit": ("client", "submit", ("a red fox",), {}),
        "jobs": ("client", "jobs", (), {}),
        "job": ("client", "job", (done,), {}),
        "blocks": ("client", "blocks", (), {}),
        "templates": ("client", "templates", (), {}),
        "models": ("client", "models", (), {}),
        "health": ("client", "health", (), {}),
        "metrics": ("client", "metrics", (), {}),
        "prune": ("client", "prune", (), {"dry_run": True}),
        "upload": ("client", "upload", (png,), {}),
        "upload_info": ("client", "upload_info", (png,), {}),
        "inputs": ("client", "inputs", (), {}),
        "Job.status": ("done", "status", (), {}),
        "Job.wait": ("done", "wait", (), {"timeout": 60}),
        "Job.cancel": ("queued", "cancel", (), {}),
        "Job.events": ("done", "events", (), {}),
        "Job.result": ("done", "result", (), {"timeout": 60}),
        "Job.save": ("done", "save", (out,), {"timeout": 60}),
        "Job.rate": ("done", "rate", (4,), {}),
        "Job.rating": ("done", "rating", (), {}),
    }


def test_the_sync_client_calls_the_routes_the_table_names(app, tmp_path) -> None:
    done = _finished_job(app)
    queued = app.store.create(kind="prompt", request={}, prompt="a wolf")[0]["id"]
    sent: list[tuple[str, str]] = []
    with Client(BASE, token=TOKEN) as client:
        client._http = TestClient(app, base_url=BASE, headers=AUTH)
        client._http.event_hooks = {"request": [lambda r: sent.append((r.method, r.url.path))]}
        handles = {"client": client, "done": client.job(done), "queued": client.job(queued)}
        assert set(calls(done, queued, tmp_path)) == set(CLIENT_ROUTES)
        for name, (target, attr, args, kwargs) in calls(done, queued, tmp_path / "sync").items():
            sent.clear()
            result = getattr(handles[target], attr)(*args, **kwargs)
            if name == "Job.events":
                assert [e["event"] for e in result][-1] == "done"
            route, method = CLIENT_ROUTES[name]
            assert (method, route) in {(m, _template(p)) for m, p in sent}, (name, sent)
    assert (tmp_path / "sync" / "image.png").read_bytes() == _png()


def test_the_async_client_calls_the_routes_the_table_names(app, tmp_path) -> None:
    done = _finished_job(app)
    queued = app.store.create(kind="prompt", request={}, prompt="a wolf")[0]["id"]
    sent: list[tuple[str, str]] = []

    async def record(request: httpx.Request) -> None:
        sent.append((request.method, request.url.path))

    async def run() -> None:
        client = AsyncClient(BASE, token=TOKEN)
        await client._http.aclose()
        client._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                         headers=AUTH, event_hooks={"request": [record]})
        try:
            handles = {"client": client, "done": await client.job(done),
                       "queued": await client.job(queued)}
            for name, (target, attr, args, kwargs) in calls(done, queued, tmp_path / "async").items():
                sent.clear()
                result = getattr(handles[target], attr)(*args, **kwargs)
                if inspect.isasyncgen(result):
                    events = [e async for e in result]
                    assert events[-1]["event"] == "done"
                else:
                    result = await result
                if name == "Job.result":
                    assert result.state == "succeeded" and result.images["image"].size == (8, 8)
                route, method = CLIENT_ROUTES[name]
                assert (method, route) in {(m, _template(p)) for m, p in sent}, (name, sent)
        finally:
            await client.close()

    asyncio.run(run())
    assert (tmp_path / "async" / "image.png").read_bytes() == _png()
