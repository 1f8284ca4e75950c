"""The job service: takes queued jobs from the store, plans prompts, runs graphs.

It owns no state a restart needs: everything is in the :class:`~orchestrator.state.store.JobStore`.
A job walks ``queued -> planning -> running -> succeeded | failed | cancelled``; a
graceful stop interrupts running jobs at their next step boundary and puts them back in
the queue without counting the attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from graphs import Graph, GraphError, GraphValidationError
from orchestrator.errors import BlockError, JobCancelled, JobError
from orchestrator.protocol import JobState
from orchestrator.runtime.compile import compile_graph
from orchestrator.runtime.engine import Engine
from orchestrator.runtime.limits import SizeLimits, check_limits, finite_json, json_depth
from orchestrator.state.store import JobStore

log = logging.getLogger("orchestrator.server.service")

# planner(prompt, options) -> (graph dict, trace list); raises an error with to_dict() on failure
Planner = Callable[[str, dict[str, Any]], tuple[dict[str, Any], list[dict[str, Any]]]]
# recorder(graph dict, score, job id): learns from a scored job (the agent's score table)
ScoreRecorder = Callable[[dict[str, Any], float, str], None]
SCORE_ROLE = "score"  # a node whose meta.role is this scores the job (its "score" output)

STEP_EVENT_INTERVAL = 0.1  # at most ~10 step events a second per node reach the store


PREVIEW_MAX_SIDE = 256


def preview_png(image: Any) -> bytes | None:
    """A small PNG of a preview image (``[H, W, C]`` or ``[B, H, W, C]`` floats in 0..1)."""
    import io

    import numpy as np
    from PIL import Image

    try:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim == 4:
            arr = arr[0]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            return None
        img = Image.fromarray((np.clip(arr[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8).squeeze())
        img.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()
    except (ValueError, TypeError):
        return None


class _Interrupted(Exception):
    """The service is stopping: the job goes back to the queue."""


class JobService:
    """Runs jobs from ``store`` on ``engine``, up to ``engine.capacity`` at once."""

    limits: Any = None  # size limits of planned graphs; None: the engine's settings' (or defaults)

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        *,
        outputs_root: Path,
        planner: Planner | None = None,
        max_attempts: int = 3,
        on_scored: ScoreRecorder | None = None,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.outputs_root = Path(outputs_root)
        self.planner = planner
        self.max_attempts = max_attempts
        self.on_scored = on_scored
        self.on_finished = on_finished  # called with the job id once a run is over (retention)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._running: dict[str, float] = {}
        self._previews: dict[str, bytes] = {}  # job id -> latest preview PNG (memory only)
        self._pool = ThreadPoolExecutor(max_workers=max(1, engine.capacity),
                                        thread_name_prefix="job")
        self._dispatcher: threading.Thread | None = None
        self._slots = threading.Semaphore(max(1, engine.capacity))
        if hasattr(engine, "has_room"):  # an engine that admits jobs as room opens (batching)
            engine.on_room = self.notify  # type: ignore[attr-defined]
        self.started_at = time.time()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        requeued, failed = self.store.recover(self.max_attempts)
        if requeued or failed:
            log.warning("recovered after restart: %d re-queued, %d failed", len(requeued), len(failed))
        for job_id in requeued + failed:  # a kill inside an atomic write leaves its temp file
            for tmp in (self.outputs_root / job_id).glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        self._dispatcher.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; running ones stop at a step boundary and are re-queued."""
        self._stopping.set()
        self.notify()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.engine.shutdown()

    @property
    def accepting(self) -> bool:
        return not self._stopping.is_set()

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        job = self.store.request_cancel(job_id)
        if job is not None and not JobState(job["state"]).final:
            self._cancelled.add(job_id)
        return job

    def running(self) -> dict[str, float]:
        return dict(self._running)

    def preview(self, job_id: str) -> bytes | None:
        """The latest preview PNG of a running job (kept in memory while it runs)."""
        return self._previews.get(job_id)

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            if not self._engine_has_room():
                self._slots.release()
                continue
            job = None
            try:
                job = self.store.claim_next()
            except Exception:
                log.exception("claiming a job failed")
            if job is None:
                self._slots.release()
                with self._wake:
                    self._wake.wait(timeout=0.5)
                continue
            self._running[job["id"]] = time.time()
            self._pool.submit(self._run_guarded, job)

    def _engine_has_room(self) -> bool:
        """Whether the engine takes another job beside those running (an engine without
        ``has_room`` always does, up to its capacity); waits briefly for room when not."""
        has_room = getattr(self.engine, "has_room", None)
        if has_room is None:
            return True
        with self._wake:  # the engine's on_room notifies under this lock: no wake-up is lost
            if has_room(len(self._running)):
                return True
            self._wake.wait(timeout=0.5)
        return False

    def _run_guarded(self, job: dict[str, Any]) -> None:
        try:
            self._run(job)
        except Exception as exc:
            log.exception("job %s crashed the service runner", job["id"])
            self.store.finish(job["id"], JobState.FAILED, errors=[{
                "type": "internal", "message": f"{type(exc).__name__}: {exc}", "node": None,
                "field": None}])
        finally:
            self._running.pop(job["id"], None)
            self._previews.pop(job["id"], None)
            self._cancelled.discard(job["id"])
            self._slots.release()
            self.notify()  # room for the next job (an engine's has_room counts the running ones)
            if self.on_finished is not None:
                try:
                    self.on_finished(job["id"])
                except Exception:
                    log.exception("the on_finished hook failed for job %s", job["id"])

    def _is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled or self._stopping.is_set()

    def _run(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        try:
            graph_doc = job["graph"]
            planned = graph_doc is None
            if graph_doc is None:
                graph_doc = self._plan(job)
            graph = Graph.from_dict(graph_doc)
            if planned:
                self._check_planned(graph)
            compiled = compile_graph(graph, self.engine.catalog)
            if job["state"] == JobState.PLANNING.value:
                self.store.update(job_id, state=JobState.RUNNING)
                self.store.add_event(job_id, {"event": "running"})
            out_dir = self.outputs_root / job_id
            result = self.engine.run(
                compiled, job=job_id, priority=job["priority"], outputs_dir=out_dir,
                on_event=self._event_sink(job_id), is_cancelled=lambda: self._is_cancelled(job_id),
            )
        except (JobCancelled, JobError, BlockError) as exc:
            if self._stopping.is_set() and job_id not in self._cancelled \
                    and not self.store.cancel_requested(job_id):
                self.store.requeue(job_id, count_attempt=False)
                return
            if isinstance(exc, JobCancelled) or getattr(exc, "type", "") == "cancelled":
                self.store.finish(job_id, JobState.CANCELLED)
                return
            d = exc.to_dict()
            self.store.finish(job_id, JobState.FAILED, errors=[d, *d.pop("errors", [])])
            return
        except GraphValidationError as exc:
            self.store.finish(job_id, JobState.FAILED, errors=[e.to_dict() for e in exc.errors])
            return
        except GraphError as exc:
            self.store.finish(job_id, JobState.FAILED, errors=[exc.to_dict()])
            return
        for f in result.files:
            if f.get("path"):
                self.store.add_output(job_id, f["name"], f["node"], f["path"])
        self._record_score(job_id, graph, result.outputs)
        self.store.finish(job_id, JobState.SUCCEEDED, timings=result.timings)

    def _record_score(self, job_id: str, graph: Graph, outputs: dict[str, dict[str, Any]]) -> None:
        """The mean ``score`` of the scorer nodes, kept with the job and fed to the recorder."""
        values = [float(outputs[n]["score"]) for n, node in graph.nodes.items()
                  if node.meta.get("role") == SCORE_ROLE and "score" in outputs.get(n, {})]
        if not values:
            return
        score = sum(values) / len(values)
        self.store.update(job_id, score=score)
        self.store.add_event(job_id, {"event": "scored", "score": score})
        if self.on_scored is not None:
            try:
                self.on_scored(graph.to_dict(), score, job_id)
            except Exception:
                log.exception("recording the score of job %s failed", job_id)

    def _limits(self) -> SizeLimits:
        limits = self.limits
        if limits is None:
            limits = getattr(getattr(self.engine, "settings", None), "limits", None)
        return SizeLimits.of(limits) if limits is not None else SizeLimits()

    def _check_planned(self, graph: Graph) -> None:
        """A planned graph meets the same limits as a submitted one, before it runs: else the
        job fails with every breach (node, field, value, bound) in its errors."""
        problems = check_limits(graph, self._limits(), self.engine.catalog)
        if problems:
            first, rest = problems[0], problems[1:]
            raise JobError(f"the planned graph breaks the limits: {first['message']}",
                           type=first["type"], node=first["node"], field=first["field"],
                           errors=rest, value=first.get("value"), bound=first.get("bound"))

    def _plan(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.planner is None:
            raise JobError("this daemon has no planner for prompt jobs; submit a graph",
                           type="planning", field="prompt")
        options = dict(job["request"].get("agent") or {})
        job_id = job["id"]
        try:
            graph_doc, trace = self.planner(job["prompt"], options)
        except (JobError, BlockError):
            raise
        except Exception as exc:  # the agent's errors are data (to_dict)
            if not callable(getattr(exc, "to_dict", None)):
                raise
            detail = exc.to_dict()  # type: ignore[attr-defined]
            trace = detail.get("trace") or {}
            rounds = trace.get("rounds", []) if isinstance(trace, dict) else list(trace)
            depth = self._limits().json_depth
            self.store.update(job_id, trace=finite_json(rounds, depth))
            raise JobError(f"planning failed: {detail.get('message')}", type="planning", field="prompt",
                           errors=finite_json(detail.get("errors") or [], depth)) from exc
        # what an LLM planned may hold NaN, huge ints or deep nesting: stored so that listings
        # can show it (and encode it), refused by _check_planned before it runs
        depth = self._limits().json_depth
        self.store.update(job_id, graph=finite_json(graph_doc, depth), trace=finite_json(trace, depth))
        self.store.add_event(job_id, {"event": "planned", "rounds": len(trace)})
        if json_depth(graph_doc) > depth:
            raise JobError(f"the planned graph is nested {json_depth(graph_doc)} deep; the limit is {depth}",
                           type="limit", field="graph", value=json_depth(graph_doc), bound={"le": depth})
        return graph_doc

    def _event_sink(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        last_step: dict[str, float] = {}

        def sink(event: dict[str, Any]) -> None:
            preview = event.get("preview")
            event = {k: v for k, v in event.items() if k != "preview"}
            if event.get("event") in ("step", "tile"):
                key = f"{event.get('node')}:{event['event']}"
                now = time.monotonic()
                final = event.get("step") == event.get("total")
                if not final and now - last_step.get(key, 0.0) < STEP_EVENT_INTERVAL:
                    return
                last_step[key] = now
                if preview is not None:
                    png = preview_png(preview)
                    if png is not None:
                        self._previews[job_id] = png
                        event["preview"] = True
            self.store.add_event(job_id, event)

        return sink
