"""Strict JSON request bodies: one parser for every route, and a middleware that applies it.

Python's ``json`` (and so FastAPI) accepts ``NaN``, ``Infinity`` and ``-Infinity``, turns
``1e999`` into ``inf``, raises ``ValueError`` on an int of more than 4300 digits, keeps lone
UTF-16 surrogates that cannot be stored or sent back, and recurses once per nesting level
(``RecursionError`` far below a 4 MiB body). :func:`loads_strict` refuses all of these
with :class:`BodyError`, naming the field (``graph.nodes.a.params.width``); the nesting
depth is measured on the bytes first, without recursion, before any parser runs.

:class:`StrictJSONMiddleware` runs it on every JSON body the app receives (any route, also
ones added later), answering 422 ``{"errors": [...]}``; what passes reaches the route as it
came.

>>> loads_strict(b'{"a": [1, 2.5, "x"]}')
{'a': [1, 2.5, 'x']}
>>> for bad in (b'{"graph": {"w": NaN}}', b'[[[[1]]]]'):
...     try:
...         loads_strict(bad, max_depth=3)
...     except BodyError as exc:
...         print(exc)
graph.w: NaN is not a number JSON allows
body: JSON nested 4 deep; the limit is 3
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np

DEFAULT_DEPTH = 64
MAX_INT_DIGITS = 20  # wider than any int64; a longer JSON int is refused, not parsed
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyError(ValueError):
    """A body the strict parser refuses: ``field`` is where (``body`` when nowhere in particular)."""

    def __init__(self, message: str, field: str = "body", type: str = "request", **extra: Any) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.type = type
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": str(self), "node": None, "field": self.field, **self.extra}


class _Refused:
    """What the parse hooks put where a value is refused; found (with its path) afterwards."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def nesting_depth(body: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text (brackets inside strings do not count).

    >>> nesting_depth(b'{"a": [1, {"b": "[[["}]}')
    3
    """
    structure = _STRING.sub(b'""', body).translate(None, _BRACKETS)
    if not structure:
        return 0
    codes = np.frombuffer(structure, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def _parse_int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Refused(f"an integer of {digits} digits is out of range (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"{text[:40]} is out of a float's range")


def _parse_constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a number JSON allows")


def _check(doc: Any) -> None:
    """Raise :class:`BodyError` at the first refused value or unencodable string (iteratively)."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Refused):
            raise BodyError(value.why, field=path or "body")
        if isinstance(value, str):
            _encodable(value, path)
        elif isinstance(value, dict):
            for k, v in value.items():
                _encodable(k, path)
                stack.append((v, f"{path}.{k}" if path else str(k)))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))


def _encodable(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError("holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
                        field=path or "body") from None


def loads_strict(body: bytes | str, *, max_depth: int = DEFAULT_DEPTH) -> Any:
    """Decode a JSON body, refusing what the module doc lists; :class:`BodyError` says where."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise BodyError(f"JSON nested {depth} deep; the limit is {max_depth}", type="limit",
                        value=depth, bound={"le": max_depth})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                         parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                        f"{exc.colno}") from None
    except (RecursionError, ValueError) as exc:  # never expected after the checks above
        raise BodyError(f"the body cannot be decoded: {type(exc).__name__}") from None
    _check(doc)
    return doc


def is_json(content_type: str | None) -> bool:
    """Whether a request with this ``Content-Type`` is read as JSON (FastAPI reads a missing one so)."""
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


class StrictJSONMiddleware:
    """ASGI middleware: every JSON request body goes through :func:`loads_strict` first."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_depth: int = DEFAULT_DEPTH,
                 max_bytes: int | None = None) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_bytes = max_bytes  # JSON bodies longer than this are refused unparsed (a route
        # with a larger body limit, like an upload, takes no JSON that long)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        if not is_json(ctype):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if self.max_bytes is not None and len(body) > self.max_bytes:
            await _send_json(send, 413, {"errors": [BodyError(
                f"a JSON body is at most {self.max_bytes} bytes; this one is {len(body)}", type="limit",
                value=len(body), bound={"le": self.max_bytes}).to_dict()]})
            return
        if body.strip():
            try:
                loads_strict(body, max_depth=self.max_depth)
            except BodyError as exc:
                await _send_json(send, 422, {"errors": [exc.to_dict()]})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_json(send: Send, status: int, doc: dict[str, Any]) -> None:
    data = json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
