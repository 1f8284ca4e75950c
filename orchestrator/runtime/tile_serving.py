"""The worker side of a Ray tile call: run one chunk of a tiled node's tile items.

:class:`~orchestrator.runtime.tiling_ray.RayTileRunner` sends each worker actor a chunk; the
actor's :class:`~orchestrator.runtime.worker.WorkerCore` runs it here with its resident models.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.context import Context
from orchestrator.errors import BlockError, JobError, plain_error
from orchestrator.runtime.tiling import resolve_function


def tile_error(exc: BaseException, node: str, block: str) -> BlockError | JobError:
    """``exc`` as :func:`~orchestrator.runtime.executor.execute_block` would report it, and picklable."""
    if isinstance(exc, (BlockError, JobError)):
        return plain_error(exc, node, block)
    return BlockError(f"node {node!r} ({block}) failed: {type(exc).__name__}: {exc}",
                      type="block_failed", node=node, field=None, block=block,
                      exception=type(exc).__name__)


def serve_tiles(core: Any, call: dict[str, Any], shared: Any) -> dict[str, Any]:
    """Run one chunk of tile items on a worker.

    ``core`` is its :class:`~orchestrator.runtime.worker.WorkerCore`.

    ``call`` holds ``fn`` (its name), ``items``, ``job``, ``node`` and ``block``. Returns
    ``results`` and per-item ``seconds``, or ``error`` (our error, picklable); never raises.
    """
    job, node, block = call.get("job"), call.get("node") or "?", call.get("block") or "?"
    t0 = time.perf_counter()
    try:
        fn = resolve_function(call["fn"])
        tctx = Context(node=node, block=block, seed=0, device=core.device, job=job, models=core.provider,
                       is_cancelled=(lambda: core.is_cancelled(job)) if job is not None else None,
                       block_class=core.block_class)
        results, seconds = [], []
        for item in call["items"]:
            tctx.check_cancelled()
            t = time.perf_counter()
            results.append(fn(tctx, item, shared))
            seconds.append(time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001 - handed to the coordinator as our error
        return {"error": tile_error(exc, node, block), "worker": core.name,
                "seconds": [time.perf_counter() - t0]}
    return {"results": results, "seconds": seconds, "error": None, "worker": core.name}
