"""What the planner and the critic send to the LLM, and how their answers are read.

The messages hold the catalog (ids, ports, param schemas, descriptions), the template
library (descriptions, labels, graphs), the known models, the score table's ranking for
the prompt's labels, the prompt and, for the critic, the graph and its problems as the
structured error dicts. The answers are JSON objects; :func:`read_review` and the planner
read only the documented keys, as data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agents.context import PlanningContext, template_task
from agents.labels import VOCABULARY
from agents.request import Request
from agents.rules import target_size
from agents.sizes import primary_model
from graphs import BlockSpec

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


def describe_catalog(ctx: PlanningContext) -> str:
    return "\n".join(describe_block(ctx.catalog[k]) for k in sorted(ctx.catalog))


def describe_templates(ctx: PlanningContext) -> str:
    lines = []
    for name in sorted(ctx.templates):
        t = ctx.templates[name]
        graph = json.dumps(t.graph.to_dict()["nodes"], separators=(",", ":"))
        lines.append(f"- {name} (task {template_task(t.graph)}; labels "
                     f"{json.dumps(t.labels)}): {t.description}\n  nodes: {graph}")
    return "\n".join(lines)


def describe_models(ctx: PlanningContext) -> str:
    return ", ".join(f"{m.name} (native {m.native}px)" for m in ctx.models.values()) or "any"


def _request_note(request: Request, ctx: PlanningContext) -> str:
    native = ctx.native_size(ctx.fallback_model())
    w, h = target_size(request, native)
    return (f"Labels found by keyword rules: {json.dumps(request.labels.to_dict())}\n"
            f"Size the prompt implies at native {native}px: {w}x{h}"
            f"{' (explicit)' if request.width else ''}; "
            f"steps: {request.steps or request.quality or 'default'}; "
            f"seed: {request.default_seed()}; leave out: {request.avoid or 'nothing'}")


def planner_messages(request: Request, ctx: PlanningContext, ranking: list[dict[str, Any]]
                     ) -> list[dict[str, str]]:
    """The planner's messages: the house's vocabulary in the system message, the prompt after."""
    system = f"""You plan image-generation workflow graphs for a local daemon. Answer with ONE JSON object
and nothing else.

{FORMAT_NOTE}

Two ways to answer:
1. select (preferred when a template fits): pick the template whose scores are best for the
   prompt's labels; the daemon adapts it (prompt, size, steps, seed, negative prompt, tiling):
   {{"mode": "select", "labels": [LABEL, ...], "template": NAME,
    "settings": {{"width": INT, "height": INT, "steps": INT, "seed": INT, "negative_prompt": STR}}}}
   (every setting is optional).
2. compose (when no template fits): write the graph, or build it from library pieces:
   {{"mode": "compose", "labels": [...], "graph": GRAPH}} or
   {{"mode": "compose", "labels": [...], "base": TEMPLATE, "ops": [OP, ...]}} with OP one of
   {{"op": "insert", "template": T, "prefix": P, "bind": {{"piece_node.port": "host_node.port"}},
    "drop": [piece_node, ...]}}  (piece nodes become P_<id>),
   {{"op": "replace", "node": N, "template": T, "prefix": P, "bind": {{...}},
    "outputs": {{"port": "piece_node.port"}}}},
   {{"op": "add", "id": N, "block": B, "inputs": {{...}}, "params": {{...}}}},
   {{"op": "remove", "node": N}}, {{"op": "wire", "node": N, "input": I, "from": "m.port"}},
   {{"op": "set", "node": N, "params": {{...}}}}.
Labels come from: {", ".join(VOCABULARY)}.

{RULES_NOTE}

Known models: {describe_models(ctx)}

Blocks:
{describe_catalog(ctx)}

Templates:
{describe_templates(ctx)}"""
    table = json.dumps(ranking[:8], separators=(",", ":"))
    user = (f"Prompt: {request.prompt}\n{_request_note(request, ctx)}\n"
            f"Score table (label x template -> mean score, learned from scored jobs; higher is "
            f"better): {table}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def critic_messages(request: Request, ctx: PlanningContext, graph: Mapping[str, Any] | None,
                    raw: str | None, errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The critic's messages: the prompt, the graph (or the text that did not parse), the problems."""
    system = f"""You review and repair image-generation workflow graphs. Answer with ONE JSON object
and nothing else: {{"accept": BOOL, "problems": [STRING, ...], "graph": GRAPH or null}}.
Accept (true) only a graph that has no problems and does what the prompt asks; then "graph" may be
null. Otherwise list each concrete problem and give the WHOLE corrected graph in "graph"; you may
also return a corrected graph with "accept": true when your correction fixes every problem.

{FORMAT_NOTE}

{RULES_NOTE}

Known models: {describe_models(ctx)}

Blocks:
{describe_catalog(ctx)}"""
    native = ctx.native_size(primary_model_from(graph, ctx) or ctx.fallback_model())
    w, h = target_size(request, native)
    shown = json.dumps(graph, indent=1) if graph is not None else f"(no graph; the answer was: {raw!r})"
    user = (f"Prompt: {request.prompt}\nLabels: {json.dumps(request.labels.to_dict())}\n"
            f"Output size wanted: {w}x{h} (model native {native}px)\n"
            f"Graph:\n{shown}\nProblems found by the validator and the rule checks:\n"
            f"{json.dumps(errors, indent=1) if errors else '[] (none)'}")
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
