"""ComfyUI's WebSocket, ``/ws?clientId=``: job events from our store as ComfyUI messages.

One :class:`Hub` per app follows the jobs submitted through ``POST /prompt`` (their event
streams in the store: the same events our SSE stream and CLI read) and turns them into
ComfyUI's messages, sent to the client whose ``client_id`` queued the prompt (to every
socket when none was given):

=============================  ==============================================================
our event                      ComfyUI message
=============================  ==============================================================
``running``                    ``execution_start``, ``execution_cached`` (``nodes: []``)
``node_finished`` (cached)     ``execution_cached`` with the node's ComfyUI id
``node_started``               ``executing`` (``node``/``display_node``: the ComfyUI id)
``step`` / ``tile``            ``progress`` (``value``/``max``; tiles of sampler steps folded
                               into one count: :func:`progress_value`) and, with a
                               preview, a binary frame: ``>I`` 1 (preview image), ``>I`` 2
                               (PNG), the PNG bytes
``done`` succeeded             ``executed`` per output node (its images), ``execution_success``
``done`` failed                ``execution_error`` (node id and class, message, type)
``done`` cancelled             ``execution_interrupted``
(any ``done``)                 ``executing`` with ``node: null``: the prompt is over
=============================  ==============================================================

Binary previews go only to sockets that sent ComfyUI's ``feature_flags`` message (the editor
does): ComfyUI itself sends none unless started with a preview method, and simple API clients
take any binary message for a final image.

``status`` (``exec_info.queue_remaining``: queued and running jobs, ours included) goes to a
socket when it connects (with its ``sid``) and to every socket when the count changes.
Open sockets count against ``server.max_streams`` with the event streams: beyond, the
handshake is refused with 429.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.protocol import FINAL_STATES, JobState
from orchestrator.server.comfy.history import comfy_classes, comfy_ids, error_message, output_images
from orchestrator.server.comfy.index import PromptIndex, PromptRecord

log = logging.getLogger("orchestrator.comfy")

POLL_S = 0.1
PREVIEW_IMAGE = 1  # ComfyUI's BinaryEventTypes.PREVIEW_IMAGE
PNG_FORMAT = 2  # 1: JPEG, 2: PNG
MAX_CLIENT_MESSAGE = 64 * 1024  # what a client may send us (feature flags); more closes the socket
CLIENT_ID_MAX = 200


def now_ms() -> int:
    return int(time.time() * 1000)


def preview_frame(png: bytes) -> bytes:
    """ComfyUI's binary preview message for a PNG.

    >>> preview_frame(b"PNG")[:8]
    b'\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x02'
    """
    return struct.pack(">I", PREVIEW_IMAGE) + struct.pack(">I", PNG_FORMAT) + png


def progress_value(ev: dict[str, Any]) -> tuple[int, int]:
    """``(value, max)`` of a step or tile event; a tile event inside sampler steps (MultiDiffusion)
    counts every tile of every step, so the bar moves once per tile and ends once.

    >>> progress_value({"event": "step", "step": 3, "total": 20})
    (3, 20)
    >>> progress_value({"event": "tile", "step": 2, "total": 4, "sampler_step": 3, "sampler_total": 10})
    (10, 40)
    >>> progress_value({"event": "tile", "step": "x", "total": 4})
    (0, 0)
    """
    value, total = ev.get("step"), ev.get("total")
    if not (isinstance(value, int) and isinstance(total, int)) or total <= 0:
        return 0, 0
    s, n = ev.get("sampler_step"), ev.get("sampler_total")
    if ev.get("event") == "tile" and isinstance(s, int) and isinstance(n, int) and n > 0 and 1 <= s <= n:
        return (s - 1) * total + value, n * total
    return value, total


@dataclass
class Follower:
    """One prompt being followed: where its event stream is, what was said last."""

    record: PromptRecord
    cursor: int = 0
    ids: dict[str, str] | None = None  # our node id -> ComfyUI id (from the job's graph)
    classes: dict[str, str] = field(default_factory=dict)
    last_node: str | None = None
    started: bool = False


class Hub:
    """Follows ComfyUI-submitted jobs and fans their messages out to sockets."""

    def __init__(self, service: Any, index: PromptIndex) -> None:
        self.service = service
        self.store = service.store
        self.index = index
        self.sockets: dict[str, set[WebSocket]] = {}
        self.previews: set[WebSocket] = set()  # sockets that announced their feature flags
        self.following: dict[str, Follower] = {}
        self._task: asyncio.Task[None] | None = None
        self._remaining: int | None = None
        self._recovered = False

    # -- sockets ---------------------------------------------------------------------------

    def queue_remaining(self) -> int:
        counts = self.store.counts()
        return sum(counts.get(s.value, 0) for s in (JobState.QUEUED, JobState.PLANNING, JobState.RUNNING))

    def status(self, remaining: int, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": remaining}}}
        if sid is not None:
            data["sid"] = sid
        return {"type": "status", "data": data}

    async def serve(self, ws: WebSocket, client_id: str | None) -> None:
        """Run one accepted socket until it closes."""
        sid = client_id or uuid.uuid4().hex
        try:
            remaining = await asyncio.to_thread(self.queue_remaining)
            await ws.send_json(self.status(remaining, sid))  # first, as ComfyUI: the client learns its sid
            self.sockets.setdefault(sid, set()).add(ws)
            self.ensure_running()
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text") or ""
                data = message.get("bytes") or b""
                if len(text) + len(data) > MAX_CLIENT_MESSAGE:
                    await ws.close(code=1009)
                    return
                await self._client_message(ws, text)
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            self.previews.discard(ws)
            group = self.sockets.get(sid)
            if group is not None:
                group.discard(ws)
                if not group:
                    self.sockets.pop(sid, None)

    async def _client_message(self, ws: WebSocket, text: str) -> None:
        """A client's ``feature_flags`` gets ours back; anything else is ignored."""
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            return
        if isinstance(doc, dict) and doc.get("type") == "feature_flags":
            from orchestrator.server.comfy.misc import feature_flags

            self.previews.add(ws)
            await ws.send_json({"type": "feature_flags", "data": feature_flags()})

    async def _send(self, client_id: str | None, message: dict[str, Any] | bytes) -> None:
        if client_id is not None and client_id in self.sockets:
            targets = list(self.sockets[client_id])
        elif client_id is None:
            targets = [ws for group in self.sockets.values() for ws in group]
        else:
            return  # its client is gone: ComfyUI drops the message too
        if isinstance(message, bytes):
            targets = [ws for ws in targets if ws in self.previews]
        for ws in targets:
            try:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_json(message)
            except Exception:  # noqa: BLE001 - a socket closing meanwhile; its serve() cleans up
                pass

    # -- following jobs --------------------------------------------------------------------

    def follow(self, record: PromptRecord) -> None:
        """Follow a newly queued prompt (from ``POST /prompt``)."""
        self.following.setdefault(record.job_id, Follower(record))
        self.ensure_running()

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="comfy-hub")

    def _recover(self) -> None:
        """After a restart: follow the prompts whose jobs are not finished yet."""
        for state in (JobState.QUEUED, JobState.PLANNING, JobState.RUNNING):
            for job in self.store.list(state.value, 1000, 0):
                rec = self.index.prompt(job["id"])
                if rec is not None and rec.job_id not in self.following:
                    # from now on: what an earlier daemon's run of it said is not said again
                    self.following[rec.job_id] = Follower(rec, cursor=self._last_event(rec.job_id))

    def _last_event(self, job_id: str) -> int:
        cursor = 0
        while True:
            events = self.store.events_after(job_id, cursor)
            if not events:
                return cursor
            cursor = events[-1]["id"]

    def _poll(self) -> tuple[int, dict[str, list[dict[str, Any]]], dict[str, dict[str, Any] | None]]:
        """(queue remaining, new events per followed job, jobs whose graph or end is needed)."""
        if not self._recovered:
            self._recover()
            self._recovered = True
        events: dict[str, list[dict[str, Any]]] = {}
        jobs: dict[str, dict[str, Any] | None] = {}
        for job_id, f in list(self.following.items()):
            evs = self.store.events_after(job_id, f.cursor)
            events[job_id] = evs
            if f.ids is None or any(e.get("event") == "done" for e in evs):
                jobs[job_id] = self.store.get(job_id)
        return self.queue_remaining(), events, jobs

    async def _run(self) -> None:
        try:
            while self.sockets or self.following:
                remaining, events, jobs = await asyncio.to_thread(self._poll)
                for job_id, evs in events.items():
                    f = self.following.get(job_id)
                    if f is None:
                        continue
                    job = jobs.get(job_id)
                    if job_id in jobs and job is None:  # pruned meanwhile
                        self.following.pop(job_id, None)
                        continue
                    if f.ids is None and job is not None:
                        f.ids, f.classes = comfy_ids(job.get("graph")), comfy_classes(job.get("graph"))
                    for ev in evs:
                        f.cursor = ev["id"]
                        await self._translate(f, ev, job)
                    if job is not None and job["state"] in FINAL_STATES and \
                            any(e.get("event") == "done" for e in evs):
                        self.following.pop(job_id, None)
                if remaining != self._remaining:
                    self._remaining = remaining
                    await self._send(None, self.status(remaining))
                await asyncio.sleep(POLL_S)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the ComfyUI message hub stopped")

    async def _translate(self, f: Follower, ev: dict[str, Any], job: dict[str, Any] | None) -> None:
        rec = f.record
        pid, client = rec.prompt_id, rec.client_id
        kind = ev.get("event")
        ids = f.ids or {}
        if kind == "running" or (kind in ("node_started", "step", "tile") and not f.started):
            if not f.started:
                f.started = True
                await self._send(client, {"type": "execution_start",
                                          "data": {"prompt_id": pid, "timestamp": now_ms()}})
                await self._send(client, {"type": "execution_cached",
                                          "data": {"nodes": [], "prompt_id": pid, "timestamp": now_ms()}})
            if kind == "running":
                return
        node = ids.get(str(ev.get("node")), None) if ev.get("node") is not None else None
        if kind == "node_finished" and ev.get("cached") and node is not None:
            await self._send(client, {"type": "execution_cached",
                                      "data": {"nodes": [node], "prompt_id": pid, "timestamp": now_ms()}})
        elif kind == "node_started" and node is not None and node != f.last_node:
            f.last_node = node
            await self._send(client, {"type": "executing",
                                      "data": {"node": node, "display_node": node, "prompt_id": pid}})
        elif kind in ("step", "tile") and node is not None:
            value, total = progress_value(ev)
            if total:
                await self._send(client, {"type": "progress", "data": {
                    "value": value, "max": total, "prompt_id": pid, "node": node}})
            if ev.get("preview"):
                png = self.service.preview(rec.job_id)
                if png:
                    await self._send(client, preview_frame(png))
        elif kind == "done":
            await self._finish(f, ev, job)

    async def _finish(self, f: Follower, ev: dict[str, Any], job: dict[str, Any] | None) -> None:
        rec = f.record
        pid, client = rec.prompt_id, rec.client_id
        state = ev.get("state")
        if state == JobState.CANCELLED.value and not f.started:
            return  # taken out of the queue before it ran: ComfyUI says nothing but the new status
        if state == JobState.SUCCEEDED.value and job is not None:
            outputs = await asyncio.to_thread(self.store.outputs, rec.job_id)
            for cid, out in output_images(job, outputs).items():
                await self._send(client, {"type": "executed", "data": {
                    "node": cid, "display_node": cid, "output": out, "prompt_id": pid}})
            await self._send(client, {"type": "execution_success",
                                      "data": {"prompt_id": pid, "timestamp": now_ms()}})
        elif state == JobState.CANCELLED.value:
            await self._send(client, {"type": "execution_interrupted", "data": {
                "prompt_id": pid, "node_id": f.last_node, "node_type": f.classes.get(f.last_node or ""),
                "executed": [], "timestamp": now_ms()}})
        else:
            data = error_message({**(job or {}), "errors": ev.get("errors") or (job or {}).get("errors")})
            await self._send(client, {"type": "execution_error",
                                      "data": {"prompt_id": pid, "timestamp": now_ms(), **data}})
        await self._send(client, {"type": "executing",
                                  "data": {"node": None, "display_node": None, "prompt_id": pid}})


async def websocket_endpoint(ws: WebSocket, hub: Hub, slots: Any) -> None:
    """``/ws``: the Guard checked Host, Origin and token; here the socket cap, then the hub."""
    client_id = ws.query_params.get("clientId") or None
    if client_id is not None and (len(client_id) > CLIENT_ID_MAX or not client_id.isprintable()):
        await _deny(ws, 400, "request", f"clientId must be 1-{CLIENT_ID_MAX} printable characters")
        return
    if not slots.acquire():
        await _deny(ws, 429, "too_many_streams", "too many event streams and sockets are open; try "
                    "again later")
        return
    try:
        await ws.accept()
        await hub.serve(ws, client_id)
    finally:
        slots.release()


async def _deny(ws: WebSocket, status: int, type_: str, message: str) -> None:
    """Refuse a handshake with an HTTP answer where the server can send one, else close it."""
    from starlette.responses import JSONResponse

    body = {"errors": [{"type": type_, "message": message, "node": None, "field": "clientId"
                        if status == 400 else None}]}
    if "websocket.http.response" in (ws.scope.get("extensions") or {}):
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await ws.close(code=1008 if status != 429 else 1013)
