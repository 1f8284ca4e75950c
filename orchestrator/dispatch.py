"""The scheduler's loop body: ready nodes to workers, results back, faults and deadlines.

:class:`Dispatcher` holds every job, every node in flight and every Ray reference; only the
scheduler's loop thread calls it (nothing here is thread-safe). One :meth:`~Dispatcher.step`
sends what can run, waits (briefly) for something to come back, handles it, and enforces
timeouts and cancellation grace periods. See :mod:`orchestrator.scheduler` for the rules.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from typing import Any

import ray

from orchestrator.errors import JobError
from orchestrator.executor import gather_inputs
from orchestrator.jobs import JobState, ObjectCache, Running
from orchestrator.pool import DEAD, WorkerPool, WorkerSlot
from orchestrator.worker import (
    SlotSource,
    WorkerConfig,
    cpu_task,
    decode_meta,
    encode_request,
    model_name,
    translate_error,
)

log = logging.getLogger("orchestrator.scheduler")

POLL_S = 0.05  # the longest the loop waits on Ray before looking at its commands again
DRAIN_AFTER_S = 0.05  # a node running this long gets its progress events long-polled
DRAIN_WAIT_S = 1.0  # a long poll returns after this long without events
DRAIN_EVERY_S = 0.1  # and the next one starts this much later: events come in batches


class Dispatcher:
    """The scheduler's state and the rules that move it (owned by the loop thread)."""

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
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.config = config
        self.cpu_slots = cpu_slots
        self.queue_depth = queue_depth
        self.max_retries = max_retries
        self.cancel_grace = cancel_grace
        self._jobs: dict[str, JobState] = {}
        self._running: dict[Any, Running] = {}  # meta ref -> node in flight
        self._cpu_running = 0
        self._ticks = itertools.count(1)

    def step(self) -> None:
        """Send what can run, wait a little for results, handle them, enforce deadlines."""
        self._dispatch()
        waitables = self._waitables()
        if waitables:
            self._wait(waitables)
        elif self._has_ready_work():  # ready nodes but no worker alive yet
            time.sleep(POLL_S)
        self._deadlines()

    def idle(self) -> bool:
        """Nothing in flight and nothing to send: the loop may block on its commands."""
        return not self._running and not self.pool.pings() and not self._has_ready_work()

    def snapshot(self) -> dict[str, Any]:
        return {"engine": "ray", "workers": self.pool.describe(), "jobs": len(self._jobs),
                "nodes_in_flight": len(self._running), "cpu_tasks": self._cpu_running,
                "cache": self.cache.stats(), "pool_error": self.pool.error}

    def _has_ready_work(self) -> bool:
        return any(j.ready_gpu or j.ready_cpu for j in self._jobs.values())

    def _waitables(self) -> dict[Any, tuple[str, Any]]:
        out: dict[Any, tuple[str, Any]] = {}
        for ref, run in self._running.items():
            out[ref] = ("node", run)
            if run.drain_ref is not None:
                out[run.drain_ref] = ("drain", run)
        for ref, slot in self.pool.pings().items():
            out[ref] = ("ping", slot)
        return out

    def _wait(self, waitables: dict[Any, tuple[str, Any]]) -> None:
        now = time.monotonic()
        timeout = POLL_S
        for run in self._running.values():
            if not run.head:
                continue
            drain = run.drain_after if run.drain_ref is None and run.slot else None
            for t in (run.deadline, run.kill_at, drain):
                if t is not None:
                    timeout = min(timeout, max(0.0, t - now))
        ready, _ = ray.wait(list(waitables), num_returns=1, timeout=timeout)
        # pings and drains first: a node's progress events come before its node_finished
        ready.sort(key=lambda r: waitables[r][0] == "node")
        for ref in ready:
            kind, obj = waitables[ref]
            if kind == "ping":
                self._on_ping(ref, obj)
            elif kind == "drain":
                self._on_drain(ref, obj)
            elif ref in self._running:
                self._on_node(self._running.pop(ref))

    # -- jobs and readiness ----------------------------------------------------------------

    def add_job(self, job: JobState) -> None:
        """Take a submitted job: queue its source nodes (or serve them from the cache)."""
        if job.id in self._jobs:
            job.error = JobError(f"job id {job.id!r} is already running", type="job")
            job.handle._resolve(job)
            return
        self._jobs[job.id] = job
        self._make_ready(job, [n for n in job.compiled.order if job.waiting[n] == 0])
        self._maybe_finish(job)

    def _make_ready(self, job: JobState, nodes: list[str]) -> None:
        """Queue ``nodes`` (inputs all there); serve cache hits at once, cascading."""
        stack = list(reversed(nodes))
        while stack and not job.finishing:
            node = stack.pop()
            spec = job.compiled.specs[node]
            ref = self.cache.get(job.compiled.keys[node]) if spec.cacheable else None
            if ref is None:
                job.push_ready(node)
                continue
            job.refs[node] = ref
            job.cached.add(node)
            job.emit({"event": "node_finished", "node": node, "block": spec.id, "cached": True,
                      "seconds": 0.0})
            stack.extend(reversed(self._complete(job, node)))

    def _complete(self, job: JobState, node: str) -> list[str]:
        """Mark ``node`` done; the consumers that became ready, in topological order."""
        job.done.add(node)
        ready = []
        for c in sorted(job.consumers[node], key=job.index.__getitem__):
            job.waiting[c] -= 1
            if job.waiting[c] == 0:
                job.pinned.pop(c, None)
                if c not in job.running:  # not already queued behind ``node``
                    ready.append(c)
            else:
                self._consider_pin(job, c)
        return ready

    def _maybe_finish(self, job: JobState) -> None:
        over = (job.finishing and not job.running) or len(job.done) == len(job.compiled.order)
        if over and self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            job.ready_gpu.clear()
            job.ready_cpu.clear()
            job.pinned.clear()
            job.handle._resolve(job)

    def _fail(self, job: JobState, error: Any) -> None:
        """Fail ``job`` with ``error`` (the first error wins); stop its running nodes."""
        if job.error is None:
            job.error = error
            job.ready_gpu.clear()
            job.ready_cpu.clear()
            self._stop_nodes(job)
        self._maybe_finish(job)

    def cancel(self, job_id: str) -> bool:
        """Cancel a job; False when it is unknown or already over."""
        job = self._jobs.get(job_id)
        if job is None or job.finishing:
            return False
        self._fail(job, JobError(f"job {job_id!r} was cancelled", type="cancelled"))
        return True

    def _stop_nodes(self, job: JobState) -> None:
        now = time.monotonic()
        told: set[int] = set()
        job.pinned.clear()
        for run in job.running.values():
            if run.head and run.kill_at is None:
                run.kill_at = now + self.cancel_grace
            if run.slot is None:
                ray.cancel(run.out_ref, force=False)
            elif run.slot.state != DEAD and id(run.slot) not in told:  # queued: see it at start
                told.add(id(run.slot))
                run.slot.worker.actor.cancel.remote(job.id)

    def fail_all(self, error: JobError) -> None:
        """End every job with ``error`` (the scheduler stops)."""
        for job in list(self._jobs.values()):
            job.error = job.error or error
            job.running.clear()
            self._maybe_finish(job)
        self._running.clear()

    # -- dispatch ---------------------------------------------------------------------------

    def _job_key(self, job: JobState) -> tuple[int, int, int]:
        """Who goes next: higher priority, then the job served least recently (round robin)."""
        return (-job.priority, job.last_served, job.seq)

    def _pick_job(self, gpu: bool, suspects: bool = True) -> JobState | None:
        """The job whose next ready node goes now (``suspects``: one that must run alone may)."""
        best, best_key = None, None
        for job in self._jobs.values():
            ready = job.ready_gpu if gpu else job.ready_cpu
            if job.finishing or not ready or (not suspects and ready[0][1] in job.suspects):
                continue
            key = self._job_key(job)
            if best_key is None or key < best_key:
                best, best_key = job, key
        return best

    def _pick_pinned(self, free: list[WorkerSlot]) -> tuple[JobState, str, WorkerSlot] | None:
        """The best node that may queue on a busy worker behind the upstream it runs there."""
        best, best_key = None, None
        for job in self._jobs.values():
            if job.finishing or not job.pinned:
                continue
            for node, slot in list(job.pinned.items()):
                if slot.state == DEAD:
                    del job.pinned[node]
                elif slot in free:
                    key = (*self._job_key(job), job.index[node])
                    if best_key is None or key < best_key:
                        best, best_key = (job, node, slot), key
        return best

    def _dispatch(self) -> None:
        if self.pool.error:
            for job in list(self._jobs.values()):
                if (job.ready_gpu or job.pinned) and not job.finishing:
                    self._fail(job, JobError(self.pool.error, type="worker_died"))
        while True:
            # nothing queues behind a suspect: its worker's death must name it
            free = [s for s in self.pool.free(self.queue_depth) if not any(r.suspect for r in s.queue)]
            if not free:
                break
            idle = any(not s.queue for s in free)
            job = self._pick_job(gpu=True, suspects=idle)
            pin = self._pick_pinned(free)
            if pin is not None and (job is None or self._job_key(pin[0]) <= self._job_key(job)):
                pjob, node, slot = pin
                del pjob.pinned[node]
                self._start(pjob, node, slot)
            elif job is not None:
                _i, node = heapq.heappop(job.ready_gpu)
                depth = 1 if node in job.suspects else self.queue_depth  # a suspect: idle only
                slot = self.pool.pick(job.model_keys[node], depth, among=free)
                assert slot is not None
                self._start(job, node, slot)
            else:
                break
        while self._cpu_running < self.cpu_slots:
            job = self._pick_job(gpu=False)
            if job is None:
                break
            _i, node = heapq.heappop(job.ready_cpu)
            self._start(job, node, None)

    def _start(self, job: JobState, node: str, slot: WorkerSlot | None) -> None:
        compiled = job.compiled
        spec = compiled.specs[node]
        deps = job.deps[node]
        inputs = gather_inputs(compiled, node, {src: SlotSource(i) for i, src in enumerate(deps)})
        request = {"block": spec.id, "version": spec.version, "params": compiled.graph.nodes[node].params,
                   "inputs": inputs, "seed": compiled.seed(node), "job": job.id, "node": node,
                   "options": job.options}
        # an upstream still in flight (queued on the same worker) is passed as its pending ref
        upstream = [job.refs[d] if d in job.refs else job.running[d].out_ref for d in deps]
        try:
            if slot is not None:
                request["seq"] = slot.next_seq  # the worker runs them in this order
                out_ref, meta_ref = slot.worker.actor.run.remote(encode_request(request), *upstream)
                slot.next_seq += 1
            else:
                out_ref, meta_ref = cpu_task().remote(self.config, encode_request(request), *upstream)
                self._cpu_running += 1
        except Exception as exc:  # noqa: BLE001 - e.g. params that cannot be sent
            self._fail(job, JobError(f"node {node!r} ({spec.id}) could not be sent to a worker: "
                                     f"{type(exc).__name__}: {exc}", type="job", node=node))
            return
        job.last_served = next(self._ticks)
        run = Running(job=job, node=node, slot=slot, out_ref=out_ref, meta_ref=meta_ref,
                      suspect=node in job.suspects)
        job.running[node] = run
        self._running[meta_ref] = run
        if slot is None:
            self._promote(run)
            return
        slot.queue.append(run)
        if len(slot.queue) == 1:
            self._promote(run)
        for c in sorted(job.consumers[node], key=job.index.__getitem__):
            self._consider_pin(job, c)

    def _promote(self, run: Running) -> None:
        """``run`` is now running (first in its worker's queue): start its clocks, say so."""
        job = run.job
        now = time.monotonic()
        run.head = True
        run.started = now
        run.deadline = now + job.node_timeout if job.node_timeout else None
        run.drain_after = now + DRAIN_AFTER_S
        if job.finishing:
            run.kill_at = now + self.cancel_grace
            return
        job.emit({"event": "node_started", "node": run.node, "block": job.compiled.specs[run.node].id,
                  "worker": run.slot.name if run.slot is not None else "task"})

    def _consider_pin(self, job: JobState, node: str) -> None:
        """Let ``node`` queue on a busy worker now if every upstream not yet done runs there.

        Ray then hands it the upstream's output without a round trip through this loop.
        """
        if (self.queue_depth < 2 or job.finishing or job.waiting[node] == 0 or node in job.running
                or node in job.pinned or not job.on_workers(node)):
            return
        if job.compiled.specs[node].cacheable and job.compiled.keys[node] in self.cache:
            return  # served from the cache once its inputs are there
        slot = None
        for d in job.deps[node]:
            if d in job.done:
                continue
            run = job.running.get(d)
            if (run is None or run.slot is None or run.suspect
                    or (slot is not None and run.slot is not slot)):
                return
            slot = run.slot
        if slot is not None and slot.state != DEAD:
            job.pinned[node] = slot

    # -- what comes back ---------------------------------------------------------------------

    def _on_ping(self, ref: Any, slot: WorkerSlot) -> None:
        if slot.state == DEAD:
            return
        try:
            info, error = ray.get(ref), None
        except Exception as exc:  # noqa: BLE001 - any failure to start is reported as such
            info, error = None, exc
        self.pool.started(slot, info, error)

    def _on_drain(self, ref: Any, run: Running) -> None:
        run.drain_ref = None
        run.drain_after = time.monotonic() + DRAIN_EVERY_S
        try:
            events = ray.get(ref)
        except Exception:  # noqa: BLE001 - the worker died; its node's result says so
            return
        if not run.job.finishing:
            for e in events:
                run.job.emit(e)

    def _release(self, run: Running) -> None:
        """Forget ``run``; the next node queued on its worker starts running."""
        run.job.running.pop(run.node, None)
        slot = run.slot
        if slot is None:
            self._cpu_running -= 1
            return
        if run in slot.queue:
            first = slot.queue[0] is run
            slot.queue.remove(run)
            if first and slot.queue and slot.state != DEAD:
                self._promote(slot.queue[0])

    def _on_node(self, run: Running) -> None:
        job, node, slot = run.job, run.node, run.slot
        if slot is not None:  # a worker runs its queue in order: take what came before first
            while run in slot.queue and slot.queue[0] is not run:
                first = slot.queue[0]
                if not ray.wait([first.meta_ref], timeout=0)[0]:
                    break  # cannot be (the worker keeps the order), but never block the loop
                self._running.pop(first.meta_ref, None)
                self._on_node(first)
        try:
            meta = decode_meta(ray.get(run.meta_ref))
        except Exception as exc:  # noqa: BLE001 - Ray's errors become ours in _on_lost
            self._on_lost(run, exc)
            return
        if run.drain_ref is not None:  # its last long poll returns at once now: take it first
            self._on_drain(run.drain_ref, run)
        spec = job.compiled.specs[node]
        error = meta["error"]
        if slot is not None and slot.state != DEAD:
            key = job.model_keys[node] if error is None else None
            self.pool.record(slot, key, model_name(getattr(job.compiled.params[node], "model", None)),
                             meta.get("models") or {})
        if job.finishing or (error is not None and error.type == "skipped"):
            # skipped: queued behind an upstream that failed; that failure fails the job
            self._release(run)
            self._maybe_finish(job)
            return
        for e in meta["events"]:
            job.emit(e)
        if error is not None:
            self._release(run)
            self._fail(job, error)
            return
        for n, name, image in meta["saved"]:
            job.sink.save_image(n, name, image)
        job.refs[node] = run.out_ref
        job.timings[node] = meta["seconds"]
        if spec.cacheable:
            self.cache.put(job.compiled.keys[node], run.out_ref, meta.get("nbytes", 0))
        job.emit({"event": "node_finished", "node": node, "block": spec.id, "cached": False,
                  "seconds": meta["seconds"], "worker": meta["worker"]})
        ready = self._complete(job, node)
        self._release(run)
        self._make_ready(job, ready)
        self._maybe_finish(job)

    def _on_lost(self, run: Running, exc: BaseException) -> None:
        """A node's call failed in Ray (worker died, task cancelled, ...)."""
        job, node, slot = run.job, run.node, run.slot
        worker = slot.name if slot is not None else "task"
        error = translate_error(exc, node=node, worker=worker, block=job.compiled.specs[node].id)
        if isinstance(exc, ray.exceptions.ObjectLostError):  # a machine with its inputs is gone
            for d in job.deps[node]:  # let later jobs compute them again
                self.cache.discard(job.compiled.keys[d])
        if slot is not None and slot.state != DEAD and error.type == "worker_died":
            slot.died_with = len(slot.queue)  # the nodes it held: which one killed it?
            self.pool.died(slot)
        self._release(run)
        if job.finishing:
            self._maybe_finish(job)
            return
        if error.type != "worker_died":
            self._fail(job, error)
            return
        # Blame a node only when it was alone on its worker: with others queued, the one that
        # ran may be the next (its predecessor's answer dies with the process). Those nodes
        # become suspects and run alone from now on, so a poison node is found in one more try.
        spec = job.compiled.specs[node]
        tries = job.attempts[node] = job.attempts.get(node, 0) + 1
        alone = slot is None or (run.head and slot.died_with <= 1)
        strikes = job.strikes[node] = job.strikes.get(node, 0) + (1 if alone else 0)
        if not alone:
            job.suspects.add(node)
        if strikes > self.max_retries:
            self._fail(job, JobError(
                f"node {node!r} ({spec.id}) lost its worker {strikes} times running alone "
                f"(last: {worker}); giving up after {self.max_retries} retries: the block may be "
                f"crashing its process", type="worker_died", node=node, block=spec.id,
                attempts=strikes, deaths=tries))
            return
        log.warning("job %s: node %s lost worker %s; retry %d (%d/%d charged to it)", job.id, node,
                    worker, tries, strikes, self.max_retries)
        job.emit({"event": "node_retry", "node": node, "block": spec.id, "attempt": tries,
                  "worker": worker, "error": error.message})
        self._requeue(job, node)

    def _requeue(self, job: JobState, node: str) -> None:
        if job.waiting[node] == 0:
            job.push_ready(node)
        # else: an upstream is being retried too; the node becomes ready when that is done

    def _deadlines(self) -> None:
        now = time.monotonic()
        self.pool.check_starts()
        for ref, run in list(self._running.items()):
            if not run.head:
                continue
            job = run.job
            if run.deadline is not None and now >= run.deadline and not job.finishing:
                spec = job.compiled.specs[run.node]
                self._abandon(ref, run)
                self._fail(job, JobError(
                    f"node {run.node!r} ({spec.id}) timed out after {job.node_timeout:g} s",
                    type="timeout", node=run.node, block=spec.id, timeout=job.node_timeout))
            elif run.kill_at is not None and now >= run.kill_at:
                log.warning("node %s of job %s ignored cancellation for %.1f s; killing its worker",
                            run.node, job.id, self.cancel_grace)
                self._abandon(ref, run)
                self._maybe_finish(job)
            elif (run.slot is not None and run.drain_ref is None and now >= run.drain_after
                  and not job.finishing):
                run.drain_ref = run.slot.worker.actor.drain_events.remote(job.id, run.node, DRAIN_WAIT_S)

    def _abandon(self, ref: Any, run: Running) -> None:
        """Stop waiting for ``run``: kill (and replace) its worker, or force-cancel its task.

        Nodes queued behind it on that worker come back as lost and are sent again.
        """
        self._running.pop(ref, None)
        if run.slot is not None:
            if run.slot.state != DEAD:
                self.pool.replace(run.slot)
        else:
            ray.cancel(run.out_ref, force=True)
        self._release(run)
