"""The daemon's Ray engine: the :class:`~orchestrator.runtime.scheduler.Scheduler` built from settings.

``orchestrator daemon start`` picks it (``engine = "ray"``, the default); with
``--ray-address auto`` (or ``ray_address`` in the config) it joins a running cluster, e.g.
one started from ``ray_cluster.yaml``, else it starts a local Ray. Workers load the same
plugins as the daemon and a ``ModelManager`` over the configured models.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from orchestrator.catalog import Catalog
from orchestrator.errors import JobError
from orchestrator.runtime.compile import CompiledGraph, compile_graph, key_input_files, stale_keys
from orchestrator.runtime.executor import RunResult
from orchestrator.runtime.jobs import JobHandle, ObjectCache
from orchestrator.runtime.limits import SizeLimits
from orchestrator.runtime.scheduler import Scheduler, worker_config_from_settings
from orchestrator.state.input_paths import ensure_input_dir


class RayEngine(Scheduler):
    """An :class:`~orchestrator.runtime.engine.Engine` that runs jobs on Ray worker actors."""

    def __init__(self, catalog: Catalog, settings: Any, **kwargs: Any) -> None:
        opts: dict[str, Any] = {
            "ray_address": settings.ray_address, "cpu_workers": settings.workers or None,
            # the daemon's workers read only from the input folder, whatever else is set
            "input_root": ensure_input_dir(settings.effective_input_dir), "confine_inputs": True,
            "node_timeout": settings.limits.node_timeout_s,
            "limits": SizeLimits.of(settings.limits).to_dict(),
        }
        opts["cache"] = ObjectCache(max_entries=settings.cache.max_entries,
                                    max_bytes=settings.cache.max_bytes)
        opts.update(kwargs)
        opts.setdefault("config", worker_config_from_settings(settings))
        super().__init__(catalog, **opts)
        self.settings = settings
        self.models = _registry(settings)  # what the API lists; weights live on the workers

    def submit(self, graph: Any, **kwargs: Any) -> JobHandle:
        """Queue ``graph`` with keys that cover the content of the input files it reads."""
        return super().submit(self._keyed(graph), **kwargs)

    def run(self, graph: Any, **kwargs: Any) -> RunResult:
        """Run ``graph`` (keyed as :meth:`submit` keys it) and wait; afterwards drop from the
        cache what a file replaced while the job ran would leave under its old content's key."""
        compiled = self._keyed(graph)
        try:
            return super().run(compiled, **kwargs)
        finally:
            stale = stale_keys(compiled, self.input_root)
            if stale:
                with suppress(JobError):  # shut down meanwhile: no cache left to correct
                    self._call(lambda: [self.cache.discard(key) for key in stale])

    def _keyed(self, graph: Any) -> CompiledGraph:
        compiled = graph if isinstance(graph, CompiledGraph) else compile_graph(graph, self.catalog)
        if compiled.seed_keys is not None:
            return compiled  # keyed already (run -> submit)
        return key_input_files(compiled, self.input_root)


def _registry(settings: Any) -> Any:
    try:
        from orchestrator.models import registry_from_settings

        return registry_from_settings(settings)
    except Exception:  # noqa: BLE001 - listing models is optional; running jobs is not
        return None
