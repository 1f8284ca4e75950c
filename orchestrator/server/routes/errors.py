"""The error body every route answers, ``{"errors": [{type, message, node, field}]}``, and the
handlers that give FastAPI's own validation and HTTP errors that shape."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def errors(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A ``{"errors": [...]}`` response with ``status``."""
    return JSONResponse({"errors": list(errors)}, status_code=status, headers=headers)


def error(type_: str, message: str, node: str | None = None, field: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """One structured error dict (``extra`` adds e.g. ``value`` and ``bound``)."""
    return {"type": type_, "message": message, "node": node, "field": field, **extra}


def add_error_routes(app: FastAPI) -> None:
    """Request validation (422) and HTTP errors (404, 405, ...) answered in the error body."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        out = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                where = e["loc"][-1] if e.get("loc") else "?"
                reason = (e.get("ctx") or {}).get("error", e["msg"])
                out.append(error("request", f"the body is not valid JSON: {reason} at position "
                                 f"{where}", field="body"))
                continue
            loc = [str(p)[:80] for p in e["loc"] if p != "body"][:20]
            out.append(error("request", f"{'.'.join(loc) or 'body'}: {str(e['msg'])[:300]}",
                             field=".".join(loc) or None))
        return errors(422, *out)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return errors(exc.status_code, error("request", detail), headers=exc.headers)
