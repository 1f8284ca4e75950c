"""Compositing: lay image ``b`` over image ``a`` with a blend mode, an opacity and a mask.

The amount of ``b`` at each pixel is ``opacity * mask * alpha(b)`` (the mask and b's
alpha channel count only when present); the result there is
``a + amount * (mode(a, b) - a)``. Colour channels blend, a's alpha (if any) becomes
``a_alpha + (1 - a_alpha) * amount`` (b is laid over a).

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="blend", block="image.blend", seed=0)
>>> a = np.full((1, 1, 1, 3), 0.5, np.float32); b = np.full((1, 1, 1, 3), 0.2, np.float32)
>>> [round(float(v), 3) for v in Blend({"mode": "multiply"}).run(ctx, a=a, b=b)["image"][0, 0, 0]]
[0.1, 0.1, 0.1]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Params, block
from plugins.image.common import check_image, check_mask, input_error


def _overlay(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a <= 0.5, 2.0 * a * b, 1.0 - 2.0 * (1.0 - a) * (1.0 - b))


def _soft_light(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # W3C compositing spec
    d = np.where(a <= 0.25, ((16.0 * a - 12.0) * a + 4.0) * a, np.sqrt(a))
    return np.where(b <= 0.5, a - (1.0 - 2.0 * b) * a * (1.0 - a), a + (2.0 * b - 1.0) * (d - a))


BlendMode = Literal["normal", "multiply", "screen", "overlay", "soft_light", "darken", "lighten",
                    "difference", "add", "subtract"]
MODES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "normal": lambda a, b: b,
    "multiply": lambda a, b: a * b,
    "screen": lambda a, b: 1.0 - (1.0 - a) * (1.0 - b),
    "overlay": _overlay,
    "soft_light": _soft_light,
    "darken": np.minimum,
    "lighten": np.maximum,
    "difference": lambda a, b: np.abs(a - b),
    "add": lambda a, b: np.minimum(a + b, 1.0),
    "subtract": lambda a, b: np.maximum(a - b, 0.0),
}
assert tuple(MODES) == get_args(BlendMode)


def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour, alpha or None)``: 2 and 4 channels carry alpha last."""
    if image.shape[-1] in (2, 4):
        return image[..., :-1], image[..., -1]
    return image, None


@block("image.blend", version="1.0.0")
class Blend(Block):
    """Composite image ``b`` over image ``a`` with a blend mode, opacity and optional mask."""

    inputs = {
        "a": In("IMAGE", "the base image"),
        "b": In("IMAGE", "the image laid over it (same size; its alpha channel is used if present)"),
        "mask": In("MASK", "where b shows (1) and where a stays (0); default everywhere",
                   optional=True),
    }
    outputs = {"image": "IMAGE"}

    class Params(Params):
        mode: BlendMode = Field("normal", description="blend mode: " + ", ".join(MODES))
        opacity: float = Field(1.0, ge=0.0, le=1.0, description="how much of the blended result shows")

    def run(self, ctx: Context, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> dict:
        a, b = check_image(ctx, a, "inputs.a"), check_image(ctx, b, "inputs.b")
        if b.shape[1:3] != a.shape[1:3]:
            raise input_error(ctx, "inputs.b", f"is {b.shape[2]}x{b.shape[1]} but a is "
                              f"{a.shape[2]}x{a.shape[1]} (width x height); resize one first",
                              list(b.shape))
        batches = {"inputs.b": b.shape[0]}
        a_rgb, a_alpha = _split_alpha(a)
        b_rgb, b_alpha = _split_alpha(b)
        if b_rgb.shape[-1] != a_rgb.shape[-1]:
            if b_rgb.shape[-1] == 1:
                b_rgb = np.repeat(b_rgb, a_rgb.shape[-1], axis=-1)
            elif a_rgb.shape[-1] == 1:
                a_rgb = np.repeat(a_rgb, b_rgb.shape[-1], axis=-1)
            else:
                raise input_error(ctx, "inputs.b", f"has {b.shape[-1]} channels, a has {a.shape[-1]}",
                                  list(b.shape))
        amount = np.full((1, *a.shape[1:3]), self.params.opacity, dtype=np.float32)
        if mask is not None:
            mask = check_mask(ctx, mask)
            if mask.shape[1:3] != a.shape[1:3]:
                raise input_error(ctx, "inputs.mask", f"is {mask.shape[2]}x{mask.shape[1]} but the "
                                  f"images are {a.shape[2]}x{a.shape[1]}; use image.mask_resize",
                                  list(mask.shape))
            batches["inputs.mask"] = mask.shape[0]
            amount = amount * np.clip(mask, 0.0, 1.0)
        batch = self._batch(ctx, a.shape[0], batches)
        if b_alpha is not None:
            amount = amount * b_alpha
        amount = amount[..., None]
        blended = MODES[self.params.mode](a_rgb, b_rgb)
        lead = (batch, *a.shape[1:3])
        out = np.broadcast_to(a_rgb + amount * (blended - a_rgb), (*lead, a_rgb.shape[-1]))
        if a_alpha is not None:
            alpha = a_alpha[..., None] + (1.0 - a_alpha[..., None]) * amount
            out = np.concatenate([out, np.broadcast_to(alpha, (*lead, 1))], axis=-1)
        return {"image": np.clip(out, 0.0, 1.0).astype(np.float32)}

    @staticmethod
    def _batch(ctx: Context, a: int, others: dict[str, int]) -> int:
        """The batch size of the result: the inputs' batch sizes are equal or 1 (broadcast)."""
        sizes = {"inputs.a": a, **others}
        if len({n for n in sizes.values() if n != 1}) > 1:
            field = [k for k, n in others.items() if n != 1][-1]
            listed = ", ".join(f"{k} {n}" for k, n in sizes.items())
            raise input_error(ctx, field, f"batch sizes differ ({listed}); they must match or be 1",
                              others[field])
        return max(sizes.values())


BLOCKS = [Blend]
