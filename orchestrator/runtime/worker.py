"""Workers: the logic as a plain class (:class:`WorkerCore`), a Ray actor facade (:class:`Worker`).

A worker runs one node at a time (or, with cross-job batching, sampling nodes of one model
side by side, their UNet calls merged: :mod:`orchestrator.runtime.batching`). It resolves
the block from its own plugin host (block classes never cross the wire: a request names a
block id and its version), builds the
node's :class:`~orchestrator.context.Context`, runs the block through
:func:`~orchestrator.runtime.executor.execute_block` exactly as the in-process executor does, and
returns ``(outputs, meta)``. ``meta`` says what happened: the error (as one of our own
errors, never a Ray one), timings, buffered progress events, the images the block saved
(the scheduler writes them on the head node), and what the worker now holds.

Models come from a *provider* that the worker builds once, in its own process, from
:attr:`WorkerConfig.provider` (a ``"module:attr"`` string or a picklable callable); the
model registry's ``ModelManager`` is the normal one. Weights stay on the worker; only
block outputs travel, as Ray objects.

Cancellation is a per-job flag: :meth:`WorkerCore.cancel` sets it (on the actor this runs in
a separate ``control`` concurrency group, so it lands while ``run`` is busy) and the
running block sees it through ``ctx.cancelled()`` / ``ctx.progress`` at its next step.

Without Ray:

>>> core = WorkerCore(WorkerConfig(entry_points=False), name="w")
>>> out, meta = core.run_node("image.solid", {"width": 2, "height": 1}, {}, seed=0)
>>> out["image"].shape, meta["error"], core.stats()["nodes_run"]
((1, 1, 2, 3), None, 1)
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import exceptions as ray_errors

from graphs.model_refs import model_name as model_name  # re-exported: pool and dagrun import it here
from orchestrator.blocks import Block
from orchestrator.context import Context, ModelProvider
from orchestrator.errors import BlockError, JobCancelled, JobError, plain_error
from orchestrator.plugins import PluginHost, import_extra_plugins, load_plugins
from orchestrator.runtime.batching import Batching
from orchestrator.runtime.cache import measure_bytes
from orchestrator.runtime.executor import execute_block
from orchestrator.runtime.tile_serving import serve_tiles
from orchestrator.runtime.tiling import Tiling, run_tiled
from orchestrator.runtime.tiling_ray import RayTileRunner
from orchestrator.state.outputs import check_output

MAX_BUFFERED_EVENTS = 1000
CONTROL_GROUP = "control"
TILE_GROUP = "tiles"  # tiles of tiled nodes, one chunk at a time, beside the node running here


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker process sets itself up. Picklable: it travels to every worker.

    ``extra_plugins`` are module names (``"module"`` or ``"name=module"``) imported and
    registered next to the built-ins and entry points; ``sys_path`` entries are put in
    front of ``sys.path`` first (for plugin modules that are not installed).
    ``provider`` makes the model provider: a ``"module:attr"`` string or a callable,
    called as ``provider(**provider_kwargs)`` once per worker process.
    """

    extra_plugins: tuple[str, ...] = ()
    sys_path: tuple[str, ...] = ()
    allow: tuple[str, ...] | None = None
    entry_points: bool = True
    strict: bool = False
    provider: str | Callable[..., ModelProvider] | None = None
    provider_kwargs: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None  # None: "cuda" on a worker that Ray gave a real GPU, else "cpu"
    gpu_memory_fraction: float | None = None  # budget_bytes for the provider on a GPU worker
    cpu_memory_fraction: float | None = None  # ... on a CPU worker (of the machine's RAM)
    # torch's CPU threads in the worker (Ray starts workers with OMP_NUM_THREADS=1; a CPU pool
    # gives each worker its share of the machine). CPU float results depend on the count:
    # give the driver's to get the in-process executor's bits.
    cpu_threads: int | None = None
    # cross-job batching (orchestrator.runtime.batching): batching nodes run side by side, up to
    # batch_max, their UNet calls merged; 1: one node at a time
    batch_max: int = 1
    batch_wait_ms: float = 5.0

    def plugin_key(self) -> tuple[Any, ...]:
        return (self.extra_plugins, self.sys_path, self.allow, self.entry_points, self.strict)

    def key(self) -> str:
        """Equal for equal configs, also across processes (kwargs may be unhashable objects)."""
        prov = self.provider
        if callable(prov):
            prov = f"{getattr(prov, '__module__', '?')}:{getattr(prov, '__qualname__', repr(prov))}"
        return repr((*self.plugin_key(), prov, sorted(self.provider_kwargs.items()), self.device,
                     self.gpu_memory_fraction, self.cpu_memory_fraction, self.cpu_threads,
                     self.batch_max, self.batch_wait_ms))


# -- set-up shared by the actor, the CPU tasks and the driver ---------------------------------

_HOSTS: dict[tuple[Any, ...], PluginHost] = {}
_HOSTS_LOCK = threading.Lock()


def plugin_host(config: WorkerConfig) -> PluginHost:
    """The plugin host for ``config`` in this process (built once, then reused)."""
    key = config.plugin_key()
    with _HOSTS_LOCK:
        host = _HOSTS.get(key)
        if host is None:
            for entry in reversed(config.sys_path):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
            extra = import_extra_plugins(config.extra_plugins)
            if extra.broken:
                raise extra.broken[0]
            host = load_plugins(allow=config.allow, entry_points=config.entry_points,
                                extra=extra.imported, strict=config.strict)
            _HOSTS[key] = host
        return host


def make_provider(config: WorkerConfig, device: str = "cpu") -> ModelProvider | None:
    """Build the worker's model provider from ``config`` (``None``: blocks get no models).

    With a memory fraction for ``device`` and no ``budget_bytes`` in ``provider_kwargs``, the
    provider gets ``budget_bytes`` = that fraction of the GPU's memory (or of the RAM).
    """
    factory = config.provider
    if factory is None:
        return None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        factory = obj
    kwargs = dict(config.provider_kwargs)
    fraction = config.gpu_memory_fraction if device.startswith("cuda") else config.cpu_memory_fraction
    if fraction is not None and "budget_bytes" not in kwargs:
        kwargs["budget_bytes"] = int(fraction * _device_memory(device))
    return factory(**kwargs)


def _device_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def provider_stats(provider: Any) -> dict[str, Any]:
    """What a provider holds: ``resident`` model names, ``loads`` (total), ``load_counts``,
    ``bytes``, ``budget``. Read from ``ModelManager.report()`` or a provider's ``stats()``;
    empty when the provider reports nothing.
    """
    report = getattr(provider, "report", None)
    if callable(report) and not hasattr(provider, "stats"):
        # orchestrator.models.ModelManager: held components, bytes, budget, load counts
        rep = report()
        counts = dict(rep.get("load_counts") or {})
        resident = list(dict.fromkeys(h["model"] for h in rep.get("held", [])))
        return {"resident": resident, "loads": sum(counts.values()), "load_counts": counts,
                "bytes": int(rep.get("bytes_used") or 0), "budget": rep.get("budget_bytes"),
                "hits": rep.get("hits", 0), "evictions": rep.get("evictions", 0)}
    raw = provider.stats() if provider is not None and hasattr(provider, "stats") else {}
    out: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    if "resident" in out:
        resident = out["resident"]
        out["resident"] = [str(r) for r in (list(resident) if resident is not None else [])]
    return out


def _detect_device(config: WorkerConfig) -> str:
    if config.device:
        return config.device
    try:
        has_gpu = ray.is_initialized() and bool(ray.get_gpu_ids())
    except Exception:  # noqa: BLE001
        has_gpu = False
    # Logical GPUs (ray.init(num_gpus=2) on a CPU box) must not pull torch in just to say no.
    if not has_gpu or not os.path.exists("/dev/nvidiactl"):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def output_nbytes(value: Any) -> int:
    """The memory a block's outputs hold (:func:`orchestrator.runtime.cache.measure_bytes`)."""
    return measure_bytes(value)


# -- saving images: recorded on the worker, written by the scheduler ---------------------------


class RecordingSink:
    """An output sink that checks and records what a block saves, and answers as
    :class:`~orchestrator.state.outputs.DirectorySink` would for ``directory``.

    The scheduler replays the records into the job's real sink on the head node, so the
    files land in the daemon's state directory whatever machine ran the block.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.records: list[tuple[str, str, np.ndarray]] = []

    def save_image(self, node: str, name: str, image: np.ndarray) -> list[str]:
        check_output(node, name, image)
        self.records.append((node, name, image))
        names = [name] if image.shape[0] == 1 else [f"{name}_{i}" for i in range(image.shape[0])]
        if self.directory is None:
            return names
        return [str(self.directory / f"{n}.png") for n in names]


# -- inputs that are other nodes' outputs -------------------------------------------------------


class SlotSource:
    """Looks like one upstream node's outputs to :func:`~orchestrator.runtime.executor.gather_inputs`:
    ``source[port]`` is ``(index, port)``, standing for ``upstream[index][port]``.

    Requests carry inputs in that form (plain lists and strings: Ray sends them as msgpack,
    without pickling); :func:`resolve_slots` puts the values in on the worker.
    """

    def __init__(self, index: int) -> None:
        self.index = index

    def __getitem__(self, port: str) -> tuple[int, str]:
        return (self.index, port)


def resolve_slots(inputs: Mapping[str, Any], upstream: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    """``{name: (i, port)}`` -> ``upstream[i][port]``; ``{name: [(i, port), ...]}`` -> a list.

    >>> resolve_slots({"a": (0, "x"), "b": [(1, "y"), (0, "x")]}, ({"x": 1}, {"y": 2}))
    {'a': 1, 'b': [2, 1]}
    """
    out: dict[str, Any] = {}
    for name, v in inputs.items():
        if v and isinstance(v[0], int):
            out[name] = upstream[v[0]][v[1]]
        else:
            out[name] = [upstream[i][port] for i, port in v]
    return out


def encode_request(request: dict[str, Any]) -> bytes:
    """A node request as one bytes argument: Ray passes bytes far cheaper than a nested dict.

    A request is plain data: ``block``, ``version``, ``params`` (the node's JSON params),
    ``inputs`` (``(index, port)`` slots, see :func:`resolve_slots`), ``seed``, ``job``,
    ``node`` and ``options``.
    """
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def encode_meta(meta: dict[str, Any]) -> bytes:
    """A node's meta as bytes (Ray deserializes a pickled blob much faster than a dict)."""
    return pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)


def decode_meta(blob: bytes | dict[str, Any]) -> dict[str, Any]:
    """The meta dict back from :func:`encode_meta` (a dict passes through)."""
    return pickle.loads(blob) if isinstance(blob, bytes) else blob


# -- the worker logic -----------------------------------------------------------------------------


class WorkerCore:
    """The worker's logic: plain Python, testable without Ray.

    Thread-safe for ``run_node`` calls from several threads (the actor runs one at a time, or
    batching nodes side by side: see :class:`~orchestrator.runtime.batching.Lanes`) alongside
    any number of ``cancel``, ``drain_events`` and ``stats`` calls from other threads.
    """

    def __init__(self, config: WorkerConfig | None = None, name: str = "worker") -> None:
        self.config = config or WorkerConfig()
        self.name = name
        if self.config.cpu_threads:  # before the plugins import torch, which reads it then
            os.environ["OMP_NUM_THREADS"] = str(self.config.cpu_threads)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(self.config.cpu_threads)
        self.host = plugin_host(self.config)
        self.device = _detect_device(self.config)
        self.provider = make_provider(self.config, self.device)
        self.started = time.time()
        self.nodes_run = 0
        self.busy_seconds = 0.0
        self._cond = threading.Condition()
        self._events: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
        self._finished: OrderedDict[tuple[str | None, str], None] = OrderedDict()
        self._running: dict[tuple[str | None, str], None] = {}  # (job, node) running now
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        # which nodes run at once, in the order the scheduler sent them: one at a time, or
        # batching nodes side by side (Lanes), their UNet calls merged (UNetBatcher)
        self.batching = Batching(self.config.batch_max, self.config.batch_wait_ms)

    # -- identity and state ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Who this worker is: name, pid, host, Ray node and GPU ids, device."""
        node_id = gpu_ids = None
        if ray.is_initialized():
            try:
                node_id = ray.get_runtime_context().get_node_id()
                gpu_ids = [str(g) for g in ray.get_gpu_ids()]
            except Exception:  # noqa: BLE001  # pragma: no cover - outside a Ray worker
                pass
        return {"name": self.name, "pid": os.getpid(), "hostname": os.uname().nodename,
                "node_id": node_id, "gpu_ids": gpu_ids or [], "device": self.device,
                "blocks": len(self.host.catalog)}

    def stats(self) -> dict[str, Any]:
        """What the worker holds and has done: models (resident, loads, bytes), memory, counts."""
        with self._cond:
            running = list(self._running)
        return {**self.info(), "nodes_run": self.nodes_run, "busy_seconds": self.busy_seconds,
                "running": {"job": running[0][0], "node": running[0][1]} if running else None,
                "running_all": [{"job": j, "node": n} for j, n in running],
                "batching": self.batching.stats(),
                "models": provider_stats(self.provider), "rss_bytes": _rss_bytes(),
                "cancelled_jobs": len(self._cancelled)}

    # -- cancellation -----------------------------------------------------------------------

    def cancel(self, job: str) -> bool:
        """Mark ``job`` cancelled; its running block stops at its next step. True if it runs here."""
        with self._cond:
            self._cancelled[job] = None
            while len(self._cancelled) > 4096:
                self._cancelled.popitem(last=False)
            return any(j == job for j, _n in self._running)

    def is_cancelled(self, job: str | None) -> bool:
        return job is not None and job in self._cancelled

    # -- progress ---------------------------------------------------------------------------

    def _emit(self, key: tuple[str | None, str], event: dict[str, Any]) -> None:
        with self._cond:
            if key not in self._running:  # pragma: no cover - a block that reports after returning
                return
            buf = self._events.setdefault(key, [])
            buf.append(event)
            if len(buf) > MAX_BUFFERED_EVENTS:
                del buf[: len(buf) - MAX_BUFFERED_EVENTS]
            self._cond.notify_all()

    def drain_events(self, job: str | None, node: str, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Progress events of node ``node`` of ``job`` not yet taken; waits up to ``timeout`` for one.

        Returns at once once that node is over (its last events travel with its result), so
        a long poll never outlives its node.
        """
        key = (job, node)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._events.get(key) and key not in self._finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._events.pop(key, [])

    # -- running a node ---------------------------------------------------------------------

    def block_class(self, block_id: str, version: str | None = None, node: str | None = None) -> type[Block]:
        """The block class from this worker's plugins; refuses a version other than ``version``."""
        try:
            cls = self.host.catalog.block_class(block_id)
        except KeyError:
            raise BlockError(
                f"node {node!r}: block {block_id!r} is not registered on worker {self.name!r} "
                "(is its plugin installed on every node?)", type="plugin", node=node, block=block_id,
            ) from None
        if version is not None and cls.version != version:
            raise BlockError(
                f"node {node!r}: worker {self.name!r} has {block_id} {cls.version}, "
                f"the graph was compiled against {version}", type="plugin", node=node, block=block_id,
            )
        return cls

    def run_node(
        self,
        block_id: str,
        params: Mapping[str, Any] | Any,
        inputs: Mapping[str, Any],
        *,
        seed: int,
        job: str | None = None,
        node: str | None = None,
        version: str | None = None,
        options: Mapping[str, Any] | None = None,
        lane: str | None = None,
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Run one node; returns ``(outputs, meta)``. Never raises for a block's own failure:
        the error is ``meta["error"]`` (a :class:`BlockError` or :class:`JobError`).

        ``options``: ``outputs_dir``, ``input_root``, ``confine_inputs`` of the job. ``lane``:
        a batching node's lane (:class:`~orchestrator.runtime.batching.Lanes`); its UNet calls
        may merge with those of the other nodes running here.
        """
        node = node or block_id
        opts = dict(options or {})
        sink = RecordingSink(opts.get("outputs_dir"))
        key = (job, node)
        with self._cond:
            self._running[key] = None
            self._events.pop(key, None)
            self._finished.pop(key, None)
        t0 = time.perf_counter()
        out: dict[str, Any] | None = None
        error: BlockError | JobError | None = None
        tb = None
        scope = self.batching.batcher.scope(self.provider, lambda e: self._emit(key, e),
                                            label=f"{job}/{node}", batch=lane is not None)
        try:
            if self.is_cancelled(job):
                raise JobCancelled(f"job cancelled before node {node!r}", node=node)
            cls = self.block_class(block_id, version, node)
            input_root = opts.get("input_root")
            tile = (opts.get("tiles") or {}).get(node)  # a tiled node: its spec and the tile workers
            ctx = Context(
                node=node, block=block_id, seed=seed, device=self.device, job=job,
                models=scope.models, outputs=sink,
                input_root=Path(input_root) if input_root else None,
                confine_inputs=bool(opts.get("confine_inputs", False)), on_event=scope.on_event,
                is_cancelled=(lambda: job in self._cancelled) if job is not None else None,
                limits=opts.get("limits"), tile=Tiling.of(tile and tile["spec"]),
                block_class=self.block_class,
            )
            if tile and tile["workers"]:  # its tiles go to every worker of the pool
                ctx.tile_runner = RayTileRunner(ctx, tile["workers"])
            out = execute_block(cls, params, ctx, dict(inputs), runner=run_tiled if tile else None)
        except Exception as exc:  # noqa: BLE001
            error = plain_error(exc, node, block_id)
            tb = traceback.format_exc(limit=20)
        finally:
            scope.close()
        seconds = time.perf_counter() - t0
        with self._cond:
            self._running.pop(key, None)
            events = self._events.pop(key, [])
            self._finished[key] = None
            while len(self._finished) > 256:
                self._finished.popitem(last=False)
            self._cond.notify_all()
        self.nodes_run += 1
        self.busy_seconds += seconds
        meta = {
            "worker": self.name, "node": node, "job": job, "error": error, "traceback": tb,
            "seconds": seconds, "events": events, "saved": sink.records,
            "nbytes": output_nbytes(out), "models": provider_stats(self.provider),
        }
        return (out if error is None else None), meta


# -- the Ray side ---------------------------------------------------------------------------------


class _WorkerActor(WorkerCore):
    """The actor: ``run`` in the default group, the rest in ``control``.

    The default group has a thread per queued run (so that calls are never held up behind
    them), and runs take turns in the order the scheduler numbered them (``request["seq"]``):
    one node at a time, first sent first, so the scheduler always knows which one runs;
    batching nodes (``request["lane"]``) side by side under the rule of
    :class:`~orchestrator.runtime.batching.Lanes`, which the scheduler applies too.
    """

    ORDER_WAIT_S = 600.0  # never wait longer than this for an earlier run that does not come

    @ray.method(num_returns=2)
    def run(self, request: bytes | dict[str, Any], *upstream: dict[str, Any] | None) -> tuple[Any, dict]:
        """Run the node ``request`` describes (see :func:`encode_request`) on ``upstream`` outputs."""
        if isinstance(request, bytes):
            request = pickle.loads(request)
        with self.batching.lanes.turn(request.get("lane"), request.get("seq"), self.ORDER_WAIT_S):
            return self._run(request, upstream)

    def _run(self, request: dict[str, Any], upstream: tuple[dict[str, Any] | None, ...]) -> tuple[Any, bytes]:
        if any(u is None for u in upstream):  # queued behind an upstream node that failed
            node = request.get("node")
            error = JobError(f"node {node!r} not run: an input failed", type="skipped", node=node)
            return None, encode_meta({"worker": self.name, "node": node, "job": request.get("job"),
                                      "error": error, "seconds": 0.0, "events": [], "saved": [],
                                      "nbytes": 0, "models": {}})
        out, meta = self.run_node(
            request["block"], request["params"], resolve_slots(request["inputs"], upstream),
            seed=request["seed"], job=request.get("job"), node=request.get("node"),
            version=request.get("version"), options=request.get("options"), lane=request.get("lane"),
        )
        return out, encode_meta(meta)

    @ray.method(concurrency_group=TILE_GROUP)
    def run_tile(self, call: dict[str, Any], shared: Any = None) -> dict[str, Any]:
        """Run a chunk of a tiled node's tiles for its coordinator (``runtime.tiling_ray``)."""
        return serve_tiles(self, call, shared)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def ping(self) -> dict[str, Any]:
        return self.info()

    @ray.method(concurrency_group=CONTROL_GROUP)
    def cancel(self, job: str) -> bool:
        return WorkerCore.cancel(self, job)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def drain_events(self, job: str | None, node: str, timeout: float = 0.0) -> list[dict[str, Any]]:
        return WorkerCore.drain_events(self, job, node, timeout)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def stats(self) -> dict[str, Any]:
        return WorkerCore.stats(self)

    def exit(self) -> None:
        """End the actor once the node it runs is done."""
        with self.batching.lanes.exclusive():
            ray.actor.exit_actor()


_REMOTE_ACTOR: Any = None
_REMOTE_TASK: Any = None


def _actor_class() -> Any:
    global _REMOTE_ACTOR
    if _REMOTE_ACTOR is None:
        # control: cancel, stats and a long poll of progress per running node (with batching,
        # up to batch_max of them at once)
        _REMOTE_ACTOR = ray.remote(concurrency_groups={CONTROL_GROUP: 12, TILE_GROUP: 1})(_WorkerActor)
    return _REMOTE_ACTOR


_TASK_CORES: dict[str, _WorkerActor] = {}


def _cpu_task(
    config: WorkerConfig, request: bytes | dict[str, Any], *upstream: dict[str, Any]
) -> tuple[Any, bytes]:
    """A light CPU block as a plain Ray task (one :class:`WorkerCore` per process and config)."""
    key = config.key()
    core = _TASK_CORES.get(key)
    if core is None:
        core = _TASK_CORES[key] = _WorkerActor(config, name=f"task-{os.getpid()}")
    return core.run(request, *upstream)


def cpu_task() -> Any:
    """The remote function that runs light CPU blocks (``.remote(config, request, *upstream)``)."""
    global _REMOTE_TASK
    if _REMOTE_TASK is None:
        # num_cpus=0: the dispatcher bounds how many run at once (cpu_slots); asking Ray for a
        # CPU as well deadlocks a small machine whose CPUs the worker actors already hold
        _REMOTE_TASK = ray.remote(num_returns=2, max_retries=0, num_cpus=0)(_cpu_task)
    return _REMOTE_TASK


def translate_error(
    exc: BaseException, *, node: str | None = None, worker: str | None = None, block: str | None = None
) -> BlockError | JobError:
    """Ray's exceptions as ours: ``worker_died``, ``timeout``, ``cancelled``, or the block's error."""
    where = f" on worker {worker!r}" if worker else ""
    what = f"node {node!r}" if node else "the call"
    if isinstance(exc, (BlockError, JobError)):
        return exc
    if isinstance(exc, ray_errors.TaskCancelledError):
        return JobError(f"{what} was cancelled{where}", type="cancelled", node=node)
    if isinstance(exc, ray_errors.GetTimeoutError):
        return JobError(f"{what} timed out{where}", type="timeout", node=node)
    if isinstance(exc, (ray_errors.RayActorError, ray_errors.WorkerCrashedError,
                        ray_errors.NodeDiedError, ray_errors.LocalRayletDiedError)):
        return JobError(f"{what}: its worker process died{where} ({type(exc).__name__})",
                        type="worker_died", node=node, worker=worker)
    if isinstance(exc, ray_errors.ObjectLostError):
        return JobError(f"{what}: an input was lost with the machine that held it ({type(exc).__name__})",
                        type="worker_died", node=node, worker=worker)
    if isinstance(exc, ray_errors.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (BlockError, JobError)):
            return cause
        if cause is not None and not isinstance(cause, ray_errors.RayError):
            return plain_error(cause, node or "?", block or "?")
    return JobError(f"{what} failed{where}: {type(exc).__name__}: {exc}", type="job", node=node)


class Worker:
    """A worker actor: ``num_gpus=1`` for a GPU worker, ``num_cpus=1`` for a CPU one.

    A facade in the manner of ``ray.util.queue.Queue``: it creates the actor with its
    options, turns Ray's errors into ours and has :meth:`shutdown`. The methods ending in
    ``_ref`` and :meth:`submit` / :meth:`cancel` do not wait (the scheduler's dispatcher uses
    them); the blocking helpers are for scripts and tests. :attr:`actor` is the raw handle
    (tiled nodes pass it to their tile calls).
    """

    def __init__(
        self,
        config: WorkerConfig | None = None,
        name: str = "worker",
        *,
        gpu: bool = True,
        num_gpus: float = 1.0,
        num_cpus: float | None = None,
        max_queue: int = 4,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or WorkerConfig()
        self.name = name
        self.gpu = gpu
        opts: dict[str, Any] = {
            "num_gpus": num_gpus if gpu else 0,
            "num_cpus": (0 if gpu else 1) if num_cpus is None else num_cpus,
            "max_restarts": 0, "max_task_retries": 0,
            # a thread per queued run, so that control calls (cancel, progress, stats) never
            # wait behind one; the runs themselves take turns in order (see _WorkerActor)
            "max_concurrency": max_queue + 1,
            "scheduling_strategy": "SPREAD",
        }
        opts.update(options or {})
        self.actor = _actor_class().options(**opts).remote(self.config, name)

    def _get(self, ref: Any, timeout: float | None, node: str | None = None) -> Any:
        try:
            return ray.get(ref, timeout=timeout)
        except Exception as exc:
            raise translate_error(exc, node=node, worker=self.name) from exc

    def ping_ref(self) -> Any:
        return self.actor.ping.remote()

    def info(self, timeout: float | None = 60.0) -> dict[str, Any]:
        """Wait until the worker is up; who it is (pid, node, GPU ids, device)."""
        return self._get(self.ping_ref(), timeout)

    def stats_ref(self) -> Any:
        """The worker's own report (see :meth:`stats`), as a reference."""
        return self.actor.stats.remote()

    def stats(self, timeout: float | None = 30.0) -> dict[str, Any]:
        return self._get(self.stats_ref(), timeout)

    def drain_events_ref(self, job: str | None, node: str, timeout: float = 0.0) -> Any:
        """A reference to ``node``'s progress events of ``job`` not yet taken; the call
        returns once there are some, or after ``timeout`` seconds."""
        return self.actor.drain_events.remote(job, node, timeout)

    def submit(self, request: bytes | dict[str, Any], upstream: list[Any] = ()) -> tuple[Any, Any]:  # type: ignore[assignment]
        """Start a node; ``(outputs_ref, meta_ref)``. ``request``: a dict or
        :func:`encode_request`'s bytes. ``upstream``: upstream outputs (or their refs),
        which ``request["inputs"]`` points into (see :func:`resolve_slots`)."""
        return self.actor.run.remote(request, *upstream)

    def run(
        self,
        block_id: str,
        params: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        seed: int = 0,
        job: str | None = None,
        node: str | None = None,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one node and wait: ``(outputs, meta)``; raises our error when it fails."""
        node = node or block_id
        request = {"block": block_id, "params": dict(params), "inputs": {k: (0, k) for k in inputs},
                   "seed": seed, "job": job, "node": node}
        out_ref, meta_ref = self.submit(request, [dict(inputs)])
        meta = decode_meta(self._get(meta_ref, timeout, node))
        if meta["error"] is not None:
            raise meta["error"]
        return self._get(out_ref, timeout, node), meta

    def cancel(self, job: str) -> Any:
        """Ask the worker to cancel ``job`` (does not wait)."""
        return self.actor.cancel.remote(job)

    def kill(self) -> None:
        """End the actor now, whatever it runs."""
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def shutdown(self, timeout: float = 5.0) -> None:
        """End the actor once its running node is done; kill it after ``timeout`` seconds."""
        try:
            ref = self.actor.exit.remote()
            ray.wait([ref], timeout=timeout)
        except Exception:  # noqa: BLE001
            pass
        self.kill()
