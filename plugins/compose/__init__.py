"""Composition blocks: condition extractors, masks and the region detail pass.

The Composer recipe decomposes images into factors and recombines factors of different
images. The extractors here complete the ones ``plugins.image`` already has (palette:
``image.palette_extract``, intensity: ``image.grayscale``, edges and sketch:
``image.canny``, ``image.sketch``; depth: ``onnx.run`` with a depth model):

- ``compose.image_embed``: style and semantics, a CLIP vision encoder's image embedding;
- ``compose.segmentation``: class labels (and a colour map) from a segmentation model's
  scores (``onnx.run`` values);
- masks: ``compose.mask_from_color`` (a colour key), ``compose.mask_rect`` (a rectangle),
  ``compose.mask_from_labels`` (classes of a segmentation), ``compose.mask_threshold``
  (a depth map or a detector's heat map);
- ``compose.colorize``: intensity of one image in the palette of another (palette
  colourization);
- ``compose.region_crop`` / ``compose.region_paste``: the detail pass (faces, hands):
  crop a region with margin at the model's native size, re-render it, paste it back
  feathered.

The conditions themselves are combined by the ``sd.*`` conditioning blocks (ControlNet,
regional prompts, IP-Adapter).
"""

from __future__ import annotations

from typing import Any

from orchestrator import hookimpl
from plugins.compose import colorize, detail, embed, masks, segment


@hookimpl
def register_blocks() -> list[Any]:
    return [*embed.BLOCKS, *segment.BLOCKS, *masks.BLOCKS, *colorize.BLOCKS, *detail.BLOCKS]
