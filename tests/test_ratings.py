"""Ratings: ``POST /jobs/{id}/rating`` on the daemon's real app (in process, behind the guard),
both clients, the score table per label x template x model, and the next plan changing."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest
from starlette.testclient import TestClient

from orchestrator.protocol import JobState
from orchestrator.server.ratings import JOB_RATING

TOKEN = "s3cret-token-for-ratings"
BASE = "http://127.0.0.1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROMPT = "a red fox in the snow"


@pytest.fixture(scope="module")
def host():
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings

    return plugin_host(load_settings(config_file=False, env={}, overrides={}))


@pytest.fixture()
def app(tmp_path, host):
    from agents.daemon import make_score_recorder
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "token": TOKEN})
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(host.catalog, settings), outputs_root=tmp_path / "outputs",
                         on_scored=make_score_recorder(settings))
    guard = create_app(service, settings)
    guard.store, guard.settings = store, settings
    yield guard
    store.close()


def planner(app, host):
    from agents.factory import build_planner, open_scores

    return build_planner(app.settings.agent, host.catalog, host.templates,
                         scores=open_scores(app.settings.agent, app.settings.state_dir), llm="offline")


def finished_job(app, graph: dict | None = None, prompt: str | None = None,
                 state: JobState = JobState.SUCCEEDED) -> str:
    job, _ = app.store.create(kind="prompt" if prompt else "graph", request={}, prompt=prompt, graph=graph)
    if state is JobState.QUEUED:
        return job["id"]
    app.store.claim_next()
    if graph is not None:
        app.store.update(job["id"], graph=graph)
    if state is not JobState.RUNNING:
        app.store.finish(job["id"], state)
    return job["id"]


def planned_job(app, host, prompt: str = PROMPT) -> tuple[str, str]:
    plan = planner(app, host).plan(prompt)
    return finished_job(app, plan.graph.to_dict(), prompt), str(plan.template)


def table(app):
    from agents.factory import open_scores

    return open_scores(app.settings.agent, app.settings.state_dir)


def test_the_route_is_behind_the_guard(app, host) -> None:
    jid = finished_job(app, prompt=PROMPT)
    with TestClient(app, base_url=BASE) as c:
        url = JOB_RATING.format(id=jid)
        r = c.post(url, json={"score": 5})
        assert r.status_code == 401 and set(r.json()) == {"errors"}
        r = c.post(url, json={"score": 5}, headers={**AUTH, "Origin": "https://evil.example"})
        assert r.status_code == 403
        assert c.get(url).status_code == 401
        assert app.store.get(jid)["rating"] is None  # nothing was rated by the refused requests
        assert JOB_RATING in c.get("/openapi.json", headers=AUTH).json()["paths"]


HOSTILE = [
    ({"score": 0}, "score"), ({"score": 6}, "score"), ({"score": -1e308}, "score"),
    ({"score": "5"}, "score"), ({"score": True}, "score"), ({"score": None}, "score"),
    ({"score": [5]}, "score"), ({}, "score"), ({"score": 4, "job": "other"}, "job"),
    ({"score": 10**400}, None),
]


@pytest.mark.parametrize(("body", "field"), HOSTILE)
def test_bad_bodies_are_4xx_naming_the_field_and_change_nothing(app, body, field) -> None:
    jid = finished_job(app, prompt=PROMPT)
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        r = c.post(JOB_RATING.format(id=jid), content=json.dumps(body) if body.get("score") != 10**400
                   else b'{"score": 1' + b"0" * 400 + b"}",
                   headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    errors = r.json()["errors"]
    assert errors and all({"type", "message"} <= set(e) for e in errors)
    if field is not None:
        assert any(field in str(e.get("field")) for e in errors), errors
    assert app.store.get(jid)["rating"] is None


def test_raw_hostile_bodies_are_4xx(app) -> None:
    jid = finished_job(app, prompt=PROMPT)
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        url = JOB_RATING.format(id=jid)
        for raw in (b"", b"not json", b'{"score": NaN}', b'{"score": Infinity}', b"[" * 5000,
                    b"\xff\xfe"):
            r = c.post(url, content=raw, headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (raw[:20], r.status_code, r.text)
            assert "errors" in r.json()
        r = c.post(url, content=b'{"score": 5}', headers={"Content-Type": "text/plain"})
        assert 400 <= r.status_code < 500
    assert app.store.get(jid)["rating"] is None


def test_missing_unfinished_and_odd_ids(app) -> None:
    running = finished_job(app, prompt=PROMPT, state=JobState.RUNNING)  # a prompt job: planning
    failed = finished_job(app, prompt=PROMPT, state=JobState.FAILED)
    queued = finished_job(app, prompt=PROMPT, state=JobState.QUEUED)  # last: nothing claims it
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        for bad in ("0123456789abcdef0123456789abcdef", "..%2F..%2Fetc%2Fpasswd", "x" * 300, "%00"):
            r = c.post(f"/jobs/{bad}/rating", json={"score": 3})
            assert r.status_code == 404, (bad, r.text)
            assert r.json()["errors"][0]["type"] in ("not_found", "request")  # the route's, or no route
            assert c.get(f"/jobs/{bad}/rating").status_code == 404
        for jid, state in ((queued, "queued"), (running, "planning"), (failed, "failed")):
            r = c.post(JOB_RATING.format(id=jid), json={"score": 3})
            assert r.status_code == 409
            err = r.json()["errors"][0]
            assert err["type"] == "conflict" and err["field"] == "id" and err["value"] == state
            assert app.store.get(jid)["rating"] is None


@pytest.mark.parametrize("meta", [{}, {"prompt": "a fox", "labels": ["wildlife"] * 1000 + ["x" * 10000],
                                       "template": "panorama"}], ids=["plain", "posing-as-planned"])
def test_a_graph_job_keeps_its_rating_and_teaches_nothing(app, meta) -> None:
    graph = {"format": "orchestrator.graph/1", "meta": meta, "nodes": {"a": {"block": "image.solid"}}}
    jid = finished_job(app, graph)
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        r = c.post(JOB_RATING.format(id=jid), json={"score": 4.5})
        assert r.status_code == 200
        assert r.json() == {"id": jid, "rating": 4.5, "previous": None, "score": 0.875, "learned": False}
        assert c.get(JOB_RATING.format(id=jid)).json()["rating"] == 4.5
    with table(app) as t:
        assert t.rows() == [] and t.sources() == {}


def test_rating_is_idempotent_per_job_and_learns_per_model(app, host) -> None:
    jid, template = planned_job(app, host)
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        url = JOB_RATING.format(id=jid)
        first = c.post(url, json={"score": 2}).json()
        assert first["learned"] and first["previous"] is None and first["score"] == 0.25
        for _ in range(3):
            again = c.post(url, json={"score": 2}).json()
        assert again["previous"] == 2
        changed = c.post(url, json={"score": 5}).json()
        assert changed["previous"] == 2 and changed["rating"] == 5
    with table(app) as t:
        assert t.stats("wildlife", template) == (1, 1.0)  # one job: one rating, the last one
        assert t.sources() == {"rating": 1}
        models = t.model_rows()
        assert {(r["label"], r["template"], r["count"], r["mean"]) for r in models} >= {
            ("wildlife", template, 1, 1.0)}
        assert all(r["model"] for r in models)
    assert app.store.get(jid)["rating"] == 5


def test_both_clients_rate(app, host) -> None:
    from orchestrator.client import AsyncClient, Client

    a, _ = planned_job(app, host)
    b, _ = planned_job(app, host, "a wolf in the snow")
    with Client(BASE, token=TOKEN) as client:
        client._http = TestClient(app, base_url=BASE, headers=AUTH)
        out = client.job(a).rate(4)
        assert out["rating"] == 4 and out["learned"]
        assert client.job(a).rating() == 4

    async def run_async() -> tuple[dict, float | None]:
        client = AsyncClient(BASE, token=TOKEN)
        await client._http.aclose()
        client._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                         headers=AUTH)
        try:
            job = await client.job(b)
            return await job.rate(1), await job.rating()
        finally:
            await client.close()

    out, rating = asyncio.run(run_async())
    assert out["rating"] == 1 and out["learned"] and rating == 1
    with table(app) as t:
        assert t.sources() == {"rating": 2}


def test_ratings_change_the_next_plan(app, host) -> None:
    """A low rating of the template the planner picks makes it pick another for those labels;
    high ratings of that one keep it; other labels' plans are untouched."""
    first, template = planned_job(app, host)
    assert planned_job(app, host)[1] == template  # unrated: the same plan again
    with TestClient(app, base_url=BASE, headers=AUTH) as c:
        assert c.post(JOB_RATING.format(id=first), json={"score": 1}).json()["learned"]
        jid, other = planned_job(app, host)
        assert other != template, "a 1-star rating did not change the plan"
        for _ in range(3):
            assert c.post(JOB_RATING.format(id=jid), json={"score": 5}).status_code == 200
            jid, kept = planned_job(app, host)
            assert kept == other
        # rating the first job again (5 stars) replaces its 1 star: the first template is back
        # level with the other on the prior, and the other's 5-star ratings keep it ahead
        c.post(JOB_RATING.format(id=first), json={"score": 5})
    with table(app) as t:
        assert t.stats("wildlife", template) == (1, 1.0)
        assert t.stats("wildlife", other) == (3, 1.0)
    plan = planner(app, host).plan("a bowl of ramen on a wooden table")
    assert plan.template == template  # food: nothing was rated, the priors decide


def test_explore_tries_a_close_candidate_and_never_a_far_one() -> None:
    from agents.scores import explore

    def ranking():
        return [{"template": "a", "score": 0.6}, {"template": "b", "score": 0.58},
                {"template": "far", "score": 0.3}]

    assert [r["template"] for r in explore(ranking(), {}, ["wildlife"])] == ["a", "b", "far"]
    # a rated often and a bit better than b's prior: b, never tried, gets its turn
    cells = {("wildlife", "a"): (20, 0.62)}
    out = explore(ranking(), cells, ["wildlife"])
    assert [r["template"] for r in out] == ["b", "a", "far"]
    assert out[0]["ucb"] > out[1]["ucb"] and out[0]["ratings"] == 0
    assert math.isclose(out[1]["ucb"] - 0.6, 0.2 * math.sqrt(2 * math.log(20) / 22), abs_tol=1e-4)
    # far behind stays behind however much the others were rated
    cells = {("wildlife", "a"): (500, 0.6), ("wildlife", "b"): (500, 0.58)}
    assert explore(ranking(), cells, ["wildlife"])[-1]["template"] == "far"


def test_old_score_files_are_migrated(tmp_path) -> None:
    import sqlite3

    from agents.scores import ScoreTable

    path = tmp_path / "scores.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE scores (label TEXT NOT NULL, template TEXT NOT NULL, count INTEGER NOT NULL,
            mean REAL NOT NULL, PRIMARY KEY (label, template));
        CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, job TEXT,
            prompt TEXT NOT NULL, labels TEXT NOT NULL, template TEXT, graph TEXT NOT NULL,
            score REAL NOT NULL);
        INSERT INTO records (created, job, prompt, labels, template, graph, score)
            VALUES (0, 'j1', 'a fox', '["wildlife"]', 'txt2img', '{}', 0.5);
        INSERT INTO scores VALUES ('wildlife', 'txt2img', 1, 0.5);""")
    conn.commit()
    conn.close()
    with ScoreTable(path) as t:
        assert t.stats("wildlife", "txt2img") == (1, 0.5) and t.sources() == {"scorer": 1}
        t.record("a wolf", ["wildlife"], "txt2img", {}, 1.0, job="j2", source="rating", model="m")
        assert t.stats("wildlife", "txt2img") == (2, 0.75)
        assert t.model_cells() == {("wildlife", "txt2img", "m"): (1, 1.0)}
        with pytest.raises(ValueError, match="source"):
            t.record("x", ["l"], "t", {}, 0.5, source="guess")


def test_the_planner_explores_after_many_good_ratings_of_one_template(tmp_path, host) -> None:
    """Ten 4-star ratings of the plain template: UCB1 gives an untried close candidate its
    turn; rated badly, it loses it to the next untried one; a far candidate is never tried."""
    from agents.factory import build_planner
    from agents.scores import ScoreTable

    with ScoreTable(tmp_path / "scores.sqlite") as scores:
        p = build_planner(type("S", (), {})(), host.catalog, host.templates, scores=scores, llm="offline")
        first = p.plan(PROMPT)
        for i in range(10):
            scores.record_plan(first, 0.75, job=f"j{i}")
        tried = p.plan(PROMPT)
        assert tried.template != first.template
        top = tried.trace["ranking"][0]
        assert top["template"] == tried.template and top["ratings"] == 0 and "ucb" in top
        for i in range(10):
            scores.record_plan(tried, 0.25, job=f"t{i}")
        after = p.plan(PROMPT).template
        assert after not in (tried.template, "panorama")


def test_ratings_pick_between_the_users_checkpoints_of_a_family(tmp_path, host) -> None:
    """No default model, two SD-1 checkpoints: the one whose plans were rated better is used."""
    from agents.factory import build_planner
    from agents.scores import ScoreTable

    library = [{"name": "alpha-sd15", "kind": "checkpoint", "family": "sd1"},
               {"name": "beta-sd15", "kind": "checkpoint", "family": "sd1"}]
    with ScoreTable(tmp_path / "scores.sqlite") as scores:
        p = build_planner(type("S", (), {})(), host.catalog, host.templates, models=library,
                          scores=scores, llm="offline")
        first = p.plan(PROMPT)
        from agents.scores import graph_model

        assert graph_model(first.graph.to_dict()) == "alpha-sd15"  # unrated: by name
        assert scores.model_score(["wildlife"], "alpha-sd15") == 0.5
        for i in range(2):
            scores.record_plan(first, 0.0, job=f"a{i}")
        assert scores.model_score(["wildlife"], "alpha-sd15") == pytest.approx(0.25)
        plan = p.plan("a wolf in a snowy wildlife reserve, wildlife photography")
        assert graph_model(plan.graph.to_dict()) == "beta-sd15"
        assert scores.model_score(["food"], "alpha-sd15") == 0.5  # other labels: not learned


def test_a_jobs_db_from_before_ratings_opens_and_rates(tmp_path) -> None:
    import sqlite3

    from orchestrator.state.store import SCHEMA, JobStore

    path = tmp_path / "jobs.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)  # the tables as they were, without the rating columns
    conn.execute("INSERT INTO jobs (id, state, kind, request, created_at) "
                 "VALUES ('0123456789abcdef', 'succeeded', 'graph', '{}', 0)")
    conn.commit()
    conn.close()
    store = JobStore(path)
    try:
        job = store.get("0123456789abcdef")
        assert job is not None and job["rating"] is None and job["state"] == "succeeded"
        rated, previous = store.rate("0123456789abcdef", 3.5)
        assert rated["rating"] == 3.5 and previous is None and rated["rated_at"] > 0
        assert store.rate("fedcba9876543210", 2) is None
    finally:
        store.close()
    again = JobStore(path)  # opening it again adds nothing twice
    assert again.get("0123456789abcdef")["rating"] == 3.5
    again.close()
