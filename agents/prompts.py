"""What the planner and the critic send to the LLM, and how their answers are read.

The messages are sized for a local model with a 4k context (ComfyGen-IC): the planner's
select-mode call sends the top :data:`CANDIDATES` templates as name, task, description,
input roles, node ids and the learned per-label scores (no node JSON), and the few blocks a
composition would need, found by a retrieval step over the catalog (the candidates' own
blocks, then the blocks whose id and description share the most words with the prompt and
its labels) until :data:`SELECT_PROMPT_TOKENS` is reached. The critic gets the graph, its
problems and only the blocks the graph uses. Token counts are estimated without a tokenizer
(:func:`estimate_tokens`, at most :data:`CHARS_PER_TOKEN` characters per token, which
over-counts for the tokenizers of common local models); :func:`agents.tokens.count_tokens`
(:mod:`agents.tokens`) counts with litellm's tokenizer where it works offline. The answers are JSON objects;
:func:`read_review` and the planner read only the documented keys, as data.

>>> estimate_tokens([{"role": "user", "content": "x" * 300}])
104
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from agents.context import PlanningContext, template_task
from agents.labels import VOCABULARY
from agents.request import Request
from agents.rules import target_size
from agents.sizes import primary_model
from agents.tokens import CHARS_PER_TOKEN, CONTEXT_TOKENS, estimate_tokens  # noqa: F401 - re-exported
from graphs import BlockSpec, Template

SELECT_PROMPT_TOKENS = 2600  # the select call's messages at most (estimated); the rest is the answer's
CRITIC_PROMPT_TOKENS = 2800  # the critic's messages aim at this; a graph larger than that is sent whole
CANDIDATES = 6  # templates shown in select mode
ROLE_WORDS = ("style", "palette", "reference", "control", "mask")

FORMAT_NOTE = """Graph JSON ("orchestrator.graph/1"): {"format": "orchestrator.graph/1", "nodes": {ID: NODE}}.
A NODE is {"block": BLOCK_ID, "inputs": {INPUT: "node_id.output_port"}, "params": {...},
"tile": {"size": PX, "overlap": PX}}; "inputs", "params" and "tile" are optional. Node ids hold
letters, digits, "_" and "-". An input is wired to another node's output as "node_id.port"; the
port types must match; the graph has no cycles; params follow the block's schema; only blocks
that tile may carry "tile". Model params name a known model."""

RULES_NOTE = """Rules every graph must pass: the output size and aspect match the prompt (wide, tall,
explicit sizes); nodes that work beyond their model's native size carry a "tile" annotation
when their block tiles; a prompt showing people has a negative prompt (bad anatomy, deformed
faces); every model reference names a known model; a prompt node carries the user's prompt."""


def _param_summary(schema: Mapping[str, Any]) -> str:
    required = set(schema.get("required", []))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or "|".join(
            str(p.get("type", "?")) for p in prop.get("anyOf", []) if isinstance(p, Mapping)) or "any"
        bits = [f"{name}{'*' if name in required else ''}: {kind}"]
        lo, hi = prop.get("minimum", prop.get("exclusiveMinimum")), prop.get("maximum",
                                                                              prop.get("exclusiveMaximum"))
        if lo is not None or hi is not None:
            bits.append(f"[{'' if lo is None else lo}..{'' if hi is None else hi}]")
        if "enum" in prop:
            bits.append("{" + ",".join(map(str, prop["enum"])) + "}")
        if "default" in prop:
            bits.append(f"={json.dumps(prop['default'])}")
        parts.append(" ".join(bits))
    return "; ".join(parts) or "none"


def describe_block(spec: BlockSpec) -> str:
    """One block in a line or two: id, description, ports, params, tiling."""
    ins = ", ".join(f"{p.name}:{p.type}{'?' if p.optional else ''}{'[]' if p.multiple else ''}"
                    for p in spec.inputs)
    outs = ", ".join(f"{p.name}:{p.type}" for p in spec.outputs)
    first = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
    tiles = f" | tiles: {spec.tiling}" if spec.tiling else ""
    return (f"- {spec.id}: {first}\n  in({ins}) -> out({outs}) | params: "
            f"{_param_summary(spec.params_schema())}{tiles}")


def answer_budget(messages: Iterable[Mapping[str, Any]], context: int = CONTEXT_TOKENS) -> int:
    """How many tokens the answer to ``messages`` may use so that both fit in ``context``."""
    return context - estimate_tokens(list(messages))


def _first_sentence(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    first = m.group(1) if m else text
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "\u2026"


def template_inputs(template: Template) -> list[str]:
    """The input roles a template takes: its ``meta.inputs`` where it declares them (a mapping
    or list of roles), else one role per file-loading node (``image``, ``mask``, or ``style``,
    ``palette``, ``reference``, ``control`` when the node's id says so)."""
    declared = template.graph.meta.get("inputs")
    if isinstance(declared, Mapping):
        return [str(k) for k in declared]
    if isinstance(declared, list):
        roles = [d if isinstance(d, str) else f"{d.get('role')} (optional)"
                 if d.get("role") and d.get("optional") is True else d.get("role")
                 for d in declared if isinstance(d, (str, Mapping))]
        return [str(r) for r in roles if r]
    roles = []
    for node_id, node in template.graph.nodes.items():
        if node.block.endswith("load_mask"):
            roles.append("mask")
        elif node.block.endswith(".load"):
            roles.append(next((w for w in ROLE_WORDS if w in node_id.lower()), "image"))
    return list(dict.fromkeys(roles))


def describe_candidate(entry: Mapping[str, Any], ctx: PlanningContext,
                       counts: Mapping[tuple[str, str], tuple[int, float]]) -> str:
    """One candidate template in select mode: name, task, first sentence of its description,
    input roles, node ids with their blocks, and its learned score per label (``n`` ratings)."""
    name = str(entry["template"])
    t = ctx.templates[name]
    nodes = " ".join(f"{n}={node.block}" for n, node in t.graph.nodes.items())
    labels = entry.get("labels") or {}
    scores = ", ".join(f"{label} {float(v):.2f} (n={counts.get((label, name), (0, 0.0))[0]})"
                       for label, v in labels.items())
    inputs = ", ".join(template_inputs(t)) or "none"
    return (f"- {name} [{template_task(t.graph)}; inputs: {inputs}] score {float(entry.get('score', 0)):.2f}"
            f" ({scores}): {_first_sentence(t.description)}\n  nodes: {nodes}")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z0-9]{2,}", text.lower())}


def retrieve_blocks(request: Request, ctx: PlanningContext, templates: Iterable[str],
                    limit: int = 24) -> list[str]:
    """The blocks a composition for ``request`` would need, most needed first: the blocks of
    ``templates`` (the candidates, in order), then the others by how many words their id and
    description share with the prompt and its labels (none that share no word)."""
    picked: list[str] = []
    for name in templates:
        t = ctx.templates.get(name)
        for node in t.graph.nodes.values() if t is not None else ():
            if node.block in ctx.catalog and node.block not in picked:
                picked.append(node.block)
    want = _words(request.prompt) | _words(" ".join(request.labels.all()))
    scored = []
    for block_id, spec in ctx.catalog.items():
        if block_id in picked:
            continue
        overlap = len(want & (_words(block_id.replace(".", " ").replace("_", " "))
                              | _words(spec.description)))
        if overlap:
            scored.append((-overlap, block_id))
    picked += [b for _, b in sorted(scored)]
    return picked[:limit]


def describe_block_brief(spec: BlockSpec, limit: int = 260) -> str:
    """A block in one line for select mode: id, ports, params (cut at ``limit`` characters)."""
    ins = ",".join(f"{p.name}:{p.type}{'?' if p.optional else ''}{'[]' if p.multiple else ''}"
                   for p in spec.inputs)
    outs = ",".join(f"{p.name}:{p.type}" for p in spec.outputs)
    params = _param_summary(spec.params_schema())
    line = f"- {spec.id} in({ins}) out({outs}) params: {params}{' tiles' if spec.tiling else ''}"
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def describe_catalog(ctx: PlanningContext, blocks: Iterable[str] | None = None) -> str:
    """Blocks in full (``blocks``, or the whole catalog), one per entry."""
    ids = sorted(ctx.catalog) if blocks is None else [b for b in blocks if b in ctx.catalog]
    return "\n".join(describe_block(ctx.catalog[k]) for k in ids)


def describe_templates(ctx: PlanningContext) -> str:
    """Every template with its node JSON: far over a local model's context; for a reader's
    reference and large-context tools, not sent by the planner."""
    lines = []
    for name in sorted(ctx.templates):
        t = ctx.templates[name]
        graph = json.dumps(t.graph.to_dict()["nodes"], separators=(",", ":"))
        lines.append(f"- {name} (task {template_task(t.graph)}; labels "
                     f"{json.dumps(t.labels)}): {t.description}\n  nodes: {graph}")
    return "\n".join(lines)


def describe_models(ctx: PlanningContext, limit: int = 12) -> str:
    """The models a graph may name: the user's, and a built-in test model only for a kind the
    user has none of (checkpoint, controlnet, ...), with family, kind and native size; at most
    ``limit``."""
    models = list(ctx.models.values())
    real = [m for m in models if not getattr(m, "builtin", False)]
    kinds = {getattr(m, "kind", "checkpoint") for m in real}
    models = real + [m for m in models if getattr(m, "builtin", False)
                     and getattr(m, "kind", "checkpoint") not in kinds]

    def kind(m: Any) -> str:
        k = getattr(m, "kind", "checkpoint")
        return "" if k == "checkpoint" else f"{k} "

    shown = ", ".join(f"{m.name} ({m.family + ' ' if m.family else ''}{kind(m)}{m.native}px)"
                      for m in models[:limit])
    more = f", and {len(models) - limit} more" if len(models) > limit else ""
    return (shown + more) or "any"


def _request_note(request: Request, ctx: PlanningContext) -> str:
    native = ctx.native_size(ctx.fallback_model())
    w, h = target_size(request, native)
    given = ", ".join(sorted(request.images)) or "none"
    return (f"Labels found by keyword rules: {json.dumps(request.labels.to_dict(), separators=(',', ':'))}\n"
            f"Size the prompt implies at native {native}px: {w}x{h}"
            f"{' (explicit)' if request.width else ''}; "
            f"steps: {request.steps or request.quality or 'default'}; "
            f"seed: {request.default_seed()}; leave out: {request.avoid or 'nothing'}; "
            f"input files given: {given}")


SELECT_SYSTEM = """You plan image-generation workflows for a local daemon. Answer with ONE JSON object,
nothing else. Prefer select: pick the candidate template that fits the prompt's task and inputs,
best learned score first:
{{"mode":"select","labels":[LABEL,...],"template":NAME,"settings":{{"width":INT,"height":INT,"steps":INT,"seed":INT,"negative_prompt":STR}}}}
(settings optional; the daemon fills prompt, size, model, tiling). Compose only when no candidate fits:
{{"mode":"compose","labels":[...],"base":TEMPLATE,"ops":[OP,...]}} with OP one of
{{"op":"insert","template":T,"prefix":P,"bind":{{"piece_node.port":"host_node.port"}},"drop":[node,...]}},
{{"op":"replace","node":N,"template":T,"prefix":P,"bind":{{...}},"outputs":{{"port":"piece_node.port"}}}},
{{"op":"add","id":N,"block":B,"inputs":{{"input":"node.port"}},"params":{{...}}}},
{{"op":"remove","node":N}}, {{"op":"wire","node":N,"input":I,"from":"node.port"}},
{{"op":"set","node":N,"params":{{...}}}}.
Labels: {labels}.
Models: {models}.
Candidates (score: learned from ratings, 0..1, higher is better; n: how many):
{candidates}
Blocks for compose (id, ports, params; * required):
{blocks}"""


def planner_messages(request: Request, ctx: PlanningContext, ranking: list[dict[str, Any]],
                     budget: int = SELECT_PROMPT_TOKENS) -> list[dict[str, str]]:
    """The planner's select-mode messages, at most ``budget`` estimated tokens when the
    candidates fit: the top candidates (fewer when they do not fit), then as many retrieved
    blocks as the budget leaves room for."""
    counts = ctx.scores.cells() if ctx.scores is not None else {}
    shown = [r for r in ranking if r.get("template") in ctx.templates][:CANDIDATES]
    user = (f"Prompt: {request.prompt}\n{_request_note(request, ctx)}\n"
            f"Answer with the JSON object.")

    def build(candidates: list[dict[str, Any]], blocks: list[str]) -> list[dict[str, str]]:
        system = SELECT_SYSTEM.format(
            labels=", ".join(VOCABULARY), models=describe_models(ctx),
            candidates="\n".join(describe_candidate(r, ctx, counts) for r in candidates) or "(none)",
            blocks="\n".join(describe_block_brief(ctx.catalog[b]) for b in blocks) or "(none)")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    while len(shown) > 1 and estimate_tokens(build(shown, [])) > budget:
        shown = shown[:-1]
    retrieved = retrieve_blocks(request, ctx, [r["template"] for r in shown[:2]])
    blocks: list[str] = []
    for block in retrieved:
        if estimate_tokens(build(shown, [*blocks, block])) > budget:
            break
        blocks.append(block)
    return build(shown, blocks)


def _graph_blocks(graph: Mapping[str, Any] | None, errors: list[dict[str, Any]],
                  ctx: PlanningContext) -> list[str]:
    """The catalog blocks a graph uses, and those its errors name (a wrong block's neighbours)."""
    used: list[str] = []
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    for node in (nodes.values() if isinstance(nodes, Mapping) else ()):
        block = node.get("block") if isinstance(node, Mapping) else None
        if isinstance(block, str) and block in ctx.catalog and block not in used:
            used.append(block)
        elif isinstance(block, str) and block not in ctx.catalog:
            # an unknown block: offer the catalog's blocks of the same namespace
            prefix = block.split(".")[0] + "."
            used += [b for b in sorted(ctx.catalog) if b.startswith(prefix) and b not in used][:8]
    return used


def _brief_errors(errors: list[dict[str, Any]], limit: int = 20) -> str:
    keys = ("type", "message", "node", "field", "value", "bound")
    shown = [{k: e[k] for k in keys if e.get(k) is not None} for e in errors[:limit]]
    more = f"\n(and {len(errors) - limit} more)" if len(errors) > limit else ""
    return (json.dumps(shown, separators=(",", ":"), default=str) if shown else "[] (none)") + more


def critic_messages(request: Request, ctx: PlanningContext, graph: Mapping[str, Any] | None,
                    raw: str | None, errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The critic's messages: the prompt, the graph (or the text that did not parse), the
    problems, and only the blocks the graph uses (see :func:`_graph_blocks`)."""
    blocks = _graph_blocks(graph, errors, ctx)
    if graph is None:  # nothing parsed: the blocks of the best template for these labels
        from agents.choose import rank_templates

        ranked = rank_templates(request.labels, ctx)
        best = ctx.templates.get(ranked[0]["template"]) if ranked else None
        blocks = [n.block for n in best.graph.nodes.values()] if best is not None else []
    system = f"""You review and repair image-generation workflow graphs. Answer with ONE JSON object
and nothing else: {{"accept": BOOL, "problems": [STRING, ...], "graph": GRAPH or null}}.
Accept (true) only a graph that has no problems and does what the prompt asks; then "graph" may be
null. Otherwise list each concrete problem and give the WHOLE corrected graph in "graph"; you may
also return a corrected graph with "accept": true when your correction fixes every problem.

{FORMAT_NOTE}

{RULES_NOTE}

Known models: {describe_models(ctx)}

Blocks the graph uses:
{describe_catalog(ctx, dict.fromkeys(blocks)) or "(none)"}"""
    native = ctx.native_size(primary_model_from(graph, ctx) or ctx.fallback_model())
    w, h = target_size(request, native)
    shown = (json.dumps(graph, separators=(",", ":")) if graph is not None
             else f"(no graph; the answer was: {(raw or '')[:2000]!r})")
    user = (f"Prompt: {request.prompt}\nLabels: {json.dumps(request.labels.to_dict())}\n"
            f"Output size wanted: {w}x{h} (model native {native}px)\n"
            f"Graph:\n{shown}\nProblems found by the validator and the rule checks:\n"
            f"{_brief_errors(errors)}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def primary_model_from(doc: Mapping[str, Any] | None, ctx: PlanningContext) -> str | None:
    """The first model a graph document names, without needing it to be valid."""
    if not isinstance(doc, Mapping):
        return None
    from graphs import Graph, GraphError

    try:
        return primary_model(Graph.from_dict(dict(doc)), ctx.catalog)
    except GraphError:
        return None


def str_list(value: Any) -> list[str]:
    """A list of strings from whatever an answer holds there (a string, a list, nothing)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return []


def read_review(data: Mapping[str, Any]) -> tuple[bool, list[str], dict[str, Any] | None]:
    """``(accept, problems, corrected graph or None)`` from a critic's answer."""
    accept = data.get("accept") is True
    graph = data.get("graph")
    return accept, str_list(data.get("problems")), graph if isinstance(graph, dict) else None
