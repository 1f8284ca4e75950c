"""The scheduler's pool of worker actors: start, place, replace, and what each holds.

One worker per GPU Ray knows of (``num_gpus=1`` each, so on a cluster they spread over
the machines' GPUs), or ``cpu_workers`` CPU workers where there is none. The pool does not
wait on anything: the scheduler's loop owns every Ray reference and tells the pool what
came back (:meth:`WorkerPool.started`, :meth:`WorkerPool.died`).

Placement of a GPU node: an idle worker that already holds the node's model (affinity),
else the idle worker with the least model memory in use, then the fewest nodes run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import ray

from graphs.model_refs import model_key
from orchestrator.runtime.worker import Worker, WorkerConfig, model_name

log = logging.getLogger(__name__)

STARTING, READY, DEAD = "starting", "ready", "dead"
MAX_HELD = 16  # model keys remembered per worker when its provider reports nothing




@dataclass(eq=False)
class WorkerSlot:
    """One place in the pool and the actor currently filling it."""

    index: int
    generation: int
    worker: Worker
    state: str = STARTING
    ping_ref: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    queue: list[Any] = field(default_factory=list)  # nodes sent to it, in order; [0] runs
    held: OrderedDict[str, str | None] = field(default_factory=OrderedDict)  # model key -> name
    bytes: int = 0
    nodes_run: int = 0
    failures: int = 0  # consecutive start failures of this slot
    spawned: float = field(default_factory=time.monotonic)
    next_seq: int = 0  # the number of the next node sent: the actor runs them in that order
    died_with: int = 0  # how many nodes it held when it died

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def idle(self) -> bool:
        return self.state == READY and not self.queue

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "slot": self.index, "state": self.state,
                "queued": len(self.queue), "models": list(self.held),
                "bytes": self.bytes, "nodes_run": self.nodes_run, **self.info}


class WorkerPool:
    """The worker actors of one scheduler."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        gpus: int | None = None,
        cpu_workers: int | None = None,
        actor_options: dict[str, Any] | None = None,
        max_start_failures: int = 3,
        start_timeout: float = 300.0,
        queue_depth: int = 2,
    ) -> None:
        self.config = config
        self.queue_depth = queue_depth
        self.actor_options = dict(actor_options or {})
        self.max_start_failures = max_start_failures
        self.start_timeout = start_timeout
        resources = ray.cluster_resources()
        if gpus is None:
            gpus = int(resources.get("GPU", 0))
        self.gpu = gpus > 0
        if self.gpu:
            size = gpus
        else:
            total_cpus = int(resources.get("CPU", 1))
            size = cpu_workers or max(1, min(4, total_cpus // 2))
            if config.cpu_threads is None:  # each CPU worker computes with its share of the CPUs
                config = dataclasses.replace(config, cpu_threads=max(1, total_cpus // size))
                self.config = config
        self.kind = "gpu" if self.gpu else "cpu"
        self.slots: list[WorkerSlot] = []
        self.error: str | None = None  # set when workers cannot start at all
        for i in range(size):
            self.slots.append(self._spawn(i, 1))

    # -- lifecycle ------------------------------------------------------------------------

    def _spawn(self, index: int, generation: int) -> WorkerSlot:
        worker = Worker(self.config, f"{self.kind}{index}.{generation}", gpu=self.gpu,
                        max_queue=self.queue_depth, options=self.actor_options)
        return WorkerSlot(index=index, generation=generation, worker=worker, ping_ref=worker.ping_ref())

    def pings(self) -> dict[Any, WorkerSlot]:
        """Outstanding start-up pings, by reference."""
        return {s.ping_ref: s for s in self.slots if s.state == STARTING and s.ping_ref is not None}

    def started(self, slot: WorkerSlot, info: dict[str, Any] | None, error: BaseException | None) -> None:
        """A start-up ping came back (with the worker's info, or the error it died with)."""
        slot.ping_ref = None
        if error is None:
            slot.state = READY
            slot.info = dict(info or {})
            slot.failures = 0
            self.error = None
            return
        log.warning("worker %s failed to start: %s", slot.name, error)
        failures = slot.failures + 1
        slot.worker.kill()
        slot.state = DEAD
        if failures >= self.max_start_failures:
            self.error = f"worker {slot.name} failed to start {failures} times: {error}"
            return
        new = self.replace(slot)
        new.failures = failures

    def check_starts(self) -> None:
        """Say so (``error``) when no worker is up and one has been starting too long: Ray
        cannot place it (its GPU is taken by another process?) or its set-up hangs."""
        if self.error is not None or any(s.state == READY for s in self.slots):
            return
        now = time.monotonic()
        late = [s for s in self.slots if s.state == STARTING and now - s.spawned > self.start_timeout]
        if late:
            need = "1 GPU" if self.gpu else "1 CPU"
            self.error = (f"no worker started within {self.start_timeout:g} s (each needs {need}; "
                          f"resources free now: {ray.available_resources()})")

    def replace(self, slot: WorkerSlot) -> WorkerSlot:
        """Kill ``slot``'s actor (if it lives) and start a fresh one in its place."""
        slot.worker.kill()
        slot.state = DEAD
        new = self._spawn(slot.index, slot.generation + 1)
        self.slots[slot.index] = new
        return new

    def died(self, slot: WorkerSlot) -> WorkerSlot:
        """``slot``'s actor is gone: start its replacement (models it held are lost)."""
        log.warning("worker %s died; starting a replacement", slot.name)
        return self.replace(slot)

    def shutdown(self) -> None:
        for slot in self.slots:
            slot.worker.kill()
            slot.state = DEAD

    # -- placement ------------------------------------------------------------------------

    def ready_count(self) -> int:
        return sum(1 for s in self.slots if s.state == READY)

    def free(self, depth: int) -> list[WorkerSlot]:
        """Live workers with room for another node (``depth`` nodes at most, one running)."""
        return [s for s in self.slots if s.state == READY and len(s.queue) < depth]

    def pick(
        self, key: str | None, depth: int = 1, among: list[WorkerSlot] | None = None
    ) -> WorkerSlot | None:
        """The worker for a ready node that needs model ``key``: an idle one holding the model,
        else the idle one with least model memory in use; only when none is idle, a busy one
        with room in its queue (holding the model first, then the shortest queue).
        ``among`` narrows the choice to those workers.
        """
        free = [s for s in self.free(depth) if among is None or s in among]
        if not free:
            return None
        idle = [s for s in free if not s.queue]
        group = idle or free
        if key is not None:
            holders = [s for s in group if key in s.held]
            if holders:
                return min(holders, key=lambda s: (len(s.queue), s.index))
        return min(group, key=lambda s: (len(s.queue), s.bytes, len(s.held), s.nodes_run, s.index))

    def holders(self, key: str) -> list[WorkerSlot]:
        return [s for s in self.slots if s.state == READY and key in s.held]

    def record(self, slot: WorkerSlot, key: str | None, name: str | None, models: dict[str, Any]) -> None:
        """After a node: remember its model on ``slot``; forget what the provider evicted."""
        slot.nodes_run += 1
        if key is not None:
            slot.held[key] = name
            slot.held.move_to_end(key)
        if "bytes" in models:
            slot.bytes = int(models.get("bytes") or 0)
        if "resident" in models:  # the provider says what it holds: trust it over our memory
            names = set(models["resident"])
            for k, n in list(slot.held.items()):
                if (n or k) not in names and k not in names:
                    del slot.held[k]
        while len(slot.held) > MAX_HELD:
            slot.held.popitem(last=False)

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in self.slots]


__all__ = ["DEAD", "READY", "STARTING", "WorkerPool", "WorkerSlot", "model_key", "model_name"]
