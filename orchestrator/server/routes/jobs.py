"""Job routes: submit (``POST /jobs``), list, get, cancel, a job's outputs and its live preview."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from graphs import Graph, GraphValidationError, check
from orchestrator.config import Settings
from orchestrator.protocol import (
    IDEMPOTENCY_HEADER,
    JOB,
    JOB_CANCEL,
    JOB_OUTPUT,
    JOB_PREVIEW,
    JOBS,
    JobInfo,
    JobState,
    SubmitRequest,
)
from orchestrator.runtime.limits import check_limits
from orchestrator.server.redact import redact
from orchestrator.server.request_checks import MAX_CURSOR, agent_option_errors, job_id_error, shown
from orchestrator.server.routes.errors import error, errors
from orchestrator.server.service import JobService
from orchestrator.state.input_paths import input_name_errors
from orchestrator.state.outputs import SAFE_NAME
from orchestrator.state.store import IdempotencyConflict, QueueFull


def job_info(job: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A job row (and its outputs) as the API shows it (:class:`~orchestrator.protocol.JobInfo`)."""
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


def template_names(service: JobService) -> list[str]:
    """The templates a prompt job may force (the planner's, else the built-in ones)."""
    names = getattr(service.planner, "template_names", None)
    if names is None:
        from graphs import builtin_templates

        names = sorted(t.name for t in builtin_templates())
    return list(names)


def add_job_routes(app: FastAPI, service: JobService, settings: Settings) -> None:
    """``POST/GET /jobs``, ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel``."""
    store = service.store
    catalog = service.engine.catalog

    @app.post(JOBS, status_code=201)
    async def submit(body: SubmitRequest, request: Request) -> JSONResponse:
        if not service.accepting:
            return errors(503, error("unavailable", "the daemon is shutting down"),
                          headers={"Retry-After": "5"})
        if (body.graph is None) == (body.prompt is None):
            return errors(422, error("request", "send exactly one of 'graph' and 'prompt'",
                                     field="graph"))
        if body.prompt is not None:
            problems = agent_option_errors(body.agent, settings, template_names(service))
            if problems:
                return errors(422, *problems)
        # fast path only: a retry with a known Idempotency-Key gets its job even when the queue
        # is full (store.create looks the key up before counting the queue)
        if request.headers.get(IDEMPOTENCY_HEADER) is None and \
                store.counts()[JobState.QUEUED.value] >= settings.limits.queued:
            return errors(429, error("queue_full", f"{settings.limits.queued} jobs are waiting; "
                                     "try again later"), headers={"Retry-After": "2"})
        graph_doc = None
        if body.graph is not None:
            nodes = body.graph.get("nodes")
            if isinstance(nodes, dict) and len(nodes) > settings.limits.nodes:
                return errors(422, error(
                    "limit", f"graph has {len(nodes)} nodes; the limit is {settings.limits.nodes}",
                    field="nodes", value=len(nodes), bound={"le": settings.limits.nodes}))
            try:
                graph = Graph.from_dict(body.graph)
            except GraphValidationError as exc:
                return errors(422, *[e.to_dict() for e in exc.errors])
            problems = check_limits(graph, settings.limits, catalog)
            problems += [e.to_dict() for e in check(graph, catalog)]
            problems += input_name_errors(graph, catalog)  # paths that can never be in the input folder
            if problems:
                return errors(422, *problems)
            graph_doc = graph.to_dict()
        request_doc = body.model_dump(mode="json")
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not (1 <= len(key) <= 200):
            return errors(422, error("request", "Idempotency-Key must be 1-200 characters",
                                     field=IDEMPOTENCY_HEADER))
        body_hash = hashlib.sha256(json.dumps(request_doc, sort_keys=True).encode()).hexdigest()
        try:
            job, created = await asyncio.to_thread(
                store.create, kind="graph" if graph_doc is not None else "prompt",
                request=request_doc, priority=body.priority, name=body.name, prompt=body.prompt,
                graph=graph_doc, idempotency_key=key, body_hash=body_hash,
                max_queued=settings.limits.queued)
        except IdempotencyConflict as exc:
            return errors(409, exc.to_dict())
        except QueueFull as exc:  # the check above is a fast path; this one is atomic
            return errors(429, exc.to_dict(), headers={"Retry-After": "2"})
        service.notify()
        return JSONResponse(job_info(job, []), status_code=201 if created else 200)

    @app.get(JOBS)
    async def list_jobs(state: JobState | None = None, limit: int = Query(50, ge=1, le=500),
                        offset: int = Query(0, ge=0, le=MAX_CURSOR)) -> dict[str, Any]:
        jobs = store.list(state.value if state else None, limit, offset)
        return {"jobs": [job_info(j, []) for j in jobs], "limit": limit, "offset": offset}

    @app.get(JOB)
    async def get_job(id: str) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return errors(404, bad)
        job = store.get(id)
        if job is None:
            return errors(404, error("not_found", f"no job {id!r}", field="id"))
        return JSONResponse(job_info(job, store.outputs(id)))

    @app.post(JOB_CANCEL)
    async def cancel_job(id: str) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return errors(404, bad)
        job = service.cancel(id)
        if job is None:
            return errors(404, error("not_found", f"no job {id!r}", field="id"))
        return JSONResponse(job_info(job, store.outputs(id)))


def add_job_file_routes(app: FastAPI, service: JobService) -> None:
    """``GET /jobs/{id}/outputs/{name}`` (a finished output) and ``/jobs/{id}/preview.png``."""
    store = service.store

    @app.get(JOB_OUTPUT)
    async def get_output(id: str, name: str) -> Any:
        if not SAFE_NAME.match(name):
            return errors(400, error("request", f"bad output name {shown(name)}", field="name"))
        if (bad := job_id_error(id)) is not None:
            return errors(404, bad)
        match = next((o for o in store.outputs(id) if o["name"] == name), None)
        root = (service.outputs_root / id).resolve()
        if match is None:
            return errors(404, error("not_found", f"job {id!r} has no output {name!r}",
                                     field="name"))
        path = Path(match["path"]).resolve()
        if root not in path.parents or not path.is_file():
            return errors(404, error("not_found", f"output {name!r} is gone", field="name"))
        return FileResponse(path, media_type="image/png", filename=path.name)

    @app.get(JOB_PREVIEW)
    async def job_preview(id: str) -> Any:
        """The latest preview of a running job (a small PNG), 404 when there is none."""
        if (bad := job_id_error(id)) is not None:
            return errors(404, bad)
        png = service.preview(id)
        if png is None:
            return errors(404, error("not_found", f"job {id!r} has no preview now", field="id"))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
