"""The current ComfyUI frontend's jobs API, ``/api/jobs`` (queue and history in one list).

``GET /api/jobs?status=pending,in_progress,completed,failed,cancelled&limit=&offset=``
answers ``{"jobs": [...], "pagination": {offset, limit, total, has_more}}``, newest first;
``GET /api/jobs/{prompt_id}`` one job with its ``outputs`` and ``workflow``;
``POST /api/jobs/{prompt_id}/cancel`` cancels it. A job's ``id`` is the ComfyUI prompt id.
Only under ``/api/`` and ``/comfy/api/``: ``/jobs`` at the root is our own API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from orchestrator.protocol import FINAL_STATES, JobState
from orchestrator.server.comfy.history import error_message, output_images
from orchestrator.server.comfy.index import PromptIndex, PromptRecord
from orchestrator.server.comfy.routes import error
from orchestrator.server.comfy.submit import MAX_PROMPT_ID

STATUS = {JobState.QUEUED.value: "pending", JobState.PLANNING.value: "in_progress",
          JobState.RUNNING.value: "in_progress", JobState.SUCCEEDED.value: "completed",
          JobState.FAILED.value: "failed", JobState.CANCELLED.value: "cancelled"}
KNOWN = frozenset(STATUS.values())
SCAN = 5000  # prompts a listing reads at most


def _ms(t: float | None) -> int | None:
    return int(t * 1000) if t else None


def job_item(rec: PromptRecord, job: dict[str, Any], outputs: list[dict[str, Any]], *,
             detail: bool = False) -> dict[str, Any]:
    images = output_images(job, outputs)
    preview = None
    for cid, out in images.items():
        first = out["images"][0]
        preview = {**first, "nodeId": cid, "mediaType": "images"}
        break
    item: dict[str, Any] = {
        "id": rec.prompt_id, "status": STATUS.get(job["state"], "pending"),
        "create_time": _ms(job.get("created_at")) or 0,
        "execution_start_time": _ms(job.get("started_at")),
        "execution_end_time": _ms(job.get("finished_at")),
        "preview_output": preview, "outputs_count": sum(len(o["images"]) for o in images.values()),
        "previewable_outputs_count": sum(len(o["images"]) for o in images.values()),
        "execution_error": None, "workflow_id": None, "priority": rec.number, "job_id": job["id"]}
    if job["state"] == JobState.FAILED.value:
        err = error_message(job)
        item["execution_error"] = {**err, "prompt_id": rec.prompt_id}
    if detail:
        comfy = (job.get("request") or {}).get("comfy") or {}
        item.update(outputs=images, update_time=_ms(job.get("finished_at") or job.get("started_at")
                                                    or job.get("created_at")),
                    workflow={"prompt": comfy.get("prompt") or {},
                              "extra_data": comfy.get("extra_data") or {}})
    return item


class JobsRoutes:
    def __init__(self, service: Any, index: PromptIndex) -> None:
        self.service = service
        self.store = service.store
        self.index = index

    def _candidates(self, wanted: set[str]) -> list[tuple[PromptRecord, dict[str, Any]]]:
        """The prompts whose jobs have a wanted status, newest first."""
        out: list[tuple[PromptRecord, dict[str, Any]]] = []
        if wanted <= {"pending", "in_progress"}:  # the queue (polled often): read by state, not scanned
            for state, status in STATUS.items():
                if status not in wanted:
                    continue
                for job in self.store.list(state, 1000, 0):
                    rec = self.index.prompt(job["id"])
                    if rec is not None:
                        out.append((rec, job))
            return sorted(out, key=lambda pair: -pair[0].number)
        finished = bool(wanted & {"completed", "failed", "cancelled"})
        for rec in self.index.recent(SCAN, include_hidden=not finished):
            job = self.store.get(rec.job_id)
            if job is None:
                continue
            if STATUS.get(job["state"]) in wanted and not (rec.hidden and job["state"] in FINAL_STATES):
                out.append((rec, job))
        return out

    def _list(self, wanted: set[str], limit: int, offset: int) -> dict[str, Any]:
        matched = self._candidates(wanted)
        page = matched[offset:offset + limit]
        jobs = [job_item(rec, job, self.store.outputs(job["id"])) for rec, job in page]
        return {"jobs": jobs, "pagination": {"offset": offset, "limit": limit, "total": len(matched),
                                             "has_more": offset + limit < len(matched)}}

    async def list_jobs(self, status: str = Query("", max_length=200),
                        limit: int = Query(100, ge=1, le=1000),
                        offset: int = Query(0, ge=0, le=1_000_000)) -> Response:
        wanted = {s.strip() for s in status.split(",") if s.strip()} or set(KNOWN)
        unknown = wanted - KNOWN
        if unknown:
            return error("request", f"unknown status {sorted(unknown)[0][:50]!r}; known: "
                         f"{', '.join(sorted(KNOWN))}", "status")
        return JSONResponse(await asyncio.to_thread(self._list, wanted, limit, offset))

    def _one(self, prompt_id: str) -> dict[str, Any] | None:
        rec = self.index.by_prompt(prompt_id)
        job = self.store.get(rec.job_id) if rec is not None else None
        if rec is None or job is None:
            return None
        return job_item(rec, job, self.store.outputs(job["id"]), detail=True)

    async def get_job(self, prompt_id: str) -> Response:
        found = await asyncio.to_thread(self._one, prompt_id[:MAX_PROMPT_ID + 1])
        if found is None:
            return error("not_found", f"no job {prompt_id[:200]!r}", "id", status=404)
        return JSONResponse(found)

    async def cancel_job(self, prompt_id: str) -> Response:
        job_id = await asyncio.to_thread(self.index.job, prompt_id[:MAX_PROMPT_ID + 1])
        if job_id is None:
            return error("not_found", f"no job {prompt_id[:200]!r}", "id", status=404)
        await asyncio.to_thread(self.service.cancel, job_id)
        return Response(status_code=200)

    def router(self) -> APIRouter:
        r = APIRouter()
        r.add_api_route("/jobs", self.list_jobs, methods=["GET"], include_in_schema=False)
        r.add_api_route("/jobs/{prompt_id}", self.get_job, methods=["GET"], include_in_schema=False)
        r.add_api_route("/jobs/{prompt_id}/cancel", self.cancel_job, methods=["POST"],
                        include_in_schema=False)
        return r
