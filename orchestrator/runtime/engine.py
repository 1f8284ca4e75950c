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


class LocalEngine:
    """Runs one job at a time in this process with the reference executor."""

    capacity = 1

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.models = model_provider(settings)
        self.input_root = ensure_input_dir(settings.effective_input_dir)
        self.cache = ResultCache(max_entries=settings.cache.max_entries,
                                 max_bytes=settings.cache.max_bytes)
        self._lock = threading.Lock()
        self.nodes_run = 0

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
        )
        with self._lock:
            try:
                result = executor.run(compiled, job=job, on_event=on_event, is_cancelled=is_cancelled)
            finally:  # a file replaced while the job ran: its result is not kept under the old key
                for key in stale_keys(compiled, self.input_root):
                    self.cache.discard(key)
            self.nodes_run += len(result.timings)
        return result

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": "local", "nodes_run": self.nodes_run,
                               "cache_hits": self.cache.hits, "cache_misses": self.cache.misses,
                               "cache_entries": len(self.cache), "cache": self.cache.stats()}
        report = getattr(self.models, "report", None)
        if callable(report):
            out["models"] = report()  # held components, bytes, budget, load counts
        return out

    def shutdown(self) -> None:
        return None
