"""Image blocks on the CPU: load/save, resize/crop/pad, masks, composite, palette, edges, tiles."""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.image import composite, edges, io, masks, palette, tiles, transform


@hookimpl
def register_blocks() -> list[Any]:
    return [*io.BLOCKS, *transform.BLOCKS, *masks.BLOCKS, *composite.BLOCKS, *palette.BLOCKS,
            *edges.BLOCKS, *tiles.BLOCKS]
