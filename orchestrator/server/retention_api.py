"""``POST /jobs/prune``: the retention policy on demand, behind the API's guard."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from orchestrator.protocol import JOBS_PRUNE, PruneRequest
from orchestrator.state.retention import Retention


def add_retention_routes(app: FastAPI, retention: Retention) -> None:
    """Add the prune route; errors answer as every route's do (``{"errors": [...]}``).

    Anyone who may use the API may run the operator's configured policy (or see what it
    would remove); a narrower one (``older_than_s``, ``max_jobs``, ``max_output_bytes``,
    ``keep_latest``) deletes accepted work, so it needs the token. Without a token configured,
    the operator prunes harder from the CLI, which then works on the state directory that
    only they can write.
    """

    @app.post(JOBS_PRUNE, response_model=None)
    async def prune_jobs(body: PruneRequest, request: Request) -> dict[str, Any] | JSONResponse:
        narrower = any(v is not None for v in (body.older_than_s, body.max_jobs, body.max_output_bytes,
                                                body.keep_latest))
        if narrower and not request.scope.get("state", {}).get("authenticated"):
            return JSONResponse({"errors": [{
                "type": "auth", "message": "a prune narrower than the configured retention needs the "
                "token (without one configured, run 'orchestrator jobs prune' as the daemon's user)",
                "node": None, "field": "older_than_s"}]}, status_code=403)
        policy = retention.policy.narrowed(older_than_s=body.older_than_s, max_jobs=body.max_jobs,
                                           max_output_bytes=body.max_output_bytes,
                                           keep_latest=body.keep_latest)
        report = await asyncio.to_thread(retention.prune, dry_run=body.dry_run, policy=policy)
        return report.to_dict()
