"""Blocks the benchmarks run: data of a given size, calibrated CPU work, no-ops.

A plugin like any other: ``load_plugins(extra=[("bench", bench.blocks)])`` in this process,
``WorkerConfig(extra_plugins=("bench=bench.blocks",), sys_path=(repo_root,))`` on workers,
``ORCHESTRATOR_PLUGINS__EXTRA=bench.blocks`` (with the repo on ``PYTHONPATH``) in a daemon.

>>> from orchestrator import Context
>>> ctx = Context(node="n", block="bench.source", seed=0)
>>> data = Source({"nbytes": 32768, "value": 3}).run(ctx)["data"]
>>> data.nbytes, int(Consume().run(ctx, data=data)["value"])
(32768, 98304)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, Resources, block, hookimpl

WORKER = Resources(device="gpu", memory_mb=1)  # runs on a worker actor, like a model block


@block("bench.source", version="1.0.0")
class Source(Block):
    """An array of ``nbytes`` bytes, every byte ``value`` (on a worker actor)."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"data": "ANY"}
    resources = WORKER

    class Params(Params):
        nbytes: int = Field(1024, ge=1, le=1 << 30, description="size of the array")
        value: int = Field(0, ge=0, le=255, description="every byte's value")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        return {"data": np.full(self.params.nbytes, self.params.value, dtype=np.uint8)}


@block("bench.consume", version="1.0.0")
class Consume(Block):
    """Reads every byte of ``data`` (on a worker actor); returns their sum."""

    inputs = {"data": In("ANY", "an array")}
    outputs = {"value": "INT"}
    resources = WORKER

    class Params(Params):
        tag: int = Field(0, description="makes otherwise equal nodes differ")

    def run(self, ctx: Context, data: Any) -> dict:
        return {"value": int(np.asarray(data).sum(dtype=np.uint64))}


def spin(iters: int) -> int:
    """``iters`` steps of pure-Python arithmetic: CPU work that holds one core."""
    s = 0
    for i in range(iters):
        s += i * i & 0xFF
    return s


def calibrate(target_s: float = 0.05) -> float:
    """Iterations of :func:`spin` per second on this machine (best of three)."""
    best = 0.0
    n = 20000
    for _ in range(3):
        t0 = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
        n = max(n, int(best * target_s))
    return best


@block("bench.work", version="1.0.0")
class Work(Block):
    """``iters`` steps of CPU work on a worker actor (a tile's worth of compute)."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"value": "INT"}
    resources = WORKER

    class Params(Params):
        iters: int = Field(0, ge=0, le=10**10, description="work steps")
        tag: int = Field(0, description="makes otherwise equal nodes differ")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        return {"value": spin(self.params.iters)}


@block("bench.gather", version="1.0.0")
class Gather(Block):
    """Counts its inputs (a light CPU block)."""

    inputs = {"items": In("ANY", "anything", multiple=True)}
    outputs = {"value": "INT"}

    def run(self, ctx: Context, items: list) -> dict:
        return {"value": len(items)}


@block("bench.noop", version="1.0.0")
class Noop(Block):
    """Returns ``value`` (a light CPU block: in-process, or a Ray task)."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"value": "INT"}

    class Params(Params):
        value: int = Field(0, description="returned as is")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        return {"value": self.params.value}


@block("bench.alloc", version="1.0.0")
class Alloc(Block):
    """Allocates ``nbytes`` and touches them: a huge size fails at once with ``MemoryError``."""

    outputs = {"value": "INT"}

    class Params(Params):
        nbytes: int = Field(1 << 20, ge=1, description="bytes to allocate")

    def run(self, ctx: Context) -> dict:
        a = np.ones(self.params.nbytes, dtype=np.uint8)
        return {"value": int(a[::4096].sum())}


BLOCKS = [Source, Consume, Work, Gather, Noop, Alloc]


@hookimpl
def register_blocks() -> list[Any]:
    return list(BLOCKS)
