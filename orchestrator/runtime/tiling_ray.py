"""Tiles over Ray: the tile runner of a tiled node that the scheduler runs on a worker.

The scheduler runs a tiled node like any other, on one worker; that node's block is the
*coordinator* (it runs the sampler loop, or plans the tiles and merges them). Its
``ctx.tiles`` is a :class:`RayTileRunner` over every worker of the pool, the coordinator's
own included: each ``map`` gives each worker one contiguous chunk of the items, as one
call of the actor method ``run_tile`` (in the actor's ``tiles`` concurrency group, a
thread of its own, so the coordinator's worker serves its chunk while the coordinator
waits, and two tiled nodes on two workers never wait on each other). The worker runs the
chunk with its resident models (:func:`orchestrator.runtime.tile_serving.serve_tiles`).

- ``shared`` goes into Ray's object store once (again only when another object is given).
- A worker that dies mid-chunk is dropped and its chunk sent to another; with none left the
  coordinator runs the rest itself.
- Cancelling the job (or any error) stops every tile: the coordinator stops waiting, tells
  every worker that the job is cancelled (their chunks stop at the next item) and cancels
  the calls not yet started.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import ray
from ray import exceptions as ray_errors

from orchestrator.context import Context
from orchestrator.errors import JobCancelled, JobError
from orchestrator.runtime.tiling import LocalTileRunner, Progress, TileFn, function_name

WAIT_S = 0.05  # how often the coordinator looks at cancellation while tiles run
MAX_LOST = 2  # times one chunk may lose its worker before the coordinator runs it itself

LOST = (ray_errors.RayActorError, ray_errors.WorkerCrashedError, ray_errors.NodeDiedError,
        ray_errors.LocalRayletDiedError, ray_errors.ObjectLostError)


def chunks(n: int, k: int) -> list[range]:
    """``n`` items in ``k`` contiguous chunks whose sizes differ by one at most (larger first).

    >>> [list(c) for c in chunks(7, 3)]
    [[0, 1, 2], [3, 4], [5, 6]]
    """
    k = max(1, min(k, n))
    base, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


class RayTileRunner:
    """Runs tile functions over the worker actors ``handles`` (see the module doc)."""

    def __init__(self, ctx: Context, handles: Sequence[Any]) -> None:
        self.ctx = ctx
        self.handles = list(handles)
        self._shared: tuple[Any, Any] | None = None  # (object, its ref)
        self.calls = 0

    @property
    def workers(self) -> int:
        return max(1, len(self.handles))

    def _shared_ref(self, shared: Any) -> Any:
        if self._shared is None or self._shared[0] is not shared:
            self._shared = (shared, ray.put(shared))
        return self._shared[1]

    def map(self, fn: TileFn, items: Sequence[Any], *, shared: Any = None,
            detail: dict[str, Any] | None = None) -> list[Any]:
        items = list(items)
        if not items:
            return []
        if not self.handles:
            return LocalTileRunner(self.ctx).map(fn, items, shared=shared, detail=detail)
        self.ctx.check_cancelled()
        name = function_name(fn)
        shared_ref = self._shared_ref(shared)
        progress = Progress(self.ctx, len(items), detail)
        results: list[Any] = [None] * len(items)
        pending: dict[Any, tuple[range, Any, int]] = {}
        local: list[range] = []
        by_worker: dict[str, int] = {}  # tiles each worker ran in this map

        def send(part: range, handle: Any, lost: int) -> None:
            call = {"fn": name, "items": [items[i] for i in part], "job": self.ctx.job,
                    "node": self.ctx.node, "block": self.ctx.block}
            pending[handle.run_tile.remote(call, shared_ref)] = (part, handle, lost)
            self.calls += 1

        for part, handle in zip(chunks(len(items), len(self.handles)), self.handles, strict=False):
            send(part, handle, 0)
        done = 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                self.ctx.check_cancelled()
                for ref in ready:
                    part, handle, lost = pending.pop(ref)
                    try:
                        reply = ray.get(ref)
                    except LOST as exc:
                        if handle in self.handles:
                            self.handles.remove(handle)
                        if lost < MAX_LOST and self.handles:
                            send(part, self.handles[lost % len(self.handles)], lost + 1)
                        elif lost < MAX_LOST:
                            local.append(part)
                        else:
                            raise JobError(f"node {self.ctx.node!r}: tiles {part.start}..{part.stop - 1} "
                                           f"lost their worker {lost + 1} times ({type(exc).__name__})",
                                           type="worker_died", node=self.ctx.node) from None
                        continue
                    if reply["error"] is not None:
                        raise reply["error"]
                    for i, value in zip(part, reply["results"], strict=True):
                        results[i] = value
                    worker = reply.get("worker", "?")
                    by_worker[worker] = by_worker.get(worker, 0) + len(part)
                    done += len(part)
                    progress.report(done, workers=dict(by_worker))
        except BaseException as exc:
            self._stop(pending, cancelled=isinstance(exc, (JobCancelled, KeyboardInterrupt)))
            raise
        for part in local:  # every worker is gone: the coordinator runs what is left
            values = LocalTileRunner(self.ctx).map(fn, [items[i] for i in part], shared=shared)
            for i, value in zip(part, values, strict=True):
                results[i] = value
        return results

    def _stop(self, pending: dict[Any, tuple[range, Any, int]], cancelled: bool) -> None:
        """Stop every tile still running: tell the workers, cancel what has not started."""
        if cancelled and self.ctx.job is not None:
            for handle in self.handles:
                try:
                    handle.cancel.remote(self.ctx.job)
                except Exception:  # noqa: BLE001 - a dead worker has nothing to stop
                    pass
        for ref in pending:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001
                pass
        deadline = time.monotonic() + 2.0  # let the chunks that run see the flag and return
        if pending and cancelled:
            ray.wait(list(pending), num_returns=len(pending), timeout=max(0.0, deadline - time.monotonic()))
