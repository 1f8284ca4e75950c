"""Request guards for the HTTP API, as one ASGI middleware.

Checked in this order, before a route runs or a body is read:

1. ``Host`` must name this daemon (loopback names, the bind address, ``allowed_hosts``):
   a DNS-rebinding page cannot talk to it through a name it controls.
2. ``Origin``, when a browser sends one, must be this daemon's own origin, scheme, host and
   port alike (or one of ``allowed_origins``): no cross-site requests from other pages, nor
   from another server on the same host.
3. With a token configured, ``Authorization: Bearer <token>`` must match, compared in
   constant time. Where a browser cannot send a header, ``?token=`` is accepted on two
   routes only: the event stream (``EventSource``) and the dashboard's first load, which
   answers with a redirect that drops the token from the address and sets an ``HttpOnly``,
   ``SameSite=Strict`` session cookie (derived from the token, not the token) for the
   page's own requests. A cookie-authenticated request that changes something must carry
   the daemon's own ``Origin``.
4. WebSocket handshakes (ComfyUI's ``/ws``, ``/api/ws``, ``/comfy/ws``) get the same Host,
   Origin and token checks: a browser's socket cannot set a header, so it authenticates with
   the session cookie (which then requires the daemon's own ``Origin``, against cross-site
   socket hijacking) or ``?token=`` (accepted on these paths as on the event stream); other
   clients send the ``Authorization`` header. A refused handshake gets the HTTP error answer
   where the server supports ASGI's denial response (uvicorn does), else a close (1008).
   ``/comfy/?token=`` (the ComfyUI editor's first load) trades the token for the cookie as
   ``/?token=`` does.
5. The body may not exceed ``limits.request_bytes`` (``POST /inputs``: its own larger
   limit, from ``app.state.body_limits``): a ``Content-Length`` over it is refused at
   once, and a chunked body is cut off the moment it passes the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.protocol import COMFY_WEBSOCKETS, EDITOR

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
OPEN_PATHS = {"/health"}  # answered without a token (no job data)
DASHBOARD_PATH = "/"
LOGIN_PATHS = {DASHBOARD_PATH, EDITOR}  # first loads that trade ?token= for the session cookie
QUERY_TOKEN_PATHS = re.compile(r"^/jobs/[^/]+/events$")  # EventSource cannot set a header
WEBSOCKET_PATHS = set(COMFY_WEBSOCKETS)  # a browser's WebSocket cannot set a header either
WS_SCHEMES = {"ws": "http", "wss": "https"}
SESSION_COOKIE = "orchestrator_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
DEFAULT_PORTS = {"http": 80, "https": 443}


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


def _origin_tuple(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    scheme = scheme.lower()
    return scheme, host.lower().strip("[]"), port if port is not None else DEFAULT_PORTS.get(scheme, 0)


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` value (default ports filled in); None if malformed.

    >>> parse_origin("http://localhost:8188"), parse_origin("https://Example.org")
    (('http', 'localhost', 8188), ('https', 'example.org', 443))
    >>> parse_origin("http://a:99999") is None, parse_origin("javascript:x") is None
    (True, True)
    """
    try:
        o = urlsplit(value.strip())
        port = o.port
    except ValueError:
        return None
    if o.scheme.lower() not in DEFAULT_PORTS or not o.hostname or o.path not in ("", "/") \
            or o.query or o.fragment or o.username is not None:
        return None
    return _origin_tuple(o.scheme, o.hostname, port)


def _port_of(host_header: str) -> int | None:
    """The port of a ``Host`` value (None when it names none, or a malformed one)."""
    value = host_header.strip()
    text = value.rsplit("]", 1)[-1].lstrip(":") if value.startswith("[") \
        else (value.rsplit(":", 1)[1] if value.count(":") == 1 else "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else None


def cookie_name(host_header: str) -> str:
    """The session cookie's name: one per port, since browsers share cookies across ports."""
    return f"{SESSION_COOKIE}_{_port_of(host_header) or 0}"


def session_value(token: bytes) -> str:
    """The dashboard's session cookie for ``token``: derived from it, never the token itself."""
    return hmac.new(token, b"orchestrator dashboard session", hashlib.sha256).hexdigest()


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out.setdefault(name, value)
    return out


class Guard:
    """ASGI middleware applying the checks above to every HTTP request."""

    def __init__(self, app: ASGIApp, *, bind_host: str, token: str | None,
                 allowed_hosts: list[str], max_body: int,
                 allowed_origins: list[str] | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.session = session_value(self.token) if self.token else None
        self.max_body = max_body
        # larger bodies for a few POST routes (``app.state.body_limits``: path -> bytes; uploads)
        self.body_limits: dict[str, int] = dict(getattr(getattr(app, "state", None), "body_limits",
                                                        None) or {})
        self.origins = {o for o in (parse_origin(v) for v in allowed_origins or []) if o}
        self.hosts = set(LOOPBACK_NAMES) | {bind_host.lower()} | {h.lower() for h in allowed_hosts}
        if bind_host in ("0.0.0.0", "::"):
            self.hosts.discard(bind_host)  # a wildcard bind is not a name: use allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _split_host(headers.get("host", ""))
        if host not in self.hosts:
            await _reject(send, 421, "host", f"Host {headers.get('host', '')!r} is not this daemon")
            return
        origin = headers.get("origin")
        if origin is not None:
            problem = self._origin_problem(origin, scope, headers.get("host", ""))
            if problem:
                await _reject(send, 403, "origin", problem)
                return
        scope.setdefault("state", {})["authenticated"] = False
        if self.token is not None and scope["path"] not in OPEN_PATHS:
            how = self._authorised(headers, scope)
            if how is None:
                await _reject(send, 401, "auth", "missing or wrong token",
                              extra_headers=[(b"www-authenticate", b"Bearer")])
                return
            if isinstance(how, str):  # refused with a reason
                await _reject(send, 401, "auth", how, extra_headers=[(b"www-authenticate", b"Bearer")])
                return
            scope["state"]["authenticated"] = True
            if how is _DASHBOARD_LOGIN:
                await self._login_redirect(send, headers, scope["path"])
                return
        max_body = self.max_body
        if scope.get("method") == "POST":
            max_body = self.body_limits.get(scope["path"], max_body)
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > max_body
            except ValueError:
                await _reject(send, 400, "request", "bad Content-Length")
                return
            if too_big:
                await _reject(send, 413, "request_too_large",
                              f"request body of {length} bytes is over the {max_body}-byte limit")
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
                if received > max_body:
                    refused = True
                    if not started:
                        started = True
                        await _reject(send, 413, "request_too_large",
                                      f"request body is over the {max_body}-byte limit")
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

    def _origin_problem(self, origin: str, scope: Scope, host_header: str) -> str | None:
        """Why ``origin`` may not talk to this daemon, or None when it is this daemon's own."""
        if origin.strip() == "null":
            return "requests from an opaque origin are refused"
        parsed = parse_origin(origin)
        if parsed is None:
            return f"malformed Origin {origin[:200]!r} refused"
        if parsed in self.origins:
            return None
        scheme = str(scope.get("scheme") or "http")
        scheme = WS_SCHEMES.get(scheme, scheme)
        if parsed != _origin_tuple(scheme, _split_host(host_header), _port_of(host_header)):
            return f"cross-origin request from {origin[:200]!r} refused"
        return None

    def _authorised(self, headers: dict[str, str], scope: Scope) -> object | str | None:
        """True (or the dashboard login marker) when the request carries the token; a reason
        string or None when it does not."""
        assert self.token is not None and self.session is not None
        auth = headers.get("authorization", "")
        if auth:
            supplied = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            return True if hmac.compare_digest(supplied.encode(), self.token) else None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            path, method = scope["path"], scope.get("method", "GET")
            if method not in ("GET", "HEAD") or not (
                    path in LOGIN_PATHS or path in WEBSOCKET_PATHS or QUERY_TOKEN_PATHS.match(path)):
                return ("a token in the URL is accepted only by the event stream, the WebSocket and the "
                        "first load of the dashboard or the editor; send the header "
                        "'Authorization: Bearer <token>'")
            if not hmac.compare_digest(query["token"][0].encode(), self.token):
                return None
            return _DASHBOARD_LOGIN if path in LOGIN_PATHS and scope["type"] == "http" else True
        cookie = _cookies(headers.get("cookie", "")).get(cookie_name(headers.get("host", "")))
        if cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode()):
            if scope.get("method", "GET") not in SAFE_METHODS and "origin" not in headers:
                return "a request that changes something must carry its Origin"
            if scope["type"] == "websocket" and "origin" not in headers:
                return "a WebSocket authenticated by the session cookie must carry its Origin"
            return True
        return None

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: Host, Origin and token checked as for HTTP requests."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _split_host(headers.get("host", ""))
        problem: tuple[int, str, str] | None = None
        if host not in self.hosts:
            problem = (421, "host", f"Host {headers.get('host', '')[:200]!r} is not this daemon")
        elif headers.get("origin") is not None and \
                (why := self._origin_problem(headers["origin"], scope, headers.get("host", ""))):
            problem = (403, "origin", why)
        scope.setdefault("state", {})["authenticated"] = False
        if problem is None and self.token is not None:
            how = self._authorised(headers, scope)
            if how is None or isinstance(how, str):
                problem = (401, "auth", how if isinstance(how, str) else "missing or wrong token")
            else:
                scope["state"]["authenticated"] = True
        if problem is not None:
            await _reject_websocket(scope, receive, send, *problem)
            return
        await self.app(scope, receive, send)

    async def _login_redirect(self, send: Send, headers: dict[str, str], path: str = DASHBOARD_PATH) -> None:
        """A first load of the dashboard or the editor: set the session cookie and drop the token
        from the URL."""
        assert self.session is not None
        name = cookie_name(headers.get("host", ""))
        cookie = f"{name}={self.session}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", (path if path in LOGIN_PATHS else DASHBOARD_PATH).encode()),
                                (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"),
                                (b"referrer-policy", b"no-referrer"),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


_DASHBOARD_LOGIN = object()


async def _reject(send: Send, status: int, type_: str, message: str,
                  extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"errors": [{"type": type_, "message": message, "node": None,
                                   "field": None}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *(extra_headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _reject_websocket(scope: Scope, receive: Receive, send: Send, status: int, type_: str,
                            message: str) -> None:
    """Refuse a WebSocket handshake: an HTTP answer with the error body (ASGI's denial response),
    or a policy-violation close where the server cannot send one."""
    first = await receive()
    if first.get("type") != "websocket.connect":
        return
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"errors": [{"type": type_, "message": message, "node": None,
                                   "field": None}]}).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})
