"""The scheduler's loop body: Ray I/O around :class:`~orchestrator.runtime.dagrun.DagRun`.

:class:`Dispatcher` is the only part of the scheduler that touches Ray: it sends the nodes
the :class:`DagRun` picks (through the :class:`~orchestrator.runtime.worker.Worker` facade, or as CPU
tasks), waits (briefly) for what comes back and tells the DagRun, which holds every rule.
Only the scheduler's loop thread calls it (nothing here is thread-safe). One
:meth:`~Dispatcher.step` sends what can run, waits, handles results, enforces deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray

from orchestrator.errors import JobError
from orchestrator.runtime.dagrun import DagRun
from orchestrator.runtime.jobs import JobState, ObjectCache, Running
from orchestrator.runtime.pool import DEAD, WorkerPool, WorkerSlot
from orchestrator.runtime.worker import WorkerConfig, cpu_task, decode_meta, encode_request, translate_error

POLL_S = 0.05  # the longest the loop waits on Ray before looking at its commands again
DRAIN_WAIT_S = 1.0  # a long poll of a node's progress events returns after this long without events


class RayPort:
    """The :class:`~orchestrator.runtime.dagrun.Port` of the scheduler: workers' actors and CPU tasks."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config

    def send(self, slot: WorkerSlot | None, request: dict[str, Any], upstream: list[Any]) -> tuple[Any, Any]:
        if slot is not None:
            return slot.worker.submit(encode_request(request), upstream)
        return cpu_task().remote(self.config, encode_request(request), *upstream)

    def stop(self, run: Running, job_id: str) -> None:
        if run.slot is None:
            ray.cancel(run.out_ref, force=False)
        else:
            run.slot.worker.cancel(job_id)

    def force_stop(self, run: Running) -> None:
        ray.cancel(run.out_ref, force=True)


class Dispatcher:
    """The scheduler's Ray references and waits; the rules are its :attr:`run`'s."""

    def __init__(
        self,
        *,
        pool: WorkerPool,
        cache: ObjectCache,
        config: WorkerConfig,
        cpu_slots: int,
        queue_depth: int,
        max_retries: int,
        cancel_grace: float,
        batchable: Callable[[str], bool] | None = None,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.run = DagRun(pool=pool, cache=cache, port=RayPort(config), cpu_slots=cpu_slots,
                          queue_depth=queue_depth, max_retries=max_retries, cancel_grace=cancel_grace,
                          max_batch=config.batch_max, batchable=batchable)

    def step(self) -> None:
        """Send what can run, wait a little for results, handle them, enforce deadlines."""
        self.run.dispatch()
        waitables = self._waitables()
        if waitables:
            self._wait(waitables)
        elif self.run.has_ready_work():  # ready nodes but no worker alive yet
            time.sleep(POLL_S)
        self.pool.check_starts()
        for run in self.run.deadlines():
            assert run.slot is not None
            self.run.polling(run, run.slot.worker.drain_events_ref(run.job.id, run.node, DRAIN_WAIT_S))

    def idle(self) -> bool:
        """Nothing in flight and nothing to send: the loop may block on its commands."""
        return not self.run.running and not self.pool.pings() and not self.run.has_ready_work()

    def snapshot(self) -> dict[str, Any]:
        return {"engine": "ray", "workers": self.pool.describe(), "jobs": len(self.run.jobs),
                "nodes_in_flight": len(self.run.running), "cpu_tasks": self.run.cpu_running,
                "cache": self.cache.stats(), "pool_error": self.pool.error}

    def add_job(self, job: JobState) -> None:
        self.run.add_job(job)

    def cancel(self, job_id: str) -> bool:
        return self.run.cancel(job_id)

    def fail_all(self, error: JobError) -> None:
        self.run.fail_all(error)

    def _waitables(self) -> dict[Any, tuple[str, Any]]:
        out: dict[Any, tuple[str, Any]] = {}
        for ref, run in self.run.running.items():
            out[ref] = ("node", run)
            if run.drain_ref is not None:
                out[run.drain_ref] = ("drain", run)
        for ref, slot in self.pool.pings().items():
            out[ref] = ("ping", slot)
        return out

    def _wait(self, waitables: dict[Any, tuple[str, Any]]) -> None:
        ready, _ = ray.wait(list(waitables), num_returns=1, timeout=self.run.next_timeout(POLL_S))
        # pings and drains first: a node's progress events come before its node_finished
        ready.sort(key=lambda r: waitables[r][0] == "node")
        for ref in ready:
            kind, obj = waitables[ref]
            if kind == "ping":
                self._on_ping(ref, obj)
            elif kind == "drain":
                self._on_drain(ref, obj)
            elif ref in self.run.running:
                self._on_node(self.run.running[ref])

    def _on_ping(self, ref: Any, slot: WorkerSlot) -> None:
        if slot.state == DEAD:
            return
        try:
            info, error = ray.get(ref), None
        except Exception as exc:  # noqa: BLE001 - any failure to start is reported as such
            info, error = None, exc
        self.pool.started(slot, info, error)

    def _on_drain(self, ref: Any, run: Running) -> None:
        try:
            events = ray.get(ref)
        except Exception:  # noqa: BLE001 - the worker died; its node's result says so
            events = None
        self.run.on_events(run, events)

    def _on_node(self, run: Running) -> None:
        # a worker runs its queue in order: take what came before first
        for first in self.run.ahead_of(run):
            if not ray.wait([first.meta_ref], timeout=0)[0]:
                break  # cannot be (the worker keeps the order), but never block the loop
            if first.meta_ref in self.run.running:
                self._on_node(first)
        try:
            meta = decode_meta(ray.get(run.meta_ref))
        except Exception as exc:  # noqa: BLE001 - Ray's errors become ours here
            slot = run.slot
            error = translate_error(exc, node=run.node, worker=slot.name if slot is not None else "task",
                                    block=run.job.compiled.specs[run.node].id)
            self.run.on_lost(run, error, inputs_lost=isinstance(exc, ray.exceptions.ObjectLostError))
            return
        if run.drain_ref is not None:  # its last long poll returns at once now: take it first
            self._on_drain(run.drain_ref, run)
        self.run.on_result(run, meta)
