"""Upscale model blocks: ESRGAN / Real-ESRGAN / SwinIR-family files, loaded with spandrel."""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.upscale import block


@hookimpl
def register_blocks() -> list[Any]:
    return [*block.BLOCKS]
