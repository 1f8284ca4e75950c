"""Hostile input: refused fast, with structured errors, never a 500, nothing half-accepted."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs import Graph, GraphValidationError, check

ERROR_KEYS = {"type", "message", "node", "field"}
SAVE_GRAPH = {"nodes": {"s": {"block": "test.slow", "params": {"steps": 1}},
                        "save": {"block": "image.save", "inputs": {"image": "s.image"},
                                 "params": {"name": "out"}}}}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon for this module: every case here leaves it as it found it."""
    from daemon_process import Daemon

    d = Daemon(tmp_path_factory.mktemp("state")).start()
    yield d
    d.kill()


@pytest.fixture(scope="module")
def saved_job(daemon):
    with daemon.client() as c:
        job = c.submit(graph=SAVE_GRAPH)
        job.wait(timeout=120)
    return job


def _job_count(daemon) -> int:
    return len(httpx.get(f"{daemon.url}/jobs", params={"limit": 500}).json()["jobs"])


def _errors(resp: httpx.Response) -> list[dict]:
    body = resp.json()
    assert set(body) == {"errors"}, body
    for e in body["errors"]:
        assert ERROR_KEYS <= set(e), e
    return body["errors"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{bad json", "application/json", 422),
        (b'{"graph": {}}', "text/plain", 422),
        (b"[" * 50000 + b"]" * 50000, "application/json", 422),  # depth capped before parsing
        (b'{"prompt": ""}', "application/json", 422),
        (b'{"prompt": "x", "priority": 1000}', "application/json", 422),
        (b'{"prompt": "x", "surprise": 1}', "application/json", 422),
        (b"", "application/json", 422),
    ],
)
def test_malformed_requests(daemon, body, content_type, status):
    before = _job_count(daemon)
    t0 = time.monotonic()
    r = httpx.post(f"{daemon.url}/jobs", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status
    assert _errors(r)[0]["message"]
    assert time.monotonic() - t0 < 60  # answered, not left hanging (room for a loaded machine)
    assert _job_count(daemon) == before


@pytest.mark.parametrize(
    ("graph", "kind"),
    [
        ({"nodes": {f"n{i}": {"block": "image.solid"} for i in range(10_000)}}, "limit"),
        ({"nodes": {"a": {"block": "image.solid", "params": {"width": 10**6, "height": 10**6}}}},
         "limit"),
        ({"nodes": {"a": {"block": "test.slow", "params": {"steps": 10**9}}}}, "limit"),
        ({"nodes": {"a": {"block": "image.grayscale", "inputs": {"image": "b.image"}},
                    "b": {"block": "image.grayscale", "inputs": {"image": "a.image"}}}}, "cycle"),
        ({"nodes": {"a": {"block": "nope.nothing"}}}, "unknown_block"),
        ({"nodes": {"m": {"block": "image.load_mask", "params": {"path": "x.png"}},
                    "g": {"block": "image.grayscale", "inputs": {"image": "m.mask"}}}},
         "type_mismatch"),
    ],
)
def test_bad_graphs_are_refused_fast(daemon, graph, kind):
    t0 = time.monotonic()
    r = httpx.post(f"{daemon.url}/jobs", json={"graph": graph})
    took = time.monotonic() - t0
    assert r.status_code == 422
    assert kind in {e["type"] for e in _errors(r)}
    assert took < 60, took  # refused before any work; generous for a loaded machine


@pytest.mark.parametrize("name", ["../jobs.db", "..%2Fjobs.db", "%2e%2e%2fjobs.db", "/etc/passwd",
                                  "..\\jobs.db", "out%00.png", "out.png%00", "%2E%2E"])
def test_output_name_attacks(daemon, saved_job, name):
    r = httpx.get(f"{daemon.url}/jobs/{saved_job.id}/outputs/{name}")
    assert r.status_code in (400, 404)
    assert b"root:" not in r.content and b"SQLite" not in r.content


def test_a_planted_symlink_is_not_followed(daemon):
    with daemon.client() as c:
        job = c.submit(graph=SAVE_GRAPH)
        job.wait(timeout=120)
    assert httpx.get(f"{daemon.url}/jobs/{job.id}/outputs/out").status_code == 200
    path = daemon.state / "outputs" / job.id / "out.png"
    path.unlink()
    os.symlink(daemon.state / "jobs.db", path)
    r = httpx.get(f"{daemon.url}/jobs/{job.id}/outputs/out")
    assert r.status_code == 404


def test_forged_host_and_origin_on_every_mutating_route(daemon):
    before = _job_count(daemon)
    routes = [("POST", "/jobs"), ("POST", "/jobs/x/cancel")]
    for method, path in routes:
        for headers, status in (({"Host": "attacker.example"}, 421),
                                ({"Origin": "null"}, 403),
                                ({"Origin": "https://attacker.example"}, 403)):
            r = httpx.request(method, f"{daemon.url}{path}", json={"prompt": "x"}, headers=headers)
            assert r.status_code == status, (path, headers)
    assert _job_count(daemon) == before


# -- property-based fuzzing ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=30,
)
node = st.fixed_dictionaries(
    {"block": st.sampled_from(["image.solid", "image.grayscale", "image.save", "x.y", ""])},
    optional={"inputs": st.dictionaries(st.sampled_from(["image", "mask", "zz"]),
                                        st.sampled_from(["a.image", "b.image", "a", "a.b.c", "q.x"])
                                        | json_values, max_size=2),
              "params": st.dictionaries(st.sampled_from(["width", "height", "name", "color", "k"]),
                                        json_values, max_size=3),
              "tile": json_values},
)
node_ids = st.sampled_from(["a", "b", "c", "1x", "a.b"])
graph_docs = st.fixed_dictionaries(
    {"nodes": st.dictionaries(node_ids, node | json_values, max_size=4)},
    optional={"format": st.text(max_size=30), "meta": json_values},
)


@settings(max_examples=300, deadline=None)
@given(doc=graph_docs | json_values)
def test_the_graph_parser_only_ever_raises_graph_errors(catalog, doc):
    try:
        graph = Graph.from_json(json.dumps(doc))
    except GraphValidationError as exc:
        assert exc.errors and all(ERROR_KEYS <= set(e.to_dict()) for e in exc.errors)
        return
    for err in check(graph, catalog):
        assert ERROR_KEYS <= set(err.to_dict())
        json.dumps(err.to_dict())  # every error is plain JSON


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(graph_docs.map(lambda g: {"graph": g}),
                     st.dictionaries(st.sampled_from(["graph", "prompt", "priority", "agent", "x"]),
                                     json_values, max_size=3)))
def test_the_http_api_never_answers_500(daemon, doc):
    r = httpx.post(f"{daemon.url}/jobs", json=doc)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        _errors(r)
