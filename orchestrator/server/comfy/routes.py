"""ComfyUI's HTTP API on our queue: prompt, queue, interrupt, history, view, uploads.

Every route answers at its ComfyUI path and under ``/api/`` (and ``/comfy/api/``, where the
editor served at ``/comfy/`` calls it); see :func:`orchestrator.server.comfy.add_comfy_protocol`.
Refusals keep ComfyUI's shape where ComfyUI has one (``POST /prompt``: ``{"error",
"node_errors"}``) and always carry our ``{"errors": [{type, message, node, field}]}`` too.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from orchestrator.protocol import FINAL_STATES, JobState
from orchestrator.server.comfy.history import history, one_history, queue
from orchestrator.server.comfy.index import PromptIndex
from orchestrator.server.comfy.submit import MAX_CLIENT_ID, MAX_PROMPT_ID, comfy_error, top_error, translate
from orchestrator.server.inputs import UploadError, parse_multipart, store_input
from orchestrator.server.json_body import BodyError, loads_strict
from orchestrator.server.request_checks import job_id_error
from orchestrator.state.input_paths import InputPathError, name_problem, open_confined
from orchestrator.state.outputs import SAFE_NAME
from orchestrator.state.store import IdempotencyConflict, QueueFull

MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
         ".bmp": "image/bmp", ".tiff": "image/tiff", ".gif": "image/gif"}
MAX_IDS = 1000  # prompt ids in one POST /queue or /history delete
INPUT_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask"})  # their "image" names an input file


def error(type_: str, message: str, field: str | None = None, status: int = 400,
          **extra: Any) -> JSONResponse:
    return JSONResponse({"errors": [{"type": type_, "message": message, "node": None, "field": field,
                                     **extra}]}, status_code=status)


def prompt_refused(status: int, err: dict[str, Any], node_errors: dict[str, Any] | None = None,
                   errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """ComfyUI's refusal (``error``, ``node_errors``) with our structured ``errors`` beside it."""
    ours = errors if errors is not None else [
        {"type": err["type"], "message": err["message"], "node": None, "field": None}]
    return JSONResponse({"error": err, "node_errors": node_errors or {}, "errors": ours}, status_code=status)


def _flat_errors(node_errors: dict[str, Any], err: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for cid, entry in node_errors.items():
        for e in entry["errors"]:
            extra = dict(e.get("extra_info") or {})
            ours = extra.pop("field", None)
            out.append({"type": extra.pop("type", e["type"]), "message": e["message"], "node": cid,
                        "field": extra.get("input_name") or ours,
                        **{k: v for k, v in extra.items()
                           if k not in ("node", "input_name", "received_value")}})
    for e in (err.get("extra_info") or {}).get("errors") or []:
        out.append(e)
    return out or [{"type": err["type"], "message": err["message"], "node": None, "field": "prompt"}]


def _priority(body: dict[str, Any]) -> int | JSONResponse:
    if body.get("front") is True:
        return 100
    number = body.get("number")
    if number is None:
        return 0
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return error("request", "'number' must be a number", "number")
    return max(-100, min(100, -int(number)))


def _ids(value: Any, field: str) -> list[str] | JSONResponse:
    if not isinstance(value, list) or len(value) > MAX_IDS or not all(
            isinstance(v, str) and 0 < len(v) <= MAX_PROMPT_ID for v in value):
        return error("request", f"'{field}' must be a list of at most {MAX_IDS} prompt ids", field)
    return list(value)


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


async def _json(request: Request, depth: int) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    return loads_strict(body, max_depth=depth)


class ComfyRoutes:
    """The routes, bound to the daemon's service, settings, models and prompt index."""

    def __init__(self, service: Any, settings: Any, models: Any, index: PromptIndex, hub: Any,
                 mappings: Any) -> None:
        self.service = service
        self.store = service.store
        self.settings = settings
        self.models = models
        self.index = index
        self.hub = hub
        self.mappings = mappings  # () -> plugins' ComfyUI mappings
        self.input_root = Path(settings.effective_input_dir)

    # -- POST /prompt ----------------------------------------------------------------------

    async def post_prompt(self, request: Request) -> JSONResponse:
        try:
            body = await _json(request, self.settings.limits.json_depth)
        except BodyError as exc:
            return prompt_refused(400, top_error("invalid_prompt", f"Invalid prompt: {exc}", str(exc)),
                                  errors=[exc.to_dict()])
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        if not isinstance(body, dict):
            return prompt_refused(400, top_error("invalid_prompt", "the body must be a JSON object"))
        if not self.service.accepting:
            return JSONResponse({"errors": [{"type": "unavailable", "message": "the daemon is shutting down",
                                             "node": None, "field": None}]}, status_code=503,
                                headers={"Retry-After": "5"})
        client_id = body.get("client_id")
        if client_id is not None and not _short_text(client_id, MAX_CLIENT_ID):
            return error("request", f"'client_id' must be 1-{MAX_CLIENT_ID} printable characters",
                         "client_id")
        prompt_id = body.get("prompt_id")
        if prompt_id is None:
            prompt_id = str(uuid.uuid4())
        elif not _short_text(prompt_id, MAX_PROMPT_ID):
            return error("request", f"'prompt_id' must be 1-{MAX_PROMPT_ID} printable characters",
                         "prompt_id")
        extra_data = body.get("extra_data", {})
        if not isinstance(extra_data, dict):
            return error("request", "'extra_data' must be an object", "extra_data")
        priority = _priority(body)
        if isinstance(priority, JSONResponse):
            return priority
        catalog, targets = self.service.engine.catalog, body.get("partial_execution_targets")
        body = {**body, "prompt": await asyncio.to_thread(self._with_input_names, body.get("prompt"))}
        t = await asyncio.to_thread(  # the first call loads plugins' mappings: off the event loop too
            lambda: translate(body.get("prompt"), catalog, self.settings, self.mappings(), None, targets))
        if t.error is None:
            model_errors = await asyncio.to_thread(self._model_errors, body["prompt"])
            if model_errors:
                t.error = top_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                    "\n".join(f"{c}: {e['message']}" for c, v in model_errors.items()
                                              for e in v["errors"]))
                t.node_errors, t.graph = model_errors, None
        if t.error is not None or t.graph is None:
            err = t.error or top_error("invalid_prompt", "the prompt could not be imported")
            return prompt_refused(400, err, t.node_errors, _flat_errors(t.node_errors, err))
        return await self._enqueue(body, t, prompt_id, client_id, extra_data, priority)

    def _model_errors(self, prompt: dict[str, Any]) -> dict[str, Any]:
        """ComfyUI's ``value_not_in_list`` for model widgets naming no model we have."""
        from orchestrator.server.comfy.misc import model_names
        from orchestrator.server.comfy.object_info import MODEL_WIDGETS

        if self.models is None:
            return {}
        out: dict[str, Any] = {}
        for cid, node in prompt.items():
            for widget, kind in MODEL_WIDGETS.items():
                value = (node.get("inputs") or {}).get(widget)
                if not isinstance(value, str) or kind == "clip":
                    continue
                if kind == "upscaler" and node.get("class_type") != "UpscaleModelLoader":
                    continue
                try:
                    known = self.models.entry(value, kind) is not None if kind == "checkpoint" \
                        else value in self.models.file_names(kind) or value in self.models
                except Exception:  # noqa: BLE001 - ModelError: not a model we have
                    known = False
                if known:
                    continue
                names = model_names(self.models, kind)
                shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
                err = {"type": "value_not_in_list", "node": cid, "field": widget, "value": value[:200],
                       "message": f"Value not in list: {widget}: {value[:200]!r} not in [{shown}]"}
                out.setdefault(cid, {"errors": [], "dependent_outputs": [],
                                     "class_type": node.get("class_type")})
                out[cid]["errors"].append(comfy_error(err))
        return out

    async def _enqueue(self, body: dict[str, Any], t: Any, prompt_id: str, client_id: str | None,
                       extra_data: dict[str, Any], priority: int) -> JSONResponse:
        graph_doc = t.graph.to_dict()
        request_doc = {"comfy": {"prompt_id": prompt_id, "client_id": client_id, "prompt": body["prompt"],
                                 "extra_data": extra_data, "outputs": t.outputs}}
        digest = hashlib.sha256(json.dumps(request_doc, sort_keys=True).encode()).hexdigest()
        try:
            job, _created = await asyncio.to_thread(
                self.store.create, kind="graph", request=request_doc, priority=priority,
                name=f"ComfyUI prompt {prompt_id}"[:200], graph=graph_doc,
                idempotency_key=f"comfy-prompt:{prompt_id}", body_hash=digest,
                max_queued=self.settings.limits.queued)
        except IdempotencyConflict:
            return prompt_refused(400, top_error("invalid_prompt", f"prompt_id {prompt_id!r} was used for "
                                                 "another prompt", field="prompt_id"))
        except QueueFull as exc:
            return JSONResponse({"error": top_error("queue_full", str(exc)), "node_errors": {},
                                 "errors": [exc.to_dict()]}, status_code=429, headers={"Retry-After": "2"})
        number = await asyncio.to_thread(self.index.add, prompt_id, job["id"], client_id=client_id,
                                         outputs=t.outputs)
        rec = await asyncio.to_thread(self.index.by_prompt, prompt_id)
        self.service.notify()
        if rec is not None:
            self.hub.follow(rec)
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": {},
                             "job_id": job["id"], "warnings": t.warnings})

    async def get_prompt(self) -> dict[str, Any]:
        remaining = await asyncio.to_thread(self.hub.queue_remaining)
        return {"exec_info": {"queue_remaining": remaining}}

    # -- queue, interrupt, history ---------------------------------------------------------

    async def get_queue(self) -> dict[str, Any]:
        return await asyncio.to_thread(queue, self.index, self.store)

    async def post_queue(self, request: Request) -> Response:
        try:
            body = await _json(request, self.settings.limits.json_depth)
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=400)
        if not isinstance(body, dict):
            return error("request", "the body must be a JSON object", "body")
        if body.get("clear") is True:
            pending = await asyncio.to_thread(queue, self.index, self.store)
            for item in pending["queue_pending"]:
                await asyncio.to_thread(self._cancel, item[1], only_queued=True)
        if "delete" in body:
            ids = _ids(body["delete"], "delete")
            if isinstance(ids, JSONResponse):
                return ids
            for pid in ids:
                await asyncio.to_thread(self._cancel, pid, only_queued=True)
        return Response(status_code=200)

    def _cancel(self, prompt_id: str, *, only_queued: bool = False) -> bool:
        job_id = self.index.job(prompt_id)
        if job_id is None:
            return False
        job = self.store.get(job_id)
        if job is None or job["state"] in FINAL_STATES:
            return False
        if only_queued and job["state"] != JobState.QUEUED.value:
            return False
        self.service.cancel(job_id)
        return True

    async def interrupt(self, request: Request) -> Response:
        try:
            body = await _json(request, self.settings.limits.json_depth)
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=400)
        if not isinstance(body, dict):
            return error("request", "the body must be a JSON object ({} or {\"prompt_id\": ...})", "body")
        prompt_id = body.get("prompt_id")
        if prompt_id is not None:
            if not isinstance(prompt_id, str) or len(prompt_id) > MAX_PROMPT_ID:
                return error("request", "'prompt_id' must be a prompt id", "prompt_id")
            await asyncio.to_thread(self._cancel, prompt_id)
            return Response(status_code=200)
        for job_id in list(self.service.running()):  # ComfyUI: whatever is executing now
            await asyncio.to_thread(self.service.cancel, job_id)
        return Response(status_code=200)

    async def get_history(self, max_items: int | None = Query(None, ge=1, le=10_000),
                          offset: int = Query(0, ge=0, le=1_000_000)) -> dict[str, Any]:
        return await asyncio.to_thread(history, self.index, self.store, max_items=max_items, offset=offset)

    async def get_history_one(self, prompt_id: str) -> dict[str, Any]:
        if len(prompt_id) > MAX_PROMPT_ID:
            return {}
        return await asyncio.to_thread(one_history, self.index, self.store, prompt_id)

    async def post_history(self, request: Request) -> Response:
        try:
            body = await _json(request, self.settings.limits.json_depth)
        except BodyError as exc:
            return JSONResponse({"errors": [exc.to_dict()]}, status_code=400)
        if not isinstance(body, dict):
            return error("request", "the body must be a JSON object", "body")
        if body.get("clear") is True:
            await asyncio.to_thread(self.index.hide, None)
        if "delete" in body:
            ids = _ids(body["delete"], "delete")
            if isinstance(ids, JSONResponse):
                return ids
            await asyncio.to_thread(self.index.hide, ids)
        return Response(status_code=200)

    # -- files -----------------------------------------------------------------------------

    async def view(self, filename: str = Query(..., min_length=1, max_length=300),
                   subfolder: str = Query("", max_length=300),
                   type: str = Query("output", max_length=20)) -> Response:
        if type == "input":
            name = f"{subfolder.strip('/')}/{filename}" if subfolder.strip("/") else filename
            try:
                name = await asyncio.to_thread(self.input_name, name)
                data = await asyncio.to_thread(_read_input, self.input_root, name)
            except InputPathError as exc:
                return error("not_found", str(exc), "filename", status=404)
            media = MEDIA.get(Path(filename).suffix.lower(), "application/octet-stream")
            return Response(data, media_type=media,
                            headers={"Cache-Control": "no-cache"})
        if type not in ("output", "temp"):
            return error("request", "type must be 'output', 'input' or 'temp'", "type")
        path = await asyncio.to_thread(self._output_path, subfolder, filename)
        if path is None:
            return error("not_found", f"no output {filename[:200]!r} in {subfolder[:200]!r}", "filename",
                         status=404)
        data = await asyncio.to_thread(path.read_bytes)
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})

    def _output_path(self, job_id: str, filename: str) -> Path | None:
        """The output file ``filename`` of job ``job_id``: only what the store recorded, inside the
        job's output folder."""
        stem = filename[:-4] if filename.endswith(".png") else None
        if stem is None or not SAFE_NAME.match(stem) or job_id_error(job_id) is not None:
            return None
        match = next((o for o in self.store.outputs(job_id) if o["name"] == stem), None)
        if match is None:
            return None
        root = (self.service.outputs_root / job_id).resolve()
        path = Path(match["path"]).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    async def upload_image(self, request: Request) -> JSONResponse:
        try:
            body = await request.body()
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        try:
            info = await asyncio.to_thread(self._upload, body, request.headers.get("content-type", ""), False)
        except UploadError as exc:
            return JSONResponse({"errors": [exc.error]}, status_code=exc.status)
        return JSONResponse(info)

    async def upload_mask(self, request: Request) -> JSONResponse:
        try:
            body = await request.body()
        except ClientDisconnect:
            return error("request", "the body did not arrive in full", "body")
        try:
            info = await asyncio.to_thread(self._upload, body, request.headers.get("content-type", ""), True)
        except UploadError as exc:
            return JSONResponse({"errors": [exc.error]}, status_code=exc.status)
        return JSONResponse(info)

    def _upload(self, body: bytes, content_type: str, mask: bool) -> dict[str, Any]:
        if content_type.split(";")[0].strip().lower() != "multipart/form-data":
            raise UploadError(415, "request", "send multipart/form-data with the file as 'image'",
                              field="content-type")
        data, subfolder = parse_multipart(body, content_type)
        limits = self.settings.limits
        if len(data) > limits.upload_bytes:
            raise UploadError(413, "limit", f"the file is {len(data)} bytes, over the {limits.upload_bytes}-"
                              "byte upload limit", field="image", value=len(data),
                              bound={"le": limits.upload_bytes})
        if mask:
            data = self._masked(body, content_type, data)
        info, _ = store_input(self.input_root, data, subfolder=subfolder or None, max_pixels=limits.pixels,
                              max_total=limits.inputs_bytes)
        sub, _, name = info.name.rpartition("/")
        part = _form_part(body, content_type, "image")
        own = client_file_name(part[1] if part is not None else None)
        if own is not None and own != name:  # the client may name its own file later: keep the link
            self.index.set_upload_name(sub, own, name)
        return {"name": name, "subfolder": sub, "type": "input"}

    def input_name(self, name: str) -> str:
        """An input-file name as a ComfyUI client sends it: a file of the input folder, or else a
        name the client uploaded a file under (the latest such upload), or else unchanged."""
        try:
            open_confined(self.input_root, name).close()
            return name
        except InputPathError:
            pass
        sub, _, base = name.rpartition("/")
        stored = self.index.upload_name(sub, base) if name_problem(name) is None else None
        return (f"{sub}/{stored}" if sub else stored) if stored else name

    def _with_input_names(self, prompt: Any) -> Any:
        """The prompt with LoadImage-style ``image`` values resolved by :meth:`input_name`."""
        if not isinstance(prompt, dict):
            return prompt
        out = {}
        for node_id, node in prompt.items():
            inputs = node.get("inputs") if isinstance(node, dict) else None
            value = inputs.get("image") if isinstance(inputs, dict) else None
            if isinstance(value, str) and node.get("class_type") in INPUT_IMAGE_CLASSES:
                node = {**node, "inputs": {**inputs, "image": self.input_name(value)}}
            out[node_id] = node
        return out

    def _masked(self, body: bytes, content_type: str, mask_bytes: bytes) -> bytes:
        """ComfyUI's ``/upload/mask``: the original image (``original_ref``) with the mask's alpha."""
        from PIL import Image

        from orchestrator.server.inputs import check_image

        ref = _form_field(body, content_type, "original_ref")
        try:
            ref_doc = loads_strict(ref or b"", max_depth=4)
        except BodyError:
            ref_doc = None
        if not isinstance(ref_doc, dict) or not isinstance(ref_doc.get("filename"), str):
            raise UploadError(422, "input", "'original_ref' must be JSON with the original's filename",
                              field="original_ref")
        kind = ref_doc.get("type") or "input"
        sub = str(ref_doc.get("subfolder") or "").strip("/")
        fname = ref_doc["filename"]
        if kind == "input":
            try:
                original = _read_input(self.input_root, f"{sub}/{fname}" if sub else fname)
            except InputPathError as exc:
                raise UploadError(404, "not_found", str(exc), field="original_ref") from None
        else:
            path = self._output_path(sub, fname)
            if path is None:
                raise UploadError(404, "not_found", f"no output {fname[:200]!r}", field="original_ref")
            original = path.read_bytes()
        check_image(original, self.settings.limits.pixels)
        check_image(mask_bytes, self.settings.limits.pixels)
        with Image.open(io.BytesIO(original)) as o, Image.open(io.BytesIO(mask_bytes)) as m:
            out = o.convert("RGBA")
            alpha = m.convert("RGBA").getchannel("A").resize(out.size)
            out.putalpha(alpha)
            buf = io.BytesIO()
            out.save(buf, format="PNG")
        return buf.getvalue()

    # -- router ----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        r = APIRouter()
        r.add_api_route("/prompt", self.post_prompt, methods=["POST"], include_in_schema=False)
        r.add_api_route("/prompt", self.get_prompt, methods=["GET"], include_in_schema=False)
        r.add_api_route("/queue", self.get_queue, methods=["GET"], include_in_schema=False)
        r.add_api_route("/queue", self.post_queue, methods=["POST"], include_in_schema=False)
        r.add_api_route("/interrupt", self.interrupt, methods=["POST"], include_in_schema=False)
        r.add_api_route("/history", self.get_history, methods=["GET"], include_in_schema=False)
        r.add_api_route("/history", self.post_history, methods=["POST"], include_in_schema=False)
        r.add_api_route("/history/{prompt_id}", self.get_history_one, methods=["GET"],
                        include_in_schema=False)
        r.add_api_route("/view", self.view, methods=["GET"], include_in_schema=False)
        r.add_api_route("/upload/image", self.upload_image, methods=["POST"], include_in_schema=False)
        r.add_api_route("/upload/mask", self.upload_mask, methods=["POST"], include_in_schema=False)
        return r


def _read_input(root: Path, name: str) -> bytes:
    with open_confined(root, name) as f:
        return f.read()


def _form_part(body: bytes, content_type: str, field: str) -> tuple[bytes, str | None] | None:
    """``(content, filename)`` of one part of a ``multipart/form-data`` body (RFC 7578), or None."""
    from email.parser import BytesParser
    from email.policy import default as email_policy

    head = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n")
    boundary = head.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        return None
    for chunk in body.split(b"--" + boundary.encode("latin-1", "replace"), 18)[1:17]:
        part_head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = BytesParser(policy=email_policy).parsebytes(part_head.lstrip(b"\r\n") + b"\r\n\r\n")
        try:
            name = headers.get_param("name", header="content-disposition")
            filename = headers.get_filename()
        except Exception:  # noqa: BLE001 - a header the email package cannot read: not this field
            continue
        if name == field:
            return (content[:-2] if content.endswith(b"\r\n") else content), filename
    return None


def _form_field(body: bytes, content_type: str, field: str) -> bytes | None:
    part = _form_part(body, content_type, field)
    return part[0] if part is not None else None


def client_file_name(filename: str | None) -> str | None:
    r"""The name a client uploaded a file under, if one a LoadImage value can be: its last
    component, a plain file name.

    >>> client_file_name(r"C:\pics\cat.png"), client_file_name("../../x.png"), client_file_name("..")
    ('cat.png', 'x.png', None)
    """
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or len(base) > 200 or base in (".", "..") or name_problem(base) is not None:
        return None
    return base
