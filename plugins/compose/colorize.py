"""Palette colourization: the intensity of one image in the colours of another's palette.

``compose.colorize`` maps each pixel's luminance through a gradient of the palette's
colours placed at their own luminance (darkest to brightest), so the result keeps the
light and shade of the input and has only the palette's hues. Followed by an img2img pass
(``sd.denoise`` at partial strength) it is the Composer recipe "grayscale of A + palette
of B" (template ``palette_colorization``).

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="c", block="compose.colorize", seed=0)
>>> gray = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1).repeat(3, -1)
>>> pal = np.array([[0.9, 0.2, 0.1], [0.1, 0.1, 0.4]], np.float32)
>>> Colorize({}).run(ctx, image=gray, palette=pal)["image"][0, 0].astype(float).round(2).tolist()
[[0.1, 0.1, 0.4], [0.9, 0.2, 0.1]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, Params, block
from plugins.image.common import LUMA, check_image, input_error, luma


@block("compose.colorize", version="1.0.0")
class Colorize(Block):
    """Colour an image's intensity with a palette (a gradient map through the palette's colours)."""

    inputs = {"image": "IMAGE", "palette": "PALETTE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        stretch: bool = Field(True, description="stretch the image's luminance range over the palette's")
        even: bool = Field(False, description="space the colours evenly instead of at their luminance")

    def run(self, ctx: Context, image: np.ndarray, palette: np.ndarray) -> dict:
        pal = np.asarray(palette, dtype=np.float32)
        if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) == 0:
            raise input_error(ctx, "inputs.palette", f"must be a PALETTE [N, 3], got shape {pal.shape}")
        level = np.clip(luma(check_image(ctx, image)), 0.0, 1.0)
        pal_luma = pal @ LUMA
        order = np.argsort(pal_luma, kind="stable")
        pal, pal_luma = pal[order], pal_luma[order]
        if self.params.even or len(pal) == 1 or np.ptp(pal_luma) < 1e-6:
            stops = np.linspace(0.0, 1.0, len(pal))
        else:
            stops = pal_luma
        if self.params.stretch:
            for i, lv in enumerate(level):
                lo, hi = float(lv.min()), float(lv.max())
                lv = (lv - lo) / (hi - lo) if hi > lo else np.full_like(lv, 0.5)
                level[i] = stops[0] + lv * (stops[-1] - stops[0])
        out = np.stack([np.interp(level, stops, pal[:, c]) for c in range(3)], axis=-1)
        return {"image": out.astype(np.float32)}


BLOCKS = [Colorize]
