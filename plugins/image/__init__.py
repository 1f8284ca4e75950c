"""Image blocks on the CPU: load/save, resize/crop/pad, composite, palette, edges, tiles."""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.image import io, transform


@hookimpl
def register_blocks() -> list[Any]:
    return [*io.BLOCKS, *transform.BLOCKS]
