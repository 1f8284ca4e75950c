"""The smaller holes of "secure by default", each tried against a real daemon on loopback.

Origins are compared by scheme, host and port; a token in the URL is accepted only by the
event stream and the dashboard's first load (which trades it for a session cookie); the token
never appears on a command line; the state directory is private; a client without the token
learns no host paths from ``/models`` or ``/metrics``; an idempotent retry gets its job even
when the queue is full. Each refusal is checked, and so is that nothing accepted was lost.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from daemon_process import ROOT
from kit import make_daemon, slow_graph, wait_final

TOKEN = "tok-" + "x" * 28


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def tokened(tmp_path_factory):
    """A daemon with a token (from a 0600 token file) and a configured model whose source is a path."""
    state = tmp_path_factory.mktemp("state")
    token_file = state / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    model_dir = tmp_path_factory.mktemp("secret-models")
    (state / "config.toml").write_text(
        f'token_file = "{token_file}"\nallowed_origins = ["https://proxy.example:8443"]\n'
        f'[[models]]\nname = "mine"\nsource = "{model_dir}/mine.safetensors"\n')
    d = make_daemon(state)
    d.start()
    yield d
    d.terminate()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_origins_must_match_scheme_host_and_port(tokened):
    url, port = tokened.url, _port(tokened.url)
    body = {"graph": slow_graph(name="origin-ok")}
    same = httpx.post(f"{url}/jobs", json=body, headers={**_auth(), "Origin": f"http://127.0.0.1:{port}"})
    assert same.status_code == 201
    hostile = [f"http://127.0.0.1:{port + 1}",     # another server on this host
               f"https://127.0.0.1:{port}",        # another scheme
               "http://127.0.0.1",                 # the default port
               f"http://evil.example:{port}",      # another host
               "null", "file://", f"http://127.0.0.1:{port}/path", "javascript:alert(1)",
               f"http://user@127.0.0.1:{port}", "http://127.0.0.1:99999", "not an origin"]
    for origin in hostile:
        r = httpx.post(f"{url}/jobs", json=body, headers={**_auth(), "Origin": origin})
        assert r.status_code == 403, origin
        assert r.json()["errors"][0]["type"] == "origin"
    # localhost and 127.0.0.1 are different origins: the Host header decides which one this is
    r = httpx.get(f"{url}/jobs", headers={**_auth(), "Origin": f"http://localhost:{port}",
                                          "Host": f"localhost:{port}"})
    assert r.status_code == 200
    r = httpx.get(f"{url}/jobs", headers={**_auth(), "Origin": "https://proxy.example:8443"})
    assert r.status_code == 200  # configured in allowed_origins
    job = same.json()
    assert wait_final(url, [job["id"]], headers=_auth())[job["id"]]["state"] == "succeeded"


def test_a_token_in_the_url_only_opens_the_event_stream_and_the_dashboard(tokened):
    url = tokened.url
    job = httpx.post(f"{url}/jobs", json={"graph": slow_graph()}, headers=_auth()).json()
    for path in ("/jobs", f"/jobs/{job['id']}", "/metrics", "/models", "/ui/api/overview",
                 f"/jobs/{job['id']}/graph.svg"):
        r = httpx.get(f"{url}{path}", params={"token": TOKEN})
        assert r.status_code == 401, path
        assert "Authorization" in r.json()["errors"][0]["message"]
    r = httpx.post(f"{url}/jobs/{job['id']}/cancel", params={"token": TOKEN})
    assert r.status_code == 401
    r = httpx.get(f"{url}/jobs/{job['id']}/events", params={"token": TOKEN, "format": "json"})
    assert r.status_code == 200
    assert httpx.get(f"{url}/jobs/{job['id']}/events", params={"token": "wrong"}).status_code == 401
    # the dashboard's first load: a redirect that drops the token and sets a session cookie
    first = httpx.get(f"{url}/", params={"token": TOKEN})
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    name, value = cookie.split(";")[0].split("=", 1)
    jar = {name: value}
    assert httpx.get(f"{url}/ui/api/overview", cookies=jar).status_code == 200
    assert httpx.get(f"{url}/", cookies=jar).status_code == 200
    # a cookie alone cannot change anything: a cross-site form would carry it but no own Origin
    r = httpx.post(f"{url}/jobs", json={"graph": slow_graph()}, cookies=jar)
    assert r.status_code == 401
    r = httpx.post(f"{url}/jobs", json={"graph": slow_graph()}, cookies=jar,
                   headers={"Origin": f"http://127.0.0.1:{_port(url)}"})
    assert r.status_code == 201
    assert httpx.get(f"{url}/ui/api/overview", cookies={name: "forged"}).status_code == 401
    assert httpx.get(f"{url}/", params={"token": "wrong"}).status_code == 401


def test_without_the_token_no_host_paths_are_shown(tokened):
    url = tokened.url
    authed = httpx.get(f"{url}/models", headers=_auth()).json()
    mine = next(m for m in authed if m["name"] == "mine")
    assert "secret-models" in str(mine)  # the operator sees where the file is
    # an unauthenticated client gets nothing at all ...
    assert httpx.get(f"{url}/models").status_code == 401
    assert httpx.get(f"{url}/metrics").status_code == 401


def test_without_a_token_configured_models_and_metrics_show_no_paths(tmp_path):
    model_dir = tmp_path / "operator-models"
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.toml").write_text(
        f'[[models]]\nname = "mine"\nsource = "{model_dir}/mine.safetensors"\n')
    d = make_daemon(state)
    d.start()
    try:
        models = httpx.get(f"{d.url}/models").json()
        assert any(m["name"] == "mine" for m in models)
        assert "operator-models" not in str(models) and str(tmp_path) not in str(models)
        metrics = httpx.get(f"{d.url}/metrics").json()
        assert str(tmp_path) not in str(metrics) and str(Path.home()) not in str(metrics)
        # the state directory and the store are private to the user
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for f in state.glob("jobs.db*"):
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
        job = httpx.post(f"{d.url}/jobs", json={"graph": slow_graph(name="private")}).json()
        assert wait_final(d.url, [job["id"]])[job["id"]]["state"] == "succeeded"
        written = [state / "outputs", *(state / "outputs").rglob("*")]
        assert len(written) >= 3  # outputs/, the job's folder, its PNG
        for path in written:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        d.terminate()


def _cli(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_TOKEN"}
    return subprocess.run([sys.executable, "-m", "orchestrator", "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=180,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def test_the_token_is_never_taken_on_a_command_line(tmp_path):
    out = _cli(tmp_path, "daemon", "start", "--port", "0", "--engine", "local", "--token", "sekrit")
    assert out.returncode == 2 and "never given on the command line" in out.stderr
    assert not (tmp_path / "daemon.json").exists()
    loose = tmp_path / "loose-token"
    loose.write_text("sekrit\n")
    loose.chmod(0o644)
    out = _cli(tmp_path, "daemon", "start", "--port", "0", "--engine", "local",
               "--token-file", str(loose))
    assert out.returncode != 0 and "readable by other users" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "daemon.json").exists()


def test_a_detached_daemon_has_no_token_in_its_command_line(tmp_path):
    env = {"ORCHESTRATOR_TOKEN": TOKEN}
    out = _cli(tmp_path, "daemon", "start", "--detach", "--port", "0", "--engine", "local", env=env)
    assert out.returncode == 0, out.stderr
    try:
        import json

        info = json.loads((tmp_path / "daemon.json").read_text())
        cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "daemon start" in cmdline and TOKEN not in cmdline
        assert httpx.get(f"{info['url']}/jobs").status_code == 401
        assert httpx.get(f"{info['url']}/jobs", headers=_auth()).status_code == 200
    finally:
        assert _cli(tmp_path, "daemon", "stop", env=env).returncode == 0


def test_an_idempotent_retry_gets_its_job_when_the_queue_is_full(tmp_path):
    d = make_daemon(tmp_path / "state", env={"ORCHESTRATOR_LIMITS__QUEUED": "2"})
    d.start()
    try:
        url = d.url
        blocker = httpx.post(f"{url}/jobs", json={"graph": slow_graph(steps=400, step_s=0.25)}).json()
        # wait until the blocker runs, so the two below stay queued behind it
        with httpx.Client(base_url=url, timeout=60) as c:
            with c.stream("GET", f"/jobs/{blocker['id']}/events") as events:
                for line in events.iter_lines():
                    if line == "event: running":
                        break
            bodies = [{"graph": slow_graph(value=v / 10)} for v in range(2)]
            queued = [c.post("/jobs", json=b, headers={"Idempotency-Key": f"k{i}"})
                      for i, b in enumerate(bodies)]
            assert [r.status_code for r in queued] == [201, 201]
            full = c.post("/jobs", json={"graph": slow_graph(value=0.9)})
            assert full.status_code == 429 and full.json()["errors"][0]["type"] == "queue_full"
            retry = c.post("/jobs", json=bodies[1], headers={"Idempotency-Key": "k1"})
            assert retry.status_code == 200 and retry.json()["id"] == queued[1].json()["id"]
            clash = c.post("/jobs", json=bodies[0], headers={"Idempotency-Key": "k1"})
            assert clash.status_code == 409
            c.post(f"/jobs/{blocker['id']}/cancel")
        ids = [blocker["id"], *(r.json()["id"] for r in queued)]
        final = wait_final(url, ids)
        assert [final[i]["state"] for i in ids] == ["cancelled", "succeeded", "succeeded"]
    finally:
        d.terminate()
