"""The Ray scheduler: runs compiled graphs as DAGs over a pool of worker actors.

Every node whose inputs are ready runs at once, up to the pool's capacity. GPU blocks
(``spec.device == "gpu"``) run on the worker actors, one node at a time each: an idle
worker that already holds the node's model (its ``model`` param) first, else the least
loaded. Light CPU blocks run as plain Ray tasks (``cpu_slots`` at once). Where the cluster
has no GPU, the pool is ``cpu_workers`` CPU workers (one CPU each: the machine's budget for
this daemon) and they run every block. Several jobs share the pool: higher priority first;
among equals, round robin (the job served least recently).

Pipelining: a busy worker also takes up to ``queue_depth - 1`` more nodes, queued in its
actor and run strictly in the order sent: ready nodes when no worker is idle, and the next
node of a chain whose upstream runs on it (Ray hands the upstream's output over without a
round trip through the scheduler). A queued node's clock (timeout) and its ``node_started``
event start when it starts; a job of higher priority that arrives later waits for at most
those queued nodes. ``queue_depth=1`` turns this off.

Semantics are the in-process executor's (:mod:`orchestrator.runtime.executor`): same inputs, same
seeds, same errors, same outputs, same cache keys. Block outputs stay in Ray's object store
and travel from worker to worker as object references; the caller fetches them at the end.

- **Cache**: node outputs (as object references) by content key, across jobs, bounded.
- **Faults**: a worker that dies mid-node is replaced and the node retried elsewhere. A
  death is charged to a node only when it ran alone on the worker (with others queued there,
  the one running may be the next: a finished node's answer dies with the process); the
  nodes of such a death run alone from then on. A node charged more than ``max_retries``
  times fails its job with a ``worker_died`` error, and the pool heals. ``node_timeout``
  ends a hung block (its worker is killed and replaced) and fails the job with ``timeout``.
  A block that raises fails its job with the block's own error; its worker serves the next
  job. Workers that cannot start within ``start_timeout`` fail the GPU jobs with a message.
- **Cancellation**: :meth:`Scheduler.cancel` sets the job's flag on the workers running its
  nodes (a call in the actor's ``control`` concurrency group, so it lands mid-node); each
  block stops at its next ``ctx.progress``/``ctx.check_cancelled``. A block that does not
  stop within ``cancel_grace`` seconds has its worker killed and replaced.
- **Tiles**: a tiled node runs on one worker, as the coordinator of its tiles, which go to
  every worker of the pool (named in the job's options; see :mod:`orchestrator.runtime.tiling_ray`).
- **Events**: ``node_started``/``node_finished`` (plus ``node_retry``) from here; ``step``
  and ``tile`` progress from the workers, long-polled while a node runs. Callbacks run on
  the scheduler's thread: keep them short.

One thread (the loop) owns every Ray reference and all state; other threads talk to it
through a queue of commands.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import ray

from graphs import Graph
from orchestrator.catalog import Catalog
from orchestrator.errors import JobError
from orchestrator.runtime.batching import batches
from orchestrator.runtime.compile import CompiledGraph, compile_graph
from orchestrator.runtime.dispatch import POLL_S, Dispatcher
from orchestrator.runtime.executor import RunResult
from orchestrator.runtime.jobs import EventFn, JobHandle, JobState, ObjectCache
from orchestrator.runtime.pool import DEAD, WorkerPool
from orchestrator.runtime.worker import (
    WorkerConfig,
    plugin_host,
    translate_error,
)
from orchestrator.state.outputs import DirectorySink

log = logging.getLogger(__name__)



def worker_config_from_settings(settings: Any) -> WorkerConfig:
    """How workers load plugins and models under the daemon's :class:`~orchestrator.config.Settings`:
    the same plugins (allow-list, extra modules, strictness) and a ``ModelManager`` over the
    configured models, with 85% of each GPU's memory as its budget.
    """
    plugins = settings.plugins
    device = settings.device if settings.device == "cpu" else None  # a GPU is Ray's to hand out
    return WorkerConfig(
        extra_plugins=tuple(plugins.extra), allow=tuple(plugins.allow) if plugins.allow is not None else None,
        strict=plugins.strict, provider="orchestrator.models:provider_from_settings",
        provider_kwargs={"settings": settings}, device=device, gpu_memory_fraction=0.85,
        **_batching(settings),
    )


def _batching(settings: Any) -> dict[str, Any]:
    """``batch_max`` and ``batch_wait_ms`` of a worker from ``[batching]``."""
    b = getattr(settings, "batching", None)
    return {} if b is None else {"batch_max": b.effective_max_batch, "batch_wait_ms": b.max_wait_ms}


def connect_ray(address: str | None = None, **init_kwargs: Any) -> None:
    """Join the Ray cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``),
    or start a local Ray when ``address`` is None. Nothing happens when Ray is already up.
    """
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"namespace": "orchestrator", "log_to_driver": False}
    if address is None:
        # a fresh local instance on loopback, no dashboard; never an unrelated cluster that
        # happens to run on this machine (joining one is what --ray-address is for)
        kwargs["include_dashboard"] = False
        address = "local"
    kwargs.update(init_kwargs)
    ray.init(address=address, **kwargs)


class Scheduler:
    """Runs graphs on Ray worker actors. Thread-safe; one loop thread inside.

    ``config`` says how workers load plugins and models; the scheduler's own catalog (for
    compiling) comes from the same plugins unless ``catalog`` is given. ``gpus`` (default:
    every GPU of the cluster) or, with none, ``cpu_workers`` sizes the pool. It is also an
    engine for the daemon's job service (``run``, ``capacity``, ``stats``, ``shutdown``).
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        config: WorkerConfig | None = None,
        ray_address: str | None = None,
        gpus: int | None = None,
        cpu_workers: int | None = None,
        cpu_slots: int | None = None,
        max_retries: int = 2,
        node_timeout: float | None = None,
        queue_depth: int = 2,
        capacity: int = 8,
        cancel_grace: float = 10.0,
        cache: ObjectCache | None = None,
        outputs_dir: str | Path | None = None,
        input_root: str | Path | None = None,
        confine_inputs: bool = False,
        actor_options: dict[str, Any] | None = None,
        start_timeout: float = 300.0,
        limits: dict[str, Any] | None = None,
    ) -> None:
        connect_ray(ray_address)
        self.config = config or WorkerConfig()
        self.catalog = catalog if catalog is not None else plugin_host(self.config).catalog
        self.capacity = capacity  # jobs the daemon may hand over at once (they share the pool)
        self.node_timeout = node_timeout
        self.cache = cache if cache is not None else ObjectCache()
        self.outputs_dir = outputs_dir
        self.input_root = input_root
        self.confine_inputs = confine_inputs
        self.limits = limits  # size limits the workers check around each node (orchestrator.runtime.limits)
        # with batching a worker holds up to batch_max batching nodes and one more (a thread each)
        batch_max = self.config.batch_max
        actor_depth = max(queue_depth, batch_max + 1) + queue_depth if batch_max > 1 else queue_depth
        self.pool = WorkerPool(self.config, gpus=gpus, cpu_workers=cpu_workers, actor_options=actor_options,
                               start_timeout=start_timeout, queue_depth=max(1, actor_depth))
        if cpu_slots is None:  # (CPU tasks run only next to GPU workers, which take no CPU)
            cpu_slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._dispatcher = Dispatcher(
            pool=self.pool, cache=self.cache, config=self.config, cpu_slots=cpu_slots,
            queue_depth=max(1, queue_depth), max_retries=max_retries, cancel_grace=cancel_grace,
            batchable=self._batchable,
        )
        self._seq = itertools.count()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="orchestrator-scheduler", daemon=True)
        self._thread.start()

    def _batchable(self, block_id: str) -> bool:
        """Whether ``block_id`` declares ``Resources(batch=True)`` (cross-job batching)."""
        try:
            return batches(self.catalog.block_class(block_id))
        except KeyError:
            return False

    # -- public API (any thread) ------------------------------------------------------------

    def submit(
        self,
        graph: Graph | CompiledGraph,
        *,
        job: str | None = None,
        priority: int = 0,
        on_event: EventFn | None = None,
        node_timeout: float | None = None,
        outputs_dir: str | Path | None = None,
    ) -> JobHandle:
        """Compile ``graph`` (raising its validation errors here) and queue it; returns a handle."""
        if self._stopped:
            raise JobError("the scheduler is shut down", type="job")
        compiled = graph if isinstance(graph, CompiledGraph) else compile_graph(graph, self.catalog)
        job_id = job or uuid.uuid4().hex
        handle = JobHandle(job_id, self)
        out_dir = outputs_dir if outputs_dir is not None else self.outputs_dir
        state = JobState.create(
            compiled, id=job_id, priority=priority, seq=next(self._seq), handle=handle,
            on_event=on_event, sink=DirectorySink(out_dir, compiled.graph.to_json(indent=None)),
            options={"outputs_dir": str(out_dir) if out_dir is not None else None,
                     # relative input paths resolve where the caller is, as in-process
                     "input_root": str(self.input_root if self.input_root is not None else Path.cwd()),
                     "confine_inputs": self.confine_inputs, "limits": self.limits,
                     **self._tile_options(compiled)},
            node_timeout=node_timeout if node_timeout is not None else self.node_timeout,
            all_on_workers=not self.pool.gpu,
        )
        self._inbox.put(("submit", state))
        return handle

    def _tile_options(self, compiled: CompiledGraph) -> dict[str, Any]:
        """Job options for tiled nodes: each one's resolved annotation and every worker of the
        pool, over which its tiles go (see :mod:`orchestrator.runtime.tiling_ray`)."""
        tiled = {n: node.tile.model_dump() for n, node in compiled.graph.nodes.items() if node.tile}
        if not tiled:
            return {}
        workers = self._call(lambda: [s.worker.actor for s in self.pool.slots if s.state != DEAD])
        return {"tiles": {n: {"spec": spec, "workers": workers} for n, spec in tiled.items()}}

    def run(
        self,
        graph: Graph | CompiledGraph,
        *,
        job: str | None = None,
        on_event: EventFn | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        priority: int = 0,
        node_timeout: float | None = None,
        outputs_dir: str | Path | None = None,
    ) -> RunResult:
        """Run ``graph`` and wait, like :meth:`LocalExecutor.run`; raise its error or return results."""
        handle = self.submit(graph, job=job, priority=priority, on_event=on_event,
                             node_timeout=node_timeout, outputs_dir=outputs_dir)
        asked = False
        while not handle.wait(POLL_S if is_cancelled is not None else None):
            if not asked and is_cancelled is not None and is_cancelled():
                handle.cancel()
                asked = True
        return handle.result()

    def cancel(self, job: str) -> bool:
        """Cancel ``job``; False when it is unknown or already over."""
        return bool(self._call(lambda: self._dispatcher.cancel(job)))

    def workers(self) -> list[dict[str, Any]]:
        """The pool as the scheduler sees it: name, state, pid, node, GPU ids, models held."""
        return self._call(self.pool.describe)

    def worker_stats(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Each live worker's own report (models resident, load counts, bytes, memory)."""
        slots = self._call(lambda: [s for s in self.pool.slots if s.state != DEAD])
        refs = [s.worker.stats_ref() for s in slots]
        out = []
        for slot, ref in zip(slots, refs, strict=True):
            try:
                out.append(ray.get(ref, timeout=timeout))
            except Exception as exc:  # noqa: BLE001
                out.append({"name": slot.name, "error": translate_error(exc, worker=slot.name).to_dict()})
        return out

    def clear_cache(self) -> None:
        """Forget every cached node output (Ray frees the objects)."""
        self._call(self.cache.clear)

    def stats(self) -> dict[str, Any]:
        """The engine's state for the daemon's dashboard (no call to the workers)."""
        return self._call(self._dispatcher.snapshot)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every worker of the pool is up (or raise ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._call(lambda: ([s.state for s in self.pool.slots], self.pool.error))
            if states[1]:
                raise JobError(states[1], type="worker_died")
            if all(s == "ready" for s in states[0]):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready after {timeout} s: {states[0]}")
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Fail whatever is still running, kill the workers, stop the loop."""
        if self._stopped:
            return
        self._inbox.put(("stop",))
        self._thread.join(timeout=30)
        self._stopped = True

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the loop thread and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        if self._stopped or not self._thread.is_alive():
            raise JobError("the scheduler is shut down", type="job")
        fut: Future[Any] = Future()
        self._inbox.put(("call", fn, fut))
        return fut.result(timeout=60)

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while self._commands():
                self._dispatcher.step()
        except Exception:  # pragma: no cover - a bug here must not hang every caller
            log.exception("scheduler loop crashed")
            self._dispatcher.fail_all(JobError("the scheduler crashed; see its log", type="job"))
        else:
            self._dispatcher.fail_all(JobError("the scheduler was shut down", type="job"))
        self.pool.shutdown()
        self._stopped = True

    def _commands(self) -> bool:
        """Handle queued commands; block for one when nothing is in flight. False: stop."""
        block = self._dispatcher.idle()
        while True:
            try:
                cmd = self._inbox.get(timeout=1.0) if block else self._inbox.get_nowait()
            except queue.Empty:
                return True
            block = False
            kind = cmd[0]
            if kind == "stop":
                return False
            if kind == "submit":
                self._dispatcher.add_job(cmd[1])
            elif kind == "call":
                fut = cmd[2]
                try:
                    fut.set_result(cmd[1]())
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(exc)
