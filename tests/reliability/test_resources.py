"""Bounded resources against real daemons on loopback: connections, streams, retention, caches.

A local client that holds sockets open, dribbles headers or opens event streams cannot stop
``/health`` or the API from answering; finished jobs are pruned by count, age and disk budget
(automatically, through ``POST /jobs/prune`` and through the CLI) and nothing queued or
running is lost; the result cache stays within its byte budget. Every wait is for an event
with a generous timeout, never a tight wall-clock margin.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from kit import make_daemon, slow_graph, submit_many, wait_final

WAIT = 120.0
ERROR_KEYS = {"type", "message", "node", "field"}
MAX_CONNECTIONS = 10
MAX_STREAMS = 3


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def errors_of(resp: httpx.Response) -> list[dict]:
    body = resp.json()
    assert set(body) == {"errors"}, body
    assert body["errors"] and all(ERROR_KEYS <= set(e) for e in body["errors"]), body
    return body["errors"]


def wait_for(what, timeout: float = WAIT, every: float = 0.1):
    """``what()`` once truthy (its value); ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s: {what}")
        time.sleep(every)


LONG_JOBS: list[tuple[str, str]] = []


def submit_long(url: str, **body) -> str:
    """A job of about 100 s (500 steps of 0.2 s); cancelled after the test whatever happens."""
    job_id = httpx.post(f"{url}/jobs", json={"graph": slow_graph(steps=500, step_s=0.2), **body},
                        timeout=WAIT).json()["id"]
    LONG_JOBS.append((url, job_id))
    return job_id


@pytest.fixture(autouse=True)
def _cancel_long_jobs():
    yield
    while LONG_JOBS:  # a failed test must not leave the next ones queued behind its long job
        url, job_id = LONG_JOBS.pop()
        try:
            httpx.post(f"{url}/jobs/{job_id}/cancel", timeout=WAIT)
        except httpx.HTTPError:
            pass


def metrics(url: str) -> dict:
    return httpx.get(f"{url}/metrics", timeout=WAIT).json()


def head_only(port: int) -> socket.socket:
    """A slowloris socket: a request line and part of a header, then nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return s


def open_stream(port: int, job_id: str) -> tuple[socket.socket, bytes]:
    """An event stream on a raw socket: the socket and the response head."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.sendall(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server has closed ``s`` (what it sent before is read and dropped)."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A daemon with small connection and stream caps (and heads that may wait for long)."""
    d = make_daemon(tmp_path_factory.mktemp("limited") / "state", env={
        "ORCHESTRATOR_SERVER__HEADER_TIMEOUT_S": "600",
        "ORCHESTRATOR_SERVER__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "ORCHESTRATOR_SERVER__MAX_STREAMS": str(MAX_STREAMS)}).start()
    yield d
    d.kill()


@pytest.fixture(scope="module")
def pruning(tmp_path_factory):
    """A daemon that keeps few jobs and little output, with a short header deadline."""
    d = make_daemon(tmp_path_factory.mktemp("pruning") / "state", env={
        "ORCHESTRATOR_SERVER__HEADER_TIMEOUT_S": "2",
        "ORCHESTRATOR_RETENTION__MAX_JOBS": "5",
        "ORCHESTRATOR_RETENTION__KEEP_LATEST": "1",
        "ORCHESTRATOR_RETENTION__MAX_OUTPUT_BYTES": "1200"}).start()
    yield d
    d.kill()


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    """A daemon that prunes only when asked, with a 1 MiB result cache and 10 step events a job."""
    d = make_daemon(tmp_path_factory.mktemp("manual") / "state", env={
        "ORCHESTRATOR_RETENTION__AUTO": "false", "ORCHESTRATOR_RETENTION__MAX_PROGRESS_EVENTS": "10",
        "ORCHESTRATOR_CACHE__MAX_BYTES": str(1 << 20)}).start()
    yield d
    d.kill()


def final_or_pruned(url: str, ids: list[str]) -> dict[str, str]:
    """Each job's final state, or "pruned" (only finished jobs are ever pruned)."""
    def check() -> dict[str, str] | None:
        out = {}
        with httpx.Client(base_url=url, timeout=WAIT) as c:
            for job_id in ids:
                r = c.get(f"/jobs/{job_id}")
                if r.status_code == 404:
                    out[job_id] = "pruned"
                elif r.json()["state"] in ("succeeded", "failed", "cancelled"):
                    out[job_id] = r.json()["state"]
                else:
                    return None
        return out

    return wait_for(check, every=0.5)


def test_health_answers_while_slowloris_sockets_and_streams_fill_the_daemon(limited):
    url, port = limited.url, port_of(limited.url)
    with httpx.Client(base_url=url, timeout=WAIT) as c:
        long_job = submit_long(url)
        streams = []
        for _ in range(MAX_STREAMS):
            s, head = open_stream(port, long_job)
            assert head.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in head
            streams.append(s)
        r = c.get(f"/jobs/{long_job}/events")  # one stream too many
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert errors_of(r)[0]["type"] == "too_many_streams"
        assert c.get(f"/jobs/{long_job}/events", params={"format": "json"}).status_code == 200
    slow = [head_only(port) for _ in range(MAX_CONNECTIONS - MAX_STREAMS)]

    # the daemon is full: /health still answers (an idle head makes room), and so does the API
    t0 = time.monotonic()
    assert httpx.get(f"{url}/health", timeout=WAIT).json()["ok"] is True
    assert time.monotonic() - t0 < WAIT
    done = httpx.post(f"{url}/jobs", json={"graph": slow_graph(name="during")}, timeout=WAIT)
    assert done.status_code == 201

    more = [head_only(port) for _ in range(3)]  # each extra connection closes an older head
    m = metrics(url)["server"]
    assert m["connections"] <= MAX_CONNECTIONS and m["evicted"] >= 3 and m["streams"] == MAX_STREAMS
    assert wait_for(lambda: all(closed_by_server(s) for s in slow[:3]))  # the oldest heads went first
    assert not any(closed_by_server(s) for s in more)  # the newest still wait
    assert not any(closed_by_server(s) for s in streams)  # streams in progress are never cut

    # the streams' clients go away: their slots come back, a new stream opens
    for s in streams:
        s.close()
    wait_for(lambda: metrics(url)["server"]["streams"] == 0)
    s, head = open_stream(port, long_job)
    assert head.startswith(b"HTTP/1.1 200 ")
    s.close()
    for s in slow + more:
        s.close()

    # nothing accepted was lost: the long job is cancelled, the one submitted meanwhile runs
    httpx.post(f"{url}/jobs/{long_job}/cancel", timeout=WAIT)
    final = wait_final(url, [long_job, done.json()["id"]])
    assert final[long_job]["state"] == "cancelled"
    assert final[done.json()["id"]]["state"] == "succeeded"
    assert httpx.get(f"{url}/health", timeout=WAIT).status_code == 200


def test_many_stream_attempts_never_exceed_the_cap(limited):
    url, port = limited.url, port_of(limited.url)
    job = submit_long(url)
    results: list[bytes] = []
    lock = threading.Lock()
    held: list[socket.socket] = []

    def attempt() -> None:
        s, head = open_stream(port, job)
        with lock:
            results.append(head.split(b"\r\n", 1)[0])
            held.append(s)

    threads = [threading.Thread(target=attempt) for _ in range(MAX_STREAMS + 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    ok = [r for r in results if r.startswith(b"HTTP/1.1 200")]
    refused = [r for r in results if r.startswith(b"HTTP/1.1 429")]
    assert len(ok) == MAX_STREAMS and len(refused) == 5, results
    assert metrics(url)["server"]["streams"] == MAX_STREAMS
    for s in held:
        s.close()
    wait_for(lambda: metrics(url)["server"]["streams"] == 0)
    httpx.post(f"{url}/jobs/{job}/cancel", timeout=WAIT)
    wait_final(url, [job])


def test_the_client_follows_a_job_by_polling_when_every_stream_is_taken(limited):
    from orchestrator.client import Client

    url, port = limited.url, port_of(limited.url)
    running = submit_long(url)
    queued = submit_long(url)  # waits behind it: its streams stay open
    held = [open_stream(port, queued) for _ in range(MAX_STREAMS)]
    assert all(head.startswith(b"HTTP/1.1 200 ") for _s, head in held)
    seen: list[dict] = []
    refused = metrics(url)["server"]["streams_refused"]

    def follow() -> None:
        with Client(url) as client:
            seen.extend(client.job(running).events())

    follower = threading.Thread(target=follow)
    follower.start()
    wait_for(lambda: metrics(url)["server"]["streams_refused"] > refused)  # refused a stream ...
    httpx.post(f"{url}/jobs/{running}/cancel", timeout=WAIT)
    follower.join(WAIT)
    assert not follower.is_alive()
    assert seen[-1]["event"] == "done" and seen[-1]["state"] == "cancelled"  # ... and polled instead
    assert [e["id"] for e in seen] == sorted({e["id"] for e in seen})
    for s, _head in held:
        s.close()


def test_a_slowloris_socket_is_closed_and_the_daemon_keeps_answering(pruning):
    port = port_of(pruning.url)
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.sendall(b"GET / HTTP/1.1\r\n")
    stop = threading.Event()

    def dribble() -> None:  # one header byte a second, as the brief's slowloris does
        while not stop.is_set():
            try:
                s.sendall(b"X")
            except OSError:
                return
            stop.wait(1.0)

    threading.Thread(target=dribble, daemon=True).start()
    try:
        assert httpx.get(f"{pruning.url}/health", timeout=WAIT).status_code == 200
        s.settimeout(WAIT)
        reply = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["errors"][0]["type"] == "timeout"
    finally:
        stop.set()
        s.close()
    assert metrics(pruning.url)["server"]["header_timeouts"] >= 1


def _outputs_bytes(state: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(state / "outputs"):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def test_automatic_pruning_bounds_jobs_and_disk_and_keeps_active_jobs(pruning):
    url = pruning.url
    bodies = [{"graph": slow_graph(value=i / 40, name=f"img{i}"), "priority": 1} for i in range(12)]
    ids = [r.json()["id"] for r in asyncio.run(submit_many(url, bodies))]
    assert len(ids) == 12
    # queued behind them (then running): an active job that no pruning may touch
    long_job = submit_long(url, priority=-10)
    states = final_or_pruned(url, ids)
    assert set(states.values()) <= {"succeeded", "pruned"}, states

    def bounded() -> bool:
        listed = httpx.get(f"{url}/jobs", params={"limit": 500}, timeout=WAIT).json()["jobs"]
        finished = [j for j in listed if j["state"] == "succeeded"]
        return len(listed) <= 5 and _outputs_bytes(pruning.state) <= 1200 and bool(finished)

    wait_for(bounded)  # pruned after the jobs finished, without any request
    listed = httpx.get(f"{url}/jobs", params={"limit": 500}, timeout=WAIT).json()["jobs"]
    assert long_job in {j["id"] for j in listed}  # running: never pruned
    for j in listed:  # what is listed is whole: every output a listing names can be fetched
        info = httpx.get(f"{url}/jobs/{j['id']}", timeout=WAIT)
        assert info.status_code == 200
        for out in info.json()["outputs"]:
            assert httpx.get(f"{url}{out['url']}", timeout=WAIT).status_code == 200
    gone = [i for i in ids if i not in {j["id"] for j in listed}]
    assert gone and httpx.get(f"{url}/jobs/{gone[0]}", timeout=WAIT).status_code == 404
    assert httpx.get(f"{url}/jobs/{gone[0]}/outputs/img0", timeout=WAIT).status_code == 404
    assert httpx.get(f"{url}/jobs/{gone[0]}/events", params={"format": "json"},
                     timeout=WAIT).status_code == 404
    assert not (pruning.state / "outputs" / gone[0]).exists()
    m = metrics(url)["retention"]
    assert m["pruned"] >= 8 and m["max_jobs"] == 5
    httpx.post(f"{url}/jobs/{long_job}/cancel", timeout=WAIT)
    assert wait_final(url, [long_job])[long_job]["state"] == "cancelled"


def test_the_prune_route_and_the_cli_with_the_daemon_running(manual, monkeypatch, capsys):
    url = manual.url
    ids = [httpx.post(f"{url}/jobs", json={"graph": slow_graph(value=0.9, name=f"p{i}")},
                      timeout=WAIT).json()["id"] for i in range(3)]
    wait_final(url, ids, timeout=WAIT)
    running = submit_long(url)
    state = manual.state
    wait_for(lambda: httpx.get(f"{url}/jobs/{running}", timeout=WAIT).json()["state"] == "running")
    before = {j["id"] for j in httpx.get(f"{url}/jobs", params={"limit": 500}).json()["jobs"]}
    # without a token nobody can prove to be the operator: only the configured policy runs
    narrow = httpx.post(f"{url}/jobs/prune", json={"dry_run": True, "max_jobs": 0, "keep_latest": 0},
                        timeout=WAIT)
    assert narrow.status_code == 403 and narrow.json()["errors"][0]["type"] == "auth"
    dry = httpx.post(f"{url}/jobs/prune", json={"dry_run": True}, timeout=WAIT)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and running not in dry.json()["jobs"]
    assert {j["id"] for j in httpx.get(f"{url}/jobs", params={"limit": 500}).json()["jobs"]} == before

    from orchestrator.cli.main import main

    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(state))  # the CLI finds the daemon there
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    assert main(["jobs", "prune", "--older-than", "0s", "--keep", "1", "--json"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["dry_run"] is False and set(ids[:2]) <= set(report["jobs"])
    listed = {j["id"] for j in httpx.get(f"{url}/jobs", params={"limit": 500}).json()["jobs"]}
    assert listed == {running, ids[2]}  # the running job and the newest finished one stay
    # the CLI, run by the state directory's owner, pruned it directly beside the running daemon
    assert report["kept_jobs"] == 2
    assert (state / "outputs" / ids[2]).is_dir() and not (state / "outputs" / ids[0]).exists()
    httpx.post(f"{url}/jobs/{running}/cancel", timeout=WAIT)
    assert wait_final(url, [running])[running]["state"] == "cancelled"


def test_a_long_job_keeps_a_bounded_number_of_step_events(manual):
    url = manual.url
    job = httpx.post(f"{url}/jobs", json={"graph": slow_graph(steps=120, step_s=0.05)},
                     timeout=WAIT).json()["id"]
    assert wait_final(url, [job])[job]["state"] == "succeeded"
    events = httpx.get(f"{url}/jobs/{job}/events", params={"format": "json"},
                       timeout=WAIT).json()["events"]
    steps = [e for e in events if e["event"] == "step"]
    assert 1 <= len(steps) <= 12 and steps[-1]["step"] == 120  # the newest, the last step included
    kinds = [e["event"] for e in events if e["event"] != "step"]
    assert kinds[0] == "queued" and kinds[-1] == "done" and "node_started" in kinds
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    s, head = open_stream(port_of(url), job)  # a stream of the finished job replays and ends
    assert head.startswith(b"HTTP/1.1 200 ")
    rest = head.partition(b"\r\n\r\n")[2]  # the events may come in the same read as the head
    s.settimeout(WAIT)
    while b"event: done" not in rest:
        chunk = s.recv(65536)
        assert chunk, rest
        rest += chunk
    s.close()


HOSTILE_PRUNE_BODIES = [
    (b'{"older_than_s": -1}', "negative age"),
    (b'{"older_than_s": NaN}', "NaN"),
    (b'{"older_than_s": Infinity}', "Infinity"),
    (b'{"older_than_s": 1e999}', "overflowing float"),
    (b'{"max_jobs": 99999999999999999999999999}', "huge int"),
    (b'{"max_jobs": -5}', "negative count"),
    (b'{"max_jobs": "5"}', "count as a string"),
    (b'{"max_jobs": 1.5}', "count as a float"),
    (b'{"max_output_bytes": -1}', "negative budget"),
    (b'{"keep_latest": -1}', "negative keep"),
    (b'{"dry_run": "no"}', "bool as a string"),
    (b'{"older_than_s": "7d"}', "age as a string"),
    (b'{"path": "/etc"}', "an extra field"),
    (b'[]', "an array body"),
    (b'"prune"', "a string body"),
    (b"{not json", "not JSON"),
    (b'{"max_jobs": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deep nesting"),
    (b'{"max_jobs": \xff\xfe}', "bad UTF-8"),
]


@pytest.mark.parametrize(("body", "kind"), HOSTILE_PRUNE_BODIES, ids=[k for _b, k in HOSTILE_PRUNE_BODIES])
def test_hostile_prune_requests_are_refused_and_remove_nothing(manual, body, kind):
    url = manual.url
    before = {j["id"] for j in httpx.get(f"{url}/jobs", params={"limit": 500}).json()["jobs"]}
    r = httpx.post(f"{url}/jobs/prune", content=body,
                   headers={"Content-Type": "application/json"}, timeout=WAIT)
    assert 400 <= r.status_code < 500, (kind, r.status_code, r.text[:300])
    errors = errors_of(r)
    assert str(manual.state) not in json.dumps(errors)  # nothing about the disk
    after = {j["id"] for j in httpx.get(f"{url}/jobs", params={"limit": 500}).json()["jobs"]}
    assert after == before


def test_the_result_cache_stays_within_its_byte_budget(manual):
    """Outputs of ~0.75 MiB and ~3 MiB through a 1 MiB cache, seen in /metrics."""
    url = manual.url

    def graph(size: int, value: float) -> dict:
        return {"nodes": {
            "solid": {"block": "image.solid", "params": {"width": size, "height": size,
                                                          "color": [value, 0.5, 0.5]}},
            "gray": {"block": "image.grayscale", "inputs": {"image": "solid.image"}}}}

    jobs = [graph(256, 0.1), graph(256, 0.2), graph(512, 0.3), graph(256, 0.1), graph(512, 0.3)]
    ids = [httpx.post(f"{url}/jobs", json={"graph": g}, timeout=WAIT).json()["id"] for g in jobs]
    final = wait_final(url, ids)
    assert all(final[i]["state"] == "succeeded" for i in ids)
    cache = metrics(url)["engine"]["cache"]
    assert cache["max_bytes"] == 1 << 20 and 0 < cache["bytes"] <= cache["max_bytes"]
    assert cache["refused"] >= 2  # a 3 MiB image never fits: not cached, still correct
    assert cache["evictions"] >= 1


@pytest.mark.slow
def test_the_ray_engine_has_the_same_bounds(tmp_path):
    """Cache bytes, automatic pruning and the stream cap with jobs on Ray worker actors."""
    d = make_daemon(tmp_path / "state", "--engine", "ray", "--workers", "1", env={
        "ORCHESTRATOR_CACHE__MAX_BYTES": str(1 << 20), "ORCHESTRATOR_RETENTION__MAX_JOBS": "3",
        "ORCHESTRATOR_RETENTION__KEEP_LATEST": "1", "ORCHESTRATOR_SERVER__MAX_STREAMS": "2"})
    d.start(timeout=300)
    try:
        url, port = d.url, port_of(d.url)

        def graph(size: int, value: float) -> dict:
            return {"nodes": {
                "solid": {"block": "image.solid", "params": {"width": size, "height": size,
                                                              "color": [value, 0.5, 0.5]}},
                "gray": {"block": "image.grayscale", "inputs": {"image": "solid.image"}},
                "save": {"block": "image.save", "inputs": {"image": "gray.image"},
                         "params": {"name": f"g{size}"}}}}

        ids = [httpx.post(f"{url}/jobs", json={"graph": graph(size, v)}, timeout=WAIT).json()["id"]
               for size, v in ((256, 0.1), (512, 0.2), (256, 0.3), (512, 0.2), (256, 0.1))]
        states = final_or_pruned(url, ids)
        assert set(states.values()) <= {"succeeded", "pruned"}, states
        cache = metrics(url)["engine"]["cache"]
        assert cache["max_bytes"] == 1 << 20 and cache["bytes"] <= cache["max_bytes"]
        assert cache["refused"] >= 2  # the 3 MiB images never fit
        wait_for(lambda: len(httpx.get(f"{url}/jobs", timeout=WAIT).json()["jobs"]) <= 3)
        job = submit_long(url)
        held = [open_stream(port, job) for _ in range(2)]
        assert all(head.startswith(b"HTTP/1.1 200 ") for _s, head in held)
        assert httpx.get(f"{url}/jobs/{job}/events", timeout=WAIT).status_code == 429
        assert httpx.get(f"{url}/health", timeout=WAIT).status_code == 200
        for s, _head in held:
            s.close()
        wait_for(lambda: metrics(url)["server"]["streams"] == 0)
    finally:
        try:
            d.terminate()  # a clean stop shuts its Ray down too
        except subprocess.TimeoutExpired:
            d.kill()


@pytest.mark.slow
def test_a_prune_cut_short_by_a_crash_is_finished_by_the_next_daemon(tmp_path):
    """Rows deleted, folders left behind (a kill -9 between the two): the restarted daemon's
    first automatic prune removes those folders; nothing listed ever points at a missing file."""
    import sqlite3

    d = make_daemon(tmp_path / "state").start()
    ids = [httpx.post(f"{d.url}/jobs", json={"graph": slow_graph(value=0.1 * i, name=f"c{i}")},
                      timeout=WAIT).json()["id"] for i in range(4)]
    wait_final(d.url, ids)
    d.kill()
    outputs = d.state / "outputs"
    assert all((outputs / i / f"c{n}.png").is_file() for n, i in enumerate(ids))
    db = sqlite3.connect(d.state / "jobs.db")  # what the prune's committed transaction does
    with db:
        for table, col in (("events", "job_id"), ("outputs", "job_id"), ("jobs", "id")):
            db.execute(f"DELETE FROM {table} WHERE {col} IN (?, ?)", ids[:2])
    db.close()
    (outputs / ids[2] / "c2.png").unlink()  # and a file gone behind the daemon's back
    d.start()
    try:
        wait_for(lambda: not (outputs / ids[0]).exists() and not (outputs / ids[1]).exists())
        assert metrics(d.url)["retention"]["runs"] >= 1
        listed = {j["id"] for j in httpx.get(f"{d.url}/jobs", timeout=WAIT).json()["jobs"]}
        assert listed == set(ids[2:])
        assert httpx.get(f"{d.url}/jobs/{ids[2]}/outputs/c2", timeout=WAIT).status_code == 404
        assert httpx.get(f"{d.url}/jobs/{ids[3]}/outputs/c3", timeout=WAIT).status_code == 200
        assert httpx.get(f"{d.url}/jobs/{ids[0]}/outputs/c0", timeout=WAIT).status_code == 404
    finally:
        d.kill()
