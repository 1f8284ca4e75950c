"""Per-pixel and geometric transforms: grayscale, resize, crop, pad."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Params, block

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@block("image.grayscale", version="1.0.0")
class Grayscale(Block):
    """Convert to grayscale (ITU-R 601 luma); keeps 3 channels unless ``channels=1``."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        channels: int = Field(3, ge=1, le=3, description="1 for a single-channel result, else 3")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
        y = (rgb @ LUMA)[..., None].astype(np.float32)
        return {"image": y if self.params.channels == 1 else np.repeat(y, 3, axis=-1)}


BLOCKS = [Grayscale]
