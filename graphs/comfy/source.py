"""Where a ComfyUI workflow comes from: a file, bytes or decoded JSON; API, UI or a PNG.

>>> data, origin = read_source('{"3": {"class_type": "KSampler", "inputs": {}}}')
>>> origin, workflow_format(data)
('json', 'api')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graphs.comfy.api import ComfyNode, is_api_prompt, read_api, unwrap
from graphs.comfy.png import PngTextError, is_png, png_text
from graphs.comfy.ui import is_ui_workflow, ui_to_api
from graphs.errors import GraphError, GraphValidationError

OUR_GRAPH_CHUNK = "orchestrator.graph"
Source = str | Path | bytes | dict[str, Any]


def _fail(message: str) -> GraphValidationError:
    return GraphValidationError([GraphError(message, type="format", severity="error")])


def read_source(source: Any) -> tuple[Any, str]:
    """``(decoded workflow JSON, origin)``; origin is ``json``, ``png:prompt`` or ``png:workflow``.

    ``source`` is decoded JSON (a dict), JSON text, PNG or JSON bytes, or a file path.
    A PNG's API-format ``prompt`` chunk (what actually ran) wins over its ``workflow``.
    Raises :class:`~graphs.errors.GraphValidationError` (type ``format``) when it is none of these.
    """
    if isinstance(source, dict):
        return source, "json"
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise _fail(f"{path}: cannot read: {exc.strerror or exc}") from None
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if is_png(data):
            return _from_png(data)
        try:
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _fail("not a PNG file and not UTF-8 JSON text") from None
    if not isinstance(source, str):
        raise _fail(f"a ComfyUI workflow is JSON, a PNG or a file path, not {type(source).__name__}")
    try:
        return json.loads(source), "json"
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _from_png(data: bytes) -> tuple[Any, str]:
    try:
        chunks = png_text(data)
    except PngTextError as exc:
        raise _fail(str(exc)) from None
    for key in ("prompt", "workflow"):
        if key in chunks:
            try:
                return json.loads(chunks[key]), f"png:{key}"
            except json.JSONDecodeError as exc:
                raise _fail(f"the PNG's {key!r} text chunk is not valid JSON: {exc.msg}") from None
    if OUR_GRAPH_CHUNK in chunks:
        raise _fail("this PNG carries an orchestrator graph, not a ComfyUI workflow: run it with "
                    "'orchestrator run --from-png'")
    raise _fail("the PNG carries no ComfyUI workflow (no 'prompt' or 'workflow' text chunk)")


def our_graph(source: Any) -> str | None:
    """The ``orchestrator.graph`` chunk of a PNG this project wrote (``source`` as for
    :func:`read_source`), or ``None`` when ``source`` is not such a PNG."""
    data = source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        try:
            data = Path(source).read_bytes()
        except OSError:
            return None
    if not isinstance(data, (bytes, bytearray)) or not is_png(bytes(data)):
        return None
    try:
        return png_text(bytes(data)).get(OUR_GRAPH_CHUNK)
    except PngTextError:
        return None


def workflow_format(data: Any) -> str | None:
    """``"api"``, ``"ui"`` or ``None`` for decoded JSON."""
    if is_ui_workflow(data):
        return "ui"
    if is_api_prompt(data):
        return "api"
    return None


def to_api(data: Any, widget_names: Callable[[str], Sequence[str] | None]) -> tuple[
        dict[str, ComfyNode], str, list[GraphError]]:
    """``(API-format nodes, "api" or "ui", problems)``; raises when ``data`` is neither format."""
    fmt = workflow_format(data)
    if fmt == "ui":
        prompt, problems = ui_to_api(data, widget_names)
        nodes, more = read_api(prompt)
        return nodes, fmt, problems + more
    if fmt == "api":
        nodes, problems = read_api(unwrap(data))
        return nodes, fmt, problems
    if isinstance(data, dict) and data.get("format") == "orchestrator.graph/1":
        raise _fail("this is already an orchestrator graph, not a ComfyUI workflow")
    if isinstance(data, dict) and not data:
        raise _fail("the workflow is empty")
    raise _fail("not a ComfyUI workflow: expected the API format ({id: {class_type, inputs}}) or the UI "
                "format ({nodes: [...], links: [...]})")
