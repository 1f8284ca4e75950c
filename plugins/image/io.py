"""Reading and writing images, and solid-colour images."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from orchestrator import Block, BlockError, Context, Out, Params, block


def pil_to_array(img: Image.Image, mode: str = "RGB") -> np.ndarray:
    """PIL image -> float32 ``[1, H, W, C]`` in 0..1 (``[1, H, W]`` for mode ``"L"`` masks)."""
    arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    return arr[None]


# what the image blocks (and POST /inputs, orchestrator.server.inputs.IMAGE_FORMATS) decode: never
# formats that run external programs (EPS) or that are vector documents (SVG, PDF)
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
INPUT_FILE = {"input_file": True}  # the schema marker of a param that names an input file


def _open(ctx: Context, path: str) -> Image.Image:
    with ctx.open_input(path) as f:
        try:
            img = Image.open(f, formats=IMAGE_FORMATS)
            img.load()
        except Image.DecompressionBombError as exc:
            raise BlockError(f"node {ctx.node!r}: params.path {path!r} is too large to decode "
                             f"({exc})", type="input", node=ctx.node, field="params.path",
                             value=path) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise BlockError(f"node {ctx.node!r}: params.path {path!r} is not a readable image "
                             f"({', '.join(f.lower() for f in IMAGE_FORMATS)})", type="input",
                             node=ctx.node, field="params.path", value=path) from exc
    return ImageOps.exif_transpose(img)


@block("image.load", version="1.0.0")
class LoadImage(Block):
    """Load an image file (PNG, JPEG, WebP, ...) as RGB or RGBA."""

    outputs = {"image": Out("IMAGE", "the image, [1, H, W, C] in 0..1")}

    class Params(Params):
        path: str = Field(..., min_length=1, json_schema_extra=INPUT_FILE,
                          description="file to read; relative to the input folder")
        alpha: bool = Field(False, description="keep the alpha channel (RGBA) instead of RGB")

    def run(self, ctx: Context) -> dict:
        img = _open(ctx, self.params.path)
        return {"image": pil_to_array(img, "RGBA" if self.params.alpha else "RGB")}


@block("image.load_mask", version="1.0.0")
class LoadMask(Block):
    """Load a mask from an image file: white (or opaque, with ``channel='alpha'``) is 1."""

    outputs = {"mask": Out("MASK", "the mask, [1, H, W] in 0..1")}

    class Params(Params):
        path: str = Field(..., min_length=1, json_schema_extra=INPUT_FILE,
                          description="file to read; relative to the input folder")
        channel: str = Field("luminance", pattern="^(luminance|alpha|red|green|blue)$",
                             description="which channel is the mask")
        invert: bool = Field(False, description="1 - mask")

    def run(self, ctx: Context) -> dict:
        img = _open(ctx, self.params.path)
        ch = self.params.channel
        if ch == "luminance":
            arr = pil_to_array(img, "L")
        else:
            rgba = pil_to_array(img, "RGBA")
            arr = rgba[..., {"red": 0, "green": 1, "blue": 2, "alpha": 3}[ch]]
        return {"mask": 1.0 - arr if self.params.invert else arr}


@block("image.save", version="1.0.0")
class SaveImage(Block):
    """Save an image as PNG (the graph is embedded in the file's metadata)."""

    inputs = {"image": "IMAGE"}
    outputs = {"files": Out("TEXT", "where the images went, one per line")}
    cacheable = False

    class Params(Params):
        name: str = Field("image", pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$",
                          description="output name; a batch is saved as name_0, name_1, ...")

    def run(self, ctx: Context, image: np.ndarray) -> dict:
        return {"files": "\n".join(ctx.save_image(self.params.name, image))}


@block("image.solid", version="1.0.0")
class SolidImage(Block):
    """An image of one colour."""

    outputs = {"image": "IMAGE"}

    class Params(Params):
        width: int = Field(64, ge=1, le=16384, description="width in pixels")
        height: int = Field(64, ge=1, le=16384, description="height in pixels")
        color: list[float] = Field([0.0, 0.0, 0.0], min_length=1, max_length=4,
                                   description="channel values in 0..1 (1 to 4 channels)")
        batch: int = Field(1, ge=1, le=64, description="batch size")

    def run(self, ctx: Context) -> dict:
        p = self.params
        color = np.clip(np.asarray(p.color, dtype=np.float32), 0.0, 1.0)
        img = np.broadcast_to(color, (p.batch, p.height, p.width, color.shape[0])).copy()
        return {"image": img}


BLOCKS = [LoadImage, LoadMask, SaveImage, SolidImage]
