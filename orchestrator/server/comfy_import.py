"""``POST /import/comfy``: import a ComfyUI workflow over HTTP.

The body is the workflow as JSON (API or UI format, or ``{"workflow": ..., "model_map":
{...}}``), or a PNG that carries one (``Content-Type: image/png`` or
``application/octet-stream``, or a ``multipart/form-data`` upload). ``?model_map=NAME=OURS``
may be repeated. The answer is ``{"graph", "errors", "warnings", "valid", "format",
"origin"}`` (status 200, the graph holding what could be imported), or ``{"errors"}`` with
status 422 when the body is not a ComfyUI workflow at all.

Added to the app by :func:`add_comfy_routes` (one line in ``create_app``).
"""

from __future__ import annotations

import asyncio
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from graphs.catalog import Catalog
from graphs.comfy import import_result, parse_model_map
from graphs.errors import GraphValidationError
from orchestrator.config import Settings
from orchestrator.plugins import comfy_mappings, plugin_host_from_settings
from orchestrator.protocol import IMPORT_COMFY
from orchestrator.server.json_body import DEFAULT_DEPTH, BodyError, loads_strict
from orchestrator.state.input_paths import input_name_errors


def _error(message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"type": "request", "message": message, "node": None, "field": field}]},
                        status_code=422)


def _multipart_file(body: bytes, content_type: str) -> bytes | None:
    """The first uploaded file (or field) of a ``multipart/form-data`` body."""
    message = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if payload:
            return bytes(payload)
    return None


def _source(body: bytes, content_type: str, max_depth: int = DEFAULT_DEPTH) -> tuple[Any, dict[str, str]]:
    """``(decoded workflow or PNG bytes, model map from the body)``; ``ValueError`` when unusable
    (:class:`~orchestrator.server.json_body.BodyError` for JSON the strict parser refuses).

    Never a plain string: the importer would read a string as a file path.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        upload = _multipart_file(body, content_type)
        if upload is None:
            raise ValueError("the multipart body holds no file")
        body = upload
    if body[:8] == b"\x89PNG\r\n\x1a\n":
        return body, {}
    try:
        data = loads_strict(body, max_depth=max_depth)
    except BodyError as exc:
        if exc.type != "request" or exc.field != "body" or "not valid JSON" not in str(exc):
            raise
        raise ValueError(f"the body is neither a PNG nor JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object (a ComfyUI workflow)")
    workflow = data.get("workflow")
    if isinstance(workflow, (dict, str)) and not (isinstance(workflow, dict) and "class_type" in workflow):
        if isinstance(workflow, str):
            try:
                workflow = loads_strict(workflow, max_depth=max_depth)
            except BodyError as exc:
                why = str(exc).removeprefix("body: ").replace("the body is", "'workflow' is")
                raise BodyError(why, field="workflow", type=exc.type, **exc.extra) from None
            if not isinstance(workflow, dict):
                raise ValueError("'workflow' must be a JSON object")
        model_map = data.get("model_map") or {}
        if not isinstance(model_map, dict) or not all(isinstance(v, str) for v in model_map.values()):
            raise ValueError("'model_map' must be an object of strings")
        return workflow, dict(model_map)
    return data, {}


def add_comfy_routes(app: FastAPI, catalog: Catalog, settings: Settings) -> None:
    """Add ``POST /import/comfy``; plugins' ``register_comfy_mappings`` are read on first use."""
    cache: dict[str, list[Any]] = {}

    def mappings() -> list[Any]:
        if "mappings" not in cache:
            cache["mappings"] = comfy_mappings(plugin_host_from_settings(settings)[0])
        return cache["mappings"]

    @app.post(IMPORT_COMFY)
    async def import_comfy(request: Request,
                           model_map: list[str] = Query(default_factory=list)) -> JSONResponse:
        try:
            source, body_map = _source(await request.body(), request.headers.get("content-type", ""),
                                       settings.limits.json_depth)
            names = {**body_map, **parse_model_map(model_map)}
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=422)
        except ValueError as exc:
            return _error(str(exc), field="body")
        try:
            result = await asyncio.to_thread(import_result, source, catalog, names, mappings())
        except GraphValidationError as exc:
            return JSONResponse({"errors": [e.to_dict() for e in exc.errors]}, status_code=422)
        # names the daemon could never read (absolute, '..', schemes): said now, not at submit
        errors = [e.to_dict() for e in result.errors] + input_name_errors(result.graph, catalog)
        return JSONResponse({"graph": result.graph.to_dict(), "valid": not errors, "errors": errors,
                             "warnings": [w.to_dict() for w in result.warnings],
                             "format": result.format, "origin": result.origin})
