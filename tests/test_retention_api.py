"""``POST /jobs/prune`` on the daemon's real app (in process): behind the guard, both clients."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.testclient import TestClient

from orchestrator.protocol import JOBS_PRUNE, JobState

TOKEN = "s3cret-token-for-tests"
BASE = "http://127.0.0.1"


@pytest.fixture()
def app(tmp_path):
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "token": TOKEN,
        "retention": {"max_jobs": 100, "keep_latest": 0}})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(plugin_host(settings).catalog, settings),
                         outputs_root=tmp_path / "outputs")
    guard = create_app(service, settings)
    guard.store, guard.outputs = store, tmp_path / "outputs"
    yield guard
    store.close()


def finished(app, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        job, _ = app.store.create(kind="graph", request={})
        app.store.claim_next()
        (app.outputs / job["id"]).mkdir(parents=True)
        (app.outputs / job["id"] / "a.png").write_bytes(b"x" * 100)
        app.store.add_output(job["id"], "a", "save", str(app.outputs / job["id"] / "a.png"))
        app.store.finish(job["id"], JobState.SUCCEEDED)
        ids.append(job["id"])
    return ids


def test_the_route_is_in_the_contract_and_behind_the_guard(app):
    with TestClient(app, base_url=BASE) as c:
        r = c.post(JOBS_PRUNE, json={"dry_run": True})
        assert r.status_code == 401 and set(r.json()) == {"errors"}
        r = c.post(JOBS_PRUNE, json={"dry_run": True}, headers={"Origin": "https://evil.example",
                                                                "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert JOBS_PRUNE in c.get("/openapi.json", headers=auth).json()["paths"]
        m = c.get("/metrics", headers=auth).json()
        assert {"connections", "streams", "max_streams", "header_timeouts"} <= set(m["server"])
        assert m["retention"]["max_jobs"] == 100 and m["engine"]["cache"]["max_entries"] == 256


def test_both_clients_prune_through_the_route(app):
    from orchestrator.client import AsyncClient, Client

    ids = finished(app, 5)
    with Client(BASE, token=TOKEN) as client:
        client._http = TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})
        dry = client.prune(dry_run=True, max_jobs=2)
        assert dry["dry_run"] and dry["jobs"] == ids[:3] and app.store.count_jobs() == 5
        report = client.prune(max_jobs=2)
        assert report["pruned"] == 3 and report["kept_jobs"] == 2 and report["freed_bytes"] == 300
        assert not any((app.outputs / i).exists() for i in ids[:3])

    async def run_async() -> dict:
        client = AsyncClient(BASE, token=TOKEN)
        await client._http.aclose()
        client._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            return await client.prune(older_than_s=0.0, keep_latest=1)
        finally:
            await client.close()

    report = asyncio.run(run_async())
    assert report["jobs"] == [ids[3]] and app.store.count_jobs() == 1
    assert (app.outputs / ids[4] / "a.png").is_file()


def test_refusals_name_the_field_and_change_nothing(app):
    ids = finished(app, 3)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, base_url=BASE) as c:
        for body, field in (({"max_jobs": -1}, "max_jobs"), ({"older_than_s": "7d"}, "older_than_s"),
                            ({"keep_latest": 2**70}, "keep_latest"), ({"dry_run": 1}, "dry_run"),
                            ({"everything": True}, "everything")):
            r = c.post(JOBS_PRUNE, json=body, headers=auth)
            assert r.status_code == 422, body
            assert any(field in (e.get("field") or "") for e in r.json()["errors"]), r.json()
    assert app.store.count_jobs() == 3 and all((app.outputs / i).is_dir() for i in ids)


def test_without_the_token_only_the_configured_policy_runs(tmp_path):
    """A local client that cannot prove it is the operator cannot delete accepted work early."""
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "retention": {"max_jobs": 100, "keep_latest": 0}})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(plugin_host(settings).catalog, settings),
                         outputs_root=tmp_path / "outputs")
    app = create_app(service, settings)
    app.store, app.outputs = store, tmp_path / "outputs"
    try:
        ids = finished(app, 3)
        with TestClient(app, base_url=BASE) as c:
            for body in ({"older_than_s": 0.0}, {"max_jobs": 0}, {"keep_latest": 0},
                         {"max_output_bytes": 0}, {"dry_run": True, "max_jobs": 0}):
                r = c.post(JOBS_PRUNE, json=body)
                assert r.status_code == 403 and r.json()["errors"][0]["type"] == "auth", body
            assert store.count_jobs() == 3 and all((app.outputs / i).is_dir() for i in ids)
            r = c.post(JOBS_PRUNE, json={})  # the configured policy: 3 jobs are within it
            assert r.status_code == 200 and r.json()["pruned"] == 0
    finally:
        store.close()
