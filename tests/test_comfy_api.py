"""``POST /import/comfy`` on the daemon's real app (``create_app``), through FastAPI's test client."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from graphs.comfy import import_workflow
from orchestrator.cli.main import plugin_host
from orchestrator.config import load_settings
from orchestrator.plugins import builtin_comfy_mappings
from orchestrator.runtime.engine import LocalEngine
from orchestrator.server.api import create_app
from orchestrator.server.service import JobService
from orchestrator.state.store import JobStore

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings

DATA = Path(__file__).parent / "data" / "comfy"
ROUTE = "/import/comfy"
MODELS = {"v1-5-pruned-emaonly-fp16": "tiny-sd"}


@pytest.fixture()
def client(tmp_path):
    """The daemon's app, its catalog and plugins as the daemon loads them (with test_comfy_plugin)."""
    settings = load_settings(config_file=False, env={}, overrides={
        "state_dir": str(tmp_path / "state"), "plugins": {"extra": ["test_comfy_plugin"]}})
    store = JobStore(tmp_path / "jobs.db")
    engine = LocalEngine(plugin_host(settings).catalog, settings)
    service = JobService(store, engine, outputs_root=tmp_path / "outputs")
    with TestClient(create_app(service, settings), base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def expected(name: str) -> dict:
    graph, _ = import_workflow(DATA / f"{name}.json", model_map=MODELS, extra_mappings=COMFY_MAPPINGS)
    return graph.to_dict()


def test_json_workflow_in_both_formats(client):
    api = client.post(ROUTE, json=json.loads((DATA / "txt2img_api.json").read_text()),
                      params={"model_map": "v1-5-pruned-emaonly-fp16=tiny-sd"})
    ui = client.post(ROUTE, json={"workflow": json.loads((DATA / "txt2img_ui.json").read_text()),
                                  "model_map": MODELS})
    for response, fmt in ((api, "api"), (ui, "ui")):
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["valid"], body["errors"], body["warnings"], body["format"]) == (True, [], [], fmt)
        assert body["graph"] == expected("txt2img_api")


def test_png_upload_raw_and_multipart(client):
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", (DATA / "txt2img_api.json").read_text())
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    png = buf.getvalue()
    raw = client.post(ROUTE, content=png, headers={"Content-Type": "image/png"},
                      params={"model_map": "v1-5-pruned-emaonly-fp16=tiny-sd"})
    form = client.post(ROUTE, files={"file": ("ComfyUI_00001_.png", png, "image/png")},
                       params={"model_map": "v1-5-pruned-emaonly-fp16=tiny-sd"})
    for response in (raw, form):
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["origin"], body["valid"], body["graph"]) == ("png:prompt", True, expected("txt2img_api"))


def test_unsupported_nodes_come_back_as_structured_errors(client):
    response = client.post(ROUTE, json=json.loads((DATA / "custom_nodes_api.json").read_text()))
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert [(e["type"], e["node"], e["field"], e["value"]) for e in body["errors"]][:2] == [
        ("unsupported_node", "21", "class_type", "FreeU_V2"),
        ("unsupported_node", "23", "class_type", "UltimateSDUpscale")]
    assert {"type", "message", "node", "field"} <= set(body["errors"][0])


def test_plugin_mappings_are_used(client):
    from test_comfy_plugin import workflow_ui

    body = client.post(ROUTE, json=workflow_ui()).json()
    assert body["valid"] is True, body["errors"]
    assert body["graph"]["nodes"]["image_invert_3"]["block"] == "comfytest.invert"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"json": {"nodes": {}}}, "not a ComfyUI workflow"),
    ({"json": "/etc/passwd"}, "must be a JSON object"),  # never read as a file path
    ({"json": {"workflow": "/etc/passwd"}}, "'workflow' is not valid JSON"),
    ({"content": b"\x00\x01", "headers": {"Content-Type": "application/octet-stream"}},
     "neither a PNG nor JSON"),
    ({"json": json.loads((DATA / "txt2img_api.json").read_text()), "params": {"model_map": "oops"}},
     "COMFY_NAME=OUR_NAME"),
])
def test_what_is_not_a_workflow_is_refused(client, kwargs, match):
    response = client.post(ROUTE, **kwargs)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert match in error["message"]


def test_hostile_subgraph_and_string_workflows_get_structured_answers(client):
    """A self-nesting subgraph, a 10**5-node subgraph bomb and a string-doubling chain: 200 with the
    problems as errors, never a 500, never a hang."""
    from test_comfy_subgraphs import _nest

    loop_id = "11111111-1111-4111-8111-111111111111"
    loop = {"id": loop_id, "name": "loop", "inputNode": {"id": -10}, "outputNode": {"id": -20}, "inputs": [],
            "outputs": [{"name": "LATENT", "type": "LATENT"}],
            "nodes": [{"id": 1, "type": loop_id, "outputs": [{"name": "LATENT", "type": "LATENT"}]}],
            "links": [{"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0,
                       "type": "LATENT"}]}
    self_nesting = {"nodes": [{"id": 7, "type": loop_id}], "links": [], "definitions": {"subgraphs": [loop]}}
    doubling = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "ab" * 32}}}
    for k in range(2, 45):
        doubling[str(k)] = {"class_type": "StringConcatenate",
                            "inputs": {"string_a": [str(k - 1), 0], "string_b": [str(k - 1), 0]}}
    doubling["50"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}
    doubling["51"] = {"class_type": "CLIPTextEncode", "inputs": {"text": ["44", 0], "clip": ["50", 1]}}
    doubling["52"] = {"class_type": "PreviewImage", "inputs": {"images": ["51", 0]}}
    cases = ((self_nesting, "subgraph"), (_nest(6, width=10), "subgraph"), (doubling, "dropped_node"))
    for body, kind in cases:
        response = client.post(ROUTE, json=body)
        assert response.status_code == 200, response.text
        errors = response.json()["errors"]
        assert any(e["type"] == kind for e in errors), errors
        assert all({"type", "message", "node", "field"} <= set(e) for e in errors)
