"""Test-only blocks that misbehave on purpose, and a tiny counting model provider.

Registered as a plugin: ``load_plugins(extra=[("faults", fault_plugin)])`` in the driver
and ``WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(tests_dir,))`` on the
workers, which import it themselves.

Blocks: ``faults.noop`` / ``faults.cpu_noop`` (nothing), ``faults.sleep``, ``faults.fail``
(raises), ``faults.hang`` (never returns, ignores cancellation), ``faults.exit``
(``os._exit``: kills its worker), ``faults.steps`` (a step loop that reports progress and
checks cancellation), ``faults.model`` (loads a model through ``ctx.models``),
``faults.noise`` / ``faults.invert`` / ``faults.mix`` (small image maths with the seed).
"""

from __future__ import annotations

import os
import time
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, Resources, block, hookimpl

GPU = Resources(device="gpu", memory_mb=1)


@block("faults.noop", version="1.0.0")
class Noop(Block):
    """Does nothing (on a GPU worker); returns its ``value`` param."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"value": "INT"}
    resources = GPU

    class Params(Params):
        value: int = Field(0, description="returned as is")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        return {"value": self.params.value}


@block("faults.cpu_noop", version="1.0.0")
class CpuNoop(Block):
    """Does nothing (a light CPU block: a Ray task); returns its ``value`` param."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"value": "INT"}

    class Params(Params):
        value: int = Field(0, description="returned as is")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        return {"value": self.params.value}


@block("faults.sleep", version="1.0.0")
class Sleep(Block):
    """Sleeps ``seconds``; returns the pid of the process it ran in."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True, multiple=True)}
    outputs = {"pid": "INT"}
    resources = GPU

    class Params(Params):
        seconds: float = Field(0.1, ge=0, le=60, description="how long")
        tag: str = Field("", description="makes otherwise equal nodes differ")

    def run(self, ctx: Context, after: list | None = None) -> dict:
        time.sleep(self.params.seconds)
        return {"pid": os.getpid()}


@block("faults.fail", version="1.0.0")
class Fail(Block):
    """Raises ``ValueError(message)``."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True)}
    outputs = {"value": "INT"}
    resources = GPU

    class Params(Params):
        message: str = Field("boom", description="the error message")

    def run(self, ctx: Context, after: Any = None) -> dict:
        raise ValueError(self.params.message)


@block("faults.hang", version="1.0.0")
class Hang(Block):
    """Never returns and never looks at cancellation."""

    outputs = {"value": "INT"}
    resources = GPU

    def run(self, ctx: Context) -> dict:
        while True:
            time.sleep(0.05)


@block("faults.exit", version="1.0.0")
class Exit(Block):
    """Ends its process at once (``os._exit``): a poison node that kills every worker it meets."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True)}
    outputs = {"value": "INT"}
    resources = GPU

    class Params(Params):
        code: int = Field(1, description="exit status")

    def run(self, ctx: Context, after: Any = None) -> dict:
        os._exit(self.params.code)


@block("faults.steps", version="1.0.0")
class Steps(Block):
    """A sampler-like loop: ``steps`` steps of ``delay`` seconds, progress and cancellation each step."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True)}
    outputs = {"steps": "INT", "pid": "INT"}
    resources = GPU

    class Params(Params):
        steps: int = Field(10, ge=1, le=10000)
        delay: float = Field(0.02, ge=0, le=10)

    def run(self, ctx: Context, after: Any = None) -> dict:
        n = self.params.steps
        for i in range(n):
            time.sleep(self.params.delay)
            ctx.progress(i + 1, n)
        return {"steps": n, "pid": os.getpid()}


@block("faults.model", version="1.0.0")
class ModelBlock(Block):
    """Loads ``model`` through ``ctx.models`` and returns a seeded mix of its first weights."""

    inputs = {"after": In("ANY", "anything, to order nodes", optional=True)}
    outputs = {"value": "ANY"}
    resources = GPU

    class Params(Params):
        model: str = Field(..., description="model name")
        scale: float = Field(1.0, description="multiplier")

    def run(self, ctx: Context, after: Any = None) -> dict:
        weights = ctx.models.load(self.params.model, device=ctx.device)
        value = weights[:8] * self.params.scale + ctx.rng.random(8).astype(np.float32)
        return {"value": value}


@block("faults.noise", version="1.0.0")
class Noise(Block):
    """A seeded random image (from ``ctx.rng``)."""

    outputs = {"image": "IMAGE"}
    resources = GPU

    class Params(Params):
        width: int = Field(8, ge=1, le=512)
        height: int = Field(8, ge=1, le=512)

    def run(self, ctx: Context) -> dict:
        p = self.params
        return {"image": ctx.rng.random((1, p.height, p.width, 3), dtype=np.float32)}


@block("faults.invert", version="1.0.0")
class Invert(Block):
    """1 - image, on a GPU worker."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}
    resources = GPU

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        return {"image": (1.0 - image).astype(np.float32)}


@block("faults.mix", version="1.0.0")
class Mix(Block):
    """Weighted mean of images, weight i+1 for the i-th: the order of the list matters."""

    inputs = {"images": In("IMAGE", "images of one shape", multiple=True),
              "bias": In("FLOAT", "added", optional=True)}
    outputs = {"image": "IMAGE"}

    def run(self, ctx: Context, images: list, bias: float = 0.0) -> dict:
        weights = np.arange(1, len(images) + 1, dtype=np.float32)
        out = sum(w * img for w, img in zip(weights, images, strict=True)) / weights.sum()
        return {"image": (out + bias).astype(np.float32)}


BLOCKS = [Noop, CpuNoop, Sleep, Fail, Hang, Exit, Steps, ModelBlock, Noise, Invert, Mix]


@hookimpl
def register_blocks() -> list[Any]:
    return list(BLOCKS)


class CountingProvider:
    """A stand-in model provider: deterministic numpy "weights" per name, LRU under a budget.

    Counts every load so tests can see residency (loaded once, then reused) and eviction.
    """

    def __init__(self, budget_bytes: int | None = None, size: int = 1024, load_seconds: float = 0.0) -> None:
        self.budget_bytes = budget_bytes
        self.size = size
        self.load_seconds = load_seconds
        self.models: OrderedDict[str, np.ndarray] = OrderedDict()
        self.load_counts: dict[str, int] = {}

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        name = ref if isinstance(ref, str) else str(ref["name"])
        if name in self.models:
            self.models.move_to_end(name)
            return self.models[name]
        time.sleep(self.load_seconds)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        weights = rng.standard_normal(self.size).astype(np.float32)
        self.load_counts[name] = self.load_counts.get(name, 0) + 1
        self.models[name] = weights
        while self.budget_bytes is not None and len(self.models) > 1 and self.bytes > self.budget_bytes:
            self.models.popitem(last=False)
        return weights

    @property
    def bytes(self) -> int:
        return sum(m.nbytes for m in self.models.values())

    def stats(self) -> dict[str, Any]:
        return {"resident": list(self.models), "loads": sum(self.load_counts.values()),
                "load_counts": dict(self.load_counts), "bytes": self.bytes, "budget": self.budget_bytes}


def tiny_model_manager(cache_dir: str, budget_bytes: int | None = None) -> Any:
    """The real ``ModelManager`` over the built-in tiny models in ``cache_dir`` (a worker's provider)."""
    from orchestrator.models import ModelManager, ModelRegistry

    return ModelManager(ModelRegistry(cache_dir=cache_dir), budget_bytes=budget_bytes)
