"""Model slots: templates name built-in models; a plan runs on the user's.

Templates are model-agnostic: a node whose ``model`` param names a built-in checkpoint
(``tiny-sd``, ``tiny-sdxl``, ``tiny-sd-inpaint``) is a *checkpoint slot*, one naming a
built-in ControlNet or IP-Adapter an *auxiliary slot*. :func:`fill_slots` puts the best
configured checkpoint for the request into every checkpoint slot, in this order:

1. a model the prompt names (``<model:NAME>``, ``model: NAME``, or a configured
   checkpoint's exact name) — removed from the text;
2. a family the prompt asks for ("with the sdxl model"), then the user's ``agent.default_model``;
3. the user's checkpoints, the template's family first (``meta.model.family``; an
   ``-inpaint`` variant for inpainting templates, plain ones elsewhere), then by learned
   score (``PlanningContext.model_score``), then by name.

The built-ins stay only when nothing else is configured. An auxiliary slot takes a
configured model of its kind and the checkpoint's family; where there is none, the whole
graph stays on the built-ins and the trace says why. ``<lora:NAME:WEIGHT>`` tags resolve
through the model library into the checkpoint slots' references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agents.context import BUILTIN_MODELS, ModelInfo, PlanningContext, base_family
from agents.errors import AgentError
from agents.request import Request
from agents.sizes import model_name
from graphs import Graph

AUX_KINDS = ("controlnet", "ip_adapter", "clip_vision")
_MODEL_TAG = re.compile(r"<model:([^<>:]{1,200})>|\bmodel\s*[:=]\s*([A-Za-z0-9_./\-]{2,200})", re.IGNORECASE)


@dataclass
class SlotChoice:
    """What :func:`fill_slots` decided: the checkpoint, the LoRAs, and notes for the trace."""

    checkpoint: str | None = None
    why: str = ""
    loras: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    text: str = ""  # the prompt text with model names removed

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "why": self.why, "loras": list(self.loras),
                "notes": list(self.notes)}


def _strip(text: str, span: tuple[int, int]) -> str:
    out = text[:span[0]] + " " + text[span[1]:]
    out = re.sub(r"\s+", " ", out)
    return re.sub(r"\s+([,.;])", r"\1", out).strip(" ,;")


def _lookup(ctx: PlanningContext, name: str, kind: str) -> ModelInfo | None:
    """A model of ``kind`` by name, with or without ``.safetensors`` (as the model folders list it)."""
    for candidate in (name, f"{name}.safetensors", name.removesuffix(".safetensors")):
        info = ctx.models.get(candidate)
        if info is not None and info.kind == kind:
            return info
    return None


def named_checkpoint(text: str, ctx: PlanningContext) -> tuple[ModelInfo | None, str]:
    """A checkpoint the prompt names, and the text without it. An explicit ``<model:X>`` or
    ``model: X`` that names no checkpoint is an :class:`AgentError` naming the value."""
    m = _MODEL_TAG.search(text)
    if m:
        name = (m.group(1) or m.group(2)).strip()
        info = _lookup(ctx, name, "checkpoint")
        if info is None:
            known = ", ".join(sorted(c.name for c in ctx.checkpoints())) or "none"
            raise AgentError(f"the prompt names model {name!r}, which is no configured checkpoint; "
                             f"checkpoints: {known}", type="model", field="prompt", value=name)
        return info, _strip(text, m.span())
    for info in ctx.checkpoints():
        if info.builtin or len(info.name) < 4:
            continue
        stem = info.name.removesuffix(".safetensors")
        hit = re.search(r"(?<![\w/.-])" + re.escape(stem) + r"(?:\.safetensors)?(?![\w/-])", text,
                        re.IGNORECASE)
        if hit:
            return info, _strip(text, hit.span())
    return None, text


def resolve_loras(request: Request, ctx: PlanningContext, checkpoint: ModelInfo | None,
                  notes: list[str]) -> list[dict[str, Any]]:
    """The request's ``<lora:NAME:WEIGHT>`` tags as LoRA references (``path``, ``weight``). A name
    the model library lacks, or a LoRA of another family than the checkpoint, is left out with
    a note (the tag is already out of the text); a weight outside -10..10 is clamped."""
    out = []
    for name, weight in request.loras:
        info = _lookup(ctx, name, "lora")
        if info is None:
            known = ", ".join(sorted(m.name for m in ctx.of_kind("lora"))) or "none in the model folders"
            notes.append(f"the prompt's LoRA tag names {name!r}, which the model library does not have "
                         f"(LoRAs: {known}): left out")
            continue
        if checkpoint is not None and info.base and checkpoint.base and info.base != checkpoint.base \
                and not checkpoint.builtin:
            notes.append(f"LoRA {name!r} is for {info.base}, the checkpoint {checkpoint.name!r} is "
                         f"{checkpoint.base}: left out")
            continue
        out.append({"path": info.name, "weight": max(-10.0, min(10.0, weight))})
    return out


@dataclass(frozen=True)
class AuxSlot:
    """A node param naming a built-in auxiliary model, and the kind it takes."""

    node: str
    param: str
    kind: str  # controlnet, ip_adapter, clip_vision
    family: bool  # whether it must match the checkpoint's family


def _aux_slot(node_id: str, block: str, param: str, name: str) -> AuxSlot | None:
    info = BUILTIN_MODELS.get(name)
    if info is None or info.kind not in AUX_KINDS:
        return None
    if block.endswith("image_embed"):  # the image encoder an IP-Adapter reads (CLIP vision)
        return AuxSlot(node_id, param, "clip_vision", False)
    return AuxSlot(node_id, param, info.kind, info.kind != "clip_vision")


def _slots(graph: Graph) -> tuple[dict[str, ModelInfo], list[AuxSlot]]:
    checkpoints: dict[str, ModelInfo] = {}
    aux: list[AuxSlot] = []
    for node_id, node in graph.nodes.items():
        for param, value in node.params.items():
            name = model_name(value) if param == "model" else value if param == "adapter" else None
            if not isinstance(name, str):
                continue
            info = BUILTIN_MODELS.get(name)
            if param == "model" and info is not None and info.kind == "checkpoint":
                checkpoints[node_id] = info
                continue
            slot = _aux_slot(node_id, node.block, param, name)
            if slot is not None:
                aux.append(slot)
    return checkpoints, aux


def _rank(candidates: list[ModelInfo], prefer: str, inpaint: bool, ctx: PlanningContext,
          labels: list[str]) -> list[ModelInfo]:
    def key(m: ModelInfo) -> tuple[Any, ...]:
        score = ctx.model_score(labels, m.name) if ctx.model_score is not None else 0.0
        return (m.builtin, bool(prefer) and m.base != prefer, (m.variant == "inpaint") != inpaint,
                not m.base, -score, m.name)

    return sorted(candidates, key=key)


def choose_checkpoint(ctx: PlanningContext, request: Request, template_meta: dict[str, Any],
                      inpaint: bool, named: ModelInfo | None) -> tuple[ModelInfo | None, str]:
    """The checkpoint for the slots and why it was chosen (see the module docstring)."""
    if named is not None:
        return named, "named in the prompt"
    if request.family:
        asked = [m for m in ctx.checkpoints() if m.base == request.family]
        if asked:
            best = _rank(asked, request.family, inpaint, ctx, request.labels.all())[0]
            return best, f"the prompt asks for {request.family}"
    default = ctx.models.get(ctx.default_model or "")
    if default is not None and default.kind == "checkpoint":
        return default, "agent.default_model"
    prefer = request.family or (str((template_meta.get("model") or {}).get("family") or "")
                                if isinstance(template_meta.get("model"), dict) else "")
    users = [m for m in ctx.checkpoints() if not m.builtin]
    if not users:
        return None, "no checkpoint configured: the template's built-in models"
    best = _rank(users, base_family(prefer), inpaint, ctx, request.labels.all())[0]
    return best, "the best configured checkpoint" + (f" (template prefers {prefer})" if prefer else "")


def fill_slots(graph: Graph, request: Request, ctx: PlanningContext,
               template_meta: dict[str, Any] | None = None) -> tuple[Graph, SlotChoice]:
    """A copy of ``graph`` with its model slots filled for ``request`` (see the module docstring)."""
    out = graph.model_copy(deep=True)
    choice = SlotChoice(text=request.text or request.prompt)
    meta = template_meta if template_meta is not None else dict(graph.meta)
    named = ctx.models.get(request.model) if request.model else None
    if named is None:
        named, choice.text = named_checkpoint(choice.text, ctx)
    slots, aux = _slots(out)
    inpaint = any(n.block.endswith(".inpaint") for n in out.nodes.values())
    chosen, choice.why = choose_checkpoint(ctx, request, meta, inpaint, named)
    own = {m.name for m in slots.values()}
    if chosen is not None and aux and chosen.builtin and chosen.name not in own:
        choice.notes.append(f"{chosen.name!r} does not fit this template's built-in auxiliary models: it "
                            f"runs on {', '.join(sorted(own))}")
        chosen, choice.why = None, "the template's built-in models"
    if chosen is not None and aux and not chosen.builtin:
        replacements: dict[AuxSlot, ModelInfo] = {}
        for slot in aux:
            found = [m for m in ctx.of_kind(slot.kind) if not m.builtin
                     and (not slot.family or m.base == chosen.base)]
            if not found:
                what = f"{slot.kind} for {chosen.base or chosen.name}" if slot.family else slot.kind
                choice.notes.append(f"no {what} in the model library, so this template runs on its "
                                    f"built-in models instead of {chosen.name!r}")
                chosen, choice.why, replacements = None, f"no {slot.kind} for its family", {}
                break
            replacements[slot] = sorted(found, key=lambda m: m.name)[0]
        for slot, info in replacements.items():
            _set_param(out, slot.node, slot.param, info.name)
    if chosen is not None:
        for node_id in slots:
            _set_model(out, node_id, chosen.name)
        choice.checkpoint = chosen.name
    else:
        first = next(iter(slots.values()), None)
        choice.checkpoint = first.name if first is not None else None
    checkpoint = ctx.models.get(choice.checkpoint or "")
    choice.loras = resolve_loras(request, ctx, checkpoint, choice.notes)
    if choice.loras:
        for node_id in slots:
            ref = out.nodes[node_id].params.get("model")
            name = model_name(ref)
            out.nodes[node_id].params["model"] = {**(ref if isinstance(ref, dict) else {}), "name": name,
                                                  "loras": list(choice.loras)}
    return out, choice


def _set_model(graph: Graph, node_id: str, name: str) -> None:
    _set_param(graph, node_id, "model", name)


def _set_param(graph: Graph, node_id: str, param: str, name: str) -> None:
    params = graph.nodes[node_id].params
    ref = params.get(param)
    params[param] = {**ref, "name": name} if isinstance(ref, dict) else name
