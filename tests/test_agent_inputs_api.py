"""Prompt jobs carry their inputs by role: ``agent.inputs`` over the API, confined to the input folder."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

HOSTILE_NAMES = ["/etc/passwd", "../../etc/passwd", "file:///etc/passwd", "~/.ssh/id_rsa", "C:\\x.png",
                 "a/../../b.png", "%2e%2e/x.png", "x\x00.png", "", "a" * 5000]


def png(color=(200, 120, 40), size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture()
def app_client(tmp_path):
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings
    from orchestrator.runtime.engine import LocalEngine
    from orchestrator.server.api import create_app
    from orchestrator.server.daemon import make_planner
    from orchestrator.server.service import JobService
    from orchestrator.state.store import JobStore

    settings = load_settings(config_file=False, env={}, overrides={"state_dir": str(tmp_path / "state")})
    host = plugin_host(settings)
    store = JobStore(tmp_path / "jobs.db")
    service = JobService(store, LocalEngine(host.catalog, settings), outputs_root=tmp_path / "outputs",
                         planner=make_planner(settings, host))
    with TestClient(create_app(service, settings), base_url="http://127.0.0.1") as c:
        yield c
    store.close()


def test_hostile_input_names_and_roles_are_refused_before_anything_is_stored(app_client) -> None:
    before = app_client.get("/jobs").json()["jobs"]
    for name in HOSTILE_NAMES:
        r = app_client.post("/jobs", json={"prompt": "turn this photo into a watercolor",
                                           "agent": {"inputs": {"image": name}}})
        assert r.status_code in (400, 413, 422), name
        errors = r.json()["errors"]
        assert set(r.json()) == {"errors"} and {"type", "message", "node", "field"} <= set(errors[0])
        assert any("inputs" in str(e.get("field")) for e in errors), errors
        assert "/etc" not in str(errors) or name.startswith(("/etc", "../../etc", "file:")), errors
    for inputs in ({"evil": "a.png"}, {"image": 12}, ["image", "a.png"], {"image": ["a.png"]},
                   {"image": {"path": "a.png"}}, "image=a.png"):
        r = app_client.post("/jobs", json={"prompt": "a fox", "agent": {"inputs": inputs}})
        assert r.status_code == 422, inputs
        assert any("inputs" in str(e.get("field")) for e in r.json()["errors"])
    assert app_client.get("/jobs").json()["jobs"] == before


@pytest.fixture(scope="module")
def real_daemon(tmp_path_factory):
    from daemon_process import Daemon

    d = Daemon(tmp_path_factory.mktemp("state")).start()
    yield d
    d.kill()


@pytest.mark.slow
def test_a_prompt_job_plans_on_its_uploaded_inputs_by_role(real_daemon, tmp_path) -> None:
    """A real daemon on loopback: uploads by role reach their nodes; a missing one fails the job
    with an error naming the role."""
    (tmp_path / "photo.png").write_bytes(png())
    (tmp_path / "style.png").write_bytes(png((10, 20, 200)))
    with real_daemon.client() as c:
        image = c.upload(tmp_path / "photo.png")
        style = c.upload(tmp_path / "style.png", subfolder="styles")
        job = c.submit(prompt="this photo in the style of the reference image",
                       agent={"inputs": {"image": image, "style": style}, "rounds": 0})
        info = _wait(c, job.id, lambda i: i.get("graph") or i["state"] in FINAL)
        graph = info["graph"]
        assert graph["meta"]["template"] == "style_transfer", info.get("errors")
        assert graph["nodes"]["content"]["params"]["path"] == image
        assert graph["nodes"]["style"]["params"]["path"] == style
        job.cancel()
        job = c.submit(prompt="this photo in the style of the reference image",
                       agent={"inputs": {"image": image}})
        info = _wait(c, job.id, lambda i: i["state"] in FINAL)
        assert info["state"] == "failed"
        assert any("'style'" in e["message"] for e in info["errors"]), info["errors"]


@pytest.mark.slow
def test_submit_uploads_a_prompts_inputs_by_role(real_daemon, tmp_path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "photo.png").write_bytes(png((1, 2, 3)))
    (tmp_path / "style.png").write_bytes(png((4, 5, 6)))
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_TOKEN"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator", "--state-dir", str(tmp_path / "cli"),
                               "submit", *args, "--url", real_daemon.url], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, env=env)

    out = cli("this photo in the style of the reference image", "--input", "image=photo.png",
              "--input", "style=style.png")
    assert out.returncode == 0, out.stderr
    with real_daemon.client() as c:
        info = _wait(c, out.stdout.split()[0], lambda i: i.get("graph") or i["state"] in FINAL)
        names = {i["name"] for i in c.inputs()}
        c.job(info["id"]).cancel()
    paths = {info["graph"]["nodes"][n]["params"]["path"] for n in ("content", "style")}
    assert len(paths) == 2 and paths <= names  # the uploads, by their names in the input folder
    bad = cli("a fox", "--input", "style=missing.png")
    assert bad.returncode == 2 and "no such file" in bad.stderr


FINAL = ("failed", "cancelled", "succeeded")


def _wait(client, job: str, done) -> dict:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        info = client.job(job).status()
        if done(info):
            return info
        time.sleep(0.1)
    raise AssertionError(f"job {job}: not there in time")
