"""Request guards for the HTTP API, as one ASGI middleware.

Checked in this order, before a route runs or a body is read:

1. ``Host`` must name this daemon (loopback names, the bind address, ``allowed_hosts``):
   a DNS-rebinding page cannot talk to it through a name it controls.
2. ``Origin``, when a browser sends one, must be this daemon's own origin: no
   cross-site requests from other pages.
3. With a token configured, ``Authorization: Bearer <token>`` (or ``?token=`` for
   ``EventSource``, which cannot set headers) must match, compared in constant time.
4. The body may not exceed ``limits.request_bytes``: a ``Content-Length`` over it is
   refused at once, and a chunked body is cut off the moment it passes the limit.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
OPEN_PATHS = {"/health"}  # answered without a token (no job data)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.index("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware applying the checks above to every HTTP request."""

    def __init__(self, app: ASGIApp, *, bind_host: str, token: str | None,
                 allowed_hosts: list[str], max_body: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.hosts = set(LOOPBACK_NAMES) | {bind_host.lower()} | {h.lower() for h in allowed_hosts}
        if bind_host in ("0.0.0.0", "::"):
            self.hosts.discard(bind_host)  # a wildcard bind is not a name: use allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _split_host(headers.get("host", ""))
        if host not in self.hosts:
            await _reject(send, 421, "host", f"Host {headers.get('host', '')!r} is not this daemon")
            return
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            o = urlsplit(origin)
            if (o.hostname or "").lower() not in self.hosts:
                await _reject(send, 403, "origin", f"cross-origin request from {origin!r} refused")
                return
        elif origin == "null":
            await _reject(send, 403, "origin", "requests from an opaque origin are refused")
            return
        if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorised(
                headers, scope):
            await _reject(send, 401, "auth", "missing or wrong token",
                          extra_headers=[(b"www-authenticate", b"Bearer")])
            return
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await _reject(send, 400, "request", "bad Content-Length")
                return
            if too_big:
                await _reject(send, 413, "request_too_large",
                              f"request body of {length} bytes is over the {self.max_body}-byte limit")
                return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused, started
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    refused = True
                    if not started:
                        started = True
                        await _reject(send, 413, "request_too_large",
                                      f"request body is over the {self.max_body}-byte limit")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 already went out; drop what the app says after it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    def _authorised(self, headers: dict[str, str], scope: Scope) -> bool:
        assert self.token is not None
        auth = headers.get("authorization", "")
        supplied = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not supplied:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            supplied = (query.get("token") or [""])[0]
        return hmac.compare_digest(supplied.encode(), self.token)


async def _reject(send: Send, status: int, type_: str, message: str,
                  extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"errors": [{"type": type_, "message": message, "node": None,
                                   "field": None}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *(extra_headers or [])]})
    await send({"type": "http.response.body", "body": body})
