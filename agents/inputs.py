"""The input contract: each template's named inputs by role, the files a request gives.

A template declares its inputs (``meta.inputs``: ``image``, ``mask``, ``style``, ``palette``,
``reference``, ``control``, each on the node that loads it). The files a user gives, by role
(``--input style=FILE`` on the CLI, ``agent.inputs`` over the API), can set the task; a
template whose inputs are not all given is not planned: a text-to-image composition (pose,
mask region, ...) falls back to a text-only template with a note in the trace, any other
fails with an :class:`~agents.errors.AgentError` (``type="input"``) naming each missing role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.choose import rank_templates
from agents.context import PlanningContext, missing_models, template_inputs, template_task
from agents.errors import AgentError
from agents.given import two_pictures
from agents.labels import INTENT_INPUTS, ROLE_INTENTS
from agents.masks import gives_mask
from agents.palettes import names_palette
from agents.request import Request
from graphs import Graph, Node, Template

TEXT_INTENTS = ("regions", "mask-region", "pose", "control", "detail", "hires")  # over a new picture
# what a redraw without its mask or palette does instead, and what the missing input would do
REDRAWS = {"mask": ("change part of the picture", "to repaint only that part"),
           "palette": ("colour the picture", "to take its colours from a palette")}
HOW = "give it with --input ROLE=FILE (CLI) or agent.inputs {ROLE: uploaded name} (API)"
# a map given as the one picture is used as the map (see apply_inputs)
MAP_HINT = "; a lineart, pose or depth picture given as input 'image' (--image) is used as the map"


def apply_inputs(request: Request, notes: list[str]) -> None:
    """Let the given inputs set the task and intents of ``request`` where the words do not."""
    labels = request.labels
    if set(request.images) == {"image"} and labels.task == "text-to-image" \
            and {"control", "pose"} & set(labels.intents):
        # "from this lineart make an anime illustration" with --image: the one picture given is the map
        request.images = {"control": request.images["image"]}
        notes.append("the words say the picture given is a control map (a pose, lineart, edges or depth): "
                     "it is used as input 'control'")
    roles = set(request.images)
    for role, intent in ROLE_INTENTS.items():
        if role in roles and intent not in labels.intents \
                and not (role == "control" and "pose" in labels.intents):
            labels.intents.append(intent)
            notes.append(f"a {role!r} input was given: planned as intent {intent!r}")
    if "mask" in roles and "image" in roles and labels.task != "inpaint" \
            and "mask-region" not in labels.intents:
        notes.append(f"an image and a mask were given: the task is inpaint (the words said {labels.task})")
        labels.task = "inpaint"
    if "mask" in roles and "image" in roles and "detail" in labels.intents:
        # "fix the face in this photo" with a mask: the mask marks what to fix, inpainting repaints it
        labels.intents.remove("detail")
        notes.append("a mask was given with the picture to fix: it is inpainted where the mask is white")
    elif "image" in roles and labels.task == "text-to-image" \
            and not any(i in TEXT_INTENTS and i != "detail" for i in labels.intents):
        notes.append("an image was given: the task is image-to-image"
                     + (" (the detail pass fixes it)" if "detail" in labels.intents else ""))
        labels.task = "image-to-image"
    if "reference" in labels.intents and labels.task != "inpaint":
        labels.intents.remove("reference")


def implied_roles(request: Request) -> set[str]:
    """The input roles the words of ``request`` imply: a given picture (image-to-image or
    inpaint), a mask (inpaint; an outpainting only when the words say the user gives one:
    "I widened the canvas and masked the empty strips"), and the inputs of its intents."""
    labels = request.labels
    roles = {r for i in labels.intents for r in INTENT_INPUTS.get(i, ())}
    if labels.task != "text-to-image":
        roles.add("image")
    if labels.task == "inpaint" and ("outpaint" not in labels.intents or gives_mask(request.prompt)):
        roles.add("mask")  # an outpainting paints the padded border: the pad makes its mask
    return roles


def missing_roles(template: Template, request: Request) -> list[dict[str, str]]:
    """The inputs ``template`` needs that ``request`` does not give: ``{"role", "description"}``.
    An optional input is needed when the prompt implies it ("fix the face in this photo")."""
    implied = implied_roles(request)
    padded = "outpaint" in request.labels.intents and outpaints(template)
    return [{"role": i.role, "description": i.description} for i in template_inputs(template)
            if i.role not in request.images and (not i.optional or i.role in implied)
            and not (padded and i.role == "mask" and i.role not in implied)]


def outpaints(template: Template) -> bool:
    """Whether the planner can make ``template`` extend a picture (an inpainting of an
    ``image.load``: :func:`agents.outpaint.outpaint_graph`)."""
    return any(n.block == "sd.inpaint" for n in template.graph.nodes.values())


def use_optional_inputs(graph: Graph, images: Mapping[str, str]) -> Graph:
    """A copy of ``graph`` where each given optional input (``meta.inputs`` with ``optional``)
    takes the place of its node: an ``image.load`` (``image.load_mask`` for a mask) of the file,
    named ``load_<role>``, and what read that node reads the file; nodes that then feed nothing
    the graph keeps are dropped. Without such inputs the graph is returned as it is (a copy)."""
    out = graph.model_copy(deep=True)
    declared = template_inputs(Template(name="", description="", labels={}, graph=out))
    replaced = [i for i in declared if i.optional and i.role in images and i.node in out.nodes]
    if not replaced:
        return out
    for item in replaced:
        block = "image.load_mask" if item.role == "mask" else "image.load"
        out.nodes[item.node] = Node(block=block, params={"path": images[item.role]},
                                    meta={"input": item.role})
    sinks = [n for n, node in out.nodes.items() if node.block.endswith(".save")] or list(out.nodes)
    keep: set[str] = set()
    stack = list(sinks)
    while stack:
        node_id = stack.pop()
        if node_id in keep or node_id not in out.nodes:
            continue
        keep.add(node_id)
        stack.extend(src for src, _port, dst, *_rest in out.edges() if dst == node_id)
    for node_id in [n for n in out.nodes if n not in keep]:
        del out.nodes[node_id]
    for item in replaced:  # the loading node is named for what it loads ("load_image"), not what it replaced
        new = f"load_{item.role}"
        if new not in out.nodes:
            out = _rename(out, item.node, new)
    return out


def _rename(graph: Graph, old: str, new: str) -> Graph:
    """``graph`` with node ``old`` named ``new``: references and ``meta.inputs`` follow."""
    def ref(value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            return [ref(v) for v in value]  # type: ignore[misc]
        return f"{new}.{value[len(old) + 1:]}" if value.startswith(f"{old}.") else value

    nodes = {}
    for node_id, node in graph.nodes.items():
        node = node.model_copy(deep=True)
        node.inputs = {k: ref(v) for k, v in node.inputs.items()}
        nodes[new if node_id == old else node_id] = node
    out = graph.model_copy(deep=True)
    out.nodes = nodes
    items = out.meta.get("inputs")
    if isinstance(items, list):
        out.meta["inputs"] = [{**i, "node": new} if isinstance(i, dict) and i.get("node") == old else i
                              for i in items]
    return out


def input_error(template: Template, missing: list[dict[str, str]], task: str | None = None) -> AgentError:
    """The error of a plan that lacks inputs: names the template, the task (the prompt's, where
    it makes an optional input needed) and each missing role with its description."""
    roles = [m["role"] for m in missing]
    what = "; ".join(f"{m['role']!r}" + (f" ({m['description']})" if m["description"] else "")
                     for m in missing)
    also = MAP_HINT if roles == ["control"] and (task or template.task) == "text-to-image" else ""
    return AgentError(
        f"the prompt asks for {template.name} ({task or template.task or template_task(template.graph)}), "
        f"which needs "
        f"input {what}; none was given: {HOW.replace('ROLE', roles[0])}{also}",
        type="input", field=f"inputs.{roles[0]}", value=None, roles=roles, template=template.name)


def require_inputs(template: Template, request: Request, ctx: PlanningContext | None = None) -> None:
    """Raise the input error of ``template`` when ``request`` lacks one of its inputs (or, given
    ``ctx``, a model error when the model library lacks one of its models)."""
    lacking = missing_models(template, ctx) if ctx is not None else []
    if lacking:
        names = ", ".join(f"{n} ({k})" for n, k in lacking)
        raise AgentError(f"{template.name} needs model {names}, which the model library does not have",
                         type="model", field="template", value=template.name)
    missing = missing_roles(template, request)
    if missing:
        raise input_error(template, missing, request.labels.task)


def pick_with_inputs(ranking: list[dict[str, Any]], request: Request, ctx: PlanningContext,
                     notes: list[str]) -> tuple[str, Request]:
    """The best ranked template whose inputs are all given, and the request it is planned for.

    When the best one lacks an input: a text-to-image composition falls back to the best
    template of the task without that intent (noted); anything else is the input error.
    """
    best = ctx.templates[ranking[0]["template"]]
    lacking = missing_models(best, ctx)
    if lacking:  # a template whose models are not there cannot run: the task's other templates
        request.labels.intents = [i for i in request.labels.intents if i not in best.intents]
        names = ", ".join(f"{n} ({k})" for n, k in lacking)
        ranking = [e for e in rank_templates(request.labels, ctx)
                   if not missing_models(ctx.templates[e["template"]], ctx)]
        if not ranking:
            raise AgentError(f"{best.name} needs model {names}, which the model library does not have",
                             type="model", field="template", value=best.name)
        notes.append(f"{best.name} needs model {names}, which the model library does not have: "
                     f"planned with {ranking[0]['template']}")
        best = ctx.templates[ranking[0]["template"]]
    missing = missing_roles(best, request)
    if not missing:
        return best.name, request
    redraw = _redraw_without(missing, request)
    if redraw:
        # "get rid of the exit sign in this shot" with a photo and no mask, "colourise it" with no
        # palette: the whole picture is redrawn towards the prompt rather than refused
        task, intents = request.labels.task, list(request.labels.intents)
        request.labels.task = "image-to-image"
        request.labels.intents = [i for i in intents if i != "palette"]
        for entry in rank_templates(request.labels, ctx):
            other = ctx.templates[entry["template"]]
            if not missing_roles(other, request) and not missing_models(other, ctx):
                how = HOW.replace("ROLE", redraw)
                what, confine = REDRAWS[redraw]
                notes.append(f"the prompt asks to {what} ({best.name}), but no {redraw} was given and the "
                             f"words do not say there is one: planned with {other.name}, which redraws the "
                             f"whole picture; {how} {confine}")
                return other.name, request
        request.labels.task, request.labels.intents = task, intents
    for entry in ranking[1:]:
        other = ctx.templates[entry["template"]]
        if not missing_roles(other, request):
            notes.append(f"{best.name} needs input {', '.join(m['role'] for m in missing)}, which was "
                         f"not given: planned with {other.name}")
            return other.name, request
    task = best.task or request.labels.task
    if task == "text-to-image" and request.labels.task == "text-to-image":
        implied = {r for i in request.labels.intents for r in INTENT_INPUTS.get(i, ())}
        dropped = [i for i in request.labels.intents if set(INTENT_INPUTS.get(i, ())) & implied]
        request.labels.intents = [i for i in request.labels.intents if i not in dropped]
        for entry in rank_templates(request.labels, ctx):
            other = ctx.templates[entry["template"]]
            if not missing_roles(other, request):
                roles = [m["role"] for m in missing]
                also = MAP_HINT if roles == ["control"] else ""
                notes.append(f"the prompt asks for {best.name} ({', '.join(dropped)}), which needs input "
                             f"{', '.join(roles)}; none was given, so it fell back to the text-only "
                             f"{other.name}{also}")
                return other.name, request
    roles = {m["role"] for m in missing}
    if {"image", "palette"} <= roles and not names_palette(request.prompt) \
            and not two_pictures(request.prompt) and not _COLOURS_FROM.search(request.prompt):
        # "recolor it as a winter variant, snowy palette" with no file: the colours are described, so
        # only the picture is asked for (given, it is redrawn by img2img, see _redraw_without)
        request.labels.intents = [i for i in request.labels.intents if i != "palette"]
        for entry in rank_templates(request.labels, ctx):
            other = ctx.templates[entry["template"]]
            lacking = missing_roles(other, request)
            if {m["role"] for m in lacking} == {"image"}:
                raise input_error(other, lacking, request.labels.task)
    raise input_error(best, missing, request.labels.task)


# colours taken from somewhere ("want the label's colours to come from the bog photo"): a palette picture
_COLOURS_FROM = re.compile(r"\bcolou?rs?\b[^.;!?]{0,30}\b(?:from|of|in|like)\b|\b\w+'s colou?rs?\b",
                           re.IGNORECASE)


def _redraw_without(missing: list[dict[str, str]], request: Request) -> str | None:
    """The one input (``"mask"`` or ``"palette"``) whose lack makes the plan an image-to-image
    redraw of the given picture, or ``None``. An inpainting that lacks only its mask, when the
    words neither say the user gives one nor extend the picture (an outpainting makes its own)
    nor bring a reference; a colourisation that lacks only its palette, when the words name no
    palette and no second picture ("colourise this scan naturally")."""
    roles = [m["role"] for m in missing]
    if "image" not in request.images or len(roles) != 1 or roles[0] in request.images:
        return None
    if roles == ["mask"] and request.labels.task == "inpaint" \
            and not set(request.labels.intents) & {"outpaint", "reference"} \
            and not gives_mask(request.prompt):
        return "mask"
    if roles == ["palette"] and not names_palette(request.prompt) and not two_pictures(request.prompt):
        return "palette"
    return None


def note_unused_inputs(template: Template, request: Request, notes: list[str]) -> None:
    """Say in the trace which given inputs the chosen template has no place for."""
    used = {i.role for i in template_inputs(template)}
    unused = sorted(set(request.images) - used)
    if unused:
        notes.append(f"input {', '.join(unused)} given, but {template.name} takes only "
                     f"{', '.join(sorted(used)) or 'no inputs'}: not used")
