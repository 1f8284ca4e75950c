"""The HTTP API (FastAPI). Every error answers ``{"errors": [{type, message, node, field}]}``.

Build it with :func:`create_app`; the daemon serves it with uvicorn.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphs import Graph, GraphValidationError, check
from orchestrator import __version__
from orchestrator.comfy_api import add_comfy_routes
from orchestrator.comfy_protocol import add_comfy_protocol
from orchestrator.config import Settings
from orchestrator.dashboard import mount_dashboard
from orchestrator.input_paths import input_name_errors
from orchestrator.inputs import add_input_routes
from orchestrator.json_body import StrictJSONMiddleware
from orchestrator.limits import check_limits
from orchestrator.outputs import SAFE_NAME
from orchestrator.protocol import (
    BLOCKS,
    HEALTH,
    IDEMPOTENCY_HEADER,
    JOB,
    JOB_CANCEL,
    JOB_EVENTS,
    JOB_OUTPUT,
    JOB_PREVIEW,
    JOBS,
    METRICS,
    MODELS,
    TEMPLATES,
    JobInfo,
    JobState,
    SubmitRequest,
)
from orchestrator.ratings_api import add_rating_routes
from orchestrator.redact import redact
from orchestrator.request_checks import (
    MAX_CURSOR,
    add_error_handlers,
    agent_option_errors,
    job_id_error,
    last_event_id,
    shown,
)
from orchestrator.retention import Policy, Retention
from orchestrator.retention_api import add_retention_routes
from orchestrator.security import Guard
from orchestrator.server import ConnectionGovernor, SlotStreamingResponse
from orchestrator.service import JobService
from orchestrator.store import IdempotencyConflict, QueueFull

EVENT_POLL_S = 0.1
HEARTBEAT_S = 10.0


def _errors(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": list(errors)}, status_code=status, headers=headers)


def _error(type_: str, message: str, node: str | None = None, field: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"type": type_, "message": message, "node": node, "field": field, **extra}


def _job_info(job: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    info = JobInfo(
        id=job["id"], state=job["state"], priority=job["priority"], kind=job["kind"],
        name=job["name"], prompt=job["prompt"], attempts=job["attempts"],
        created_at=job["created_at"], started_at=job["started_at"],
        finished_at=job["finished_at"], errors=redact(job["errors"]), graph=job["graph"],
        trace=job["trace"], timings=job["timings"], score=job.get("score"),
        outputs=[{"name": o["name"], "node": o["node"],
                  "url": JOB_OUTPUT.format(id=job["id"], name=o["name"])} for o in outputs],
    )
    return info.model_dump(mode="json")


def _loaded_models(engine: Any) -> set[str]:
    """Model names the engine's workers hold now (for ``GET /models``)."""
    try:
        from orchestrator.models.registry import loaded_names

        return loaded_names(engine.stats())
    except Exception:  # noqa: BLE001 - the listing never fails on the engine's account
        return set()


def create_app(service: JobService, settings: Settings, *, models: Any = None,
               governor: ConnectionGovernor | None = None, retention: Retention | None = None) -> Guard:
    """The FastAPI application for ``service``, behind the security guard (``.app``).

    ``governor`` holds the server's connection and stream limits, ``retention`` the pruning
    policy (both built from ``settings`` when not given).
    """
    store = service.store
    governor = governor or ConnectionGovernor.from_settings(settings.server)
    retention = retention or Retention(store, service.outputs_root,
                                       Policy.from_settings(settings.retention))
    catalog = service.engine.catalog
    app = FastAPI(title="orchestrator", version=__version__,
                  description="Local orchestration daemon for generative-image workflows.")

    add_error_handlers(app)

    def template_names() -> list[str]:
        """The templates a prompt job may force (the planner's, else the built-in ones)."""
        names = getattr(service.planner, "template_names", None)
        if names is None:
            from graphs import builtin_templates

            names = sorted(t.name for t in builtin_templates())
        return list(names)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        out = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                where = e["loc"][-1] if e.get("loc") else "?"
                reason = (e.get("ctx") or {}).get("error", e["msg"])
                out.append(_error("request", f"the body is not valid JSON: {reason} at position "
                                  f"{where}", field="body"))
                continue
            loc = [str(p)[:80] for p in e["loc"] if p != "body"][:20]
            out.append(_error("request", f"{'.'.join(loc) or 'body'}: {str(e['msg'])[:300]}",
                              field=".".join(loc) or None))
        return _errors(422, *out)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return _errors(exc.status_code, _error("request", detail), headers=exc.headers)

    @app.post(JOBS, status_code=201)
    async def submit(body: SubmitRequest, request: Request) -> JSONResponse:
        if not service.accepting:
            return _errors(503, _error("unavailable", "the daemon is shutting down"),
                           headers={"Retry-After": "5"})
        if (body.graph is None) == (body.prompt is None):
            return _errors(422, _error("request", "send exactly one of 'graph' and 'prompt'",
                                       field="graph"))
        if body.prompt is not None:
            problems = agent_option_errors(body.agent, settings, template_names())
            if problems:
                return _errors(422, *problems)
        # fast path only: a retry with a known Idempotency-Key gets its job even when the queue
        # is full (store.create looks the key up before counting the queue)
        if request.headers.get(IDEMPOTENCY_HEADER) is None and \
                store.counts()[JobState.QUEUED.value] >= settings.limits.queued:
            return _errors(429, _error("queue_full", f"{settings.limits.queued} jobs are waiting; "
                                       "try again later"), headers={"Retry-After": "2"})
        graph_doc = None
        if body.graph is not None:
            nodes = body.graph.get("nodes")
            if isinstance(nodes, dict) and len(nodes) > settings.limits.nodes:
                return _errors(422, _error(
                    "limit", f"graph has {len(nodes)} nodes; the limit is {settings.limits.nodes}",
                    field="nodes", value=len(nodes), bound={"le": settings.limits.nodes}))
            try:
                graph = Graph.from_dict(body.graph)
            except GraphValidationError as exc:
                return _errors(422, *[e.to_dict() for e in exc.errors])
            problems = check_limits(graph, settings.limits, catalog)
            problems += [e.to_dict() for e in check(graph, catalog)]
            problems += input_name_errors(graph, catalog)  # paths that can never be in the input folder
            if problems:
                return _errors(422, *problems)
            graph_doc = graph.to_dict()
        request_doc = body.model_dump(mode="json")
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not (1 <= len(key) <= 200):
            return _errors(422, _error("request", "Idempotency-Key must be 1-200 characters",
                                       field=IDEMPOTENCY_HEADER))
        body_hash = hashlib.sha256(json.dumps(request_doc, sort_keys=True).encode()).hexdigest()
        try:
            job, created = await asyncio.to_thread(
                store.create, kind="graph" if graph_doc is not None else "prompt",
                request=request_doc, priority=body.priority, name=body.name, prompt=body.prompt,
                graph=graph_doc, idempotency_key=key, body_hash=body_hash,
                max_queued=settings.limits.queued)
        except IdempotencyConflict as exc:
            return _errors(409, exc.to_dict())
        except QueueFull as exc:  # the check above is a fast path; this one is atomic
            return _errors(429, exc.to_dict(), headers={"Retry-After": "2"})
        service.notify()
        return JSONResponse(_job_info(job, []), status_code=201 if created else 200)

    @app.get(JOBS)
    async def list_jobs(state: JobState | None = None, limit: int = Query(50, ge=1, le=500),
                        offset: int = Query(0, ge=0, le=MAX_CURSOR)) -> dict[str, Any]:
        jobs = store.list(state.value if state else None, limit, offset)
        return {"jobs": [_job_info(j, []) for j in jobs], "limit": limit, "offset": offset}

    @app.get(JOB)
    async def get_job(id: str) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return _errors(404, bad)
        job = store.get(id)
        if job is None:
            return _errors(404, _error("not_found", f"no job {id!r}", field="id"))
        return JSONResponse(_job_info(job, store.outputs(id)))

    @app.post(JOB_CANCEL)
    async def cancel_job(id: str) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return _errors(404, bad)
        job = service.cancel(id)
        if job is None:
            return _errors(404, _error("not_found", f"no job {id!r}", field="id"))
        return JSONResponse(_job_info(job, store.outputs(id)))

    @app.get(JOB_EVENTS)
    async def job_events(id: str, request: Request, after: int = Query(0, ge=0, le=MAX_CURSOR),
                         format: str = Query("sse", pattern="^(sse|json)$")) -> Any:
        if (bad := job_id_error(id)) is not None:
            return _errors(404, bad)
        if store.get(id) is None:
            return _errors(404, _error("not_found", f"no job {id!r}", field="id"))
        last = request.headers.get("last-event-id")
        if last is not None:
            cursor = last_event_id(last)
            if cursor is None:
                return _errors(422, _error("request", f"Last-Event-ID {shown(last)} is not an event id "
                                           f"(ASCII digits, at most {MAX_CURSOR})", field="Last-Event-ID"))
            after = max(after, cursor)
        if format == "json":
            return {"events": store.events_after(id, after)}
        if not governor.streams.acquire():
            governor.counters.streams_refused += 1
            return _errors(429, _error("too_many_streams", f"{governor.max_streams} event streams "
                                       "are open; try again later", field="id"),
                           headers={"Retry-After": "5"})

        async def stream() -> Any:
            cursor = after
            quiet_since = time.monotonic()
            while True:
                events = await asyncio.to_thread(store.events_after, id, cursor)
                for ev in events:
                    cursor = ev["id"]
                    yield f"id: {ev['id']}\nevent: {ev['event']}\ndata: {json.dumps(ev)}\n\n"
                    if ev["event"] == "done":
                        return
                if events:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > HEARTBEAT_S:
                    if await asyncio.to_thread(store.get, id) is None:
                        return  # pruned meanwhile: nothing more will come
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                if await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_POLL_S)

        return SlotStreamingResponse(stream(), governor.streams, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get(JOB_OUTPUT)
    async def get_output(id: str, name: str) -> Any:
        if not SAFE_NAME.match(name):
            return _errors(400, _error("request", f"bad output name {shown(name)}", field="name"))
        if (bad := job_id_error(id)) is not None:
            return _errors(404, bad)
        match = next((o for o in store.outputs(id) if o["name"] == name), None)
        root = (service.outputs_root / id).resolve()
        if match is None:
            return _errors(404, _error("not_found", f"job {id!r} has no output {name!r}",
                                       field="name"))
        path = Path(match["path"]).resolve()
        if root not in path.parents or not path.is_file():
            return _errors(404, _error("not_found", f"output {name!r} is gone", field="name"))
        return FileResponse(path, media_type="image/png", filename=path.name)

    @app.get(JOB_PREVIEW)
    async def job_preview(id: str) -> Any:
        """The latest preview of a running job (a small PNG), 404 when there is none."""
        if (bad := job_id_error(id)) is not None:
            return _errors(404, bad)
        png = service.preview(id)
        if png is None:
            return _errors(404, _error("not_found", f"job {id!r} has no preview now", field="id"))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get(BLOCKS)
    async def blocks() -> list[dict[str, Any]]:
        return catalog.to_json()

    @app.get(TEMPLATES)
    async def templates() -> list[dict[str, Any]]:
        from graphs import builtin_templates

        return [{**t.summary(), "graph": t.graph.to_dict()} for t in builtin_templates()]

    def _authenticated(request: Request) -> bool:
        """Whether the request carried the token (never, when none is configured)."""
        return bool(request.scope.get("state", {}).get("authenticated"))

    @app.get(MODELS)
    async def list_models(request: Request) -> list[dict[str, Any]]:
        describe = getattr(models, "describe", None)
        rows = describe(loaded=_loaded_models(service.engine)) if callable(describe) else []
        return rows if _authenticated(request) else redact(rows)

    @app.get(HEALTH)
    async def health() -> dict[str, Any]:
        return {"ok": True, "accepting": service.accepting, "version": __version__,
                "pid": os.getpid(), "uptime_s": round(time.time() - service.started_at, 1)}

    @app.get(METRICS)
    async def metrics(request: Request) -> dict[str, Any]:
        counts = store.counts()
        out = {"queue_depth": counts[JobState.QUEUED.value], "running": len(service.running()),
               "jobs": counts, "engine": service.engine.stats(), "server": governor.stats(),
               "retention": retention.stats()}
        return out if _authenticated(request) else redact(out)

    add_comfy_routes(app, catalog, settings)
    add_comfy_protocol(app, service, settings, models, governor)  # ComfyUI's API, /ws and the editor
    app.add_middleware(StrictJSONMiddleware, max_depth=settings.limits.json_depth,  # every JSON body
                       max_bytes=settings.limits.request_bytes)
    add_retention_routes(app, retention)
    add_rating_routes(app, service)  # POST/GET /jobs/{id}/rating
    add_input_routes(app, settings)
    mount_dashboard(app, service)
    return Guard(app, bind_host=settings.host, token=settings.effective_token(),  # type: ignore[arg-type]
                 allowed_hosts=settings.allowed_hosts, max_body=settings.limits.request_bytes,
                 allowed_origins=settings.allowed_origins)
