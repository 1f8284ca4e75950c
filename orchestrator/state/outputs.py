"""Writing output images: PNG files with the graph embedded, written atomically.

Each saved PNG carries the graph that made it in a text chunk (``orchestrator.graph``),
so ``Graph.from_json(Image.open(path).text["orchestrator.graph"])`` gives it back; when the
graph maps back to ComfyUI it also carries ComfyUI's ``prompt`` and ``workflow`` chunks
(:mod:`graphs.comfy.chunks`), so ComfyUI and PNG-info tools open it.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from graphs.errors import GraphError
from graphs.model import Graph
from orchestrator.errors import BlockError

GRAPH_CHUNK = "orchestrator.graph"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float 0..1 ``[H, W, C]`` -> uint8, rounding to nearest."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: Path, image: np.ndarray, text: dict[str, str] | None = None) -> None:
    """Write one ``[H, W, C]`` float image as PNG atomically (temp file, fsync, rename)."""
    arr = to_uint8(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        if v.isascii():  # tEXt, which every PNG reader (ComfyUI's editor too) takes
            info.add_text(k, v)
        else:
            info.add_itxt(k, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            Image.fromarray(arr).save(fh, format="PNG", pnginfo=info)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_chunks(graph_json: str) -> dict[str, str]:
    """ComfyUI's chunks for the graph (none when it does not map back), then ``orchestrator.graph``."""
    from graphs.comfy.chunks import comfy_chunks

    try:
        chunks = comfy_chunks(Graph.from_json(graph_json))
    except GraphError:
        chunks = {}
    return {**chunks, GRAPH_CHUNK: graph_json}


def check_output(node: str, name: str, image: np.ndarray) -> None:
    """Refuse an output name that could leave the output folder, or an image not [B, H, W, C]."""
    if not SAFE_NAME.match(name):
        raise BlockError(
            f"node {node!r}: output name {name!r} must be 1-100 letters, digits, '_' or '-'",
            type="input", node=node, field="params.name", value=name,
        )
    if image.ndim != 4:
        raise BlockError(f"node {node!r}: save_image wants [B, H, W, C], got {image.shape}",
                         type="input", node=node, field="inputs.image")


class DirectorySink:
    """Saves output images as ``<dir>/<name>.png`` (``<name>_<i>.png`` for a batch)."""

    def __init__(self, directory: str | Path | None, graph_json: str = "") -> None:
        self.directory = Path(directory) if directory is not None else None
        self.graph_json = graph_json
        self.saved: list[dict[str, str]] = []
        self.images: dict[str, np.ndarray] = {}
        self._text: dict[str, str] | None = None

    def text_chunks(self) -> dict[str, str]:
        """The PNG text chunks: ComfyUI's ``prompt`` and ``workflow`` when the graph maps back, then ours."""
        if self._text is None:
            self._text = png_chunks(self.graph_json) if self.graph_json else {}
        return self._text

    def save_image(self, node: str, name: str, image: np.ndarray) -> list[str]:
        check_output(node, name, image)
        self.images[name] = image
        if self.directory is None:
            names = [name] if image.shape[0] == 1 else [f"{name}_{i}" for i in range(image.shape[0])]
            self.saved.extend({"node": node, "name": n, "path": ""} for n in names)
            return names
        paths = []
        for i in range(image.shape[0]):
            fname = f"{name}.png" if image.shape[0] == 1 else f"{name}_{i}.png"
            path = self.directory / fname
            write_png(path, image[i], self.text_chunks() or None)
            paths.append(str(path))
            self.saved.append({"node": node, "name": path.stem, "path": str(path)})
        return paths
