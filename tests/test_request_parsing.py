"""Strict JSON bodies (orchestrator/server/json_body.py) and the route checks
(orchestrator/server/request_checks.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from orchestrator.config import load_settings
from orchestrator.protocol import AgentOptions
from orchestrator.server.json_body import (
    BodyError,
    StrictJSONMiddleware,
    is_json,
    loads_strict,
    nesting_depth,
)
from orchestrator.server.request_checks import (
    MAX_CURSOR,
    add_error_handlers,
    agent_option_errors,
    job_id_error,
    last_event_id,
)


@pytest.mark.parametrize(("body", "field", "why"), [
    (b'{"a": NaN}', "a", "NaN"),
    (b'{"a": [1, Infinity]}', "a[1]", "Infinity"),
    (b'{"a": {"b": -Infinity}}', "a.b", "-Infinity"),
    (b'{"w": 1e999}', "w", "out of a float's range"),
    (b'{"w": -1e400}', "w", "out of a float's range"),
    (b'{"n": ' + b"9" * 5000 + b"}", "n", "5000 digits"),
    (b'{"n": -' + b"1" * 21 + b"}", "n", "21 digits"),
    (b'{"s": "\\ud800"}', "s", "surrogate"),
    (b'{"\\udfff": 1}', "body", "surrogate"),
    (b'{"a": 1', "body", "not valid JSON"),
    (b'\xff\xfe{}', "body", "not UTF-8"),
])
def test_what_the_strict_parser_refuses(body, field, why):
    with pytest.raises(BodyError) as info:
        loads_strict(body)
    d = info.value.to_dict()
    assert d["field"] == field and why in d["message"] and d["type"] == "request"
    json.dumps(d)  # the error itself is plain JSON


def test_depth_is_measured_on_the_bytes_before_parsing():
    assert nesting_depth(b'{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert nesting_depth(b'"\\"[[[["') == 0
    with pytest.raises(BodyError) as info:
        loads_strict(b"[" * 1_000_000 + b"]" * 1_000_000)  # would be a RecursionError in json.loads
    assert info.value.type == "limit" and info.value.extra["bound"] == {"le": 64}
    assert loads_strict(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(BodyError):
        loads_strict(b"[" * 65 + b"]" * 65)
    assert loads_strict(b"[" * 100 + b"]" * 100, max_depth=100)


def test_what_it_accepts_is_plain_json():
    doc = {"big": 10**19, "neg": -(10**19), "f": 1.5e300, "u": "é☃𝄞\u0000", "deep": [[[[{}]]]], "b": True}
    assert loads_strict(json.dumps(doc).encode()) == doc
    assert loads_strict(json.dumps(doc)) == doc


@pytest.mark.parametrize(("ctype", "yes"), [
    (None, True), ("application/json", True), ("application/json; charset=utf-8", True),
    ("application/vnd.api+json", True), ("text/plain", False), ("multipart/form-data; boundary=x", False),
    ("image/png", False)])
def test_which_bodies_are_json(ctype, yes):
    assert is_json(ctype) is yes


@pytest.fixture()
def client():
    app = FastAPI()
    add_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"got": await request.json()}

    @app.get("/boom/{kind}")
    async def boom(kind: str) -> dict:
        if kind == "overflow":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        if kind == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        raise RuntimeError("/secret/path/on/the/host failed")

    app.add_middleware(StrictJSONMiddleware, max_depth=16)
    return TestClient(app, raise_server_exceptions=False)


def test_the_middleware_guards_every_json_route(client):
    assert client.post("/echo", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}
    r = client.post("/echo", content=b'{"x": {"y": NaN}}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "x.y"
    r = client.post("/echo", content=b"[" * 17 + b"]" * 17, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "limit"
    r = client.post("/echo", content=b'{"x": Infinity}')  # no content type: FastAPI would read it as JSON
    assert r.status_code == 422


def test_last_resort_handlers_never_leak(client):
    for kind in ("overflow", "recursion"):
        r = client.get(f"/boom/{kind}")
        assert r.status_code == 400 and set(r.json()["errors"][0]) >= {"type", "message", "node", "field"}
    r = client.get("/boom/other")
    assert r.status_code == 500 and "/secret" not in r.text and r.json()["errors"][0]["type"] == "internal"


@pytest.mark.parametrize("value", ["\u0661\u0662", "\uff11\uff12", "\u00b2", "-1", "1.0", "1e3", "",
                                   str(10**25), str(MAX_CURSOR + 1), "12\x00"])
def test_cursors_are_ascii_digits_in_range(value):
    assert last_event_id(value) is None


def test_cursors_in_range():
    assert last_event_id("0") == 0 and last_event_id(str(MAX_CURSOR)) == MAX_CURSOR
    assert last_event_id(None) is None


@pytest.mark.parametrize("job_id", ["a" * 65, "ab\x00cd", "..", "a/b", "\u0661", "", "a b"])
def test_ids_no_job_can_have(job_id):
    err = job_id_error(job_id)
    assert err["type"] == "not_found" and len(err["message"]) < 200


def test_agent_options_against_the_operator_settings():
    settings = load_settings(config_file=None, env={}, overrides={
        "agent": {"llm": "ollama/llama3.1", "allowed_llms": ["ollama/qwen2.5"]},
        "limits": {"pixels": 1000 * 1000}})
    ok = AgentOptions(llm="ollama/qwen2.5", template="txt2img", width=1000, height=1000)
    assert agent_option_errors(ok, settings, ["txt2img"]) == []
    bad = AgentOptions(llm="openai/gpt-4o", template="../x", width=2048, height=1024)
    fields = [e["field"] for e in agent_option_errors(bad, settings, ["txt2img"])]
    assert fields == ["agent.llm", "agent.template", "agent.width"]
    one_side = AgentOptions(width=16384)
    assert [e["field"] for e in agent_option_errors(one_side, settings, None)] == ["agent.width"]
    assert agent_option_errors(SimpleNamespace(llm=None, template=None, width=None, height=None),
                               settings, []) == []


def test_a_json_body_over_the_request_limit_is_not_parsed():
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> dict:
        return {"n": len(await request.body())}

    app.add_middleware(StrictJSONMiddleware, max_depth=16, max_bytes=1000)
    client = TestClient(app)
    r = client.post("/upload", content=b"[" * 5000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["errors"][0]["bound"] == {"le": 1000}
    assert client.post("/upload", content=b"\x89PNG" + b"[" * 5000,
                       headers={"Content-Type": "image/png"}).json() == {"n": 5004}
