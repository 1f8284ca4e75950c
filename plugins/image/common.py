"""Helpers shared by the image blocks: checking edge values, errors that name the field.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="n", block="demo", seed=0)
>>> check_image(ctx, np.zeros((1, 2, 3, 3))).dtype
dtype('float32')
>>> check_mask(ctx, np.zeros((2, 3)), "inputs.mask").shape
(1, 2, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from orchestrator import BlockError, Context

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Pillow's resampling filters; Pillow antialiases when it shrinks (unlike cv2's bilinear).
RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
}


def input_error(ctx: Context, field: str, message: str, value: Any = None) -> BlockError:
    """A ``BlockError`` of type ``input`` for ``field`` (``params.x``, ``inputs.image``, ...)."""
    return BlockError(f"node {ctx.node!r}: {field} {message}", type="input", node=ctx.node,
                      field=field, value=value)


def check_image(ctx: Context, value: Any, field: str = "inputs.image") -> np.ndarray:
    """``value`` as a float32 ``[B, H, W, C]`` array, or an input error naming ``field``."""
    arr = np.asarray(value)
    if arr.ndim != 4 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise input_error(ctx, field, f"must be an IMAGE [B, H, W, C], got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def check_mask(ctx: Context, value: Any, field: str = "inputs.mask") -> np.ndarray:
    """``value`` as a float32 ``[B, H, W]`` array (a single ``[H, W]`` mask gets B=1)."""
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise input_error(ctx, field, f"must be a MASK [B, H, W], got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def rgb(image: np.ndarray) -> np.ndarray:
    """The colour channels of ``[..., C]`` as ``[..., 3]`` (gray is repeated, alpha dropped)."""
    if image.shape[-1] >= 3:
        return image[..., :3]
    return np.repeat(image[..., :1], 3, axis=-1)


def luma(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of ``[B, H, W, C]`` as ``[B, H, W]`` float32."""
    return (rgb(image) @ LUMA).astype(np.float32)


def resize_array(image: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """Resize ``[B, H, W, C]`` float32 to ``[B, height, width, C]`` with a Pillow filter.

    Each channel is resampled as a 32-bit float image, so values are not quantised;
    overshoot of bicubic and lanczos is clipped back into 0..1.
    """
    b, h, w, c = image.shape
    if (h, w) == (height, width):
        return image.copy()
    out = np.empty((b, height, width, c), dtype=np.float32)
    for i in range(b):
        for ch in range(c):
            plane = Image.fromarray(np.ascontiguousarray(image[i, :, :, ch], dtype=np.float32))
            out[i, :, :, ch] = np.asarray(plane.resize((width, height), RESAMPLE[method]))
    if method in ("bicubic", "lanczos"):
        np.clip(out, 0.0, 1.0, out=out)
    return out
