"""Limits and parsing, end to end: hostile requests to a real daemon on loopback are refused
with structured 4xx errors (never a 500), planned graphs meet the same limits before they run,
the LLM stays the operator's, and nothing accepted before is lost or breaks a listing.

The daemon runs the local engine with small limits (1 Mpx) and two scripted OpenAI-compatible
servers: the operator's LLM (``agent.llm``) and one allow-listed other.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import make_daemon, wait_final
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_agent_kit import ScriptedLLM

PIXELS = 1024 * 1024
ERROR_KEYS = {"type", "message", "node", "field"}
JSON = {"Content-Type": "application/json"}
SMALL = {"nodes": {"img": {"block": "image.solid", "params": {"width": 64, "height": 48}},
                   "save": {"block": "image.save", "inputs": {"image": "img.image"},
                            "params": {"name": "out"}}}}


def _answer(body: dict) -> str | dict:
    """The scripted LLM: a critic always accepts; the planner's graph depends on the prompt."""
    messages = body.get("messages") or [{}]
    if '"problems"' in str(messages[0].get("content", "")):
        return {"accept": True, "problems": []}
    prompt = str(messages[-1].get("content", ""))
    graph = json.loads(json.dumps(SMALL))
    if "HUGE" in prompt:  # valid for the schema, over the daemon's limits
        graph["nodes"]["img"]["params"] = {"width": 2048, "height": 2048}
    elif "UPSCALE" in prompt:  # each node within the limit; the resize makes 4x the pixels
        graph["nodes"]["up"] = {"block": "image.resize", "inputs": {"image": "img.image"},
                                "params": {"scale": 4}}
        graph["nodes"]["img"]["params"] = {"width": 512, "height": 512}
        graph["nodes"]["save"]["inputs"]["image"] = "up.image"
    elif "NAN" in prompt:  # what json.loads accepts from a model and no store may keep raw
        return '{"mode": "compose", "graph": ' + json.dumps(graph).replace('"width": 64', '"width": NaN') \
            + "}"
    elif "DEEP" in prompt:  # within Python's recursion limit, far past limits.json_depth
        graph["meta"] = {"notes": _nested(400)}
    elif "BIGINT" in prompt:
        return '{"mode": "compose", "graph": ' \
            + json.dumps(graph).replace('"width": 64', '"width": ' + "7" * 60) + "}"
    return {"mode": "compose", "graph": graph}


@pytest.fixture(scope="module")
def llms():
    with ScriptedLLM(default=_answer) as main, ScriptedLLM(default=_answer) as other:
        yield main, other


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, llms):
    main, other = llms
    state = tmp_path_factory.mktemp("state")
    (state / "config.toml").write_text(f"""
[limits]
pixels = {PIXELS}
batch_pixels = {4 * PIXELS}
steps = 50
[agent]
llm = "openai/scripted"
base_url = "{main.base_url}"
retries = 0
rounds = 0
allowed_llms = ["offline", {{name = "other", model = "openai/other", base_url = "{other.base_url}"}}]
""")
    d = make_daemon(state, env={"ORCHESTRATOR_LLM_API_KEY": "operator-main-key",
                                "OPENAI_API_KEY": "operator-openai-key"}).start()
    yield d
    d.kill()


@pytest.fixture(scope="module")
def accepted(daemon):
    """Jobs accepted before any hostile request: each must survive all of them."""
    ids = []
    for body in ({"graph": SMALL, "name": "small"},
                 {"graph": {**SMALL, "meta": {"deep": _nested(50), "n": 10**19, "text": "é☃𝄞" * 2000}},
                  "name": "名前" * 50},
                 {"prompt": "a red fox " * 300, "agent": {"rounds": 0}}):
        r = httpx.post(f"{daemon.url}/jobs", json=body, timeout=60)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    final = wait_final(daemon.url, ids)
    assert {j["state"] for j in final.values()} == {"succeeded"}, final
    return ids


def _nested(depth: int) -> dict:
    doc: dict = {}
    for _ in range(depth):
        doc = {"x": doc}
    return doc


def _refused(r: httpx.Response, status: int | tuple[int, ...] = 422) -> list[dict]:
    assert r.status_code in ((status,) if isinstance(status, int) else status), (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"errors"}, body
    for e in body["errors"]:
        assert ERROR_KEYS <= set(e), e
    return body["errors"]


def _still_there(daemon, ids: list[str]) -> None:
    listing = httpx.get(f"{daemon.url}/jobs", params={"limit": 500}, timeout=60).json()["jobs"]
    jobs = {j["id"]: j for j in listing}
    for job_id in ids:
        assert jobs[job_id]["state"] == "succeeded"
        assert httpx.get(f"{daemon.url}/jobs/{job_id}", timeout=60).status_code == 200
        assert httpx.get(f"{daemon.url}/ui/jobs/{job_id}", timeout=60).status_code == 200
    assert httpx.get(f"{daemon.url}/ui/api/overview", timeout=60).status_code == 200


def _count(daemon) -> int:
    return len(httpx.get(f"{daemon.url}/jobs", params={"limit": 500}, timeout=60).json()["jobs"])


def _graph(params: dict, block: str = "image.solid") -> dict:
    return {"graph": {"nodes": {"a": {"block": block, "params": params}}}}


BODIES = [  # (kind, raw JSON body, field named)
    ("nan", b'{"graph": {"nodes": {"a": {"block": "image.solid", "params": {"width": NaN}}}}}',
     "graph.nodes.a.params.width"),
    ("nan", b'{"graph": {"nodes": {"a": {"block": "image.solid", "params": {"color": [Infinity, 0, 0]}}}}}',
     "graph.nodes.a.params.color[0]"),
    ("nan", b'{"prompt": "x", "priority": -Infinity}', "priority"),
    ("nan", b'{"prompt": "x", "agent": {"width": 1e999}}', "agent.width"),
    ("bigint", b'{"graph": {"nodes": {"a": {"block": "image.solid", "params": {"width": ' + b"9" * 5000
     + b"}}}}}", "graph.nodes.a.params.width"),
    ("bigint", b'{"prompt": "x", "agent": {"seed": ' + b"1" * 30 + b"}}", "agent.seed"),
    ("depth", b"[" * 50_000 + b"]" * 50_000, "body"),
    ("depth", b'{"graph": {"nodes": {}, "meta": ' + b'{"x": ' * 70 + b"1" + b"}" * 70 + b"}}", "body"),
    ("text", b'{"prompt": "\\ud800 a fox"}', "prompt"),
    ("text", b'{"prompt": "a fox", "name": "\\udfff"}', "name"),
]


@pytest.mark.parametrize(("kind", "body", "field"), BODIES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BODIES)])
def test_hostile_json_bodies_are_refused_naming_the_field(daemon, accepted, kind, body, field):
    before = _count(daemon)
    errors = _refused(httpx.post(f"{daemon.url}/jobs", content=body, headers=JSON, timeout=60))
    assert errors[0]["field"] == field, errors
    assert _count(daemon) == before
    _still_there(daemon, accepted)


def test_the_comfy_import_parses_as_strictly(daemon, accepted):
    for body, field in ((b'{"workflow": "{\\"1\\": {\\"inputs\\": {\\"seed\\": NaN}}}"}', "workflow"),
                        (b'{"1": {"class_type": "KSampler", "inputs": {"seed": Infinity}}}', "1.inputs.seed"),
                        (b"[" * 5000, "body")):
        for ctype in ("application/json", "application/octet-stream"):
            errors = _refused(httpx.post(f"{daemon.url}/import/comfy", content=body,
                                         headers={"Content-Type": ctype}, timeout=60))
            assert errors[0]["field"] == field, errors
    _still_there(daemon, accepted)


LIMIT_GRAPHS = [  # (graph body, node, field)
    (_graph({"width": 1e9, "height": 64}), "a", "params.width"),
    (_graph({"width": 2048.0, "height": 2048.0}), "a", "params.width"),
    (_graph({"width": 1024, "height": 1024, "batch": 8}), "a", "params.batch"),
    (_graph({"width": 64, "height": 64, "batch": 1e9}), "a", "params.batch"),
    (_graph({"steps": 1e9}, "test.slow"), "a", "params.steps"),
    (_graph({"steps": 51.0}, "test.slow"), "a", "params.steps"),
    ({"graph": {"nodes": {"a": {"block": "image.solid", "params": {"width": 512, "height": 512}},
                          "r": {"block": "image.resize", "inputs": {"image": "a.image"},
                                "params": {"scale": 2.5}}}}}, "r", "params.scale"),
    ({"graph": {"nodes": {"a": {"block": "image.solid", "params": {"width": 512, "height": 512}},
                          "p": {"block": "image.pad", "inputs": {"image": "a.image"},
                                "params": {"left": 8000}}}}}, "p", "params.left"),
    ({"graph": {"nodes": {"e": {"block": "sd.empty_latent", "params": {"width": 768, "height": 768}},
                          "u": {"block": "sd.latent_upscale", "inputs": {"latent": "e.latent"}}}}},
     "u", "params.scale"),
    ({"graph": {"nodes": {"a": {"block": "image.solid", "params": {"width": 1024, "height": 1024}},
                          "t": {"block": "image.tile_split", "inputs": {"image": "a.image"},
                                "params": {"size": 8, "overlap": 7}}}}}, "t", "params.overlap"),
    ({"graph": {"nodes": {"e": {"block": "sd.empty_latent", "params": {"width": 1024, "height": 1024}},
                          "d": {"block": "sd.vae_decode", "inputs": {"latent": "e.latent"},
                                "tile": {"size": 64, "stride": 1}}}}}, "d", "tile.stride"),
]


@pytest.mark.parametrize(("body", "node", "field"), LIMIT_GRAPHS,
                         ids=[f"{n}-{f}-{i}" for i, (_, n, f) in enumerate(LIMIT_GRAPHS)])
def test_every_size_like_param_is_limited_at_submit(daemon, accepted, body, node, field):
    before = _count(daemon)
    errors = _refused(httpx.post(f"{daemon.url}/jobs", json=body, timeout=60))
    assert any(e["type"] == "limit" and e["node"] == node and e["field"] == field for e in errors), errors
    assert _count(daemon) == before
    _still_there(daemon, accepted)


def test_an_input_of_unknown_size_is_stopped_when_the_node_runs(daemon, accepted):
    buf = io.BytesIO()
    Image.fromarray(np.full((600, 600, 3), 200, np.uint8)).save(buf, format="PNG")
    with daemon.client() as c:
        name = c.upload(buf.getvalue(), filename="big.png")
        graph = {"nodes": {"l": {"block": "image.load", "params": {"path": name}},
                           "r": {"block": "image.resize", "inputs": {"image": "l.image"},
                                 "params": {"scale": 2}},
                           "save": {"block": "image.save", "inputs": {"image": "r.image"},
                                    "params": {"name": "r"}}}}
        job = c.submit(graph=graph)  # 600 px is unknown at submit: accepted
        final = wait_final(daemon.url, [job.id])[job.id]
    assert final["state"] == "failed"
    e = final["errors"][0]
    assert (e["type"], e["node"], e["field"], e["value"], e["bound"]) == (
        "limit", "r", "params.scale", 1200 * 1200, {"le": PIXELS})
    assert final["outputs"] == []
    _still_there(daemon, accepted)


@pytest.mark.parametrize(("agent", "field"), [
    ({"llm": "openai/gpt-4o"}, "agent.llm"),
    ({"llm": "openai/x?api_base=http://attacker.example"}, "agent.llm"),
    ({"llm": "http://127.0.0.1:1/v1"}, "agent.llm"),
    ({"llm": "OTHER"}, "agent.llm"),
    ({"api_base": "http://attacker.example"}, "agent.api_base"),
    ({"api_key": "sk-stolen"}, "agent.api_key"),
    ({"headers": {"Authorization": "x"}}, "agent.headers"),
    ({"base_url": "http://attacker.example"}, "agent.base_url"),
    ({"template": "../../etc/passwd"}, "agent.template"),
    ({"template": "no_such_template"}, "agent.template"),
    ({"width": 2048, "height": 2048}, "agent.width"),
    ({"width": 128, "height": 16384}, "agent.width"),
])
def test_agent_options_a_request_may_not_set(daemon, accepted, agent, field):
    before = _count(daemon)
    errors = _refused(httpx.post(f"{daemon.url}/jobs", json={"prompt": "a fox", "agent": agent}, timeout=60))
    assert errors[0]["field"] == field, errors
    assert "operator-main-key" not in json.dumps(errors)
    assert _count(daemon) == before
    _still_there(daemon, accepted)


def _prompt_job(daemon, prompt: str, **agent) -> dict:
    r = httpx.post(f"{daemon.url}/jobs", json={"prompt": prompt, "agent": {"rounds": 0, **agent}}, timeout=60)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    return wait_final(daemon.url, [job_id])[job_id]


@pytest.mark.parametrize(("prompt", "agent", "node"), [
    ("HUGE a fox", {}, "img"),
    ("UPSCALE a fox", {}, "img"),
    ("HUGE a fox", {"llm": "other"}, "img"),
])
def test_a_planned_graph_meets_the_limits_before_it_runs(daemon, accepted, prompt, agent, node):
    """The planner holds an LLM's graph to the daemon's limits (issue 17): it shrinks the image
    into limits.pixels, aspect kept, and says so in the trace; the daemon's check then passes."""
    job = _prompt_job(daemon, prompt, **agent)
    assert job["state"] == "succeeded", job["errors"]
    params = job["graph"]["nodes"][node]["params"]
    scale = job["graph"]["nodes"].get("up", {}).get("params", {}).get("scale", 1)
    assert params["width"] == params["height"] and (params["width"] * scale) ** 2 <= PIXELS
    assert any(n.startswith("limits:") for n in job["graph"]["meta"]["agent"]["notes"])
    _still_there(daemon, accepted)


@pytest.mark.parametrize("marker", ["NAN", "BIGINT", "DEEP"])
def test_what_an_llm_plans_never_breaks_a_listing(daemon, accepted, marker):
    job = _prompt_job(daemon, f"{marker} a fox")
    assert job["state"] == "failed"
    if marker == "DEEP":
        assert (job["errors"][0]["type"], job["errors"][0]["field"]) == ("limit", "graph"), job["errors"]
    json.dumps(job, allow_nan=False)
    assert httpx.get(f"{daemon.url}/jobs/{job['id']}", timeout=60).status_code == 200
    assert httpx.get(f"{daemon.url}/ui/jobs/{job['id']}", timeout=60).status_code == 200
    _still_there(daemon, accepted)


def test_each_key_goes_only_to_its_own_server(daemon, accepted, llms):
    main, other = llms
    assert _prompt_job(daemon, "a fox by the main LLM")["state"] == "succeeded"
    assert _prompt_job(daemon, "a fox by the other LLM", llm="other")["state"] == "succeeded"
    assert {r["headers"].get("Authorization") for r in main.requests} == {"Bearer operator-main-key"}
    assert other.requests
    assert all(r["headers"].get("Authorization") == "Bearer no-key" for r in other.requests)
    assert {r["body"]["model"] for r in other.requests} == {"other"}


URL_CASES = [  # (path, params, headers, status)
    ("/jobs", {"offset": str(10**30)}, {}, 422),
    ("/jobs", {"limit": "\u0661\u0660"}, {}, 422),
    ("/jobs", {"limit": "\uff15"}, {}, 422),
    ("/jobs", {"offset": "-1"}, {}, 422),
    ("/jobs", {"state": "queued\x00"}, {}, 422),
    ("/jobs/{id}/events", {"format": "json", "after": str(10**25)}, {}, 422),
    ("/jobs/{id}/events", {"format": "json"}, {"Last-Event-ID": b"99999999999999999999999"}, 422),
    ("/jobs/{id}/events", {"format": "json"}, {"Last-Event-ID": "\u0661\u0662".encode()}, 422),
    ("/jobs/{id}/events", {"format": "json"}, {"Last-Event-ID": "\uff11\uff12".encode()}, 422),
    ("/jobs/{id}/events", {"format": "json"}, {"Last-Event-ID": "\u00b2".encode()}, 422),
    ("/jobs/{id}/events", {}, {"Last-Event-ID": b"-5"}, 422),
    ("/jobs/" + "a" * 5000, {}, {}, 404),
    ("/jobs/ab%00cd", {}, {}, 404),
    ("/jobs/\u0661\u0662", {}, {}, 404),
    ("/jobs/ab%00cd/events", {}, {}, 404),
    ("/jobs/" + "9" * 400 + "/outputs/out", {}, {}, 404),
    ("/jobs/%00/preview.png", {}, {}, 404),
    ("/ui/jobs/ab%00cd", {}, {}, 404),
    ("/ui/jobs/" + "b" * 3000, {}, {}, 404),
    ("/jobs/ab%00cd/graph.svg", {}, {}, 404),
]


@pytest.mark.parametrize(("path", "params", "headers", "status"), URL_CASES,
                         ids=[f"url-{i}" for i in range(len(URL_CASES))])
def test_numbers_and_ids_in_urls_are_4xx(daemon, accepted, path, params, headers, status):
    r = httpx.get(f"{daemon.url}{path.format(id=accepted[0])}", params=params, headers=headers, timeout=60)
    errors = _refused(r, status)
    assert len(errors[0]["message"]) < 400
    _still_there(daemon, accepted)


def test_a_cancel_of_an_impossible_id_is_404(daemon, accepted):
    _refused(httpx.post(f"{daemon.url}/jobs/ab%00cd/cancel", timeout=60), 404)
    _refused(httpx.post(f"{daemon.url}/jobs/{'z' * 3000}/cancel", timeout=60), 404)
    _still_there(daemon, accepted)


def test_the_cli_lists_what_was_accepted(daemon, accepted):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("ORCHESTRATOR_TOKEN", None)
    out = subprocess.run([sys.executable, "-m", "orchestrator", "--state-dir", str(daemon.state), "jobs"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert all(job_id in out.stdout for job_id in accepted), out.stdout


# -- a fuzzer of prompt jobs -------------------------------------------------------------------

_names = st.sampled_from([None, "offline", "openai/scripted", "other", "openai/gpt-4o", "", "\x00",
                          "ollama/llama3.1", "OTHER"])
_ints = st.one_of(st.none(), st.integers(-10, 20), st.integers(-(2**70), 2**70), st.booleans(),
                  st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
_agent = st.fixed_dictionaries({}, optional={
    "llm": st.one_of(_names, st.text(max_size=40)), "rounds": _ints, "width": _ints, "height": _ints,
    "seed": _ints, "template": st.one_of(st.sampled_from(["txt2img", "hires_fix", "panorama", "../x"]),
                                         st.text(max_size=20)),
    "api_base": st.text(max_size=10)})
_body = st.fixed_dictionaries({"prompt": st.one_of(st.text(max_size=300), st.just("a red fox"))}, optional={
    "agent": st.one_of(_agent, st.none(), st.integers(), st.text(max_size=5)),
    "priority": _ints, "name": st.one_of(st.none(), st.text(max_size=250))})


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_body)
def test_fuzzed_prompt_jobs_never_500_and_never_break_listings(daemon, body):
    r = httpx.post(f"{daemon.url}/jobs", json=body, timeout=60)
    assert r.status_code in (200, 201, 422, 429), (r.status_code, r.text[:300])
    if r.status_code in (200, 201):
        httpx.post(f"{daemon.url}/jobs/{r.json()['id']}/cancel", timeout=60)
    else:
        _refused(r, r.status_code)
    listing = httpx.get(f"{daemon.url}/jobs", params={"limit": 500}, timeout=60)
    assert listing.status_code == 200
    assert httpx.get(f"{daemon.url}/ui/api/overview", timeout=60).status_code == 200


@pytest.mark.slow
def test_the_ray_engine_applies_the_same_limits(tmp_path):
    """Submit-time refusals, the run-time gate on a worker actor, and planned graphs, on Ray."""
    (tmp_path / "config.toml").write_text(f"[limits]\npixels = {PIXELS}\n")
    d = make_daemon(tmp_path, "--engine", "ray", "--workers", "1").start(timeout=300)
    try:
        _refused(httpx.post(f"{d.url}/jobs", json=_graph({"width": 2048.0, "height": 2048}), timeout=60))
        buf = io.BytesIO()
        Image.fromarray(np.full((600, 600, 3), 90, np.uint8)).save(buf, format="PNG")
        with d.client() as c:
            name = c.upload(buf.getvalue())
            ok = c.submit(graph=SMALL)
            big = c.submit(graph={"nodes": {
                "l": {"block": "image.load", "params": {"path": name}},
                "r": {"block": "image.resize", "inputs": {"image": "l.image"}, "params": {"scale": 2}}}})
            final = wait_final(d.url, [ok.id, big.id], timeout=300)
        assert final[ok.id]["state"] == "succeeded"
        e = final[big.id]["errors"][0]
        assert final[big.id]["state"] == "failed" and (e["type"], e["node"], e["field"]) == (
            "limit", "r", "params.scale")
    finally:
        d.kill()
