"""Colour palettes: extract the main colours of an image, map an image onto a palette.

A ``PALETTE`` is a float32 array ``[N, 3]`` of RGB colours in 0..1, most frequent first.
``image.palette_extract`` is deterministic for a given seed (the node's ``ctx.rng``
samples pixels and seeds k-means); ``image.palette_apply`` maps every pixel to its
nearest palette colour, optionally with Floyd-Steinberg dithering.

>>> import numpy as np
>>> from orchestrator import Context
>>> ctx = Context(node="palette", block="image.palette_extract", seed=0)
>>> img = np.zeros((1, 4, 4, 3), np.float32); img[0, :, :2] = [1.0, 0.0, 0.0]
>>> PaletteExtract({"colors": 2}).run(ctx, image=img)["palette"].tolist()
[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import Field

from orchestrator import Block, Context, Params, block
from plugins.image.common import check_image, input_error, rgb

CHUNK = 1 << 16  # pixels per block of the nearest-colour search


def _unique(colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``[M, 3]`` and how often each occurs, most frequent first."""
    values, counts = np.unique(colors, axis=0, return_counts=True)
    order = np.lexsort((values @ np.array([0.299, 0.587, 0.114]), -counts))
    return values[order].astype(np.float64), counts[order].astype(np.float64)


def nearest(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour (Euclidean RGB) for each row of ``[M, 3]``."""
    pal = palette.astype(np.float64)
    half_sq = 0.5 * (pal**2).sum(axis=1)
    out = np.empty(len(colors), dtype=np.int64)
    for start in range(0, len(colors), CHUNK):
        block_ = colors[start:start + CHUNK].astype(np.float64)
        out[start:start + CHUNK] = np.argmin(half_sq - block_ @ pal.T, axis=1)
    return out


def kmeans(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """Weighted k-means of points ``x`` ``[M, 3]``; returns ``[k, 3]`` centres.

    Starts with greedy k-means++ (of a few seeded candidates per centre, the one that
    lowers the cost most), then runs Lloyd's iterations until the labels settle.
    """
    tries = 2 + int(np.log(k))
    sq = (x**2).sum(axis=1)
    centres = [x[rng.choice(len(x), p=w / w.sum())]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        if p.sum() <= 0:
            centres.append(x[np.argmax(d2)])
            continue
        picks = rng.choice(len(x), size=tries, p=p / p.sum())
        to_picks = sq[None] - 2.0 * (x[picks] @ x.T) + sq[picks][:, None]
        options = np.minimum(d2, np.maximum(to_picks, 0.0))
        best = int(np.argmin(options @ w))
        centres.append(x[picks[best]])
        d2 = options[best]
    c = np.array(centres)
    labels = None
    for _ in range(iterations):
        new = nearest(x, c)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums = np.stack([np.bincount(labels, weights=w * x[:, j], minlength=k) for j in range(3)], 1)
        weight = np.bincount(labels, weights=w, minlength=k)
        c = sums / np.maximum(weight, 1e-12)[:, None]
        cost = w * ((x - c[labels]) ** 2).sum(axis=1)
        for j in np.flatnonzero(weight == 0):  # an empty cluster moves to the worst-served point
            far = int(np.argmax(cost))
            c[j], cost[far] = x[far], 0.0
    return c


def median_cut(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Weighted median cut: split the box with the widest channel range at its weighted median."""
    boxes = [np.arange(len(x))]
    spans = [np.ptp(x, axis=0)]
    while len(boxes) < k:
        i = int(np.argmax([s.max() for s in spans]))
        if spans[i].max() == 0:
            break
        box, span = boxes.pop(i), spans.pop(i)
        order = box[np.argsort(x[box, int(np.argmax(span))], kind="stable")]
        cum = np.cumsum(w[order])
        cut = int(np.clip(np.searchsorted(cum, cum[-1] / 2.0) + 1, 1, len(order) - 1))
        halves = [order[:cut], order[cut:]]
        boxes[i:i] = halves
        spans[i:i] = [np.ptp(x[h], axis=0) for h in halves]
    return np.array([np.average(x[b], axis=0, weights=w[b]) for b in boxes])


@block("image.palette_extract", version="1.0.0")
class PaletteExtract(Block):
    """The ``colors`` main colours of an image (of all images of a batch together).

    Gives fewer colours when the image has fewer distinct ones; most frequent first.
    """

    inputs = {"image": "IMAGE"}
    outputs = {"palette": "PALETTE"}

    class Params(Params):
        colors: int = Field(8, ge=1, le=256, description="how many colours to find (at most)")
        method: Literal["kmeans", "median_cut"] = Field(
            "kmeans", description="kmeans finds colour clusters (seeded); median_cut is faster, "
            "splits colour boxes at their median and may cut a cluster in two")
        max_samples: int = Field(65536, ge=256, le=4_194_304,
                                 description="pixels sampled (seeded) from large images")
        iterations: int = Field(30, ge=1, le=300, description="k-means iterations at most")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        pixels = rgb(check_image(ctx, image)).reshape(-1, 3)
        p = self.params
        if len(pixels) > p.max_samples:
            pixels = pixels[np.sort(ctx.rng.choice(len(pixels), p.max_samples, replace=False))]
        x, w = _unique(np.clip(pixels, 0.0, 1.0))
        if len(x) <= p.colors:
            return {"palette": x.astype(np.float32)}
        if p.method == "kmeans":
            centres = kmeans(x, w, p.colors, ctx.rng, p.iterations)
        else:
            centres = median_cut(x, w, p.colors)
        share = np.bincount(nearest(x, centres), weights=w, minlength=len(centres))
        centres = centres[np.argsort(-share, kind="stable")]
        return {"palette": np.clip(centres, 0.0, 1.0).astype(np.float32)}


@block("image.palette_apply", version="1.0.0")
class PaletteApply(Block):
    """Map every pixel to the nearest colour of a palette: an RGB image (alpha, if any, is kept)."""

    inputs = {"image": "IMAGE", "palette": "PALETTE"}
    outputs = {"image": "IMAGE"}

    class Params(Params):
        dither: bool = Field(False, description="Floyd-Steinberg error diffusion (palettes of <= 256)")

    def run(self, ctx: Context, image: np.ndarray, palette: np.ndarray) -> dict:
        image = check_image(ctx, image)
        pal = np.asarray(palette, dtype=np.float32)
        if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) == 0:
            raise input_error(ctx, "inputs.palette", f"must be a PALETTE [N, 3], got shape {pal.shape}")
        colour = np.clip(rgb(image), 0.0, 1.0)
        if self.params.dither:
            index = self._dithered(ctx, colour, pal)
        else:
            index = nearest(colour.reshape(-1, 3), pal).reshape(colour.shape[:3])
        out = pal[index]
        if image.shape[-1] in (2, 4):
            out = np.concatenate([out, image[..., -1:]], axis=-1)
        return {"image": out}

    @staticmethod
    def _dithered(ctx: Context, colour: np.ndarray, pal: np.ndarray) -> np.ndarray:
        if len(pal) > 256:
            raise input_error(ctx, "inputs.palette", f"has {len(pal)} colours; dithering takes "
                              "at most 256", len(pal))
        entries = np.zeros((256, 3), dtype=np.uint8)
        entries[:] = np.round(pal[0] * 255.0)  # unused entries repeat colour 0
        entries[:len(pal)] = np.round(pal * 255.0)
        lut = np.zeros(256, dtype=np.int64)
        lut[:len(pal)] = np.arange(len(pal))
        target = Image.new("P", (1, 1))
        target.putpalette(entries.reshape(-1).tolist())
        index = np.empty(colour.shape[:3], dtype=np.int64)
        for i, img in enumerate((colour * 255.0 + 0.5).astype(np.uint8)):
            q = Image.fromarray(img).quantize(palette=target, dither=Image.Dither.FLOYDSTEINBERG)
            index[i] = lut[np.asarray(q)]
        return index
BLOCKS = [PaletteExtract, PaletteApply]
