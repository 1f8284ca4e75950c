"""The ComfyUI editor (comfyui-frontend-package) served by the daemon at /comfy/, driven in a real
headless Chromium (Debian's package) with Playwright: it loads, lists our node classes, loads its
default workflow (the SD 1.5 graph; tiny-sd is configured under the checkpoint name it names),
and Run queues it on our workers; the image comes back and shows in the SaveImage node."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(Path(__file__).parent)]

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM) and not os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER"):
    pytest.skip("Chromium is not installed (CI installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
if not os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER"):  # CI installs the [editor] extra: there it must run
    pytest.importorskip("comfyui_frontend_package", reason="the [editor] extra is not installed")

from screenshots import capture_editor, launch  # noqa: E402
from test_comfy_protocol import CKPT, TOKEN, _start  # noqa: E402

pytestmark = pytest.mark.slow  # a browser and a 512x512 20-step run: tens of seconds


@pytest.fixture()
def editor_daemon(tmp_path):
    d = _start(tmp_path)
    yield d
    if d.proc and d.proc.poll() is None:
        d.kill()


def test_editor_runs_its_default_workflow_on_our_workers(editor_daemon, tmp_path):
    url = editor_daemon.url
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        failures: list[str] = []
        page.on("response", lambda r: failures.append(f"{r.status} {r.url}")
                if r.status >= 500 else None)
        page.goto(f"{url}/comfy/")
        page.wait_for_function("window.app && window.app.graph && window.app.graph._nodes.length > 0",
                               timeout=120_000)
        types = sorted(page.evaluate("window.app.graph._nodes.map(n => n.type)"))
        assert types == sorted(["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode",
                                "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage"])
        registered = page.evaluate("Object.keys(LiteGraph.registered_node_types)")
        assert {"KSampler", "KSamplerAdvanced", "LoraLoader", "LoadImage"} <= set(registered)
        ckpt = page.evaluate("window.app.graph._nodes.find(n => n.type === 'CheckpointLoaderSimple')"
                             ".widgets[0].value")
        assert ckpt == CKPT  # the default workflow's checkpoint, one of our choices
        with page.expect_response(lambda r: "/api/prompt" in r.url and r.request.method == "POST",
                                  timeout=60_000) as queued:
            page.locator("[data-testid='queue-button']").first.click()
        answer = queued.value.json()
        assert queued.value.status == 200 and answer["node_errors"] == {}, answer
        with page.expect_response(lambda r: "/api/view" in r.url and "type=output" in r.url,
                                  timeout=600_000) as viewed:
            pass
        assert viewed.value.status == 200 and viewed.value.headers["content-type"] == "image/png"
        save = "window.app.graph._nodes.find(n => n.type === 'SaveImage')"
        page.wait_for_function(f"(() => {{ const n = {save}; return n.imgs && n.imgs.length && "
                               "n.imgs[0].naturalWidth })()", timeout=60_000)
        width = page.evaluate(f"{save}.imgs[0].naturalWidth")
        assert width == 512
        assert not failures, failures
        browser.close()
    # the run is a job of ours, listed by our API with the editor's prompt id
    jobs = httpx.get(f"{url}/jobs").json()["jobs"]
    name = f"ComfyUI prompt {answer['prompt_id']}"
    assert any(j["name"] == name and j["state"] == "succeeded" for j in jobs)


def test_editor_first_load_with_a_token_uses_the_session_cookie(tmp_path):
    d = _start(tmp_path, token=TOKEN)
    try:
        assert httpx.get(f"{d.url}/comfy/").status_code == 401
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(f"{d.url}/comfy/?token={TOKEN}")
            assert page.url == f"{d.url}/comfy/"  # the token left the address
            page.wait_for_function("window.app && window.app.graph && window.app.graph._nodes.length > 0",
                                   timeout=120_000)
            page.wait_for_function("(() => { const s = window.comfyAPI.api.api.socket; "
                                   "return s && s.readyState === 1 })()", timeout=60_000)
            assert sockets and all("token" not in s for s in sockets)
            browser.close()
    finally:
        d.kill()


def test_screenshots_capture_the_editor(editor_daemon, tmp_path):
    shot = capture_editor(editor_daemon.url, tmp_path, run=False)
    assert shot.is_file() and shot.stat().st_size > 10_000
