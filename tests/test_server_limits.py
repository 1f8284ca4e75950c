"""The HTTP server's connection limits on a real uvicorn on loopback: deadlines and the cap.

Every wait here is for an event (a closed socket, a response) with a generous timeout; the
deadlines themselves are short so that the tests are quick, never so that they are tight.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from orchestrator.server.connections import ConnectionGovernor, StreamSlots
from orchestrator.server.daemon import _Server

WAIT = 60.0  # seconds any expected event may take on a loaded machine


class App:
    """/health answers at once; /slow waits until released; POST /echo reads its body."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.slow_started = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b"ok"
        if scope["path"] == "/slow":
            self.slow_started += 1
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        elif scope["path"] == "/big":  # 64 MiB, more than any socket buffer holds
            chunk = b"z" * (1 << 20)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(64 * len(chunk)).encode())]})
            for _ in range(64):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        elif scope["path"] == "/echo":
            size = 0
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                size += len(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            body = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(governor: ConnectionGovernor, app: App | None = None) -> Iterator[tuple[int, App]]:
    app = app or App()
    config = uvicorn.Config(app, http=governor.protocol(), lifespan="off", log_level="warning",
                            timeout_keep_alive=30)
    server = _Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1], app
    finally:
        app.release.set()
        server.should_exit = True
        thread.join(WAIT)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    return s


def read_until_closed(s: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout``)."""
    s.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def test_a_slowloris_head_is_cut_off_with_408():
    gov = ConnectionGovernor(header_timeout_s=1.0, max_connections=16)
    with serving(gov) as (port, _app):
        s = connect(port)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = threading.Event()
        sent = 0

        def dribble() -> None:  # one header byte at a time, as slowloris does, until cut off
            nonlocal sent
            while not closed.is_set():
                try:
                    s.sendall(b"a")
                    sent += 1
                except OSError:
                    return
                time.sleep(0.1)

        threading.Thread(target=dribble, daemon=True).start()
        reply = read_until_closed(s)
        closed.set()
        assert reply.startswith(b"HTTP/1.1 408 ")
        body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert body["errors"][0]["type"] == "timeout" and sent > 0
        assert gov.counters.header_timeouts == 1
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=WAIT).status_code == 200


def test_a_silent_connection_is_closed_and_a_kept_alive_one_that_starts_dribbling_too():
    gov = ConnectionGovernor(header_timeout_s=1.0, max_connections=16)
    with serving(gov) as (port, _app):
        silent = connect(port)
        assert read_until_closed(silent).startswith(b"HTTP/1.1 408 ")
        kept = connect(port)
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.settimeout(WAIT)
        first = b""
        while not first.endswith(b"\r\n\r\nok"):  # the whole first response
            first += kept.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        kept.sendall(b"GET /health HTTP/1.1\r\nHo")  # the next request starts, then stalls
        assert read_until_closed(kept).startswith(b"HTTP/1.1 408 ")
        assert gov.counters.header_timeouts == 2


def test_a_body_that_does_not_arrive_is_cut_off():
    gov = ConnectionGovernor(header_timeout_s=30.0, body_timeout_s=1.0, max_connections=16)
    with serving(gov) as (port, _app):
        s = connect(port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        read_until_closed(s)
        assert gov.counters.body_timeouts == 1
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as c:
            assert c.post("/echo", content=b"y" * 100_000).text == "100000"  # a whole body is fine


def test_normal_keep_alive_traffic_is_untouched():
    gov = ConnectionGovernor(header_timeout_s=0.5, max_connections=16)
    with serving(gov) as (port, _app), httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                                     timeout=WAIT) as c:
        for _ in range(2):
            assert c.get("/health").status_code == 200
            time.sleep(1.0)  # idle longer than the head deadline: idle is not a slow head
        assert c.get("/health").status_code == 200
        deadline = time.monotonic() + WAIT  # the server marks it idle just after answering
        while gov.stats()["by_phase"]["idle"] != 1:
            assert time.monotonic() < deadline, gov.stats()
            time.sleep(0.01)
        assert gov.counters.header_timeouts == 0


def test_at_the_cap_the_longest_waiting_connection_makes_room():
    gov = ConnectionGovernor(header_timeout_s=600.0, max_connections=4)
    with serving(gov) as (port, _app):
        held = []
        for _ in range(4):
            s = connect(port)
            s.sendall(b"GET /health HTTP/1.1\r\n")  # a head that never ends
            held.append(s)
            deadline = time.monotonic() + WAIT
            while len(gov.connections) < len(held):  # accepted in this order
                assert time.monotonic() < deadline
                time.sleep(0.01)
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=WAIT)
        assert r.status_code == 200
        assert read_until_closed(held[0]).startswith(b"HTTP/1.1 503 ")  # the oldest went
        assert gov.counters.evicted >= 1 and len(gov.connections) <= 4
        for s in held[1:]:  # the others still wait (until their own deadline)
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
        assert gov.counters.header_timeouts == 0


def test_when_every_connection_is_busy_a_new_one_gets_503_and_nothing_in_flight_is_lost():
    gov = ConnectionGovernor(header_timeout_s=600.0, max_connections=4)
    with serving(gov) as (port, app):
        busy = []
        for _ in range(4):
            s = connect(port)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(s)
        deadline = time.monotonic() + WAIT
        while app.slow_started < 4:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        extra = connect(port)
        reply = read_until_closed(extra)
        assert reply.startswith(b"HTTP/1.1 503 ") and b"retry-after: 2" in reply.lower()
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["errors"][0]["type"] == "unavailable"
        app.release.set()
        for s in busy:
            s.settimeout(WAIT)
            reply = b""
            while not reply.endswith(b"ok"):
                chunk = s.recv(65536)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 ")
        assert gov.counters.refused == 1 and gov.counters.evicted == 0


def test_stream_slots_are_bounded_and_thread_safe():
    slots = StreamSlots(5)
    got = []

    def grab() -> None:
        for _ in range(100):
            got.append(slots.acquire())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 5 and slots.open == 5
    for _ in range(7):
        slots.release()
    assert slots.open == 0 and slots.acquire()


def test_settings_keep_streams_below_connections():
    from orchestrator.config import ConfigError, load_settings

    s = load_settings(config_file=None, env={"ORCHESTRATOR_SERVER__MAX_CONNECTIONS": "32",
                                             "ORCHESTRATOR_SERVER__HEADER_TIMEOUT_S": "2.5"})
    gov = ConnectionGovernor.from_settings(s.server)
    assert (gov.max_connections, gov.max_streams, gov.header_timeout_s) == (32, 8, 2.5)
    assert ConnectionGovernor.from_settings(load_settings(config_file=None, env={}).server).max_streams == 64
    with pytest.raises(ConfigError, match="max_streams"):
        load_settings(config_file=None, env={"ORCHESTRATOR_SERVER__MAX_STREAMS": "300"})
    for bad in ({"header_timeout_s": 0}, {"header_timeout_s": float("nan")}, {"max_connections": 1},
                {"body_timeout_s": -1}):
        with pytest.raises(ConfigError):
            load_settings(config_file=None, env={}, overrides={"server": bad})


def test_pipelined_requests_are_answered_in_order_and_leave_no_deadline_behind():
    gov = ConnectionGovernor(header_timeout_s=1.0, body_timeout_s=1.0, max_connections=16)
    with serving(gov) as (port, _app):
        s = connect(port)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(WAIT)
        got = b""
        while got.count(b"HTTP/1.1 200 ") < 3 or not got.endswith(b"ok"):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert got.split(b"\r\n\r\n")[2].startswith(b"3")  # the echo of 3 bytes, in order
        deadline = time.monotonic() + WAIT
        while gov.stats()["by_phase"]["idle"] != 1:
            assert time.monotonic() < deadline, gov.stats()
            time.sleep(0.01)
        time.sleep(1.5)  # past both deadlines: an idle connection is not timed out by them
        assert gov.counters.header_timeouts == gov.counters.body_timeouts == 0
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_client_that_stops_reading_is_cut_off():
    gov = ConnectionGovernor(send_timeout_s=1.0, max_connections=16)
    with serving(gov) as (port, _app):
        s = connect(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        deadline = time.monotonic() + WAIT
        while gov.counters.send_timeouts < 1:
            assert time.monotonic() < deadline, gov.stats()
            time.sleep(0.05)
        while gov.connections:  # it is gone from the count
            assert time.monotonic() < deadline, gov.stats()
            time.sleep(0.05)
        s.close()
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=WAIT).status_code == 200
