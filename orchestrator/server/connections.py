"""Connection limits of the HTTP server: header and body timeouts, a connection cap, a stream cap.

uvicorn (0.54, h11) closes idle keep-alive connections but has no timeout for a request that
is still arriving: a client that sends ``GET / HTTP/1.1`` and then one header byte a second
holds its connection for ever (slowloris), and ``limit_concurrency`` counts in-flight
requests, event streams included, so a few hundred idle sockets or streams would starve
the API. :class:`LimitedH11Protocol` adds, per connection:

- a deadline for the request head (``header_timeout_s`` from the connection's first byte
  opportunity, or from the first byte of a later request on a kept-alive connection; a
  connection that stays silent is closed as well) and for the body (``body_timeout_s``);
- a cap on open connections (``max_connections``): when it is reached, the connection that
  has waited longest for a request head, else the longest-idle kept-alive one, is closed to
  make room, as nginx drains reusable connections; a request in progress is never cut for
  room, and
  only when every connection is busy does the new one get ``503`` with ``Retry-After``;
- a deadline for a client that stops reading an answer (``send_timeout_s`` while the
  transport's buffer stays full): a slow reader cannot hold a connection for ever either.

:class:`StreamSlots` caps concurrent event streams (``max_streams``; the API answers 429
beyond). Together they keep ``/health`` and the rest of the API answering while sockets
and streams are held open. :class:`ConnectionGovernor` owns the settings and counters; the
daemon passes :meth:`ConnectionGovernor.protocol` as uvicorn's ``http=`` protocol class.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import h11
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD, BODY, BUSY, IDLE = "head", "body", "busy", "idle"  # where a connection's request is


@dataclass
class ServerCounters:
    """What the limits did since start (``/metrics`` shows them under ``server``)."""

    header_timeouts: int = 0
    body_timeouts: int = 0
    send_timeouts: int = 0  # clients that stopped reading an answer
    evicted: int = 0  # closed to make room: waiting for a head, or idle
    refused: int = 0  # 503: every connection was busy
    streams_refused: int = 0  # 429: max_streams event streams were open


def raw_response(status: int, reason: str, error_type: str, message: str,
                 retry_after: int | None = None) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with the API's error body."""
    body = json.dumps({"errors": [{"type": error_type, "message": message, "node": None,
                                   "field": None}]}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class StreamSlots:
    """A counter of open event streams, at most ``limit``; thread-safe.

    >>> s = StreamSlots(1); s.acquire(), s.acquire(), s.release(), s.acquire()
    (True, False, None, True)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


class SlotStreamingResponse(StreamingResponse):
    """A streaming response that holds one of ``slots`` and gives it back when it ends, however
    it ends (done, the client gone, the server stopping)."""

    def __init__(self, content: Any, slots: StreamSlots, **kw: Any) -> None:
        super().__init__(content, **kw)
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.release()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:  # end the generator now, not when it is collected
                await close()


@dataclass
class ConnectionGovernor:
    """The limits of one server, its counters, and the uvicorn protocol class that applies them."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    send_timeout_s: float = 60.0
    max_connections: int = 256
    max_streams: int = 64
    counters: ServerCounters = field(default_factory=ServerCounters)
    connections: set[LimitedH11Protocol] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.streams = StreamSlots(self.max_streams)

    @classmethod
    def from_settings(cls, server: Any) -> ConnectionGovernor:
        """From ``settings.server`` (:class:`~orchestrator.config.ServerSettings`)."""
        return cls(header_timeout_s=server.header_timeout_s, body_timeout_s=server.body_timeout_s,
                   send_timeout_s=server.send_timeout_s,
                   max_connections=server.max_connections, max_streams=server.effective_max_streams)

    def protocol(self) -> type[LimitedH11Protocol]:
        """A protocol class bound to this governor, for ``uvicorn.Config(http=...)``."""
        return type("GovernedH11Protocol", (LimitedH11Protocol,), {"governor": self})

    def stats(self) -> dict[str, Any]:
        phases = {HEAD: 0, BODY: 0, BUSY: 0, IDLE: 0}
        for conn in list(self.connections):
            phases[conn.phase] = phases.get(conn.phase, 0) + 1
        return {"connections": len(self.connections), "by_phase": phases,
                "max_connections": self.max_connections, "streams": self.streams.open,
                "max_streams": self.max_streams, "header_timeout_s": self.header_timeout_s,
                "body_timeout_s": self.body_timeout_s, "send_timeout_s": self.send_timeout_s,
                **self.counters.__dict__}

    def make_room(self, newcomer: LimitedH11Protocol) -> bool:
        """Close one reusable connection for ``newcomer`` when the cap is reached; False if none."""
        if len(self.connections) <= self.max_connections:
            return True
        reusable = [c for c in self.connections
                    if c is not newcomer and c.phase in (HEAD, IDLE) and not c.transport.is_closing()]
        if not reusable:
            return False
        # the one waiting longest for a head first (slowest, likeliest hostile), then the longest idle
        victim = min(reusable, key=lambda c: (c.phase != HEAD, c.since))
        victim.evict()
        self.counters.evicted += 1
        return True


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with request deadlines and the governor's connection cap."""

    governor: ConnectionGovernor  # set on the subclass that ConnectionGovernor.protocol() makes

    phase = HEAD
    since = 0.0
    _deadline: asyncio.TimerHandle | None = None
    _stall: asyncio.TimerHandle | None = None  # armed while the client does not read our answer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        gov = self.governor
        gov.connections.add(self)
        self._enter(HEAD, gov.header_timeout_s)
        if not gov.make_room(self):
            gov.counters.refused += 1
            self._close_with(raw_response(503, "Service Unavailable", "unavailable",
                                          f"{gov.max_connections} connections are busy; try again",
                                          retry_after=2))

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unstall()
        self.governor.connections.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == IDLE:  # a kept-alive connection starts its next request
            self._enter(HEAD, self.governor.header_timeout_s)
        super().data_received(data)
        self._follow_request()

    def pause_writing(self) -> None:
        """The client's receive window is full: it must read within ``send_timeout_s``."""
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.governor.send_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        self._unstall()
        super().resume_writing()

    def _unstall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        if not self.transport.is_closing():
            self.governor.counters.send_timeouts += 1
            self.transport.abort()  # what is buffered for a reader that is not there is dropped

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()  # the WebSocket protocol takes the connection over
        self.governor.connections.discard(self)
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            self._disarm()
            return
        if self.conn.their_state is h11.IDLE:
            pending = bool(self.conn.trailing_data[0])  # part of a pipelined head is buffered
            if pending:
                self._enter(HEAD, self.governor.header_timeout_s)
            else:
                self._disarm()
                self.phase, self.since = IDLE, self.loop.time()
        else:  # a pipelined request was taken up at once: its head is in, its body may not be
            self.phase = HEAD
            self._follow_request()

    # -- internals -------------------------------------------------------------------------

    def _follow_request(self) -> None:
        """Move on from HEAD/BODY as h11 reports the head, then the whole request, received."""
        state = self.conn.their_state
        if self.phase == HEAD and state is h11.SEND_BODY:
            self._enter(BODY, self.governor.body_timeout_s)
        elif self.phase in (HEAD, BODY) and state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._disarm()
            self.phase, self.since = BUSY, self.loop.time()
        elif state is h11.ERROR:
            self._disarm()

    def _enter(self, phase: str, timeout: float) -> None:
        self._disarm()
        self.phase, self.since = phase, self.loop.time()
        self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.phase != phase:
            return
        if phase == HEAD:
            self.governor.counters.header_timeouts += 1
            self._close_with(raw_response(408, "Request Timeout", "timeout",
                                          f"the request head did not arrive within "
                                          f"{self.governor.header_timeout_s:g} s"))
        else:  # the app may be reading the body: it sees a disconnect
            self.governor.counters.body_timeouts += 1
            self.transport.close()

    def evict(self) -> None:
        """Close this reusable connection to make room (a 503 when it had started a request)."""
        if self.phase == HEAD and self.conn.trailing_data[0]:
            self._close_with(raw_response(503, "Service Unavailable", "unavailable",
                                          "the server is at its connection limit", retry_after=1))
        else:
            self._disarm()
            self.transport.close()
        self.governor.connections.discard(self)

    def _close_with(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
        self.governor.connections.discard(self)
