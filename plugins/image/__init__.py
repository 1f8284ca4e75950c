"""Image blocks on the CPU: load/save, resize/crop/pad, masks, composite, palette, edges, tiles."""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.image import (
    batches,
    comfy_nodes,
    comfy_scale,
    comfy_utils,
    composite,
    edges,
    filters,
    io,
    mask_ops,
    masks,
    palette,
    regions,
    tiles,
    transform,
)


@hookimpl
def register_blocks() -> list[Any]:
    return [*io.BLOCKS, *transform.BLOCKS, *masks.BLOCKS, *composite.BLOCKS, *palette.BLOCKS,
            *edges.BLOCKS, *tiles.BLOCKS,
            *mask_ops.BLOCKS, *filters.BLOCKS, *comfy_scale.BLOCKS, *batches.BLOCKS, *regions.BLOCKS]


@hookimpl
def register_comfy_mappings() -> list[Any]:
    """ComfyUI's image and mask nodes (load, save, scale, pad, blend, Canny, masks) and utility nodes."""
    return [*comfy_nodes.MAPPINGS, *comfy_utils.MAPPINGS]
