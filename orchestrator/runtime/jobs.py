"""The scheduler's bookkeeping: a job's state, the handle a caller holds, the result cache.

Nothing here talks to Ray except :meth:`JobHandle.result`, which fetches the outputs.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray

from graphs.model_refs import model_key
from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.cache import ObjectCache as ObjectCache  # re-exported; one home with ResultCache
from orchestrator.runtime.compile import CompiledGraph
from orchestrator.runtime.executor import RunResult
from orchestrator.runtime.worker import translate_error
from orchestrator.state.outputs import DirectorySink

if TYPE_CHECKING:
    from orchestrator.runtime.pool import WorkerSlot
    from orchestrator.runtime.scheduler import Scheduler

EventFn = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class Running:
    """A node sent to a worker (or a CPU task): its references, whether it runs yet, deadlines."""

    job: JobState
    node: str
    slot: WorkerSlot | None  # None: a CPU task
    out_ref: Any
    meta_ref: Any
    head: bool = False  # running (first in its worker's queue), not just queued behind another
    started: float = 0.0
    deadline: float | None = None
    drain_after: float = 0.0
    drain_ref: Any = None
    kill_at: float | None = None  # set once asked to stop (cancel, failed job)
    suspect: bool = False  # was on a worker that died: runs alone, nothing queued behind it
    lane: str | None = None  # a batching node's lane: runs beside others of it (runtime.batching)


@dataclass(eq=False)
class JobState:
    """One job inside the scheduler (owned by the scheduler's thread)."""

    id: str
    compiled: CompiledGraph
    priority: int
    seq: int
    handle: JobHandle
    on_event: EventFn | None
    sink: DirectorySink
    options: dict[str, Any]
    node_timeout: float | None
    all_on_workers: bool = False  # no GPU workers: the CPU workers run every block
    deps: dict[str, list[str]] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, set[str]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    model_keys: dict[str, str | None] = field(default_factory=dict)
    ready_gpu: list[tuple[int, str]] = field(default_factory=list)
    ready_cpu: list[tuple[int, str]] = field(default_factory=list)
    pinned: dict[str, WorkerSlot] = field(default_factory=dict)  # may queue on that worker already
    running: dict[str, Running] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    cached: set[str] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # workers lost while it was on them
    strikes: dict[str, int] = field(default_factory=dict)  # ... while it ran alone on them
    suspects: set[str] = field(default_factory=set)  # nodes that run alone from now on
    last_served: int = 0  # the scheduler's tick when a node of this job last started
    error: BlockError | JobError | None = None
    submitted: float = field(default_factory=time.monotonic)

    @classmethod
    def create(cls, compiled: CompiledGraph, **kw: Any) -> JobState:
        job = cls(compiled=compiled, **kw)
        deps: dict[str, set[str]] = {n: set() for n in compiled.order}
        job.consumers = {n: set() for n in compiled.order}
        for src, _p, dst, _n, _i in compiled.graph.edges():  # one pass: graphs of 1000s of nodes
            deps[dst].add(src)
            job.consumers[src].add(dst)
        for i, n in enumerate(compiled.order):
            job.index[n] = i
            job.deps[n] = sorted(deps[n])
            job.waiting[n] = len(job.deps[n])
            job.model_keys[n] = model_key(getattr(compiled.params[n], "model", None))
        return job

    @property
    def finishing(self) -> bool:
        return self.error is not None

    def on_workers(self, node: str) -> bool:
        """Whether ``node`` runs on the worker actors (else as a CPU task)."""
        return self.all_on_workers or self.compiled.specs[node].device == "gpu"

    def push_ready(self, node: str) -> None:
        heap = self.ready_gpu if self.on_workers(node) else self.ready_cpu
        heapq.heappush(heap, (self.index[node], node))

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken callback must not stop the scheduler
                import logging

                logging.getLogger(__name__).exception("on_event callback of job %s raised", self.id)


class JobHandle:
    """What :meth:`Scheduler.submit` returns: ``wait()``, ``result()``, ``cancel()``.

    The scheduler resolves it once nothing of the job runs any more; ``result()`` then
    fetches the outputs from Ray's object store (in the caller's thread).
    """

    def __init__(self, job_id: str, scheduler: Scheduler) -> None:
        self.id = job_id
        self._scheduler = scheduler
        self._event = threading.Event()
        self._refs: dict[str, Any] | None = None
        self._partial: RunResult | None = None
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def resolve(self, job: JobState) -> None:
        """The job is over (its error set, or every node done): wake the waiters. Called once,
        by the scheduler's thread, when nothing of the job runs any more."""
        if job.error is not None:
            self._error = job.error
        else:
            self._refs = {n: job.refs[n] for n in job.compiled.order}
            self._partial = RunResult(outputs={}, files=list(job.sink.saved), timings=dict(job.timings),
                                      cached=set(job.cached), images=dict(job.sink.images))
        self._event.set()

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job is over; False if ``timeout`` passed first."""
        return self._event.wait(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self._event.wait(timeout):
            raise TimeoutError(f"job {self.id!r} still running after {timeout} s")
        return self._error

    def result(self, timeout: float | None = None) -> RunResult:
        """The job's :class:`~orchestrator.runtime.executor.RunResult`; raises the job's error."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        with self._lock:
            if self._result is None:
                assert self._refs is not None and self._partial is not None
                nodes = list(self._refs)
                try:
                    values = ray.get([self._refs[n] for n in nodes])
                except Exception as exc:
                    raise translate_error(exc) from exc
                self._partial.outputs = dict(zip(nodes, values, strict=True))
                self._result = self._partial
            return self._result

    def cancel(self) -> bool:
        """Cancel the job: running nodes stop at their next step. False if already over."""
        return self._scheduler.cancel(self.id)

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"JobHandle({self.id!r}, {state})"
