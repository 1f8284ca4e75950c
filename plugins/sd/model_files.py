"""Model files a block reads itself (ONNX files, IP-Adapters), by name, through the model provider.

A block never turns a param into a path on its own: it asks ``ctx.models`` for the file a
name means. The daemon's provider knows only configured models and the files in the
model folders; the in-process CLI's also takes paths, relative to the graph's input folder.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import BlockError, Context


def model_file(ctx: Context, name: str, kind: str, field: str) -> Path:
    """The file of ``kind`` (``onnx``, ``ip_adapter``, ...) that ``name`` means for this run.

    Errors are the provider's, with this node and ``field`` filled in.
    """
    base = None if ctx.confine_inputs else ctx.input_root
    try:
        return ctx.models.file(name, kind, field=field, base=base)
    except BlockError as exc:
        exc.node = exc.node or ctx.node
        exc.field = exc.field or field
        if not exc.message.startswith("node "):
            exc.message = f"node {ctx.node!r}: {exc.field}: {exc.message}"
            exc.args = (exc.message,)
        raise


def check_model(ctx: Context, ref: object, component: str | None, field: str = "params.model") -> None:
    """Refuse an unknown model name (or a raw path) now, at this node, rather than where it is loaded."""
    try:
        ctx.models.check(ref, component)
    except BlockError as exc:
        exc.node = exc.node or ctx.node
        exc.field = field if exc.field in (None, "params.model") else exc.field
        raise
