"""What the daemon offers and how it is: blocks, templates, models, health, metrics."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI, Request

from orchestrator import __version__
from orchestrator.protocol import BLOCKS, HEALTH, METRICS, MODELS, TEMPLATES, JobState
from orchestrator.server.connections import ConnectionGovernor
from orchestrator.server.redact import redact
from orchestrator.server.service import JobService
from orchestrator.state.retention import Retention


def loaded_models(engine: Any) -> set[str]:
    """Model names the engine's workers hold now (for ``GET /models``)."""
    try:
        from orchestrator.models.registry import loaded_names

        return loaded_names(engine.stats())
    except Exception:  # noqa: BLE001 - the listing never fails on the engine's account
        return set()


def authenticated(request: Request) -> bool:
    """Whether the request carried the token (never, when none is configured)."""
    return bool(request.scope.get("state", {}).get("authenticated"))


def add_catalog_routes(app: FastAPI, service: JobService, models: Any) -> None:
    """``GET /blocks``, ``/templates`` and ``/models`` (paths redacted without the token)."""
    catalog = service.engine.catalog

    @app.get(BLOCKS)
    async def blocks() -> list[dict[str, Any]]:
        return catalog.to_json()

    @app.get(TEMPLATES)
    async def templates() -> list[dict[str, Any]]:
        from graphs import builtin_templates

        return [{**t.summary(), "graph": t.graph.to_dict()} for t in builtin_templates()]

    @app.get(MODELS)
    async def list_models(request: Request) -> list[dict[str, Any]]:
        describe = getattr(models, "describe", None)
        rows = describe(loaded=loaded_models(service.engine)) if callable(describe) else []
        return rows if authenticated(request) else redact(rows)


def add_status_routes(app: FastAPI, service: JobService, governor: ConnectionGovernor,
                      retention: Retention) -> None:
    """``GET /health`` and ``GET /metrics`` (redacted without the token)."""
    store = service.store

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
        return out if authenticated(request) else redact(out)
