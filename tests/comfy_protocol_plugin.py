"""A block plugin that maps ComfyUI classes with everything ``object_info`` needs to list them
(link input types, output types, widget defaults): loaded by tests/test_comfy_protocol.py's
daemon through ``ORCHESTRATOR_PLUGINS__EXTRA``."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Params, block, hookimpl


@block("comfyproto.invert", version="1.0.0")
class Invert(Block):
    """Invert an image, by ``amount`` (1: fully)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        amount: float = Field(1.0, ge=0.0, le=1.0, description="how much to invert")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        return {"image": image + self.params.amount * (1.0 - 2.0 * image)}


@hookimpl
def register_blocks() -> list:
    return [Invert]


@hookimpl
def register_comfy_mappings() -> list:
    return [
        {"class_type": "ImageInvert", "block": "comfyproto.invert", "inputs": {"image": "image"},
         "outputs": ["image"], "input_types": {"image": "IMAGE"}, "output_types": ["IMAGE"]},
        {"class_type": "ImageInvertPartly", "block": "comfyproto.invert", "inputs": {"image": "image"},
         "params": {"amount": "strength"}, "outputs": ["image"], "widgets": ["strength"],
         "defaults": {"strength": 0.5}, "input_types": {"image": "IMAGE"}, "output_types": ["IMAGE"]},
        {"class_type": "ImageInvertUnlisted", "block": "comfyproto.invert", "inputs": {"image": "image"},
         "outputs": ["image"]},  # no types: it imports and runs, but object_info cannot draw it
    ]
