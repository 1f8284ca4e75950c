"""ComfyUI's HTTP/WebSocket API on a real daemon (loopback, in-process engine, tiny-sd named as
ComfyUI's default checkpoint), driven by a client written from ComfyUI's documented protocol
(tests/comfy_client.py), plus the error shapes and hostile requests."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).parent))
from comfy_client import ComfyClient
from daemon_process import Daemon

CKPT = "v1-5-pruned-emaonly-fp16.safetensors"
TOKEN = "comfy-test-token-1234567890"


def sd_prompt(steps: int = 2, seed: int = 7, size: int = 64, ckpt: str = CKPT) -> dict:
    """ComfyUI's default workflow in API format, small, with node titles as ComfyUI's export
    writes them (``_meta.title``)."""
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}}
    titles = {"4": "Load Checkpoint", "5": "Empty Latent Image", "6": "CLIP Text Encode (Prompt)",
              "7": "CLIP Text Encode (Prompt)", "3": "KSampler", "8": "VAE Decode", "9": "Save Image"}
    for node_id, title in titles.items():
        prompt[node_id]["_meta"] = {"title": title}
    return prompt


def _start(tmp: Path, *extra: str, token: str | None = None, max_streams: int | None = None) -> Daemon:
    state = tmp / "state"
    state.mkdir()
    cfg = tmp / "config.toml"
    models = tmp / "models"  # a ComfyUI-layout model folder (names are listed, nothing is loaded)
    for rel in ("loras/styles/ink.safetensors", "upscale_models/4x-test.pth", "embeddings/neg.safetensors",
                "vae/tiny-vae.safetensors"):
        (models / rel).parent.mkdir(parents=True, exist_ok=True)
        (models / rel).write_bytes(b"\0" * 16)
    text = (f'model_files = {{roots = ["{models}"]}}\n'
            f'[[models]]\nname = "{CKPT}"\nsource = "builtin:tiny-sd"\n')
    if max_streams is not None:
        text += f"[server]\nmax_streams = {max_streams}\n"
    cfg.write_text(text)
    env = {"ORCHESTRATOR_CONFIG": str(cfg),
           "ORCHESTRATOR_PLUGINS__EXTRA": "daemon_blocks,comfy_protocol_plugin",  # tests/*.py plugins
           # ComfyUI's queue, one prompt running at a time: cross-job batching would run a second
           # one beside a sampling first one (tested in tests/test_batching*.py)
           "ORCHESTRATOR_BATCHING__ENABLED": "false"}
    if token:
        env["ORCHESTRATOR_TOKEN"] = token
    return Daemon(state, *extra, env=env).start()


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    d = _start(tmp_path_factory.mktemp("comfy"), max_streams=6)
    yield d
    if d.proc and d.proc.poll() is None:
        d.kill()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    d = _start(tmp_path_factory.mktemp("comfy-token"), token=TOKEN)
    yield d
    if d.proc and d.proc.poll() is None:
        d.kill()


def _addr(d: Daemon) -> str:
    return d.url.removeprefix("http://")


def _types(messages: list) -> list[str]:
    return [m["type"] for m in messages if isinstance(m, dict)]


def test_websocket_example_flow_queues_follows_and_gets_the_png(comfy):
    """ComfyUI's websockets_api_example flow, unchanged: queue with our own prompt_id, follow
    `executing` until node is null, read /history and /view."""
    client = ComfyClient(_addr(comfy))
    images, messages = client.get_images(sd_prompt(steps=3))
    assert list(images) == ["9"]
    png = images["9"][0]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    assert img.size == (64, 64)
    assert json.loads(img.text["prompt"])["3"]["class_type"] == "KSampler"  # the PNG carries the prompt
    types = _types(messages)
    assert types[0] == "status" and messages[0]["data"]["sid"] == client.client_id
    for t in ("execution_start", "executing", "progress", "executed", "execution_success"):
        assert t in types, t
    assert types.index("execution_start") < types.index("executed") < types.index("execution_success")
    executing = [m["data"]["node"] for m in messages if isinstance(m, dict) and m["type"] == "executing"]
    assert "3" in executing and "9" in executing and executing[-1] is None  # ComfyUI's node ids
    progress = [m["data"] for m in messages if isinstance(m, dict) and m["type"] == "progress"]
    assert progress[-1] == {"value": 3, "max": 3, "prompt_id": progress[-1]["prompt_id"], "node": "3"}
    assert not [m for m in messages if isinstance(m, bytes)]  # no previews unless asked for
    executed = next(m["data"] for m in messages if isinstance(m, dict) and m["type"] == "executed")
    assert executed["node"] == "9" and executed["output"]["images"][0]["type"] == "output"


def test_a_prompt_is_a_job_in_our_store(comfy):
    prompt_id = str(uuid.uuid4())
    r = httpx.post(f"{comfy.url}/api/prompt", json={"prompt": sd_prompt(seed=11), "prompt_id": prompt_id,
                                                     "client_id": "someone"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prompt_id"] == prompt_id and body["node_errors"] == {} and isinstance(body["number"], int)
    with comfy.client() as c:  # our own client sees it: listed, waitable, with its outputs
        job = c.job(body["job_id"])
        job.wait(timeout=120)
        assert any(j["id"] == job.id and j["name"] == f"ComfyUI prompt {prompt_id}" for j in c.jobs())
        data = job.status()
    assert data["state"] == "succeeded" and [o["node"] for o in data["outputs"]] == ["save_image_9"]
    ids = {n["meta"]["comfy"]["id"] for n in data["graph"]["nodes"].values()}
    assert {"3", "5", "6", "8", "9"} <= ids  # ComfyUI's node ids are kept
    cli = subprocess.run([sys.executable, "-m", "orchestrator", "--state-dir", str(comfy.state), "jobs"],
                         capture_output=True, text=True, timeout=120, env=comfy.env)
    assert cli.returncode == 0 and f"ComfyUI prompt {prompt_id}" in cli.stdout  # and our CLI lists it
    hist = httpx.get(f"{comfy.url}/history/{prompt_id}").json()[prompt_id]
    assert hist["status"]["status_str"] == "success" and hist["status"]["completed"] is True
    assert hist["prompt"][1] == prompt_id and hist["prompt"][2]["3"]["class_type"] == "KSampler"
    image = hist["outputs"]["9"]["images"][0]
    view = httpx.get(f"{comfy.url}/api/view", params=image)
    assert view.status_code == 200 and view.headers["content-type"] == "image/png"
    assert prompt_id in httpx.get(f"{comfy.url}/history", params={"max_items": 50}).json()
    jobs = httpx.get(f"{comfy.url}/api/jobs", params={"status": "completed"}).json()
    assert any(j["id"] == prompt_id and j["preview_output"]["nodeId"] == "9" for j in jobs["jobs"])
    # POST /history delete hides it from the history, the job stays ours
    assert httpx.post(f"{comfy.url}/history", json={"delete": [prompt_id]}).status_code == 200
    assert httpx.get(f"{comfy.url}/history/{prompt_id}").json() == {}
    assert httpx.get(f"{comfy.url}/jobs/{body['job_id']}").json()["state"] == "succeeded"


def _wait_state(d: Daemon, job_id: str, states: set[str], timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(f"{d.url}/jobs/{job_id}").json()["state"]
        if state in states:
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}")


def test_interrupt_and_queue_delete_cancel_jobs_both_ways(comfy):
    client_id = str(uuid.uuid4())
    with connect(f"ws://{_addr(comfy)}/ws?clientId={client_id}", open_timeout=60) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "status"
        ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        while json.loads(ws.recv(timeout=30))["type"] != "feature_flags":  # the editor's way: previews
            pass  # status messages may come first
        first = httpx.post(f"{comfy.url}/prompt", json={"prompt": sd_prompt(steps=400, seed=1),
                                                         "client_id": client_id}).json()
        second = httpx.post(f"{comfy.url}/prompt", json={"prompt": sd_prompt(steps=400, seed=2),
                                                          "client_id": client_id}).json()
        _wait_state(comfy, first["job_id"], {"running"})
        queue = httpx.get(f"{comfy.url}/queue").json()
        assert [i[1] for i in queue["queue_running"]] == [first["prompt_id"]]
        assert [i[1] for i in queue["queue_pending"]] == [second["prompt_id"]]
        listed = httpx.get(f"{comfy.url}/api/jobs", params={"status": "in_progress,pending"}).json()
        assert [(j["id"], j["status"]) for j in listed["jobs"]] == [
            (second["prompt_id"], "pending"), (first["prompt_id"], "in_progress")]
        assert listed["pagination"] == {"offset": 0, "limit": 100, "total": 2, "has_more": False}
        front = httpx.post(f"{comfy.url}/prompt", json={"prompt": sd_prompt(steps=400, seed=4), "front": True,
                                                         "client_id": client_id}).json()
        pending = [i[1] for i in httpx.get(f"{comfy.url}/queue").json()["queue_pending"]]
        assert pending == [front["prompt_id"], second["prompt_id"]]  # front: runs next
        assert httpx.post(f"{comfy.url}/queue", json={"delete": [front["prompt_id"]]}).status_code == 200
        # ComfyUI's queue delete cancels the pending one; /interrupt the running one
        assert httpx.post(f"{comfy.url}/queue", json={"delete": [second["prompt_id"]]}).status_code == 200
        assert _wait_state(comfy, second["job_id"], {"cancelled"}) == "cancelled"
        while True:  # wait for a preview frame before interrupting
            m = ws.recv(timeout=120)
            if isinstance(m, bytes):  # ComfyUI's framing: type 1 (preview image), format 2 (PNG), PNG
                assert struct.unpack(">II", m[:8]) == (1, 2) and m[8:16] == b"\x89PNG\r\n\x1a\n"
                break
        assert httpx.post(f"{comfy.url}/interrupt", json={"prompt_id": first["prompt_id"]}).status_code == 200
        seen = []
        while True:
            m = ws.recv(timeout=120)
            if isinstance(m, bytes):
                continue
            msg = json.loads(m)
            seen.append(msg["type"])
            if msg["type"] == "executing" and msg["data"]["node"] is None:
                assert msg["data"]["prompt_id"] == first["prompt_id"]  # the deleted ones never ran: silent
                break
        assert "execution_interrupted" in seen and "execution_success" not in seen
        assert _wait_state(comfy, first["job_id"], {"cancelled"}) == "cancelled"
        # cancelled through OUR API, seen as interrupted through ComfyUI's socket
        third = httpx.post(f"{comfy.url}/prompt", json={"prompt": sd_prompt(steps=400, seed=3),
                                                         "client_id": client_id}).json()
        _wait_state(comfy, third["job_id"], {"running"})
        assert httpx.post(f"{comfy.url}/jobs/{third['job_id']}/cancel").status_code == 200
        while True:
            m = ws.recv(timeout=120)
            if isinstance(m, str) and json.loads(m)["type"] == "execution_interrupted":
                assert json.loads(m)["data"]["prompt_id"] == third["prompt_id"]
                break
    hist = httpx.get(f"{comfy.url}/history/{first['prompt_id']}").json()[first["prompt_id"]]
    assert hist["status"]["status_str"] == "error" and not hist["status"]["completed"]


def test_errors_come_back_in_comfyui_shapes(comfy):
    url = f"{comfy.url}/prompt"
    # a value over its bound: node_errors on that node, with type, message, details, extra_info
    bad = sd_prompt()
    bad["3"]["inputs"]["steps"] = 100_000
    r = httpx.post(url, json={"prompt": bad})
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    err = body["node_errors"]["3"]
    assert err["class_type"] == "KSampler" and err["dependent_outputs"] == ["9"]
    e = err["errors"][0]
    assert e["type"] == "value_bigger_than_max" and set(e) == {"type", "message", "details", "extra_info"}
    assert e["extra_info"]["input_name"] == "steps" and e["extra_info"]["received_value"] == 100_000
    assert any(x["node"] == "3" and x["field"] == "steps" for x in body["errors"])  # ours beside
    # a checkpoint nobody has: value_not_in_list naming what is
    r = httpx.post(url, json={"prompt": sd_prompt(ckpt="nope.safetensors")})
    e = r.json()["node_errors"]["4"]["errors"][0]
    assert r.status_code == 400 and e["type"] == "value_not_in_list" and CKPT in e["message"]
    # a class we cannot run: invalid_prompt naming it
    unknown = sd_prompt()
    unknown["10"] = {"class_type": "SomeCustomNode", "inputs": {"image": ["8", 0]}}
    r = httpx.post(url, json={"prompt": unknown})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_prompt"
    assert "SomeCustomNode" in r.json()["error"]["message"]
    # no outputs, no prompt, no class_type
    no_out = {k: v for k, v in sd_prompt().items() if k != "9"}
    assert httpx.post(url, json={"prompt": no_out}).json()["error"]["type"] == "prompt_no_outputs"
    assert httpx.post(url, json={"client_id": "x"}).json()["error"]["type"] == "no_prompt"
    r = httpx.post(url, json={"prompt": {"1": {"inputs": {}}}})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_prompt"
    # the same prompt_id for another prompt is refused; for the same one it answers the same job
    pid = str(uuid.uuid4())
    a = httpx.post(url, json={"prompt": sd_prompt(seed=5), "prompt_id": pid}).json()
    b = httpx.post(url, json={"prompt": sd_prompt(seed=5), "prompt_id": pid}).json()
    assert a["job_id"] == b["job_id"]
    r = httpx.post(url, json={"prompt": sd_prompt(seed=6), "prompt_id": pid})
    assert r.status_code == 400 and r.json()["errors"]
    _wait_state(comfy, a["job_id"], {"succeeded"})


HOSTILE_BODIES = [
    (b'{"prompt": {"3": {"class_type": "KSampler", "inputs": {"cfg": NaN}}}}', 400),
    (b'{"prompt": {"3": {"class_type": "KSampler", "inputs": {"cfg": Infinity}}}}', 400),
    (b'{"prompt": ' + b"[" * 200 + b"]" * 200 + b"}", 400),
    (b'{"prompt": {"3": {"class_type": "KSampler", "inputs": {"seed": 1' + b"0" * 40 + b'}}}}', 400),
    (b'{"prompt": "../../etc/passwd"}', 400),
    (b'{"prompt": {"1": {"class_type": "LoadImage", "inputs": {"image": "/etc/passwd"}}, '
     b'"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}}', 400),
    (b'{"prompt": {"1": {"class_type": "LoadImage", "inputs": {"image": "../../../etc/passwd"}}, '
     b'"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}}', 400),
    (b'{"prompt": {}, "client_id": "' + b"x" * 500 + b'"}', 400),
    (b'{"prompt": {}, "prompt_id": 5}', 400),
    (b'{"prompt": {}, "number": "first"}', 400),
    (b"[1, 2, 3]", 400),
    (b"not json at all", 400),
    (b'{"prompt": {"1": {"class_type": "SaveImage", "inputs": []}}}', 400),
]


@pytest.mark.parametrize("body,status", HOSTILE_BODIES)
def test_hostile_prompt_bodies_get_a_4xx_never_a_500(comfy, body, status):
    for path in ("/prompt", "/api/prompt"):
        r = httpx.post(f"{comfy.url}{path}", content=body, headers={"content-type": "application/json"})
        assert r.status_code in (status, 422), (path, r.status_code, r.text)
        doc = r.json()
        assert doc["errors"] and all({"type", "message", "node", "field"} <= set(e) for e in doc["errors"])
        assert str(comfy.state) not in r.text  # never learns what is on disk


def test_oversized_prompt_is_refused_before_it_is_read(comfy):
    text = b"a" * (5 << 20)
    big = b'{"prompt": {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "' + text + b'"}}}}'
    r = httpx.post(f"{comfy.url}/prompt", content=big)
    assert r.status_code == 413 and r.json()["errors"][0]["type"] == "request_too_large"
    many = {str(i): {"class_type": "PrimitiveInt", "inputs": {"value": i}} for i in range(600)}
    r = httpx.post(f"{comfy.url}/prompt", json={"prompt": many})
    assert r.status_code == 400 and r.json()["error"]["type"] == "limit"


def _png(color=(200, 30, 30, 255), size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_then_load_image_then_view(comfy):
    r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("mine.png", _png(), "image/png")},
                   data={"overwrite": "true", "subfolder": "clips", "type": "input"})
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["subfolder"] == "clips" and up["type"] == "input" and up["name"].endswith(".png")
    spec = httpx.get(f"{comfy.url}/object_info/LoadImage").json()["LoadImage"]
    choices = spec["input"]["required"]["image"]
    assert f"clips/{up['name']}" in choices[0] and choices[1]["image_upload"] is True
    view = httpx.get(f"{comfy.url}/view",
                     params={"filename": up["name"], "subfolder": "clips", "type": "input"})
    assert view.status_code == 200 and view.content == _png()
    # ComfyUI clients put "subfolder/name" in LoadImage: it runs on our workers
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": f"clips/{up['name']}"}},
              "2": {"class_type": "ImageScaleBy",
                    "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 2.0}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "big"}}}
    images, _ = ComfyClient(_addr(comfy)).get_images(prompt)
    assert Image.open(io.BytesIO(images["3"][0])).size == (64, 48)
    # upload/mask: the original with the mask's alpha
    mask = _png(color=(0, 0, 0, 77))
    r = httpx.post(f"{comfy.url}/api/upload/mask", files={"image": ("mask.png", mask, "image/png")},
                   data={"original_ref": json.dumps({"filename": up["name"], "subfolder": "clips",
                                                     "type": "input"}), "type": "input"})
    assert r.status_code == 200, r.text
    masked = httpx.get(f"{comfy.url}/view", params={"filename": r.json()["name"], "type": "input",
                                                   "subfolder": r.json()["subfolder"]}).content
    px = Image.open(io.BytesIO(masked)).getpixel((3, 3))
    assert px == (200, 30, 30, 77)


VIEW_TRAVERSALS = [
    {"filename": "../../../etc/passwd", "type": "input"},
    {"filename": "passwd", "subfolder": "../../../../etc", "type": "input"},
    {"filename": "/etc/passwd", "type": "input"},
    {"filename": "..%2F..%2Fetc%2Fpasswd", "type": "input"},
    {"filename": "jobs.db", "subfolder": "..", "type": "output"},
    {"filename": "../jobs.db", "subfolder": "", "type": "output"},
    {"filename": "ComfyUI.png", "subfolder": "../../state", "type": "output"},
    {"filename": "passwd", "subfolder": "/etc", "type": "temp"},
    {"filename": "x.png", "type": "../../etc"},
]


@pytest.mark.parametrize("params", VIEW_TRAVERSALS)
def test_view_never_reads_outside_outputs_or_inputs(comfy, params):
    r = httpx.get(f"{comfy.url}/view", params=params)
    assert r.status_code in (400, 404, 422), r.text
    assert "root:" not in r.text and str(comfy.state) not in r.text


UPLOAD_TRAVERSALS = ["../../outside", "/abs", "a/../../b", ".hidden/..", "a\\..\\b", "x" * 80]


@pytest.mark.parametrize("subfolder", UPLOAD_TRAVERSALS)
def test_upload_subfolders_cannot_leave_the_input_folder(comfy, subfolder):
    r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("../../evil.png", _png(), "image/png")},
                   data={"subfolder": subfolder})
    assert r.status_code in (400, 422), r.text
    assert not list(comfy.state.parent.glob("**/evil.png"))


def test_upload_refuses_what_is_not_an_image(comfy):
    r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("x.svg", b"<svg/>", "image/svg+xml")})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "input"


USERDATA_TRAVERSALS = ["..%2F..%2Fjobs.db", "%2Fetc%2Fpasswd", "workflows%2F..%2F..%2F..%2Fjobs.db",
                       "a%00b.json"]


@pytest.mark.parametrize("name", USERDATA_TRAVERSALS)
def test_userdata_is_confined(comfy, name):
    assert httpx.post(f"{comfy.url}/api/userdata/{name}", content=b"{}").status_code in (400, 404)
    assert httpx.get(f"{comfy.url}/api/userdata/{name}").status_code in (400, 404)


def test_userdata_and_settings_round_trip(comfy):
    r = httpx.post(f"{comfy.url}/api/userdata/workflows%2Fmine.json?overwrite=true&full_info=true",
                   content=b'{"nodes": []}')
    assert r.status_code == 200 and r.json()["path"] == "workflows/mine.json"
    listing = httpx.get(f"{comfy.url}/api/userdata", params={"dir": "workflows", "recurse": "true"}).json()
    assert listing == ["mine.json"]
    assert httpx.get(f"{comfy.url}/api/userdata/workflows%2Fmine.json").json() == {"nodes": []}
    moved = httpx.post(f"{comfy.url}/api/userdata/workflows%2Fmine.json/move/workflows%2Fold%2Fmine.json")
    assert moved.status_code == 200 and moved.json() == "workflows/old/mine.json"
    assert httpx.get(f"{comfy.url}/api/userdata/workflows%2Fmine.json").status_code == 404
    # a file where a folder is wanted: a conflict, never a 500; a bare slash is not a name
    clash = httpx.post(f"{comfy.url}/api/userdata/workflows%2Fold%2Fmine.json%2Fx.json", content=b"{}")
    assert clash.status_code == 409 and clash.json()["errors"][0]["type"] == "conflict"
    assert httpx.post(f"{comfy.url}/api/userdata/workflows/y.json", content=b"{}").status_code == 400
    assert httpx.post(f"{comfy.url}/api/settings/Comfy.Theme", json="dark").status_code == 200
    assert httpx.get(f"{comfy.url}/api/settings").json()["Comfy.Theme"] == "dark"


def test_object_info_models_and_start_up_routes(comfy):
    info = httpx.get(f"{comfy.url}/object_info").json()
    for cls in ("KSampler", "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "VAEDecode",
                "SaveImage", "LoadImage", "LoraLoader", "KSamplerAdvanced"):
        assert cls in info, cls
    ks = info["KSampler"]
    req = ks["input"]["required"]
    assert req["steps"] == ["INT", {"default": 20, "min": 1, "max": 10000}]
    assert "dpmpp_2m" in req["sampler_name"][0] and "karras" in req["scheduler"][0]
    assert req["seed"][1]["control_after_generate"] is True and ks["output"] == ["LATENT"]
    assert ks["input_order"]["required"][:4] == ["model", "positive", "negative", "latent_image"]
    ckpts = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert CKPT in ckpts and "tiny-sd" in ckpts and "tiny-controlnet" not in ckpts
    assert info["SaveImage"]["output_node"] is True
    area = info["ConditioningSetAreaPercentage"]["input"]["required"]["width"]
    assert area == ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]
    assert info["CLIPTextEncodeSDXL"]["input"]["required"]["text_g"][0] == "STRING"
    for cls, spec in info.items():  # every spec is one the editor can draw
        assert spec["name"] == cls and len(spec["output"]) == len(spec["output_name"])
        for name, entry in {**spec["input"]["required"], **spec["input"]["optional"]}.items():
            kind, opts = entry[0], (entry[1] if len(entry) > 1 else {})
            if isinstance(kind, list):  # a combo: its default is one of its choices
                assert "default" not in opts or not kind or opts["default"] in kind, (cls, name)
            elif kind in ("INT", "FLOAT"):
                assert opts.get("min", opts["default"]) <= opts["default"] <= opts.get("max", opts["default"])
                assert isinstance(opts["default"], int if kind == "INT" else float), (cls, name)
            else:
                assert kind.isupper(), (cls, name)
    assert httpx.get(f"{comfy.url}/api/object_info/NoSuchNode").json() == {}
    assert "checkpoints" in httpx.get(f"{comfy.url}/api/models").json()
    assert CKPT in httpx.get(f"{comfy.url}/api/models/checkpoints").json()
    assert httpx.get(f"{comfy.url}/api/models/..%2Fetc").status_code == 404
    # the model folders' files, as ComfyUI names them, per folder and as widget choices
    assert httpx.get(f"{comfy.url}/api/models/loras").json() == ["styles/ink.safetensors"]
    assert httpx.get(f"{comfy.url}/api/models/upscale_models").json() == ["4x-test.pth"]
    assert info["LoraLoader"]["input"]["required"]["lora_name"][0] == ["styles/ink.safetensors"]
    assert info["VAELoader"]["input"]["required"]["vae_name"][0] == ["tiny-vae.safetensors"]
    assert info["UpscaleModelLoader"]["input"]["required"]["model_name"][0] == ["4x-test.pth"]
    ours = httpx.get(f"{comfy.url}/models").json()  # our own /models keeps its shape
    assert isinstance(ours, list) and isinstance(ours[0], dict) and "name" in ours[0]
    assert "href='/comfy/'" in httpx.get(f"{comfy.url}/").text  # our dashboard links to the editor
    stats = httpx.get(f"{comfy.url}/system_stats").json()
    assert stats["devices"] and "ram_total" in stats["system"]
    assert httpx.get(f"{comfy.url}/api/features").json()["max_upload_size"] > 0
    assert httpx.get(f"{comfy.url}/api/extensions").json() == []
    free = httpx.post(f"{comfy.url}/api/free", json={"unload_models": True})
    assert free.status_code == 501 and free.json()["errors"][0]["type"] == "not_supported"
    assert httpx.get(f"{comfy.url}/api/embeddings").json() == ["neg"]
    remaining = httpx.get(f"{comfy.url}/api/prompt").json()["exec_info"]["queue_remaining"]
    assert isinstance(remaining, int) and remaining >= 0


def test_websocket_cap_is_shared_with_event_streams(comfy):
    """max_streams = 6: six sockets open, the seventh handshake gets 429; a slot comes back."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(f"ws://{_addr(comfy)}/ws", open_timeout=60)) for _ in range(6)]
        for s in sockets:
            assert json.loads(s.recv(timeout=30))["type"] == "status"
        assert _ws_status(comfy) == 429
        job_id = httpx.post(f"{comfy.url}/prompt", json={"prompt": sd_prompt(seed=31)}).json()["job_id"]
        r = httpx.get(f"{comfy.url}/jobs/{job_id}/events")  # an event stream is refused too
        assert r.status_code == 429 and r.json()["errors"][0]["type"] == "too_many_streams"
    deadline = time.monotonic() + 30
    while True:
        try:
            with connect(f"ws://{_addr(comfy)}/ws", open_timeout=60) as ws:
                assert json.loads(ws.recv(timeout=30))["type"] == "status"
            break
        except InvalidStatus:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def _raw_handshake(d: Daemon, host: str, headers: dict[str, str]) -> int:
    """The status of a handshake sent by hand (a client library sets its own Host)."""
    port = int(d.url.rsplit(":", 1)[1])
    lines = ["GET /ws HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(head.split()[1])


def _ws_status(d: Daemon, path: str = "/ws", **kw) -> int:
    try:
        with connect(f"ws://{_addr(d)}{path}", open_timeout=60, **kw) as ws:
            json.loads(ws.recv(timeout=30))
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_websocket_handshake_gets_the_guard(guarded, comfy):
    own = {"Origin": guarded.url}
    assert _ws_status(guarded) == 401  # no token
    assert _ws_status(guarded, additional_headers={"Authorization": "Bearer wrong"}) == 401
    assert _ws_status(guarded, additional_headers={"Authorization": f"Bearer {TOKEN}"}) == 101
    assert _ws_status(guarded, f"/api/ws?token={TOKEN}", additional_headers=own) == 101
    assert _ws_status(guarded, "/ws?token=nope") == 401
    evil = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
    assert _ws_status(guarded, additional_headers=evil) == 403  # cross-origin
    assert _ws_status(comfy, additional_headers={"Origin": "http://evil.example"}) == 403
    assert _ws_status(comfy, additional_headers={"Origin": "null"}) == 403
    assert _raw_handshake(guarded, "attacker.example", {"Authorization": f"Bearer {TOKEN}"}) == 421
    assert _raw_handshake(guarded, "127.0.0.1", {"Authorization": f"Bearer {TOKEN}"}) == 101
    # the browser's way: the session cookie from the editor's first load, with its own Origin
    r = httpx.get(f"{guarded.url}/comfy/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/comfy/"
    cookie = r.headers["set-cookie"].split(";")[0]
    assert _ws_status(guarded, "/comfy/ws", additional_headers={"Cookie": cookie, **own}) == 101
    assert _ws_status(guarded, "/comfy/ws", additional_headers={"Cookie": cookie}) == 401  # no Origin
    # and ComfyUI's HTTP routes need the token like ours
    assert httpx.post(f"{guarded.url}/prompt", json={"prompt": sd_prompt()}).status_code == 401
    assert httpx.get(f"{guarded.url}/api/object_info").status_code == 401
    assert httpx.get(f"{guarded.url}/view?filename=x.png&token={TOKEN}").status_code == 401
    client = ComfyClient(_addr(guarded), headers={"Authorization": f"Bearer {TOKEN}"})
    images, _ = client.get_images(sd_prompt(seed=21))
    assert images["9"][0][:4] == b"\x89PNG"


@pytest.mark.slow
def test_websocket_example_flow_on_the_ray_engine(tmp_path):
    """The same unchanged client against a daemon running its jobs on Ray workers."""
    d = _start(tmp_path, "--engine", "ray")
    try:
        images, messages = ComfyClient(_addr(d)).get_images(sd_prompt(steps=2, seed=3))
        assert Image.open(io.BytesIO(images["9"][0])).size == (64, 64)
        types = _types(messages)
        assert "execution_start" in types and "progress" in types and "execution_success" in types
        executing = [m["data"]["node"] for m in messages if isinstance(m, dict) and m["type"] == "executing"]
        assert executing[-1] is None and "3" in executing
    finally:
        d.terminate()


def test_a_third_party_client_library_unchanged(comfy, tmp_path):
    """comfy-api-simplified (PyPI, MIT), used as its README shows: load the API-format JSON,
    set a param by node title, queue and wait on the socket, get the image by its node's title."""
    import comfy_api_simplified as simplified  # the [test] extra installs it
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(sd_prompt(seed=41)))
    api = simplified.ComfyApiWrapper(comfy.url)
    workflow = simplified.ComfyWorkflowWrapper(str(path))
    workflow.set_node_param("KSampler", "steps", 3)
    results = api.queue_and_wait_images(workflow, "Save Image")
    (name, png), = results.items()
    assert name == "ComfyUI.png" and Image.open(io.BytesIO(png)).size == (64, 64)
    assert api.get_queue() == {"queue_running": [], "queue_pending": []}
    assert "KSampler" in api.get_object_info()


def test_partial_execution_targets_run_only_the_named_outputs(comfy):
    prompt = sd_prompt(seed=51)
    prompt["10"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "other", "images": ["8", 0]}}
    r = httpx.post(f"{comfy.url}/prompt", json={"prompt": prompt, "partial_execution_targets": ["10"]})
    assert r.status_code == 200, r.text
    _wait_state(comfy, r.json()["job_id"], {"succeeded"})
    pid = r.json()["prompt_id"]
    outputs = httpx.get(f"{comfy.url}/history/{pid}").json()[pid]["outputs"]
    assert list(outputs) == ["10"]
    bad = httpx.post(f"{comfy.url}/prompt", json={"prompt": prompt, "partial_execution_targets": ["99"]})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_prompt"


def test_an_oversized_socket_message_closes_only_that_socket(comfy):
    with connect(f"ws://{_addr(comfy)}/ws", open_timeout=60, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "status"
        ws.send("x" * (2 << 20))
        with pytest.raises(ConnectionClosed) as exc:
            while True:
                ws.recv(timeout=30)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009
    assert _ws_status(comfy) == 101


@pytest.mark.slow
def test_a_queued_prompt_survives_a_kill_and_is_followed_after_restart(tmp_path):
    d = _start(tmp_path)
    try:
        blocker = httpx.post(f"{d.url}/prompt", json={"prompt": sd_prompt(steps=400, seed=61)}).json()
        _wait_state(d, blocker["job_id"], {"running"})
        client_id = str(uuid.uuid4())
        queued = httpx.post(f"{d.url}/prompt",
                            json={"prompt": sd_prompt(seed=62), "client_id": client_id}).json()
        d.kill()  # SIGKILL: the prompt was on disk before POST /prompt answered
        d.start()
        assert httpx.post(f"{d.url}/interrupt", json={"prompt_id": blocker["prompt_id"]}).status_code == 200
        with connect(f"ws://{_addr(d)}/ws?clientId={client_id}", open_timeout=60) as ws:
            done = False
            while not done:
                m = ws.recv(timeout=300)
                if isinstance(m, str):
                    msg = json.loads(m)
                    done = msg["type"] == "executing" and msg["data"]["node"] is None and \
                        msg["data"]["prompt_id"] == queued["prompt_id"]
        hist = httpx.get(f"{d.url}/history/{queued['prompt_id']}").json()[queued["prompt_id"]]
        assert hist["status"]["completed"] and hist["outputs"]["9"]["images"]
    finally:
        d.kill()


@pytest.mark.slow
def test_fuzzed_prompts_and_queries_never_get_a_500(comfy):
    """Hypothesis-built API-format prompts (real class names, random inputs and links) and random
    queries: every answer is a 2xx or a structured 4xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=40), st.sampled_from(["../../etc/passwd", "/etc/passwd", CKPT]))
    links = st.tuples(st.sampled_from(["1", "2", "3", "4", "99"]), st.integers(-1, 3)).map(list)
    values = st.one_of(scalars, links, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                       scalars, max_size=2))
    classes = st.sampled_from(["KSampler", "SaveImage", "LoadImage", "CheckpointLoaderSimple", "VAEDecode",
                               "EmptyLatentImage", "CLIPTextEncode", "LoraLoader", "ImageScale", "Bogus"])
    widget_names = st.sampled_from(["seed", "steps", "cfg", "images", "image", "ckpt_name", "width", "height",
                                    "samples", "vae", "model", "clip", "text", "latent_image", "positive",
                                    "negative", "sampler_name", "scheduler", "denoise", "lora_name"])
    node = st.fixed_dictionaries({"class_type": classes,
                                  "inputs": st.dictionaries(widget_names, values, max_size=8)})
    prompts = st.dictionaries(st.sampled_from(["1", "2", "3", "4", "5"]), node, min_size=1, max_size=5)
    bodies = st.fixed_dictionaries({"prompt": prompts}, optional={
        "client_id": scalars, "prompt_id": scalars, "number": scalars, "front": scalars,
        "extra_data": values, "partial_execution_targets": values})

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def post(body):
        r = httpx.post(f"{comfy.url}/prompt", content=json.dumps(body).encode(), timeout=60)
        assert r.status_code < 500, (body, r.text)
        if r.status_code >= 400:
            assert r.json()["errors"]
        else:
            httpx.post(f"{comfy.url}/interrupt", json={"prompt_id": r.json()["prompt_id"]}, timeout=60)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/view", "/api/view", "/history", "/api/jobs", "/api/userdata", "/queue"]),
           st.dictionaries(st.sampled_from(["filename", "subfolder", "type", "max_items", "offset", "status",
                                            "limit", "dir", "recurse", "full_info"]), st.text(max_size=60),
                           max_size=4))
    def get(path, params):
        r = httpx.get(f"{comfy.url}{path}", params=params, timeout=60)
        assert r.status_code < 500, (path, params, r.text)

    post()
    get()


EDITOR_TRAVERSALS = ["/comfy/..%2F..%2F__init__.py", "/comfy/%2e%2e/%2e%2e/__init__.py",
                     "/comfy/assets/..%2F..%2F..%2Fjobs.db", "/comfy/%00",
                     "/assets/images/favicon_progress_16x16/..%2F..%2F..%2Findex.html"]


def test_editor_files_are_served_and_confined(comfy):
    try:
        import comfyui_frontend_package  # noqa: F401
    except ImportError:  # without the [editor] extra /comfy/ says how to get it
        r = httpx.get(f"{comfy.url}/comfy/")
        assert r.status_code == 404 and "orchestrator[editor]" in r.json()["errors"][0]["message"]
        return
    page = httpx.get(f"{comfy.url}/comfy/")
    assert page.status_code == 200 and "<title>ComfyUI</title>" in page.text
    assert httpx.get(f"{comfy.url}/comfy").status_code == 307
    assert httpx.get(f"{comfy.url}/assets/images/favicon_progress_16x16/frame_1.png").status_code == 200
    for path in EDITOR_TRAVERSALS:
        r = httpx.get(f"{comfy.url}{path}")
        assert r.status_code in (400, 404), path
        assert "import" not in r.text and "SQLite" not in r.text


def test_a_failure_while_running_is_an_execution_error_on_its_comfyui_node(comfy):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "not-uploaded.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    client = ComfyClient(_addr(comfy))
    with connect(f"ws://{_addr(comfy)}/ws?clientId={client.client_id}", open_timeout=60) as ws:
        pid = str(uuid.uuid4())
        assert client.queue_prompt(prompt, pid)["node_errors"] == {}  # fine on paper, fails when it runs
        seen = []
        while True:
            m = ws.recv(timeout=120)
            if isinstance(m, bytes):
                continue
            msg = json.loads(m)
            seen.append(msg)
            if msg["type"] == "executing" and msg["data"]["node"] is None and msg["data"]["prompt_id"] == pid:
                break
    err = next(m["data"] for m in seen if m["type"] == "execution_error")
    assert err["prompt_id"] == pid and err["node_id"] == "1" and err["node_type"] == "LoadImage"
    assert "not-uploaded.png" in err["exception_message"] and str(comfy.state) not in err["exception_message"]
    assert "execution_success" not in [m["type"] for m in seen]
    hist = client.get_history(pid)[pid]
    assert hist["status"]["status_str"] == "error" and hist["status"]["messages"][-1][0] == "execution_error"


def test_plugin_mappings_are_listed_and_run(comfy):
    info = httpx.get(f"{comfy.url}/api/object_info").json()
    assert info["ImageInvert"]["input"]["required"] == {"image": ["IMAGE"]}
    assert info["ImageInvert"]["output"] == ["IMAGE"]
    strength = info["ImageInvertPartly"]["input"]["required"]["strength"]
    assert strength[0] == "FLOAT" and strength[1]["default"] == 0.5
    assert "ImageInvertUnlisted" not in info  # no types to draw it with
    r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("a.png", _png(), "image/png")})
    name = r.json()["name"]
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
              "2": {"class_type": "ImageInvertPartly", "inputs": {"image": ["1", 0], "strength": 1.0}},
              "3": {"class_type": "ImageInvertUnlisted", "inputs": {"image": ["2", 0]}},
              "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
              "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "inv"}}}
    images, _ = ComfyClient(_addr(comfy)).get_images(prompt)
    assert Image.open(io.BytesIO(images["5"][0])).convert("RGB").getpixel((1, 1)) == (55, 225, 225)


def test_a_client_may_name_its_upload_by_its_own_file_name(comfy):
    """Scripts upload `mask.png` and then put `mask.png` in LoadImage: the input folder stores it
    under a content name, the name the client used still finds it (the latest upload wins)."""
    first, second = _png(color=(10, 20, 30, 255)), _png(color=(40, 50, 60, 255))
    for data in (first, second):
        r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("my photo.png", data, "image/png")},
                       data={"subfolder": "mine"})
        assert r.status_code == 200 and r.json()["name"] != "my photo.png"
    view = httpx.get(f"{comfy.url}/view", params={"filename": "my photo.png", "subfolder": "mine",
                                                  "type": "input"})
    assert view.status_code == 200 and view.content == second
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "mine/my photo.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "own"}}}
    images, _ = ComfyClient(_addr(comfy)).get_images(prompt)
    assert Image.open(io.BytesIO(images["2"][0])).convert("RGB").getpixel((0, 0)) == (40, 50, 60)
    # a name nobody uploaded stays an error naming it; a client's path never escapes the folder
    r = httpx.post(f"{comfy.url}/upload/image", files={"image": ("../../escape.png", first, "image/png")})
    assert r.status_code == 200 and "escape" not in r.json()["name"]
    bad = {"1": {"class_type": "LoadImage", "inputs": {"image": "../../escape.png"}},
           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    r = httpx.post(f"{comfy.url}/prompt", json={"prompt": bad})
    assert r.status_code == 400 and r.json()["node_errors"]["1"]["errors"][0]["type"] == "input"


@pytest.mark.parametrize("width", [None, "wide", 2**70])
def test_a_widget_of_the_wrong_type_is_a_node_error_not_a_500(comfy, width):
    """EmptyLatentImage with width null, a word or a huge number (found by the fuzz test): a 400 that
    names the node, never a 500."""
    body = {"prompt": {"2": {"class_type": "SaveImage", "inputs": {"images": ["4", 0]}},
                       "4": {"class_type": "EmptyLatentImage", "inputs": {"width": width}}}}
    r = httpx.post(f"{comfy.url}/prompt", content=json.dumps(body).encode(), timeout=60)
    assert 400 <= r.status_code < 500, r.text
    answer = r.json()
    named = answer.get("node_errors", {}).get("4") or [e for e in answer.get("errors", [])
                                                        if "4" in str(e.get("field")) + str(e.get("node"))]
    assert named, r.text
