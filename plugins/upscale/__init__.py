"""Upscale model blocks: ESRGAN / Real-ESRGAN / SwinIR-family files, loaded with spandrel."""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.upscale import block, comfy_nodes


@hookimpl
def register_blocks() -> list[Any]:
    return [*block.BLOCKS]


@hookimpl
def register_comfy_mappings() -> list[Any]:
    """ComfyUI's UpscaleModelLoader and ImageUpscaleWithModel."""
    return [*comfy_nodes.MAPPINGS]
