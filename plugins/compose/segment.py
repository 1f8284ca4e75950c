"""Segmentation through the generic ONNX block: class scores to labels, labels to masks.

Run any segmentation model with ``onnx.run`` and wire its raw ``values`` (scores
``[B, classes, h, w]``, or labels ``[B, h, w]``) into ``compose.segmentation``: it takes
the best class per pixel, resizes the labels to an image's size and paints them in a fixed
colour table (the map segmentation ControlNets take). ``compose.mask_from_labels`` makes a
mask of some classes.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="seg", block="compose.segmentation", seed=0)
>>> scores = np.zeros((1, 3, 2, 2), np.float32); scores[0, 2, 0, :] = 1; scores[0, 1, 1, :] = 1
>>> Segmentation({}).run(ctx, scores=scores)["labels"].tolist()
[[[2, 2], [1, 1]]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from orchestrator import Block, Context, In, Out, Params, block, register_port_type
from plugins.image.common import check_image, input_error

LABELS = register_port_type("LABELS", description="int32 array [B, H, W] of class ids (a segmentation)")


def color_table(n: int) -> np.ndarray:
    """``[n, 3]`` distinct colours in 0..1, the same on every run (class 0 is black)."""
    idx = np.arange(n)
    out = np.zeros((n, 3), np.float32)
    for bit in range(8):  # the PASCAL VOC colour map: bits of the id spread over R, G, B
        for ch in range(3):
            out[:, ch] += ((idx >> (3 * bit + ch)) & 1) << (7 - bit)
    return out / 255.0


@block("compose.segmentation", version="1.0.0")
class Segmentation(Block):
    """Class labels from a segmentation model's output (``onnx.run`` values), and a colour map.

    Scores ``[B, classes, h, w]`` give the best class per pixel; an output that already is
    labels (``[B, h, w]`` or ``[B, 1, h, w]`` of whole numbers) is taken as it is. With
    ``like`` wired the labels are resized (nearest) to that image's size.
    """

    inputs = {"scores": In("ANY", "the model's raw output, e.g. onnx.run's values"),
              "like": In("IMAGE", "resize the labels to this image's size", optional=True)}
    outputs = {"labels": Out("LABELS", "class id per pixel"),
               "image": Out("IMAGE", "the labels painted in a fixed colour table (class 0 black)")}

    class Params(Params):
        classes: int | None = Field(None, ge=1, le=65536,
                                    description="number of classes for the colour table; default: the "
                                                "scores' channels, or the largest label + 1")

    def run(self, ctx: Context, scores: Any, like: np.ndarray | None = None) -> dict:
        values = np.asarray(scores)
        if values.ndim == 4 and values.shape[1] > 1:
            labels = values.argmax(axis=1)
            n = values.shape[1]
        elif values.ndim in (3, 4) and np.all(np.mod(values, 1) == 0):
            labels = values.reshape(values.shape[0], *values.shape[-2:])
            n = int(labels.max()) + 1 if labels.size else 1
        else:
            raise input_error(ctx, "inputs.scores", f"must be scores [B, classes, H, W] or labels [B, H, W], "
                              f"got shape {values.shape}")
        labels = labels.astype(np.int32)
        if like is not None:
            h, w = check_image(ctx, like, "inputs.like").shape[1:3]
            rows = (np.arange(h) * labels.shape[1] // h)
            cols = (np.arange(w) * labels.shape[2] // w)
            labels = labels[:, rows][:, :, cols]
        n = max(self.params.classes or n, int(labels.max()) + 1)
        return {"labels": labels, "image": color_table(n)[labels]}


@block("compose.mask_from_labels", version="1.0.0")
class MaskFromLabels(Block):
    """A mask of the pixels whose class is one of ``classes``."""

    inputs = {"labels": "LABELS"}
    outputs = {"mask": "MASK"}

    class Params(Params):
        classes: list[int] = Field(..., min_length=1, description="class ids that count")
        invert: bool = Field(False, description="1 - mask: every other class")

    def run(self, ctx: Context, labels: np.ndarray) -> dict:
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise input_error(ctx, "inputs.labels", f"must be LABELS [B, H, W], got shape {labels.shape}")
        mask = np.isin(labels, self.params.classes).astype(np.float32)
        return {"mask": 1.0 - mask if self.params.invert else mask}


BLOCKS = [Segmentation, MaskFromLabels]
