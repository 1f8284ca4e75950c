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
from agents.inputs import use_optional_inputs
from agents.outpaint import outpaint_graph, sides_of
from agents.regions import fit_region_slots, region_areas, region_slots, split_regions
from agents.request import Request
from agents.rules import fix_rules, target_size
from agents.sizes import output_size, primary_model, round8, set_output_size
from agents.slots import fill_slots
from agents.upscale_size import apply_upscale_target
from graphs import Graph, Template

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


def input_paths(graph: Graph, request: Request) -> dict[str, str]:
    """``{node: file}``: each given input on the node of its role (the graph's ``meta.inputs``;
    a graph that declares none: the mask on its ``load_mask`` node, the image on its loads)."""
    from agents.context import template_inputs

    declared = template_inputs(Template(name="", description="", labels={}, graph=graph))
    return {i.node: request.images[i.role] for i in declared
            if i.role in request.images and i.node in graph.nodes}


def _prompts(graph: Graph, text: str) -> dict[str, str]:
    """The prompt of each prompting node: region nodes (``meta.region``) get their region's part
    of the text, the others the whole text; a detail node (``meta.role: detail``) keeps its own."""
    nodes = {n: node for n, node in graph.nodes.items() if isinstance(node.params.get("prompt"), str)
             and node.meta.get("role") != "detail"}
    details = {n: detail_prompt(text) for n, node in graph.nodes.items()
               if isinstance(node.params.get("prompt"), str) and node.meta.get("role") == "detail"}
    slots = [n for n, node in nodes.items() if node.meta.get("region")]
    if not slots:
        return {**{n: text for n in nodes}, **details}
    base, regions = split_regions(text)
    assigned = _assign(graph, slots, regions)
    # a region no slot takes stays in the scene's prompt: nothing the user asked is dropped
    lost = [f"{regions[r]} ({r})" for r in regions if r not in assigned and regions[r]]
    scene = ", ".join([base, *lost]).strip(", ") if regions else text
    out = {n: scene or text for n in nodes if n not in slots}
    for node_id, region in zip(slots, assigned, strict=True):
        out[node_id] = regions.get(region or "", text) or text
    return out


def detail_prompt(text: str) -> str:
    """The prompt of a detail pass: the part the user wants fixed (face by default).

    >>> detail_prompt("fix the hands of a pianist")
    'detailed hands, sharp focus, highly detailed'
    """
    return f"detailed {_detail_target(text)}, sharp focus, highly detailed"


# where a detail pass looks without a mask or a detector: the usual place of a face in a portrait,
# of the eyes, of the hands (fractions of the picture; a mask or a detector makes it exact)
DETAIL_BOXES = {"face": [0.3, 0.1, 0.4, 0.45], "eyes": [0.25, 0.2, 0.5, 0.2], "hands": [0.1, 0.45, 0.8, 0.5]}


def _detail_target(text: str) -> str:
    return "hands" if re.search(r"\b(?:hands?|fingers)\b", text, re.IGNORECASE) else \
        "eyes" if re.search(r"\beyes\b", text, re.IGNORECASE) else "face"


def _detail_regions(graph: Graph, text: str, native: int) -> dict[str, dict[str, Any]]:
    """New params of a detail pass: the crop at the model's native size, and the box of the
    part the prompt names (face, eyes, hands) where the region is a fractional box."""
    out: dict[str, dict[str, Any]] = {}
    for node_id, node in graph.nodes.items():
        if node.block != "compose.region_crop":
            continue
        if isinstance(node.params.get("size"), int) and node.params["size"] != native:
            out[node_id] = {"size": native}
        mask_ref = node.inputs.get("mask")
        source = mask_ref.split(".")[0] if isinstance(mask_ref, str) else None
        region = graph.nodes.get(source) if source else None
        if region is not None and region.block == "compose.mask_rect" \
                and region.params.get("units") == "fraction":
            box = DETAIL_BOXES[_detail_target(text)]
            if region.params.get("box") != box:
                out[source] = {"box": list(box)}
    return out


def _assign(graph: Graph, slots: list[str], regions: dict[str, str]) -> list[str | None]:
    """The asked region for each region slot: its own when asked, else the next one not taken."""
    own = [graph.nodes[n].meta.get("region") for n in slots]
    left = [r for r in regions if r not in own]
    return [r if r in regions else (left.pop(0) if left else None) for r in own]


def _areas(graph: Graph, request: Request) -> dict[str, list[float]]:
    """New ``area`` params of the regional nodes: each slot's asked region, halves, thirds
    or quarters as the regions asked together say (:func:`agents.regions.region_areas`)."""
    slots = region_slots(graph)
    if not slots:
        return {}
    _base, regions = split_regions(request.text or request.prompt)
    assigned = _assign(graph, slots, regions)
    areas = region_areas([r for r in assigned if r])
    out = {}
    for slot, region in zip(slots, assigned, strict=True):
        if region not in areas:
            continue
        for node_id, node in graph.nodes.items():
            if "area" in node.params and any(ref == f"{slot}.cond" for ref in node.inputs.values()) \
                    and node.params["area"] != areas[region]:
                out[node_id] = list(areas[region])
    return out


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
    changes: list[dict[str, Any]] = []

    def note(node: str | None, field: str, value: Any) -> None:
        changes.append({"node": node, "field": field, "value": value})

    meta = dict(graph.meta)
    fitted = use_optional_inputs(graph, request.images)
    if set(fitted.nodes) != set(graph.nodes):
        note(None, "inputs", "a given input takes the place of the nodes that made it: "
             f"{', '.join(sorted(set(graph.nodes) - set(fitted.nodes)))} dropped")
    if region_slots(fitted):  # a slot for every region the prompt names
        _base, regions = split_regions(request.text or request.prompt)
        fitted = fit_region_slots(fitted, list(regions))
    out, choice = fill_slots(fitted, request, ctx, meta)
    note(None, "models", choice.to_dict())
    text = request.text or request.prompt
    negative = settings.get("negative_prompt")
    for node_id, prompt in _prompts(out, text).items():
        node = out.nodes[node_id]
        node.params["prompt"] = prompt
        note(node_id, "params.prompt", prompt)
        if isinstance(negative, str):
            node.params["negative_prompt"] = negative
            note(node_id, "params.negative_prompt", negative)
    for node_id, area in _areas(out, request).items():
        out.nodes[node_id].params["area"] = area
        note(node_id, "params.area", area)

    native = ctx.native_size(primary_model(out, ctx.catalog))
    for node_id, value in _detail_regions(out, text, native).items():
        out.nodes[node_id].params.update(value)
        note(node_id, "params", value)
    width, height = _int(settings.get("width")), _int(settings.get("height"))
    if not (width and height and width > 0 and height > 0):
        width, height = target_size(request, native)
    width, height = round8(width), round8(height)
    if output_size(out) not in (None, (width, height)):
        out = set_output_size(out, width, height)
        note(None, "size", [width, height])
    if "upscale" in request.labels.intents:  # "2x is enough", "to 1920x1080": the factor or size asked
        for node_id, node in out.nodes.items():
            if node.block == "image.resize" and "scale" in node.params:
                changed = apply_upscale_target(node.params, request.prompt)
                if changed is not None:
                    node.params = changed
                    note(node_id, "params", {k: v for k, v in changed.items()
                                             if k in ("scale", "width", "height")})
                    # the size asked is the result's (a "64x64" it comes from is the given picture's)
                    request.width, request.height = changed.get("width"), changed.get("height")
                    request.aspect = request.width / request.height if request.width and request.height \
                        else None

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
    for node_id, path in input_paths(out, request).items():
        out.nodes[node_id].params["path"] = path
        note(node_id, "params.path", path)
    if "outpaint" in request.labels.intents and request.labels.task == "inpaint":
        out = _outpaint(out, request, ctx, native, note)
    out, fixes = fix_rules(out, request, ctx)
    changes.extend({"node": f["node"], "field": f["field"], "value": f["message"], "rule": f["rule"]}
                   for f in fixes)
    return out, changes


def _outpaint(graph: Graph, request: Request, ctx: PlanningContext, native: int, note: Any) -> Graph:
    """The inpainting ``graph`` made to extend its given picture (:mod:`agents.outpaint`); the
    aspect asked is the padded picture's, so the request's size is what the pad makes."""
    path = request.images.get("image")
    size = None
    if path and ctx.image_size is not None:
        try:
            size = ctx.image_size(path)
        except (OSError, ValueError):
            size = None
    out, done = outpaint_graph(graph, native=native, sides=sides_of(request.prompt),
                               aspect=request.aspect, size=size, mask_given="mask" in request.images)
    if done:
        note(None, "outpaint", done)
        padded = output_size(out)
        if padded is not None:  # the rules check the padded picture, not a size to resize it to
            request.width, request.height = padded
            request.aspect = padded[0] / padded[1]
        if not done["size_known"]:
            note(None, "outpaint", "the given picture's size is not known when planning: it is cut to "
                 f"a {native}x{native} square from its middle before it is extended")
    return out
