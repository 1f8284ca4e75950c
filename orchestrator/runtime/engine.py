"""Engines: what the daemon's job service runs compiled graphs on.

An engine takes a compiled graph and runs it to a :class:`~orchestrator.runtime.executor.RunResult`,
reporting events and honouring cancellation. :class:`LocalEngine` runs in this process
(the reference executor); the Ray scheduler is the engine for GPUs and clusters.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from orchestrator.catalog import Catalog
from orchestrator.config import Settings
from orchestrator.context import ModelProvider
from orchestrator.runtime.batching import Batching
from orchestrator.runtime.cache import ResultCache
from orchestrator.runtime.compile import CompiledGraph, key_input_files, stale_keys
from orchestrator.runtime.executor import LocalExecutor, RunResult
from orchestrator.state.input_paths import ensure_input_dir

EventFn = Callable[[dict[str, Any]], None]


class Engine(Protocol):
    """Runs compiled graphs for the job service."""

    catalog: Catalog
    capacity: int  # how many jobs it runs at once

    def run(
        self,
        compiled: CompiledGraph,
        *,
        job: str,
        priority: int,
        outputs_dir: Path,
        on_event: EventFn,
        is_cancelled: Callable[[], bool],
    ) -> RunResult: ...

    def stats(self) -> dict[str, Any]: ...

    def shutdown(self) -> None: ...


def model_provider(settings: Settings) -> ModelProvider | None:
    """The model provider for in-process runs, from ``orchestrator.models`` when installed."""
    try:
        models = importlib.import_module("orchestrator.models")
    except ImportError:
        return None
    factory = getattr(models, "provider_from_settings", None)
    return factory(settings) if factory is not None else None


class SharedResultCache(ResultCache):
    """A :class:`ResultCache` that concurrent runs may share (one lock around each call)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return super().get(key)

    def put(self, key: str, outputs: dict[str, Any], nbytes: int | None = None) -> bool:
        with self._lock:
            return super().put(key, outputs, nbytes)

    def discard(self, key: str) -> None:
        with self._lock:
            super().discard(key)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return super().stats()


class LocalEngine:
    """Runs jobs in this process with the reference executor: one at a time, or with
    ``[batching]`` on, several whose sampling nodes batch their UNet calls.

    Nodes take turns under :class:`~orchestrator.runtime.batching.Lanes`: one at a time, except
    that sampling nodes of one model (``Resources(batch=True)``) run side by side, up to
    ``max_batch``. The job service starts another job only while every running one is inside
    such a node (:meth:`has_room`), so jobs still start in priority order and a job of other
    work runs alone as before.
    """

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.models = model_provider(settings)
        self.input_root = ensure_input_dir(settings.effective_input_dir)
        self.cache = SharedResultCache(max_entries=settings.cache.max_entries,
                                       max_bytes=settings.cache.max_bytes)
        self.batching = Batching.from_settings(settings)
        self.capacity = self.batching.max_batch  # jobs at once (1 without batching)
        self._lock = threading.Lock()
        self.nodes_run = 0

    @property
    def on_room(self) -> Callable[[], None] | None:
        """Called when a node starts or ends: another job may have room now (the service's wake)."""
        return self.batching.on_change

    @on_room.setter
    def on_room(self, fn: Callable[[], None] | None) -> None:
        self.batching.on_change = fn

    def has_room(self, jobs: int) -> bool:
        """Whether another job may start beside ``jobs`` running ones (see the class doc)."""
        return self.batching.has_room(jobs)

    def run(
        self,
        compiled: CompiledGraph,
        *,
        job: str,
        priority: int,
        outputs_dir: Path,
        on_event: EventFn,
        is_cancelled: Callable[[], bool],
    ) -> RunResult:
        compiled = key_input_files(compiled, self.input_root)  # a changed file re-runs its node
        executor = LocalExecutor(
            self.catalog, models=self.models, outputs_dir=outputs_dir,
            input_root=self.input_root, confine_inputs=True,  # the daemon reads only from there
            cache=self.cache, device=self.settings.resolved_device(), limits=self.settings.limits,
            batching=self.batching,
        )
        try:
            result = executor.run(compiled, job=job, on_event=on_event, is_cancelled=is_cancelled)
        finally:  # a file replaced while the job ran: its result is not kept under the old key
            for key in stale_keys(compiled, self.input_root):
                self.cache.discard(key)
        with self._lock:
            self.nodes_run += len(result.timings)
        return result

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": "local", "nodes_run": self.nodes_run,
                               "cache_hits": self.cache.hits, "cache_misses": self.cache.misses,
                               "cache_entries": len(self.cache), "cache": self.cache.stats()}
        out["batching"] = self.batching.stats()
        report = getattr(self.models, "report", None)
        if callable(report):
            out["models"] = report()  # held components, bytes, budget, load counts
        return out

    def shutdown(self) -> None:
        return None
