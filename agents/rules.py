"""Rule checks every planned graph passes, with an LLM or without one, and their fixes.

The rules (each problem is an :class:`~agents.errors.AgentError` dict, ``type="rule"``,
with ``rule`` naming which):

- ``model``: every model reference names a known model, and no node uses a built-in test
  checkpoint where the user has configured their own (the fix fills the model slots as
  select-and-adapt does, :func:`agents.slots.fill_slots`).
- ``prompt``: some node's ``prompt`` param carries the user's prompt.
- ``negative_prompt``: a prompt of people has a negative prompt (the fix adds anatomy and
  faces to it); things the prompt says to leave out ("without text") are in it.
- ``size`` / ``aspect``: the output is the size the prompt gives, its aspect the one the
  prompt asks for (wide, tall, 16:9), larger than native when it asks for a large image.
- ``tiling``: a node that tiles and works beyond its model's native size has a ``tile``
  annotation (a GPU node that cannot tile there is a warning).
- ``input``: every file a loading node reads is one the user gave (by role); an LLM cannot
  name other paths (the fix puts the given file of the node's role there, else the error stays).
- ``outputs``: no more saved images than the library's templates make (the fix drops the extra
  ``image.save`` nodes).

:func:`fix_rules` returns a fixed copy and what it changed; :func:`check_rules` what is
still wrong. Neither mutates its input.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agents.context import BUILTIN_MODELS, PlanningContext, expected_kind
from agents.errors import AgentError
from agents.request import Request
from agents.sizes import (
    model_name,
    model_refs,
    node_model,
    node_sizes,
    output_size,
    primary_model,
    round8,
    set_output_size,
)
from graphs import Graph, TileSpec

PEOPLE_NEGATIVE = ("deformed, distorted, disfigured, bad anatomy, extra limbs, extra fingers, "
                   "mutated hands, poorly drawn face, blurry, lowres")
ASPECT_TOLERANCE = 1.15  # an output aspect within 15% of the asked one passes
SIZE_SLACK = 16  # pixels an explicit size may be off by (latent sizes are multiples of 8, then upscaled)


def _rule(rule: str, message: str, node: str | None = None, field: str | None = None,
          **details: Any) -> dict[str, Any]:
    return AgentError(message, type="rule", node=node, field=field, rule=rule, **details).to_dict()


def target_size(request: Request, native: int) -> tuple[int, int]:
    """The output size a request asks for, given the model's native size.

    >>> from agents.request import parse_request
    >>> target_size(parse_request("a wide panorama of a lake"), 512)
    (2048, 512)
    >>> target_size(parse_request("a city at night, hires fix"), 512)
    (1024, 1024)
    """
    if request.width and request.height:
        return round8(request.width), round8(request.height)
    base = native * (2 if request.large else 1)
    aspect = request.aspect or 1.0
    if aspect >= 1:
        return round8(base * aspect), round8(base)
    return round8(base), round8(base / aspect)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def _carries(param: Any, prompt: str) -> bool:
    if not isinstance(param, str) or not param.strip():
        return False
    want = _words(prompt)
    return not want or len(want & _words(param)) >= max(1, len(want) // 2)


def _carried(graph: Graph, prompts: list[str], text: str) -> bool:
    """Whether the prompting nodes carry the user's prompt: one node, or all of them together
    (a regional graph spreads it over its regions)."""
    params = [graph.nodes[n].params["prompt"] for n in prompts]
    return any(_carries(p, text) for p in params) or _carries(" ".join(params), text)


def _prompt_nodes(graph: Graph) -> list[str]:
    return [n for n, node in graph.nodes.items() if isinstance(node.params.get("prompt"), str)]


def _takes_negative(graph: Graph, ctx: PlanningContext, node_id: str) -> bool:
    node = graph.nodes[node_id]
    if "negative_prompt" in node.params:
        return True
    spec = ctx.catalog.get(node.block)
    return spec is not None and "negative_prompt" in spec.params_schema().get("properties", {})


def _native_of(graph: Graph, ctx: PlanningContext, node_id: str) -> int:
    return ctx.native_size(node_model(graph.nodes[node_id], ctx.catalog)
                           or primary_model(graph, ctx.catalog))


def _size_problem(graph: Graph, request: Request, ctx: PlanningContext) -> dict[str, Any] | None:
    out = output_size(graph)
    if out is None:
        return None
    native = ctx.native_size(primary_model(graph, ctx.catalog))
    if request.width and request.height:
        want = (round8(request.width), round8(request.height))
        # a two-pass graph makes its size from a base of multiples of 8: within 16 px is the size
        if max(abs(out[0] - want[0]), abs(out[1] - want[1])) > SIZE_SLACK:
            return _rule("size", f"the prompt asks for {want[0]}x{want[1]}, the graph makes "
                         f"{out[0]}x{out[1]}", value=list(out), expected=list(want))
        return None
    if request.aspect:
        got = out[0] / out[1]
        if abs(math.log(got / request.aspect)) > math.log(ASPECT_TOLERANCE):
            return _rule("aspect", f"the prompt asks for aspect {request.aspect:.2f} "
                         f"(width/height), the graph makes {out[0]}x{out[1]} ({got:.2f})",
                         value=list(out), expected=round(request.aspect, 3))
    if request.large and max(out) <= native:
        return _rule("size", f"the prompt asks for a large image, the graph makes {out[0]}x{out[1]}"
                     f" (the model's native size is {native})", value=list(out), expected=native * 2)
    return None


def _loads(graph: Graph) -> list[str]:
    return [n for n, node in graph.nodes.items()
            if node.block.endswith((".load", ".load_mask")) and "path" in node.params]


def _saves(graph: Graph) -> list[str]:
    return [n for n, node in graph.nodes.items() if node.block == "image.save"]


def max_outputs(ctx: PlanningContext) -> int:
    """How many ``image.save`` nodes a plan may have: as many as the library's largest template."""
    return max([len(_saves(t.graph)) for t in ctx.templates.values()] or [1]) or 1


def _role_of(graph: Graph, node_id: str) -> str:
    for item in graph.meta.get("inputs") or []:
        if isinstance(item, dict) and item.get("node") == node_id and isinstance(item.get("role"), str):
            return item["role"]
    return "mask" if graph.nodes[node_id].block.endswith(".load_mask") else "image"


def _input_problems(graph: Graph, request: Request, ctx: PlanningContext) -> list[dict[str, Any]]:
    given = set(request.images.values())
    out = []
    for node_id in _loads(graph):
        path = graph.nodes[node_id].params.get("path")
        if path not in given:
            role = _role_of(graph, node_id)
            out.append(_rule("input", f"node {node_id!r} reads {str(path)[:200]!r}, which is no input the "
                             f"user gave (role {role!r}); give it as input {role!r}", node_id, "params.path",
                             value=str(path)[:200], role=role))
    saves = _saves(graph)
    limit = max_outputs(ctx)
    if len(saves) > limit:
        out.append(_rule("outputs", f"{len(saves)} image.save nodes; a plan saves at most {limit}",
                         saves[limit], "block", value=len(saves), bound={"le": limit}))
    return out


def _refs(graph: Graph) -> dict[str, Any]:
    return {n: ref for n, ref in model_refs(graph)}


def _slot_fill(graph: Graph, request: Request, ctx: PlanningContext) -> Graph | None:
    """The graph with its built-in checkpoints replaced by the user's, when that changes it."""
    from agents.slots import fill_slots

    if not any(not m.builtin for m in ctx.checkpoints()):
        return None
    if not any(BUILTIN_MODELS.get(model_name(r) or "") is not None for _, r in model_refs(graph)):
        return None
    filled, _choice = fill_slots(graph, request, ctx)
    return filled if _refs(filled) != _refs(graph) else None


def check_rules(graph: Graph, request: Request, ctx: PlanningContext
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(errors, warnings)``: what breaks the rules in ``graph`` for ``request``."""
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    if ctx.models:
        for node_id, ref in model_refs(graph):
            name = model_name(ref)
            if name not in ctx.models:
                errors.append(_rule(
                    "model", f"node {node_id!r}: unknown model {name!r}; known models: "
                    f"{', '.join(sorted(ctx.models))}", node_id, "params.model", value=name))
        filled = _slot_fill(graph, request, ctx)
        if filled is not None:
            changed = [n for n, ref in _refs(filled).items() if _refs(graph).get(n) != ref]
            errors.append(_rule("model", f"node {changed[0]!r} uses the built-in test model "
                                f"{model_name(graph.nodes[changed[0]].params['model'])!r} where the user's "
                                f"checkpoint {model_name(filled.nodes[changed[0]].params['model'])!r} is "
                                "configured", changed[0], "params.model"))
    prompts = _prompt_nodes(graph)
    if prompts and not _carried(graph, prompts, request.text or request.prompt):
        errors.append(_rule("prompt", "no node's prompt carries the user's prompt "
                            f"{request.text or request.prompt!r}", prompts[0], "params.prompt"))
    for node_id in prompts:
        if not _takes_negative(graph, ctx, node_id):
            continue
        negative = str(graph.nodes[node_id].params.get("negative_prompt") or "")
        if request.people and not negative.strip():
            errors.append(_rule("negative_prompt", f"node {node_id!r}: a prompt of people needs a "
                                "negative prompt (anatomy, faces)", node_id, "params.negative_prompt"))
        missing = [a for a in request.avoid if a.lower() not in negative.lower()]
        if missing:
            errors.append(_rule("negative_prompt", f"node {node_id!r}: the negative prompt should "
                                f"name {', '.join(missing)}", node_id, "params.negative_prompt",
                                value=negative))
    problem = _size_problem(graph, request, ctx)
    if problem:
        errors.append(problem)
    errors.extend(_input_problems(graph, request, ctx))
    sizes = node_sizes(graph)
    for node_id, (w, h) in sizes.items():
        node = graph.nodes[node_id]
        spec = ctx.catalog.get(node.block)
        native = _native_of(graph, ctx, node_id)
        if spec is None or max(w, h) <= native or node.tile is not None:
            continue
        if spec.tiling:
            errors.append(_rule("tiling", f"node {node_id!r} ({node.block}) works at {w}x{h}, beyond "
                                f"the model's native {native}, without a tile annotation",
                                node_id, "tile", value=[w, h], native=native))
        elif spec.device == "gpu":
            warnings.append(_rule("tiling", f"node {node_id!r} ({node.block}) works at {w}x{h}, beyond "
                                  f"the model's native {native}, and its block does not tile",
                                  node_id, "tile", value=[w, h], native=native))
    return errors, warnings


def fix_rules(graph: Graph, request: Request, ctx: PlanningContext
              ) -> tuple[Graph, list[dict[str, Any]]]:
    """A copy of ``graph`` with every rule problem that has a mechanical fix fixed, and the fixes."""
    out = graph.model_copy(deep=True)
    fixes: list[dict[str, Any]] = []

    def note(rule: str, node: str | None, field: str, message: str) -> None:
        fixes.append({"rule": rule, "node": node, "field": field, "message": message})

    if ctx.models:
        preferred = next((n for _, r in model_refs(out) if (n := model_name(r)) in ctx.models), None)
        for node_id, ref in model_refs(out):
            name = model_name(ref)
            kind = expected_kind(out.nodes[node_id].block)
            replacement = ctx.fallback_model(preferred) if kind == "checkpoint" else None
            if name in ctx.models or replacement is None:
                continue  # only a checkpoint has a stand-in: an unknown ONNX or ControlNet stays an error
            params = out.nodes[node_id].params
            params["model"] = {**ref, "name": replacement} if isinstance(ref, dict) else replacement
            note("model", node_id, "params.model", f"unknown model {name!r} -> {replacement!r}")
        filled = _slot_fill(out, request, ctx)
        if filled is not None:
            changed = [n for n, ref in _refs(filled).items() if _refs(out).get(n) != ref]
            out = filled
            note("model", changed[0], "params.model", f"the user's models in {len(changed)} node(s)")
    text = request.text or request.prompt
    prompts = _prompt_nodes(out)
    if prompts and not _carried(out, prompts, text):
        out.nodes[prompts[0]].params["prompt"] = text
        note("prompt", prompts[0], "params.prompt", f"prompt set to {text!r}")
    for node_id in prompts:
        if not _takes_negative(out, ctx, node_id):
            continue
        params = out.nodes[node_id].params
        negative = str(params.get("negative_prompt") or "").strip()
        parts = [negative] if negative else []
        if request.people and "anatomy" not in negative.lower():
            parts.append(PEOPLE_NEGATIVE)
        parts += [a for a in request.avoid if a.lower() not in negative.lower()]
        new = ", ".join(parts)
        if new != negative:
            params["negative_prompt"] = new
            note("negative_prompt", node_id, "params.negative_prompt", f"negative prompt {new!r}")
    for node_id in _loads(out):
        params = out.nodes[node_id].params
        role = _role_of(out, node_id)
        if params.get("path") not in request.images.values() and role in request.images:
            params["path"] = request.images[role]
            note("input", node_id, "params.path", f"the given {role!r} input")
    for node_id in _saves(out)[max_outputs(ctx):]:
        del out.nodes[node_id]
        note("outputs", node_id, "block", "an extra image.save dropped")
        read = {src for src, *_ in out.edges()}
        for load in [n for n in _loads(out) if n not in read]:  # what only fed the dropped output
            del out.nodes[load]
            note("outputs", load, "block", "a loading node nothing reads dropped")
    if _size_problem(out, request, ctx) is not None:
        w, h = target_size(request, ctx.native_size(primary_model(out, ctx.catalog)))
        before = output_size(out)
        out = set_output_size(out, w, h)
        note("size", None, "params.width/height", f"output {before} -> {output_size(out)}")
    for node_id, (w, h) in node_sizes(out).items():
        node = out.nodes[node_id]
        spec = ctx.catalog.get(node.block)
        native = _native_of(out, ctx, node_id)
        if spec is None or not spec.tiling or node.tile is not None or max(w, h) <= native:
            continue
        node.tile = TileSpec(size=native, overlap=round8(native / 4) if native >= 32 else 0)
        note("tiling", node_id, "tile",
             f"{w}x{h} beyond native {native}: tiles of {native}, overlap {node.tile.overlap}")
    return out, fixes
