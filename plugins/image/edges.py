"""Edge and line maps (conditions for edge- and sketch-guided generation).

``image.canny`` gives OpenCV's Canny edges, white on black; ``image.sketch`` a soft
pencil-sketch / line-art map made by the "colour dodge" of the grayscale image with its
blurred negative (``gray / blur(gray)``): flat areas turn white, edges dark.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="canny", block="image.canny", seed=0)
>>> img = np.zeros((1, 16, 16, 3), np.float32); img[0, :, 8:] = 1.0
>>> edges = Canny().run(ctx, image=img)["image"]
>>> edges.shape, sorted(np.flatnonzero(edges[0, 8, :, 0]).tolist())
((1, 16, 16, 3), [7])
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from orchestrator import Block, Context, Params, block
from plugins.image.common import check_image, luma


@block("image.canny", version="1.0.0")
class Canny(Block):
    """Canny edges (``cv2.Canny``) as a 3-channel image, edges white (1) on black (0)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        low: float = Field(100.0, ge=0.0, le=5000.0,
                           description="hysteresis low threshold (gradient units of 8-bit gray)")
        high: float = Field(200.0, ge=0.0, le=5000.0,
                            description="hysteresis high threshold; edges start above it")
        blur: float = Field(0.0, ge=0.0, le=20.0,
                            description="Gaussian blur sigma before detection (less noise); 0 = none")
        l2_gradient: bool = Field(False, description="use the exact L2 gradient magnitude")

        @field_validator("high")
        @classmethod
        def _high_above_low(cls, high: float, info: ValidationInfo) -> float:
            low = info.data.get("low")
            if low is not None and high < low:
                raise ValueError(f"high threshold {high} is below the low threshold {low}")
            return high

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        gray = luma(check_image(ctx, image))
        p = self.params
        out = np.empty((*gray.shape, 3), dtype=np.float32)
        for i, g in enumerate(gray):
            if p.blur > 0:
                g = cv2.GaussianBlur(g, (0, 0), sigmaX=p.blur, borderType=cv2.BORDER_REPLICATE)
            g8 = (np.clip(g, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            edges = cv2.Canny(g8, p.low, p.high, L2gradient=p.l2_gradient)
            out[i] = (edges > 0)[..., None]
        return {"image": out}


@block("image.sketch", version="1.0.0")
class Sketch(Block):
    """A soft pencil sketch / line-art map: dark lines on white (or inverted)."""

    inputs = {"image": "IMAGE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        blur: float = Field(6.0, ge=0.3, le=100.0,
                            description="blur sigma in pixels: line width and softness")
        gamma: float = Field(1.0, ge=0.1, le=10.0, description="above 1 darkens the lines")
        invert: bool = Field(False, description="white lines on black (as line-art conditions want)")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        gray = luma(check_image(ctx, image)).clip(0.0, 1.0)
        p = self.params
        out = np.empty_like(gray)
        for i, g in enumerate(gray):
            # colour dodge of gray with its blurred negative: g / (1 - blur(1 - g)) = g / blur(g)
            soft = cv2.GaussianBlur(g, (0, 0), sigmaX=p.blur, borderType=cv2.BORDER_REPLICATE)
            out[i] = np.divide(g, soft, out=np.ones_like(g), where=soft > 1e-6)
        out = np.clip(out, 0.0, 1.0) ** p.gamma
        if p.invert:
            out = 1.0 - out
        return {"image": np.repeat(out[..., None], 3, axis=-1).astype(np.float32)}


BLOCKS = [Canny, Sketch]
