"""``GET /jobs/{id}/events``: a job's events as Server-Sent Events (resumable) or one JSON page."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Query, Request

from orchestrator.protocol import JOB_EVENTS
from orchestrator.server.connections import ConnectionGovernor, SlotStreamingResponse
from orchestrator.server.request_checks import MAX_CURSOR, job_id_error, last_event_id, shown
from orchestrator.server.routes.errors import error, errors
from orchestrator.state.store import JobStore

EVENT_POLL_S = 0.1
HEARTBEAT_S = 10.0


def add_event_routes(app: FastAPI, store: JobStore, governor: ConnectionGovernor) -> None:
    """The event route; each open stream holds one of ``governor``'s stream slots."""

    @app.get(JOB_EVENTS)
    async def job_events(id: str, request: Request, after: int = Query(0, ge=0, le=MAX_CURSOR),
                         format: str = Query("sse", pattern="^(sse|json)$")) -> Any:
        if (bad := job_id_error(id)) is not None:
            return errors(404, bad)
        if store.get(id) is None:
            return errors(404, error("not_found", f"no job {id!r}", field="id"))
        last = request.headers.get("last-event-id")
        if last is not None:
            cursor = last_event_id(last)
            if cursor is None:
                return errors(422, error("request", f"Last-Event-ID {shown(last)} is not an event id "
                                         f"(ASCII digits, at most {MAX_CURSOR})", field="Last-Event-ID"))
            after = max(after, cursor)
        if format == "json":
            return {"events": store.events_after(id, after)}
        if not governor.streams.acquire():
            governor.counters.streams_refused += 1
            return errors(429, error("too_many_streams", f"{governor.max_streams} event streams "
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
