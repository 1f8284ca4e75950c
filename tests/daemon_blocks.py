"""Blocks the daemon tests use: a slow step loop, a daemon-killing block, a counter file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from orchestrator import Block, In, Out, Params, block, hookimpl


@block("test.slow", version="1.0.0")
class Slow(Block):
    """Sleep in steps, reporting progress and honouring cancellation; outputs an image."""

    inputs = {"image": In("IMAGE", optional=True)}
    outputs = {"image": Out("IMAGE")}

    class Params(Params):
        steps: int = Field(5, ge=1, le=1000)
        step_s: float = Field(0.1, ge=0.0, le=10.0)
        value: float = Field(0.5, ge=0.0, le=1.0)

    def run(self, ctx, image=None):
        for i in range(self.params.steps):
            time.sleep(self.params.step_s)
            shade = (i + 1) / self.params.steps
            ctx.progress(i + 1, self.params.steps,
                         preview=np.full((8, 8, 3), shade * self.params.value, dtype=np.float32))
        return {"image": np.full((1, 8, 8, 3), self.params.value, dtype=np.float32)}


@block("test.crash", version="1.0.0")
class Crash(Block):
    """Kill the whole process (as a segfaulting extension would)."""

    outputs = {"image": Out("IMAGE")}

    class Params(Params):
        counter: str = Field(..., description="file counting how often this ran")

    def run(self, ctx):
        path = Path(self.params.counter)
        n = int(path.read_text()) if path.exists() else 0
        path.write_text(str(n + 1))
        os._exit(17)


@hookimpl
def register_blocks():
    return [Slow, Crash]
