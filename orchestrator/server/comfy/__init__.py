"""ComfyUI's HTTP and WebSocket API, and its editor, on this daemon's queue.

:func:`add_comfy_protocol` (one line in ``create_app``) adds, on the same port:

- ComfyUI's routes (:mod:`.routes`, :mod:`.routes_misc`) at their ComfyUI paths, under
  ``/api/`` (the current frontend's prefix) and under ``/comfy/api/`` (the editor served at
  ``/comfy/`` calls that). At the root, ``GET /models`` stays ours (the model library);
  ComfyUI's model folders are ``/api/models`` and ``/api/models/{folder}``;
- the WebSocket at ``/ws``, ``/api/ws`` and ``/comfy/ws`` (:mod:`.ws`);
- the editor at ``/comfy/`` when ``comfyui-frontend-package`` is installed (:mod:`.editor`).

A prompt becomes a job in our store (durable, listed by our API, CLI and dashboard,
cancellable from either side); the prompt id <-> job id map is ``<state_dir>/comfy/prompts.sqlite``
(:mod:`.index`). Security is the Guard's, as for every route: Host, Origin, token (on the
socket too), body limits (``/upload/*`` have the upload limit), confined paths.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.websockets import WebSocket

from orchestrator.plugins import builtin_comfy_mappings, comfy_mappings, plugin_host_from_settings
from orchestrator.protocol import COMFY_PREFIXES, COMFY_WEBSOCKETS
from orchestrator.server.comfy.editor import mount_editor
from orchestrator.server.comfy.index import PromptIndex
from orchestrator.server.comfy.misc import UserStore, model_names
from orchestrator.server.comfy.object_info import ObjectInfo
from orchestrator.server.comfy.routes import ComfyRoutes
from orchestrator.server.comfy.routes_jobs import JobsRoutes
from orchestrator.server.comfy.routes_misc import MiscRoutes
from orchestrator.server.comfy.ws import Hub, websocket_endpoint

PREFIXES = COMFY_PREFIXES
WS_PATHS = COMFY_WEBSOCKETS
UPLOAD_PATHS = tuple(p + r for p in PREFIXES for r in ("/upload/image", "/upload/mask"))

__all__ = ["PREFIXES", "UPLOAD_PATHS", "WS_PATHS", "add_comfy_protocol"]


def add_comfy_protocol(app: FastAPI, service: Any, settings: Any, models: Any = None,
                       governor: Any = None) -> Hub:
    """Add ComfyUI's API, socket and editor to ``app``; returns the message hub."""
    from orchestrator.server.inputs import MULTIPART_OVERHEAD, list_inputs

    state = settings.state_dir / "comfy"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    index = PromptIndex(state / "prompts.sqlite")
    hub = Hub(service, index)
    cache: dict[str, list[Any]] = {}

    def mappings() -> list[Any]:
        if "mappings" not in cache:
            cache["mappings"] = comfy_mappings(plugin_host_from_settings(settings)[0])
        return cache["mappings"]

    def input_names() -> list[str]:
        page, _ = list_inputs(settings.effective_input_dir, limit=1000)
        return [p.name for p in page]

    info = ObjectInfo(service.engine.catalog, _plugin_mappings(mappings),
                      lambda kind: model_names(models, kind), input_names)
    routes = ComfyRoutes(service, settings, models, index, hub, mappings)
    misc = MiscRoutes(settings, models, info, UserStore(state))
    jobs = JobsRoutes(service, index)
    for prefix in PREFIXES:
        app.include_router(routes.router(), prefix=prefix)
        app.include_router(misc.router(with_models=bool(prefix)), prefix=prefix)
        if prefix:  # at the root, /jobs is our own API
            app.include_router(jobs.router(), prefix=prefix)
    limits = dict(getattr(app.state, "body_limits", None) or {})
    for path in UPLOAD_PATHS:
        limits[path] = max(settings.limits.request_bytes,
                           settings.limits.upload_bytes * 2 + MULTIPART_OVERHEAD)
    app.state.body_limits = limits
    slots = governor.streams if governor is not None else None

    async def socket(ws: WebSocket) -> None:
        await websocket_endpoint(ws, hub, slots if slots is not None else _Unbounded())

    for path in WS_PATHS:
        app.add_api_websocket_route(path, socket)
    mount_editor(app)
    return hub


def _plugin_mappings(mappings: Any) -> list[Any]:
    """Plugins' ComfyUI mappings; the built-in plugins' when loading them fails (core classes are still
    listed)."""
    try:
        return list(mappings())
    except Exception:  # noqa: BLE001 - a plugin's problem is reported by the daemon at start
        return builtin_comfy_mappings()


class _Unbounded:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass
