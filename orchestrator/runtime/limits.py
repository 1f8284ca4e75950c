"""Size limits: what one graph may ask for, checked when it is submitted and again as it runs.

Two gates share one set of rules:

- :func:`check_limits` (submit time, and a prompt job's planned graph before it runs) reads
  every node's params against the block's JSON Schema and follows image sizes along the
  graph: ``image.solid`` 1024x1024 -> ``image.resize`` ``scale`` 4 -> ``image.pad`` 512 is
  known to be 4608x4608 before anything runs. Where a size cannot be known yet (an input
  file's size), factors are bounded (``limits.scale``) and the run-time gate decides.
- :func:`check_before_run` / :func:`check_outputs` (run time, in
  :func:`orchestrator.runtime.executor.execute_block`, so both engines) measure the real inputs, work
  out what the node will produce and fail it with a ``limit`` error naming node and field
  before the block allocates anything; outputs are measured after the run as a last check.

Params are recognised by name and schema type, not by block id, so a third-party block
with a ``width``, a ``scale`` factor, pad amounts, a ``batch`` or ``repeat`` count or a
tile ``size``/``overlap`` is held to the same bounds. Values are read as pydantic would
accept them: ``4096.0``, ``1e9``, ``true`` and ``"4096"`` are numbers here too.

>>> from graphs import Graph
>>> lim = SizeLimits(pixels=1024 * 1024)
>>> g = Graph.from_dict({"nodes": {"a": {"block": "x.y", "params": {"width": 4096.0, "height": 4096}}}})
>>> [(p["node"], p["field"], p["value"]) for p in check_limits(g, lim)]
[('a', 'params.width', 16777216)]
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import networkx as nx

from graphs import Graph
from graphs.catalog import BlockSpec
from orchestrator.errors import BlockError

LATENT_FACTOR = 8  # image pixels per latent cell along each side (every SD/SDXL VAE)
SPATIAL = frozenset({"IMAGE", "MASK", "LATENT", "TILES"})
MAX_INT_DIGITS = 20  # an int longer than this is no size, seed or count anyone means

# param roles, by name (lower case)
WIDTH, HEIGHT = "width", "height"
SCALES = ("scale", "scale_by", "upscale", "upscale_by", "upscale_factor", "factor")
PADS = {"left": "w", "right": "w", "top": "h", "bottom": "h"}
BATCHES = ("batch", "batch_size")  # the output's batch
REPEATS = ("repeat", "repeats", "count", "copies", "num_images", "n_images")  # batch multipliers
BATCH_LIKE = (*BATCHES, *REPEATS, "view_batch")
STEPS = ("steps", "num_steps", "num_inference_steps")
SIDES = ("size", "tile_size")  # a square side (a crop's or a tile's)
COVER = ("fill", "crop")  # an ``aspect`` that scales the image to cover a width x height box
OVERLAPS, STRIDES = ("overlap",), ("stride",)
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$", re.ASCII)


@dataclass(frozen=True)
class SizeLimits:
    """The bounds both gates apply (see :class:`orchestrator.config.Limits`). Picklable: it
    travels to Ray workers as a plain dict (:meth:`to_dict`)."""

    pixels: int = 8192 * 8192
    batch: int = 64
    batch_pixels: int = 2 * 8192 * 8192
    steps: int = 500
    nodes: int = 500
    scale: float = 16.0
    tiles: int = 16384
    json_depth: int = 64

    @classmethod
    def of(cls, limits: Any) -> SizeLimits:
        """From a :class:`~orchestrator.config.Limits`, a dict of the same names, or ``self``."""
        if isinstance(limits, SizeLimits):
            return limits
        get = limits.get if isinstance(limits, Mapping) else (lambda k, d: getattr(limits, k, d))
        return cls(**{f.name: get(f.name, f.default) for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Size:
    """What a port carries, in image pixels; ``None`` where it is not known (yet)."""

    batch: int | None
    height: int | None
    width: int | None
    batch_field: str | None = None  # the param that set the batch, if one did

    @property
    def pixels(self) -> int | None:
        return self.height * self.width if self.height is not None and self.width is not None else None


def limit_error(message: str, node: str | None, field: str | None, value: Any, bound: int | float
                ) -> dict[str, Any]:
    return {"type": "limit", "message": message, "node": node, "field": field,
            "value": value, "bound": {"le": bound}}


def number(value: Any) -> int | float | None:
    """``value`` as pydantic's lax mode would read a number (bools, ``4096.0``, ``"4096"``);
    ``None`` when it is not one or not finite.

    >>> number(True), number(4096.0), number("512"), number("٣"), number(float("nan"))
    (1, 4096, 512, None, None)
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, str) and len(value) <= 64 and _NUMBER.match(value):
        return number(float(value)) if any(c in value for c in ".eE") else int(value)
    return None


def bad_values(value: Any, path: str) -> Iterable[tuple[str, str]]:
    """``(path, why)`` for every non-finite float and over-long int inside ``value`` (iterative)."""
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            yield p, f"{v} is not a finite number"
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 66:
            yield p, f"an integer of {len(str(abs(v))) if v.bit_length() < 14000 else 'over 4300'} " \
                     "digits is out of range"
        elif isinstance(v, dict):
            stack.extend((x, f"{p}.{k}") for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))


# -- the rules: what a node produces ------------------------------------------------------------


def _numeric_params(spec: BlockSpec | None) -> frozenset[str] | None:
    """The names of ``spec``'s number-typed params (``None``: no schema, take every name)."""
    if spec is None or spec.params_model is None:
        return None
    return _numeric_fields(spec.params_model)


@functools.lru_cache(maxsize=1024)
def _numeric_fields(model: type) -> frozenset[str]:
    out = set()
    for name, prop in model.model_json_schema().get("properties", {}).items():  # type: ignore[attr-defined]
        kinds = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
        if kinds & {"integer", "number"}:
            out.add(name)
    return frozenset(out)


def effective_params(spec: BlockSpec | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the schema's defaults filled in (validated when they validate)."""
    if spec is None or spec.params_model is None:
        return dict(params)
    try:
        return spec.parse_params(params).model_dump()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - invalid params are validation's to report
        out = {name: f.default for name, f in spec.params_model.model_fields.items()
               if not f.is_required() and f.default_factory is None}
        out.update(params)
        return out


def _get(p: Mapping[str, Any], names: Iterable[str], numeric: frozenset[str] | None
         ) -> tuple[str, Any] | None:
    for name in names:
        if name in p and (numeric is None or name in numeric):
            v = number(p[name])
            if v is not None:
                return name, v
    return None


def tiles_along(length: int, size: int, stride: int) -> int:
    """How many tiles of ``size`` every ``stride`` cover ``length`` (the last one flush)."""
    if length <= size:
        return 1
    return math.ceil((length - size) / max(1, stride)) + 1


def derive(spec: BlockSpec | None, params: Mapping[str, Any], base: Size | None
           ) -> tuple[Size | None, str | None]:
    """``(size of the node's image-like outputs, the param that set it)`` from its params and
    the size of its first image-like input (``base``); ``(None, None)`` when not known."""
    numeric = _numeric_params(spec)
    ins = [p for p in (spec.inputs if spec else ()) if p.type in SPATIAL]
    outs = [p for p in (spec.outputs if spec else ()) if p.type in SPATIAL]
    if spec is not None and not outs:
        return None, None
    b, h, w = (base.batch, base.height, base.width) if base else (None, None, None)
    field: str | None = None
    scale = _get(params, SCALES, numeric) if (ins or spec is None) else None
    width, height = _get(params, (WIDTH,), numeric), _get(params, (HEIGHT,), numeric)
    side = _get(params, SIDES, numeric)
    tiles_out = any(p.type == "TILES" for p in outs)
    if scale is not None:
        field = f"params.{scale[0]}"
        if h is not None and w is not None:
            h, w = math.ceil(h * scale[1]), math.ceil(w * scale[1])
    elif width is not None or height is not None:
        field = f"params.{(width or height)[0]}"  # type: ignore[index]
        nw, nh = (width[1] if width else None), (height[1] if height else None)
        if nw is not None and nh is None and h is not None and w:
            nh = math.ceil(h * nw / w)
        elif nh is not None and nw is None and w is not None and h:
            nw = math.ceil(w * nh / h)
        elif nw is not None and nh is not None and h and w and params.get("aspect") in COVER:
            s = max(nh / h, nw / w)  # keeping the aspect ratio, the image covers the box first
            nh, nw = max(nh, math.ceil(h * s)), max(nw, math.ceil(w * s))
        h, w = nh, nw
    elif side is not None and not tiles_out:
        field, h, w = f"params.{side[0]}", side[1], side[1]
    pads = {k: number(params.get(k)) for k in PADS if numeric is None or k in numeric}
    pads = {k: v for k, v in pads.items() if v}
    if pads:
        biggest = max(pads, key=lambda k: pads[k])
        field = field or f"params.{biggest}"
        if h is not None:
            h += sum(v for k, v in pads.items() if PADS[k] == "h")
        if w is not None:
            w += sum(v for k, v in pads.items() if PADS[k] == "w")
    batch_field = None
    batch = _get(params, BATCHES, numeric)
    if batch is not None:
        b, batch_field = batch[1], f"params.{batch[0]}"
    repeat = _get(params, REPEATS, numeric)
    if repeat is not None:
        b, batch_field = (b or 1) * repeat[1], f"params.{repeat[0]}"
    if h is None and w is None and b is None:
        return None, None
    return Size(b, h, w, batch_field), field or batch_field


def size_problems(node: str, size: Size, field: str | None, lim: SizeLimits,
                  what: str = "output") -> list[dict[str, Any]]:
    """The limits ``size`` breaks (pixels, one side, batch, batch x pixels)."""
    problems = []
    field = field or "params"
    for side in (size.height, size.width):
        if side is not None and side > lim.pixels:
            problems.append(limit_error(f"node {node!r}: its {what} would be {side} pixels on a side; "
                                        f"the limit is {lim.pixels} pixels", node, field, side, lim.pixels))
            return problems
    px = size.pixels
    if px is not None and px > lim.pixels:
        problems.append(limit_error(f"node {node!r}: its {what} would be {size.width}x{size.height} = "
                                    f"{px} pixels; the limit is {lim.pixels}", node, field, px, lim.pixels))
    if size.batch is not None and size.batch > lim.batch:
        problems.append(limit_error(f"node {node!r}: batch {size.batch} is over the limit {lim.batch}",
                                    node, size.batch_field or field, size.batch, lim.batch))
    elif px is not None and size.batch is not None and size.batch * px > lim.batch_pixels:
        problems.append(limit_error(
            f"node {node!r}: batch {size.batch} x {px} pixels = {size.batch * px} is over the "
            f"batch x pixels limit {lim.batch_pixels}", node, size.batch_field or field, size.batch * px,
            lim.batch_pixels))
    return problems


def tile_problems(node: str, size: Size | None, tile_size: int, stride: int, lim: SizeLimits,
                  field: str, batch_pixels: bool = False) -> list[dict[str, Any]]:
    """Too many tiles of ``tile_size`` every ``stride`` over ``size`` (or all of them too big)."""
    if size is None or size.height is None or size.width is None:
        return []
    count = tiles_along(size.height, tile_size, stride) * tiles_along(size.width, tile_size, stride)
    if count > lim.tiles:
        return [limit_error(f"node {node!r}: {count} tiles of {tile_size} px every {stride} px over "
                            f"{size.width}x{size.height}; the limit is {lim.tiles}", node, field,
                            count, lim.tiles)]
    total = count * min(tile_size, size.height) * min(tile_size, size.width) * (size.batch or 1)
    if batch_pixels and total > lim.batch_pixels:
        return [limit_error(f"node {node!r}: {count} tiles hold {total} pixels; the batch x pixels "
                            f"limit is {lim.batch_pixels}", node, field, total, lim.batch_pixels)]
    return []


def param_problems(node: str, spec: BlockSpec | None, params: Mapping[str, Any], lim: SizeLimits,
                   base: Size | None = None) -> list[dict[str, Any]]:
    """Bounds one node's params break by themselves: steps, batch, scale factors, tile splits."""
    numeric = _numeric_params(spec)
    problems = []
    for names, bound, what in ((STEPS, lim.steps, "steps"), (BATCH_LIKE, lim.batch, "batch")):
        for name in names:
            v = number(params.get(name)) if (numeric is None or name in numeric) else None
            if v is not None and v > bound:
                problems.append(limit_error(f"node {node!r}: {name} {v} is over the {what} limit {bound}",
                                            node, f"params.{name}", v, bound))
    if spec is None or any(p.type in SPATIAL for p in spec.inputs):
        scale = _get(params, SCALES, numeric)
        if scale is not None and (spec is None or any(p.type in SPATIAL for p in spec.outputs)) \
                and scale[1] > lim.scale:
            problems.append(limit_error(f"node {node!r}: {scale[0]} {scale[1]} is over the scale "
                                        f"factor limit {lim.scale}", node, f"params.{scale[0]}",
                                        scale[1], lim.scale))
    if spec is not None and any(p.type == "TILES" for p in spec.outputs):
        side, overlap = _get(params, SIDES, numeric), _get(params, OVERLAPS, numeric)
        stride = _get(params, STRIDES, numeric)
        if side is not None:
            step = stride[1] if stride else side[1] - (overlap[1] if overlap else 0)
            problems += tile_problems(node, base, int(side[1]), int(step), lim,
                                      f"params.{(overlap or stride or side)[0]}", batch_pixels=True)
    return problems


# -- submit time -------------------------------------------------------------------------------


def _base(graph: Graph, node_id: str, spec: BlockSpec | None, sizes: dict[str, Size | None]
          ) -> Size | None:
    """The size of the first image-like input of ``node_id`` that is known."""
    node = graph.nodes[node_id]
    order = [p.name for p in spec.inputs if p.type in SPATIAL] if spec else list(node.inputs)
    for name in order:
        ref = node.inputs.get(name)
        for r in (ref if isinstance(ref, list) else [ref]):
            if isinstance(r, str) and sizes.get(r.split(".")[0]) is not None:
                return sizes[r.split(".")[0]]
    return None


def _order(graph: Graph) -> list[str] | None:
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    for node_id, node in graph.nodes.items():
        for _name, _i, ref in node.references():
            src = ref.split(".")[0] if isinstance(ref, str) else None
            if src in graph.nodes:
                g.add_edge(src, node_id)
    try:
        return list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        return None


def check_limits(graph: Graph, limits: Any, catalog: Mapping[str, BlockSpec] | None = None
                 ) -> list[dict[str, Any]]:
    """Every limit ``graph`` breaks, each naming node and field, with the value and the bound.

    ``limits`` is a :class:`~orchestrator.config.Limits` (or :class:`SizeLimits`); with a
    ``catalog`` sizes are followed along the graph, so a resize of a known image is checked
    by what it makes.
    """
    lim = SizeLimits.of(limits)
    problems: list[dict[str, Any]] = []
    if len(graph.nodes) > lim.nodes:
        return [limit_error(f"graph has {len(graph.nodes)} nodes; the limit is {lim.nodes}", None,
                            "nodes", len(graph.nodes), lim.nodes)]
    order = _order(graph)
    sizes: dict[str, Size | None] = {}
    for node_id in order or list(graph.nodes):
        node = graph.nodes[node_id]
        spec = catalog.get(node.block) if catalog is not None else None
        for path, why in bad_values(node.params, "params"):
            problems.append({"type": "invalid_value", "message": f"node {node_id!r}: {path}: {why}",
                             "node": node_id, "field": path})
        params = effective_params(spec, node.params) if catalog is not None else dict(node.params)
        base = _base(graph, node_id, spec, sizes) if order is not None else None
        mine = param_problems(node_id, spec, params, lim, base)
        size, field = derive(spec, params, base)
        if size is not None and field is not None:  # a size this node sets (not one it passes on)
            mine += size_problems(node_id, size, field, lim)
        if node.tile is not None:
            t = node.tile
            around = size if size is not None and size.pixels is not None else base
            mine += tile_problems(node_id, around, t.size, t.effective_stride(), lim,
                                  "tile.stride" if t.stride else "tile.overlap")
            if t.size * t.size > lim.pixels:
                mine.append(limit_error(f"node {node_id!r}: tile size {t.size} is over the "
                                        f"{lim.pixels}-pixel limit", node_id, "tile.size",
                                        t.size * t.size, lim.pixels))
        seen = set()
        for p in mine:  # one problem per field
            if p["field"] not in seen:
                seen.add(p["field"])
                problems.append(p)
        sizes[node_id] = size  # an image-like output without size params keeps its input's
    return problems


# -- run time ----------------------------------------------------------------------------------


def measure(value: Any, port_type: str) -> Size | None:
    """The size of a value on a port, in image pixels (latents: x ``LATENT_FACTOR``)."""
    if port_type == "TILES" and isinstance(value, Mapping):
        hw = value.get("image_size")
        if isinstance(hw, (list, tuple)) and len(hw) == 2:
            tiles = value.get("tiles") or [None]
            return Size(int(getattr(tiles[0], "shape", (1,))[0]), int(hw[0]), int(hw[1]))
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    shape = tuple(int(s) for s in shape)
    if port_type == "IMAGE" and len(shape) == 4:
        return Size(shape[0], shape[1], shape[2])
    if port_type == "MASK" and len(shape) == 3:
        return Size(shape[0], shape[1], shape[2])
    if port_type == "LATENT" and len(shape) == 4:
        return Size(shape[0], shape[2] * LATENT_FACTOR, shape[3] * LATENT_FACTOR)
    return None


def _raise(problems: list[dict[str, Any]]) -> None:
    first = problems[0]
    extra = {k: v for k, v in first.items() if k not in ("type", "message", "node", "field")}
    raise BlockError(first["message"], type="limit", node=first["node"], field=first["field"], **extra)


def check_before_run(node: str, spec: BlockSpec, params: Any, inputs: Mapping[str, Any],
                     limits: Any, tile: Mapping[str, Any] | None = None) -> None:
    """Raise a ``limit`` :class:`~orchestrator.errors.BlockError` when ``node`` would make more
    than the limits allow from these real ``inputs`` (before the block allocates anything)."""
    lim = SizeLimits.of(limits)
    p = params.model_dump() if hasattr(params, "model_dump") else dict(params or {})
    base = None
    for port in spec.inputs:
        if port.type in SPATIAL and port.name in inputs:
            base = measure(inputs[port.name], port.type)
            if base is not None:
                break
    problems = param_problems(node, spec, p, lim, base)
    size, field = derive(spec, p, base)
    if size is not None and field is not None:
        problems += size_problems(node, size, field, lim)
    if tile:
        size_t = int(tile.get("size") or 0)
        stride = int(tile.get("stride") or size_t - int(tile.get("overlap") or 0))
        around = size if size is not None and size.pixels is not None else base
        if size_t:
            problems += tile_problems(node, around, size_t, stride, lim, "tile.stride")
    if problems:
        _raise(problems)


def check_outputs(node: str, spec: BlockSpec, outputs: Mapping[str, Any], limits: Any) -> None:
    """The last check: what a node returned is measured against the limits."""
    lim = SizeLimits.of(limits)
    for port in spec.outputs:
        if port.type in SPATIAL and port.type != "TILES" and port.name in outputs:
            size = measure(outputs[port.name], port.type)
            problems = size_problems(node, size, f"outputs.{port.name}", lim) if size else []
            if problems:
                _raise(problems)


def json_depth(value: Any) -> int:
    """How deep lists and dicts nest in ``value`` (iterative).

    >>> json_depth({"a": [1, {"b": []}]}), json_depth(3)
    (4, 0)
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, (list, tuple)):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in v)
    return deepest


def finite_json(value: Any, max_depth: int | None = None) -> Any:
    """A copy of decoded JSON that any JSON encoder takes: non-finite floats become ``None``,
    ints too long for a 64-bit store become strings (an LLM's answer may hold either), and
    containers deeper than ``max_depth`` a note saying so. Iterative: no depth makes it recurse.

    >>> finite_json({"a": [float("nan"), 1.5, 10**30]})
    {'a': [None, 1.5, '1000000000000000000000000000000']}
    >>> finite_json({"a": {"b": {"c": 1}}}, max_depth=2)
    {'a': {'b': '(nested deeper than 2 levels)'}}
    """
    out: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, out, 0, 1)]
    while stack:
        v, parent, key, depth = stack.pop()
        if isinstance(v, (dict, list, tuple)) and max_depth is not None and depth > max_depth:
            parent[key] = f"(nested deeper than {max_depth} levels)"
        elif isinstance(v, dict):
            parent[key] = {str(k): None for k in v}
            stack.extend((x, parent[key], str(k), depth + 1) for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            parent[key] = [None] * len(v)
            stack.extend((x, parent[key], i, depth + 1) for i, x in enumerate(v))
        elif isinstance(v, float):
            parent[key] = v if math.isfinite(v) else None
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
            parent[key] = str(v) if v.bit_length() < 14000 else None
        else:
            parent[key] = v
    return out[0]


def check_size(node: str, width: int, height: int, batch: int, field: str, limits: Any) -> None:
    """Raise a ``limit`` :class:`~orchestrator.errors.BlockError` when an output of ``batch`` x
    ``width`` x ``height`` pixels would break ``limits`` (see :meth:`Context.check_size`)."""
    problems = size_problems(node, Size(int(batch), int(height), int(width)), field, SizeLimits.of(limits))
    if problems:
        _raise(problems)
