"""The HTTP API (FastAPI). Every error answers ``{"errors": [{type, message, node, field}]}``.

Build it with :func:`create_app`; the daemon serves it with uvicorn. The routes live in
:mod:`orchestrator.server.routes` (ours) and the ``add_*_routes`` of the other API modules (ComfyUI's,
inputs, retention, ratings, the dashboard); this module wires them in their order.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from orchestrator import __version__
from orchestrator.config import Settings
from orchestrator.server.comfy import add_comfy_protocol
from orchestrator.server.comfy_import import add_comfy_routes
from orchestrator.server.connections import ConnectionGovernor
from orchestrator.server.dashboard import mount_dashboard
from orchestrator.server.inputs import add_input_routes
from orchestrator.server.json_body import StrictJSONMiddleware
from orchestrator.server.ratings_api import add_rating_routes
from orchestrator.server.request_checks import add_error_handlers
from orchestrator.server.retention_api import add_retention_routes
from orchestrator.server.routes.errors import add_error_routes
from orchestrator.server.routes.events import add_event_routes
from orchestrator.server.routes.jobs import add_job_file_routes, add_job_routes
from orchestrator.server.routes.meta import add_catalog_routes, add_status_routes
from orchestrator.server.security import Guard
from orchestrator.server.service import JobService
from orchestrator.state.retention import Policy, Retention


def create_app(service: JobService, settings: Settings, *, models: Any = None,
               governor: ConnectionGovernor | None = None, retention: Retention | None = None) -> Guard:
    """The FastAPI application for ``service``, behind the security guard (``.app``).

    ``governor`` holds the server's connection and stream limits, ``retention`` the pruning
    policy (both built from ``settings`` when not given).
    """
    governor = governor or ConnectionGovernor.from_settings(settings.server)
    retention = retention or Retention(service.store, service.outputs_root,
                                       Policy.from_settings(settings.retention))
    app = FastAPI(title="orchestrator", version=__version__,
                  description="Local orchestration daemon for generative-image workflows.")

    add_error_handlers(app)
    add_error_routes(app)
    add_job_routes(app, service, settings)  # POST/GET /jobs, GET /jobs/{id}, POST .../cancel
    add_event_routes(app, service.store, governor)  # GET /jobs/{id}/events
    add_job_file_routes(app, service)  # GET /jobs/{id}/outputs/{name}, /jobs/{id}/preview.png
    add_catalog_routes(app, service, models)  # GET /blocks, /templates, /models
    add_status_routes(app, service, governor, retention)  # GET /health, /metrics
    add_comfy_routes(app, service.engine.catalog, settings)
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
