"""``POST /jobs/{id}/rating`` and ``GET /jobs/{id}/rating``, behind the API's guard.

Only a succeeded job can be rated (409 otherwise: there is nothing to judge yet); a job that
does not exist is a 404; the body is :class:`~orchestrator.server.ratings.RatingRequest` (a bad one
is a 422 naming ``score``). The rating is kept with the job (``jobs.rating``) and, for a prompt
job the daemon's planner planned (not a submitted graph, whatever its ``meta`` says), recorded
in the score table through the service's score recorder with ``source="rating"``, which
replaces the job's earlier rating: rating twice is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from orchestrator.protocol import JobState
from orchestrator.server.ratings import JOB_RATING, RatingRequest, stars_to_unit
from orchestrator.server.request_checks import job_id_error, shown
from orchestrator.server.service import JobService

log = logging.getLogger("orchestrator.server.ratings")


def _error(status: int, type_: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errors": [{"type": type_, "message": message, "node": None, "field": "id",
                                     **extra}]}, status_code=status)


def _learn(service: JobService, job: dict[str, Any], stars: float) -> bool:
    """Feed a planned job's rating to the score table; whether it taught anything."""
    recorder = service.on_scored
    graph = job.get("graph")
    if recorder is None or job.get("kind") != "prompt" or not isinstance(graph, dict):
        return False  # only what the daemon's planner made teaches it, not a submitted graph's meta
    try:
        return bool(recorder(graph, stars_to_unit(stars), job["id"], source="rating"))
    except Exception:  # the rating is kept with the job whatever the table does
        log.exception("recording the rating of job %s failed", job["id"])
        return False


def add_rating_routes(app: FastAPI, service: JobService) -> None:
    """Add the rating routes; errors answer as every route's do (``{"errors": [...]}``)."""
    store = service.store

    @app.post(JOB_RATING)
    async def rate_job(id: str, body: RatingRequest) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return JSONResponse({"errors": [bad]}, status_code=404)
        job = store.get(id)
        if job is None:
            return _error(404, "not_found", f"no job {shown(id)}")
        if job["state"] != JobState.SUCCEEDED.value:
            return _error(409, "conflict", f"job {id} is {job['state']}: only a succeeded job's "
                          "outputs can be rated", value=job["state"])
        rated = store.rate(id, body.score)
        if rated is None:  # pruned between the two reads
            return _error(404, "not_found", f"no job {shown(id)}")
        job, previous = rated
        learned = await asyncio.to_thread(_learn, service, job, body.score)
        return JSONResponse({"id": id, "rating": body.score, "previous": previous,
                             "score": round(stars_to_unit(body.score), 4), "learned": learned})

    @app.get(JOB_RATING)
    async def job_rating(id: str) -> JSONResponse:
        if (bad := job_id_error(id)) is not None:
            return JSONResponse({"errors": [bad]}, status_code=404)
        job = store.get(id)
        if job is None:
            return _error(404, "not_found", f"no job {shown(id)}")
        return JSONResponse({"id": id, "rating": job.get("rating"), "rated_at": job.get("rated_at")})
