"""The scheduler's rules, without Ray: which node runs next, where, and what happens after.

:class:`DagRun` holds every job and every node in flight and decides: readiness (a node runs
once its inputs are there; cached nodes are served at once, cascading), priority (higher
first, then round robin between jobs), pinning (a node queues on a busy worker behind the
upstream it needs), the retry policy when a worker dies (blame only a node that ran alone;
others become suspects that run alone) and deadlines (node timeouts, cancellation grace).

It does no I/O: it sends nodes and stops them through a :class:`Port` (Ray in
:mod:`orchestrator.runtime.dispatch`, a fake in the tests), reads and replaces workers through the
pool, and is told what came back (:meth:`DagRun.on_result`, :meth:`DagRun.on_lost`,
:meth:`DagRun.on_events`). Only the scheduler's loop thread calls it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.errors import BlockError, JobError
from orchestrator.runtime.batching import Lanes, prefix_running
from orchestrator.runtime.executor import gather_inputs
from orchestrator.runtime.jobs import JobState, Running
from orchestrator.runtime.pool import DEAD
from orchestrator.runtime.worker import SlotSource, model_name

if TYPE_CHECKING:
    from orchestrator.runtime.jobs import ObjectCache
    from orchestrator.runtime.pool import WorkerPool, WorkerSlot

log = logging.getLogger("orchestrator.runtime.scheduler")

DRAIN_AFTER_S = 0.05  # a node running this long gets its progress events long-polled
DRAIN_EVERY_S = 0.1  # and the next one starts this much later: events come in batches


class Port(Protocol):
    """How a :class:`DagRun` reaches its workers (the dispatcher does it with Ray)."""

    def send(self, slot: WorkerSlot | None, request: dict[str, Any], upstream: list[Any]) -> tuple[Any, Any]:
        """Start a node on ``slot`` (None: as a CPU task); ``(out_ref, meta_ref)``."""

    def stop(self, run: Running, job_id: str) -> None:
        """Ask ``run`` to stop (a CPU task is cancelled; a worker is told to cancel the job)."""

    def force_stop(self, run: Running) -> None:
        """Force-cancel ``run``'s CPU task (a worker's node is stopped by replacing it)."""


class DagRun:
    """Every job's state and the rules that move it (owned by the loop thread)."""

    def __init__(
        self,
        *,
        pool: WorkerPool,
        cache: ObjectCache,
        port: Port,
        cpu_slots: int,
        queue_depth: int,
        max_retries: int,
        cancel_grace: float,
        clock: Callable[[], float] = time.monotonic,
        max_batch: int = 1,
        batchable: Callable[[str], bool] | None = None,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.port = port
        self.cpu_slots = cpu_slots
        self.queue_depth = queue_depth
        self.max_retries = max_retries
        self.cancel_grace = cancel_grace
        self.clock = clock
        # cross-job batching: batching nodes (batchable(block id)) of one model run side by side
        # on a worker, up to max_batch, under the rule the worker applies (runtime.batching.Lanes)
        self.lanes = Lanes(max_batch)
        self.batchable = batchable or (lambda _block: False)
        self.batch_depth = max(queue_depth, self.lanes.max_batch + 1) if max_batch > 1 else queue_depth
        self.max_depth = self.batch_depth + queue_depth if max_batch > 1 else queue_depth  # per worker
        self.jobs: dict[str, JobState] = {}
        self.running: dict[Any, Running] = {}  # meta ref -> node in flight
        self.cpu_running = 0
        self._ticks = itertools.count(1)

    def has_ready_work(self) -> bool:
        return any(j.ready_gpu or j.ready_cpu for j in self.jobs.values())

    def next_timeout(self, longest: float) -> float:
        """How long the loop may wait for results before a deadline of a running node is due."""
        now = self.clock()
        timeout = longest
        for run in self.running.values():
            if not run.head:
                continue
            drain = run.drain_after if run.drain_ref is None and run.slot else None
            for t in (run.deadline, run.kill_at, drain):
                if t is not None:
                    timeout = min(timeout, max(0.0, t - now))
        return timeout

    # -- jobs and readiness ----------------------------------------------------------------

    def add_job(self, job: JobState) -> None:
        """Take a submitted job: queue its source nodes (or serve them from the cache)."""
        if job.id in self.jobs:
            job.error = JobError(f"job id {job.id!r} is already running", type="job")
            job.handle.resolve(job)
            return
        self.jobs[job.id] = job
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
        if over and self.jobs.get(job.id) is job:
            del self.jobs[job.id]
            job.ready_gpu.clear()
            job.ready_cpu.clear()
            job.pinned.clear()
            job.handle.resolve(job)

    def fail(self, job: JobState, error: BlockError | JobError) -> None:
        """Fail ``job`` with ``error`` (the first error wins); stop its running nodes."""
        if job.error is None:
            job.error = error
            job.ready_gpu.clear()
            job.ready_cpu.clear()
            self._stop_nodes(job)
        self._maybe_finish(job)

    def cancel(self, job_id: str) -> bool:
        """Cancel a job; False when it is unknown or already over."""
        job = self.jobs.get(job_id)
        if job is None or job.finishing:
            return False
        self.fail(job, JobError(f"job {job_id!r} was cancelled", type="cancelled"))
        return True

    def _stop_nodes(self, job: JobState) -> None:
        now = self.clock()
        told: set[int] = set()
        job.pinned.clear()
        for run in job.running.values():
            if run.head and run.kill_at is None:
                run.kill_at = now + self.cancel_grace
            if run.slot is None:
                self.port.stop(run, job.id)
            elif run.slot.state != DEAD and id(run.slot) not in told:  # queued: see it at start
                told.add(id(run.slot))
                self.port.stop(run, job.id)

    def fail_all(self, error: JobError) -> None:
        """End every job with ``error`` (the scheduler stops)."""
        for job in list(self.jobs.values()):
            job.error = job.error or error
            job.running.clear()
            self._maybe_finish(job)
        self.running.clear()

    # -- dispatch ---------------------------------------------------------------------------

    def _job_key(self, job: JobState) -> tuple[int, int, int]:
        """Who goes next: higher priority, then the job served least recently (round robin)."""
        return (-job.priority, job.last_served, job.seq)

    def _pick_job(self, gpu: bool, suspects: bool = True, skip: set[str] | None = None) -> JobState | None:
        """The job whose next ready node goes now (``suspects``: one that must run alone may;
        ``skip``: jobs whose next node has no room now)."""
        best, best_key = None, None
        for job in self.jobs.values():
            ready = job.ready_gpu if gpu else job.ready_cpu
            if job.finishing or not ready or (not suspects and ready[0][1] in job.suspects):
                continue
            if skip and job.id in skip:
                continue
            key = self._job_key(job)
            if best_key is None or key < best_key:
                best, best_key = job, key
        return best

    def _pick_pinned(self, free: list[WorkerSlot]) -> tuple[JobState, str, WorkerSlot] | None:
        """The best node that may queue on a busy worker behind the upstream it runs there."""
        best, best_key = None, None
        for job in self.jobs.values():
            if job.finishing or not job.pinned:
                continue
            for node, slot in list(job.pinned.items()):
                if slot.state == DEAD:
                    del job.pinned[node]
                elif slot in free and self._has_room(slot, job, node):
                    key = (*self._job_key(job), job.index[node])
                    if best_key is None or key < best_key:
                        best, best_key = (job, node, slot), key
        return best

    def dispatch(self) -> None:
        """Send every node that can go now: to workers with room, and as CPU tasks."""
        if self.pool.error:
            for job in list(self.jobs.values()):
                if (job.ready_gpu or job.pinned) and not job.finishing:
                    self.fail(job, JobError(self.pool.error, type="worker_died"))
        no_room: set[str] = set()  # jobs whose next node finds no worker with room for its kind
        while True:
            # nothing queues behind a suspect: its worker's death must name it
            free = [s for s in self.pool.free(self.max_depth) if not any(r.suspect for r in s.queue)]
            if not free:
                break
            idle = any(not s.queue for s in free)
            job = self._pick_job(gpu=True, suspects=idle, skip=no_room)
            pin = self._pick_pinned(free)
            if pin is not None and (job is None or self._job_key(pin[0]) <= self._job_key(job)):
                pjob, node, slot = pin
                del pjob.pinned[node]
                self._start(pjob, node, slot)
            elif job is not None:
                _i, node = heapq.heappop(job.ready_gpu)
                among = [s for s in free if self._has_room(s, job, node)]
                slot = self.pool.pick(job.model_keys[node], self.max_depth, among=among) if among else None
                if slot is None:  # no worker has room for a node of its kind now: it waits
                    heapq.heappush(job.ready_gpu, (_i, node))
                    no_room.add(job.id)
                    continue
                self._start(job, node, slot)
            else:
                break
        while self.cpu_running < self.cpu_slots:
            job = self._pick_job(gpu=False)
            if job is None:
                break
            _i, node = heapq.heappop(job.ready_cpu)
            self._start(job, node, None)

    def _lane(self, job: JobState, node: str) -> str | None:
        """The lane of a batching node (its model), else None; a suspect runs alone."""
        if self.lanes.max_batch <= 1 or node in job.suspects:
            return None
        spec = job.compiled.specs[node]
        if not self.batchable(spec.id):
            return None
        return job.model_keys[node] or spec.id

    def _has_room(self, slot: WorkerSlot, job: JobState, node: str) -> bool:
        """Whether ``node`` may join ``slot``'s queue: a suspect only an idle worker's; a
        batching node while the queue holds fewer than ``batch_depth``; another node while
        fewer than ``queue_depth - 1`` wait there behind what runs (without batching: while
        the queue holds fewer than ``queue_depth``, one of them running)."""
        if node in job.suspects:
            return not slot.queue
        if self._lane(job, node) is not None:
            return len(slot.queue) < self.batch_depth
        waiting = sum(1 for r in slot.queue if not r.head)
        return not slot.queue or waiting < max(1, self.queue_depth - 1)

    def _promote_ready(self, slot: WorkerSlot) -> None:
        """Promote the nodes of ``slot``'s queue that its worker starts now: the first, and
        batching nodes beside it as :class:`~orchestrator.runtime.batching.Lanes` admits them."""
        if slot.state == DEAD:
            return
        for run in prefix_running(self.lanes, slot.queue, lambda r: r.lane, lambda r: r.head):
            if not run.head:
                self._promote(run)

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
        lane = self._lane(job, node) if slot is not None else None
        if slot is not None:
            request["seq"] = slot.next_seq  # the worker runs them in this order
            if lane is not None:
                request["lane"] = lane
        try:
            out_ref, meta_ref = self.port.send(slot, request, upstream)
        except Exception as exc:  # noqa: BLE001 - e.g. params that cannot be sent
            self.fail(job, JobError(f"node {node!r} ({spec.id}) could not be sent to a worker: "
                                    f"{type(exc).__name__}: {exc}", type="job", node=node))
            return
        if slot is not None:
            slot.next_seq += 1
        else:
            self.cpu_running += 1
        job.last_served = next(self._ticks)
        run = Running(job=job, node=node, slot=slot, out_ref=out_ref, meta_ref=meta_ref,
                      suspect=node in job.suspects, lane=lane)
        job.running[node] = run
        self.running[meta_ref] = run
        if slot is None:
            self._promote(run)
            return
        slot.queue.append(run)
        self._promote_ready(slot)
        for c in sorted(job.consumers[node], key=job.index.__getitem__):
            self._consider_pin(job, c)

    def _promote(self, run: Running) -> None:
        """``run`` is now running (first in its worker's queue): start its clocks, say so."""
        job = run.job
        now = self.clock()
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
            if (run is None or run.slot is None or run.suspect or run.lane is not None
                    or (slot is not None and run.slot is not slot)):
                return  # (behind a batching node it would hold up, in order, what joins the batch)
            slot = run.slot
        if slot is not None and slot.state != DEAD:
            job.pinned[node] = slot

    # -- what comes back ---------------------------------------------------------------------

    def polling(self, run: Running, ref: Any) -> None:
        """A long poll of ``run``'s progress events went out (``ref``: its answer)."""
        run.drain_ref = ref

    def on_events(self, run: Running, events: list[dict[str, Any]] | None) -> None:
        """A long poll of ``run``'s progress events returned (None: it failed)."""
        run.drain_ref = None
        run.drain_after = self.clock() + DRAIN_EVERY_S
        if events is not None and not run.job.finishing:
            for e in events:
                run.job.emit(e)

    def ahead_of(self, run: Running) -> list[Running]:
        """The nodes queued before ``run`` on its worker (the worker runs them first)."""
        slot = run.slot
        if slot is None or run not in slot.queue:
            return []
        return slot.queue[: slot.queue.index(run)]

    def _release(self, run: Running) -> None:
        """Forget ``run``; the next node queued on its worker starts running."""
        run.job.running.pop(run.node, None)
        slot = run.slot
        if slot is None:
            self.cpu_running -= 1
            return
        if run in slot.queue:
            slot.queue.remove(run)
            self._promote_ready(slot)

    def on_result(self, run: Running, meta: dict[str, Any]) -> None:
        """``run`` came back with ``meta`` (decoded): its outputs are at ``run.out_ref``."""
        self.running.pop(run.meta_ref, None)
        job, node, slot = run.job, run.node, run.slot
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
            self.fail(job, error)
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

    def on_lost(self, run: Running, error: BlockError | JobError, *, inputs_lost: bool = False) -> None:
        """``run``'s call failed outside the block (worker died, task cancelled, ...): ``error``
        is ours already; ``inputs_lost``: a machine with its inputs is gone."""
        self.running.pop(run.meta_ref, None)
        job, node, slot = run.job, run.node, run.slot
        worker = slot.name if slot is not None else "task"
        if inputs_lost:
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
            self.fail(job, error)
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
            self.fail(job, JobError(
                f"node {node!r} ({spec.id}) lost its worker {strikes} times running alone "
                f"(last: {worker}); giving up after {self.max_retries} retries: the block may be "
                f"crashing its process", type="worker_died", node=node, block=spec.id,
                attempts=strikes, deaths=tries))
            return
        log.warning("job %s: node %s lost worker %s; retry %d (%d/%d charged to it)", job.id, node,
                    worker, tries, strikes, self.max_retries)
        job.emit({"event": "node_retry", "node": node, "block": spec.id, "attempt": tries,
                  "worker": worker, "error": error.message})
        if job.waiting[node] == 0:
            job.push_ready(node)
        # else: an upstream is being retried too; the node becomes ready when that is done

    def deadlines(self) -> list[Running]:
        """Enforce node timeouts and cancellation grace; the running nodes on workers whose
        progress events are due to be long-polled now."""
        now = self.clock()
        drain = []
        for run in list(self.running.values()):
            if not run.head:
                continue
            job = run.job
            if run.deadline is not None and now >= run.deadline and not job.finishing:
                spec = job.compiled.specs[run.node]
                self._abandon(run)
                self.fail(job, JobError(
                    f"node {run.node!r} ({spec.id}) timed out after {job.node_timeout:g} s",
                    type="timeout", node=run.node, block=spec.id, timeout=job.node_timeout))
            elif run.kill_at is not None and now >= run.kill_at:
                log.warning("node %s of job %s ignored cancellation for %.1f s; killing its worker",
                            run.node, job.id, self.cancel_grace)
                self._abandon(run)
                self._maybe_finish(job)
            elif (run.slot is not None and run.drain_ref is None and now >= run.drain_after
                  and not job.finishing):
                drain.append(run)
        return drain

    def _abandon(self, run: Running) -> None:
        """Stop waiting for ``run``: kill (and replace) its worker, or force-cancel its task.

        Nodes queued behind it on that worker come back as lost and are sent again.
        """
        self.running.pop(run.meta_ref, None)
        if run.slot is not None:
            if run.slot.state != DEAD:
                self.pool.replace(run.slot)
        else:
            self.port.force_stop(run)
        self._release(run)
