"""Limits on every plan: a planned graph is held to the daemon's limits before it runs.

The agent does not import the daemon's limits: the caller puts a check in the planning
context (``PlanningContext.limits``: graph -> problems, each ``{"type", "message", "node",
"field", "value", "bound"}``; the daemon and the CLI pass ``orchestrator.runtime.limits.check_limits``
with the configured limits). :func:`hold_limits` clamps what it can (a param over its bound
to the bound; an image over the pixel limits scaled down, its aspect kept), notes every
clamp in the trace, and returns what still breaks the limits (the planner then refuses).
"""

from __future__ import annotations

import math
from typing import Any

from agents.context import PlanningContext
from agents.sizes import output_size, round8, set_output_size
from graphs import Graph

MAX_PASSES = 8


def _bound(problem: dict[str, Any]) -> float | None:
    bound = problem.get("bound")
    le = bound.get("le") if isinstance(bound, dict) else None
    return float(le) if isinstance(le, (int, float)) and not isinstance(le, bool) else None


def hold_limits(graph: Graph, ctx: PlanningContext, notes: list[str]
                ) -> tuple[Graph, list[dict[str, Any]]]:
    """``(graph, problems)``: ``graph`` clamped into the limits (a copy; each clamp noted in
    ``notes``) and the problems no clamp could fix (empty: it passes)."""
    if ctx.limits is None:
        return graph, []
    out = graph
    problems = ctx.limits(out)
    for _ in range(MAX_PASSES):
        if not problems:
            return out, []
        out = out.model_copy(deep=True)
        changed = False
        scale = 1.0
        for p in problems:
            le, value = _bound(p), p.get("value")
            node, field = p.get("node"), str(p.get("field") or "")
            if le is None or not isinstance(value, (int, float)) or node not in out.nodes:
                continue
            params = out.nodes[node].params
            name = field.removeprefix("params.")
            if field.startswith("params.") and params.get(name) == value:
                params[name] = int(le) if isinstance(value, int) else le
                notes.append(f"limits: node {node!r} {name} {value} -> {params[name]} (the bound)")
                changed = True
            elif value > 0:  # a derived size (pixels, batch x pixels): shrink the image
                scale = min(scale, math.sqrt(le / value) * 0.98)
        if scale < 1.0:
            size = output_size(out)
            if size is not None:
                w, h = max(8, round8(size[0] * scale - 4)), max(8, round8(size[1] * scale - 4))
                out = set_output_size(out, w, h)
                notes.append(f"limits: output {size[0]}x{size[1]} -> {w}x{h} (over the pixel limits)")
                changed = True
        if not changed:
            break
        problems = ctx.limits(out)
    return out, problems
