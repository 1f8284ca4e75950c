"""Test-only blocks for the reliability suite's daemons: CPU that holds the GIL, memory.

Loaded by the daemon as an extra plugin (``ORCHESTRATOR_PLUGINS__EXTRA=...,stress_blocks``).
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Out, Params, block, hookimpl


@block("stress.burn", version="1.0.0")
class Burn(Block):
    """Pure-Python arithmetic for ``seconds`` (it holds the GIL), stopping when cancelled."""

    outputs = {"value": Out("INT")}

    class Params(Params):
        seconds: float = Field(1.0, ge=0, le=600)
        tag: int = Field(0, description="makes otherwise equal jobs differ")

    def run(self, ctx: Context) -> dict:
        end = time.monotonic() + self.params.seconds
        s = 0
        while time.monotonic() < end:
            for i in range(20000):
                s += i * i & 0xFF
            ctx.check_cancelled()
        return {"value": s}


@block("stress.alloc", version="1.0.0")
class Alloc(Block):
    """Allocates ``nbytes`` and touches them (a huge size fails at once with ``MemoryError``)."""

    outputs = {"value": Out("INT")}

    class Params(Params):
        nbytes: int = Field(1 << 20, ge=1)

    def run(self, ctx: Context) -> dict:
        a = np.ones(self.params.nbytes, dtype=np.uint8)
        return {"value": int(a[::4096].sum())}


@hookimpl
def register_blocks() -> list:
    return [Burn, Alloc]
