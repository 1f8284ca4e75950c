"""ComfyUI's queue and history shapes, read from our job store and the prompt index.

A queue item is ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``; a history
entry is ``{"prompt": item, "outputs": {node id: {"images": [...]}}, "status": {"status_str",
"completed", "messages"}, "meta": {...}}``. An image is ``{"filename", "subfolder", "type"}``:
our outputs answer with the job id as ``subfolder`` and type ``output``, which ``GET /view``
turns back into the job's output file and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.protocol import FINAL_STATES, JobState
from orchestrator.server.comfy.index import PromptIndex, PromptRecord


def comfy_ids(graph: dict[str, Any] | None) -> dict[str, str]:
    """Our node id -> ComfyUI node id, from an imported graph's ``meta.comfy.id``."""
    out: dict[str, str] = {}
    for node_id, node in ((graph or {}).get("nodes") or {}).items():
        comfy = (node.get("meta") or {}).get("comfy") if isinstance(node, dict) else None
        if isinstance(comfy, dict) and comfy.get("id") is not None:
            out[node_id] = str(comfy["id"])
    return out


def comfy_classes(graph: dict[str, Any] | None) -> dict[str, str]:
    """ComfyUI node id -> its class_type, from an imported graph."""
    out: dict[str, str] = {}
    for node in ((graph or {}).get("nodes") or {}).values():
        comfy = (node.get("meta") or {}).get("comfy") if isinstance(node, dict) else None
        if isinstance(comfy, dict) and comfy.get("id") is not None:
            out.setdefault(str(comfy["id"]), str(comfy.get("class_type") or ""))
    return out


def output_images(job: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ComfyUI node id -> ``{"images": [...]}`` for a job's recorded outputs."""
    ids = comfy_ids(job.get("graph"))
    out: dict[str, dict[str, Any]] = {}
    for o in outputs:
        cid = ids.get(o["node"], o["node"])
        filename = Path(o["path"]).name if o.get("path") else f"{o['name']}.png"
        out.setdefault(cid, {"images": []})["images"].append(
            {"filename": filename, "subfolder": job["id"], "type": "output"})
    return out


def queue_item(rec: PromptRecord, job: dict[str, Any]) -> list[Any]:
    comfy = (job.get("request") or {}).get("comfy") or {}
    return [rec.number, rec.prompt_id, comfy.get("prompt") or {}, comfy.get("extra_data") or {},
            list(rec.outputs)]


def error_message(job: dict[str, Any]) -> dict[str, Any]:
    """ComfyUI's ``execution_error`` data for a failed job (ComfyUI node ids)."""
    errors = job.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    ids = comfy_ids(job.get("graph"))
    classes = comfy_classes(job.get("graph"))
    node = first.get("node")
    cid = ids.get(node, node) if isinstance(node, str) else None
    return {"node_id": cid or "", "node_type": classes.get(cid or "", ""),
            "executed": [], "exception_message": str(first.get("message") or "the job failed"),
            "exception_type": str(first.get("type") or "error"), "traceback": [],
            "current_inputs": {}, "current_outputs": {}, "errors": errors}


def history_entry(rec: PromptRecord, job: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    state = job["state"]
    stamp = int((job.get("finished_at") or job.get("created_at") or 0) * 1000)
    start = int((job.get("started_at") or job.get("created_at") or 0) * 1000)
    messages: list[list[Any]] = [["execution_start", {"prompt_id": rec.prompt_id, "timestamp": start}]]
    if state == JobState.SUCCEEDED.value:
        messages.append(["execution_success", {"prompt_id": rec.prompt_id, "timestamp": stamp}])
    elif state == JobState.CANCELLED.value:
        messages.append(["execution_interrupted", {"prompt_id": rec.prompt_id, "timestamp": stamp,
                                                   "node_id": None, "node_type": None, "executed": []}])
    else:
        messages.append(["execution_error", {"prompt_id": rec.prompt_id, "timestamp": stamp,
                                             **error_message(job)}])
    images = output_images(job, outputs)
    return {"prompt": queue_item(rec, job), "outputs": images,
            "status": {"status_str": "success" if state == JobState.SUCCEEDED.value else "error",
                       "completed": state == JobState.SUCCEEDED.value, "messages": messages},
            "meta": {cid: {"node_id": cid, "display_node": cid, "parent_node": None, "real_node_id": cid}
                     for cid in images}}


def history(index: PromptIndex, store: Any, *, max_items: int | None = None,
            offset: int = 0) -> dict[str, Any]:
    """The finished prompts, newest first (at most ``max_items``)."""
    out: dict[str, Any] = {}
    want = max_items if max_items is not None else 10_000
    page, skip = 0, offset
    gone: set[str] = set()
    while len(out) < want:
        recs = index.recent(200, offset=page * 200)
        if not recs:
            break
        page += 1
        for rec in recs:
            job = store.get(rec.job_id)
            if job is None:
                gone.add(rec.job_id)
                continue
            if job["state"] not in FINAL_STATES:
                continue
            if skip:
                skip -= 1
                continue
            out[rec.prompt_id] = history_entry(rec, job, store.outputs(rec.job_id))
            if len(out) >= want:
                break
    if gone:
        index.forget(gone)
    return out


def one_history(index: PromptIndex, store: Any, prompt_id: str) -> dict[str, Any]:
    rec = index.by_prompt(prompt_id)
    job = store.get(rec.job_id) if rec is not None else None
    if rec is None or job is None or rec.hidden or job["state"] not in FINAL_STATES:
        return {}
    return {prompt_id: history_entry(rec, job, store.outputs(rec.job_id))}


def queue(index: PromptIndex, store: Any, limit: int = 1000) -> dict[str, list[Any]]:
    """``{"queue_running": [...], "queue_pending": [...]}``: unfinished prompts, in run order."""
    running, pending = [], []
    for state in (JobState.RUNNING, JobState.PLANNING, JobState.QUEUED):
        for job in store.list(state.value, limit, 0):
            rec = index.prompt(job["id"])
            if rec is None:
                continue  # a job of our own API: in our queue, not shown to ComfyUI clients
            item = queue_item(rec, job)
            if state is JobState.QUEUED:
                pending.append((-(job.get("priority") or 0), rec.number, item))
            else:
                running.append((rec.number, item))
    pending.sort(key=lambda t: (t[0], t[1]))
    running.sort(key=lambda t: t[0])
    return {"queue_running": [i for _, i in running], "queue_pending": [i for _, _, i in pending]}
