"""``POST /jobs/prune``: the retention policy on demand, behind the API's guard."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from orchestrator.protocol import JOBS_PRUNE, PruneRequest
from orchestrator.retention import Retention


def add_retention_routes(app: FastAPI, retention: Retention) -> None:
    """Add the prune route; errors answer as every route's do (``{"errors": [...]}``)."""

    @app.post(JOBS_PRUNE)
    async def prune_jobs(body: PruneRequest) -> dict[str, Any]:
        policy = retention.policy.narrowed(older_than_s=body.older_than_s, max_jobs=body.max_jobs,
                                           max_output_bytes=body.max_output_bytes,
                                           keep_latest=body.keep_latest)
        report = await asyncio.to_thread(retention.prune, dry_run=body.dry_run, policy=policy)
        return report.to_dict()
