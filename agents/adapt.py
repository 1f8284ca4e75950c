"""Select-and-adapt: fit a template graph to a request (prompt, size, steps, seed, negatives).

:func:`adapt` returns a new graph and the list of changes it made; the template is never
modified. The rule fixes (:func:`agents.rules.fix_rules`) run last, so an adapted graph
carries tiling where its size goes beyond the model's native size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from agents.context import PlanningContext
from agents.request import Request
from agents.rules import fix_rules, target_size
from agents.sizes import output_size, primary_model, round8, set_output_size
from graphs import Graph

# what a select answer may set (see agents.prompts)
SETTINGS = ("width", "height", "steps", "seed", "negative_prompt")


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe name from a prompt.

    >>> slug("A wide panorama of a mountain lake, at dawn!")
    'a-wide-panorama-of-a-mountain-lake-at-dawn'
    """
    out = re.sub(r"[^A-Za-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-")
    return out or "image"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def adapt(
    graph: Graph,
    request: Request,
    ctx: PlanningContext,
    *,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Graph, list[dict[str, Any]]]:
    """A copy of ``graph`` adapted to ``request``; ``settings`` (width, height, steps, seed,
    negative_prompt) override what the request implies. Returns the graph and the changes."""
    settings = dict(settings or {})
    out = graph.model_copy(deep=True)
    changes: list[dict[str, Any]] = []

    def note(node: str | None, field: str, value: Any) -> None:
        changes.append({"node": node, "field": field, "value": value})

    text = request.text or request.prompt
    negative = settings.get("negative_prompt")
    for node_id, node in out.nodes.items():
        if isinstance(node.params.get("prompt"), str):
            node.params["prompt"] = text
            note(node_id, "params.prompt", text)
            if isinstance(negative, str):
                node.params["negative_prompt"] = negative
                note(node_id, "params.negative_prompt", negative)

    native = ctx.native_size(primary_model(out, ctx.catalog))
    width, height = _int(settings.get("width")), _int(settings.get("height"))
    if not (width and height and width > 0 and height > 0):
        width, height = target_size(request, native)
    width, height = round8(width), round8(height)
    if output_size(out) not in (None, (width, height)):
        out = set_output_size(out, width, height)
        note(None, "size", [width, height])

    steps = _int(settings.get("steps")) or request.steps
    seed = _int(settings.get("seed"))
    seed = seed if seed is not None else request.default_seed()
    seeds = [s for n in out.nodes.values() if (s := _int(n.params.get("seed"))) is not None]
    base_seed = min(seeds) if seeds else 0
    for node_id, node in out.nodes.items():
        p = node.params
        old_steps = _int(p.get("steps"))
        if old_steps is not None:
            new = steps or (max(1, old_steps // 2) if request.quality == "fast" else
                            math.ceil(old_steps * 1.5) if request.quality == "quality" else old_steps)
            if new != old_steps:
                p["steps"] = new
                note(node_id, "params.steps", new)
        old_seed = _int(p.get("seed"))
        if old_seed is not None:
            p["seed"] = (seed + old_seed - base_seed) % 2**32
            note(node_id, "params.seed", p["seed"])
        if node.block.endswith(".save") and "name" in p:
            p["name"] = slug(text)
            note(node_id, "params.name", p["name"])
        if node.block.endswith(".load_mask") and "mask" in request.images:
            p["path"] = request.images["mask"]
            note(node_id, "params.path", p["path"])
        elif node.block.endswith(".load") and "image" in request.images:
            p["path"] = request.images["image"]
            note(node_id, "params.path", p["path"])
    out, fixes = fix_rules(out, request, ctx)
    changes.extend({"node": f["node"], "field": f["field"], "value": f["message"], "rule": f["rule"]}
                   for f in fixes)
    return out, changes
