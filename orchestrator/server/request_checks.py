"""What the routes check before they touch the store: ids, cursors, agent options; and the
handlers that keep any client's mistake a 4xx with the usual ``{"errors": [...]}``.

Job ids are short ASCII tokens; a cursor (``?offset=``, ``?after=``, ``Last-Event-ID``) is
ASCII digits that fit SQLite's 64-bit integers (``str.isdigit`` accepts ``"١٢"`` and
``"²"``; ``int`` of a 25-digit number overflows SQLite).

>>> last_event_id("12"), last_event_id("\\uff11\\uff12"), last_event_id(str(10**25))
(12, None, None)
>>> job_id_error("ab\\x00cd")["type"]
'not_found'
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from orchestrator.state.input_paths import name_problem

log = logging.getLogger("orchestrator.server.api")

MAX_CURSOR = 2**53  # offsets and event ids beyond this are no row anyone has
JOB_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$", re.ASCII)
CURSOR = re.compile(r"^[0-9]{1,16}$", re.ASCII)
SHOWN = 80  # characters of a client's value echoed in an error


def shown(value: Any) -> str:
    """``repr`` of a client's value, cut to :data:`SHOWN` characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + f"... ({len(text)} characters)"


def _error(type_: str, message: str, node: str | None = None, field: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"type": type_, "message": message, "node": node, "field": field, **extra}


def job_id_error(job_id: str) -> dict[str, Any] | None:
    """A ``not_found`` error for an id no job can have (checked before the store is asked)."""
    if JOB_ID.match(job_id):
        return None
    return _error("not_found", f"no job {shown(job_id)}", field="id")


def last_event_id(header: str | None) -> int | None:
    """The ``Last-Event-ID`` cursor, or ``None`` when absent or not ASCII digits in range."""
    if header is None or not CURSOR.match(header.strip()):
        return None
    value = int(header.strip())
    return value if value <= MAX_CURSOR else None


def agent_option_errors(agent: Any, settings: Any, templates: list[str] | None) -> list[dict[str, Any]]:
    """What a prompt job's ``agent`` options ask that this daemon does not allow: an LLM off
    the operator's allow-list, an unknown template, a size over ``limits.pixels``."""
    errors = []
    try:
        settings.agent.pick_llm(agent.llm)
    except LookupError:
        errors.append(_error("request", "agent.llm is not one of the LLMs this daemon allows; allowed: "
                             + ", ".join(settings.agent.llm_names()), field="agent.llm"))
    if agent.template is not None and templates is not None and agent.template not in templates:
        errors.append(_error("request", f"agent.template {shown(agent.template)} is no template; "
                             f"templates: {', '.join(templates)}", field="agent.template"))
    for role, name in (getattr(agent, "inputs", None) or {}).items():
        problem = name_problem(name)
        if problem is not None:  # the same confinement as any input path of a graph
            errors.append(_error("input", f"agent.inputs.{role} {shown(name)} {problem}; name a file in "
                                 "the input folder (upload it with POST /inputs)",
                                 field=f"agent.inputs.{role}"))
    pixels = settings.limits.pixels
    w, h = agent.width, agent.height
    sides = [(name, side) for name, side in (("width", w), ("height", h))
             if side is not None and side * 64 > pixels]  # 64: the smallest other side
    for name, side in sides:
        errors.append(_error("limit", f"agent.{name} {side} is over the {pixels}-pixel limit",
                             field=f"agent.{name}", value=side, bound={"le": pixels // 64}))
    if not sides and w is not None and h is not None and w * h > pixels:
        errors.append(_error("limit", f"agent.width x agent.height = {w * h} pixels is over the "
                             f"limit {pixels}", field="agent.width", value=w * h, bound={"le": pixels}))
    return errors


def add_error_handlers(app: FastAPI) -> None:
    """Last-resort handlers: a request that makes Python overflow, recurse too deep or meet
    text it cannot encode is the client's fault (400); anything else is a 500 that says
    nothing about the host (the traceback goes to the log)."""

    async def client_fault(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path[:200], type(exc).__name__)
        return JSONResponse({"errors": [_error("request", f"the request cannot be handled "
                                               f"({type(exc).__name__})")]}, status_code=400)

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path[:200], exc_info=exc)
        return JSONResponse({"errors": [_error("internal", "the daemon failed on this request; "
                                               "its log has the details")]}, status_code=500)

    for cls in (RecursionError, OverflowError, UnicodeError):
        app.add_exception_handler(cls, client_fault)
    app.add_exception_handler(Exception, internal)
