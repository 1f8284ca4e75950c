"""``POST /prompt``: an API-format ComfyUI prompt, checked and translated into one of our graphs.

ComfyUI's ``validate_prompt`` answers a bad prompt with ``400`` and
``{"error": {type, message, details, extra_info}, "node_errors": {id: {"errors": [...],
"dependent_outputs": [...], "class_type": ...}}}``; so does this module, from the
importer's problems (``graphs.comfy.import_result``), our validation (``graphs.check``),
the size limits and the input-folder name rules, each error placed on the ComfyUI node it
came from (our node ids map back through ``meta.comfy.id``). Each error keeps our
structured fields (``node``, ``field``, ``value``, ``bound``) in ``extra_info``.

>>> prompt = {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
...           "2": {"class_type": "VAEDecode", "inputs": {}}, "3": {"class_type": "EmptyLatentImage",
...           "inputs": {}}}
>>> sorted(output_nodes(prompt)), dependent_outputs(prompt, ["1"])["2"]
(['1'], ['1'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphs import Graph
from graphs.catalog import Catalog
from graphs.comfy import import_result
from graphs.comfy.nodes import CORE_NODES
from graphs.errors import GraphValidationError
from orchestrator.runtime.limits import check_limits
from orchestrator.state.input_paths import input_name_errors

MAX_CLIENT_ID = 200
MAX_PROMPT_ID = 200


@dataclass
class Translation:
    """A prompt as one of our graphs, or the ComfyUI error answer that refuses it."""

    graph: Graph | None = None
    outputs: list[str] = field(default_factory=list)  # ComfyUI ids of the output nodes
    error: dict[str, Any] | None = None  # ComfyUI's top-level "error"
    node_errors: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        """The 400 body ComfyUI sends for a refused prompt."""
        return {"error": self.error, "node_errors": self.node_errors}


def top_error(type_: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": dict(extra)}


def is_link(value: Any) -> bool:
    """Whether an input value is a link ``[node id, output index]``."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int)
            and not isinstance(value[1], bool))


def output_nodes(prompt: Mapping[str, Any], extra_outputs: frozenset[str] = frozenset()) -> list[str]:
    """The ids of ``prompt``'s output nodes (``SaveImage``, ``PreviewImage``, mapped output classes)."""
    out = []
    for node_id, node in prompt.items():
        cls = node.get("class_type")
        info = CORE_NODES.get(cls) if isinstance(cls, str) else None
        if (info is not None and info.output_node) or cls in extra_outputs:
            out.append(node_id)
    return out


def dependent_outputs(prompt: Mapping[str, Any], outputs: list[str]) -> dict[str, list[str]]:
    """node id -> the output nodes that need it (itself included, for an output)."""
    needed: dict[str, list[str]] = {}
    for out in outputs:
        stack, seen = [out], set()
        while stack:
            nid = stack.pop()
            if nid in seen or nid not in prompt:
                continue
            seen.add(nid)
            needed.setdefault(nid, []).append(out)
            inputs = prompt[nid].get("inputs")
            for value in (inputs.values() if isinstance(inputs, dict) else ()):
                if is_link(value):
                    stack.append(str(value[0]))
    return needed


def _comfy_type(err: Mapping[str, Any]) -> str:
    bound = err.get("bound")
    if isinstance(bound, Mapping):
        if "le" in bound or "lt" in bound:
            return "value_bigger_than_max"
        if "ge" in bound or "gt" in bound:
            return "value_smaller_than_min"
    kind = str(err.get("type") or "error")
    return {"missing_input": "required_input_missing", "unsupported_node": "invalid_prompt",
            "dangling_reference": "required_input_missing"}.get(kind, kind)


def _input_name(err: Mapping[str, Any]) -> str | None:
    f = err.get("field")
    if not isinstance(f, str) or not f:
        return None
    return f.split(".", 1)[1] if f.startswith(("params.", "inputs.")) else f


def comfy_error(err: Mapping[str, Any]) -> dict[str, Any]:
    """One of our structured errors as a ComfyUI node error (ours kept in ``extra_info``)."""
    name = _input_name(err)
    details = f"{name}: {err['value']!r}" if name and "value" in err else (name or "")
    extra: dict[str, Any] = {k: v for k, v in err.items() if k not in ("message",)}
    if name:
        extra["input_name"] = name
    if "value" in err:
        extra["received_value"] = err["value"]
    return {"type": _comfy_type(err), "message": str(err.get("message", "")), "details": details,
            "extra_info": extra}


def translate(prompt: Any, catalog: Catalog, settings: Any, mappings: list[Any],
              model_map: Mapping[str, str] | None = None, targets: Any = None) -> Translation:
    """Check an API-format prompt and import it; a :class:`Translation` either way.

    ``targets``: ComfyUI's ``partial_execution_targets``, the output nodes to run (None: all).
    """
    if not isinstance(prompt, dict) or not prompt:
        return Translation(error=top_error("no_prompt", "No prompt provided", "No prompt provided"))
    if len(prompt) > settings.limits.nodes:
        return Translation(error=top_error(
            "limit", f"the prompt has {len(prompt)} nodes; the limit is {settings.limits.nodes}",
            field="prompt", value=len(prompt), bound={"le": settings.limits.nodes}))
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            return Translation(error=top_error(
                "invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{str(node_id)[:100]}'"))
        if not isinstance(node.get("inputs", {}), dict):
            return Translation(error=top_error(
                "invalid_prompt", f"Cannot execute because node #{str(node_id)[:100]} has no inputs "
                "object.", f"Node ID '#{str(node_id)[:100]}'"))
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, str) and t in prompt for t in targets):
            return Translation(error=top_error(
                "invalid_prompt", "partial_execution_targets must list node ids of the prompt", "",
                field="partial_execution_targets"))
        skipped = set(output_nodes(prompt)) - set(targets)
        prompt = {k: v for k, v in prompt.items() if k not in skipped}
    try:
        result = import_result(prompt, catalog, model_map or {}, mappings)
    except GraphValidationError as exc:
        first = exc.errors[0].to_dict() if exc.errors else {"message": "not a ComfyUI prompt"}
        return Translation(error=top_error("invalid_prompt", str(first.get("message")), "",
                                           errors=[e.to_dict() for e in exc.errors]))
    graph = result.graph
    extra_outputs = frozenset(str(n.meta.get("comfy", {}).get("class_type")) for n in graph.nodes.values()
                              if n.block == "image.save")
    outputs = output_nodes(prompt, extra_outputs)
    warnings = [w.to_dict() for w in result.warnings]
    errors = [e.to_dict() for e in result.errors]
    unknown = [e for e in errors if e.get("type") == "unsupported_node"]
    if not unknown:
        errors += check_limits(graph, settings.limits, catalog)
        errors += input_name_errors(graph, catalog)
    return _answer(prompt, graph, outputs, errors, warnings, unknown)


def _comfy_id(graph: Graph, node: Any, prompt: Mapping[str, Any]) -> str | None:
    """The ComfyUI node id an error names: a ComfyUI id already, or one of our node ids."""
    if not isinstance(node, str):
        return None
    if node in prompt:
        return node
    ours = graph.nodes.get(node)
    cid = ours.meta.get("comfy", {}).get("id") if ours is not None else None
    return str(cid) if cid is not None else None


def _answer(prompt: Mapping[str, Any], graph: Graph, outputs: list[str], errors: list[dict[str, Any]],
            warnings: list[dict[str, Any]], unknown: list[dict[str, Any]]) -> Translation:
    t = Translation(graph=graph, outputs=outputs, warnings=warnings)
    if not errors and not outputs:
        t.graph = None
        t.error = top_error("prompt_no_outputs", "Prompt has no outputs", "")
        return t
    if not errors:
        return t
    t.graph = None
    depends = dependent_outputs(prompt, outputs)
    loose = []
    for err in errors:
        cid = _comfy_id(graph, err.get("node"), prompt)
        if cid is None:
            loose.append(err)
            continue
        entry = t.node_errors.setdefault(cid, {"errors": [], "dependent_outputs": depends.get(cid, []),
                                               "class_type": prompt[cid].get("class_type")})
        entry["errors"].append(comfy_error(err))
    if unknown:
        first = unknown[0]
        cls = first.get("comfy_class") or first.get("value")
        t.error = top_error("invalid_prompt", f"Cannot execute because node {cls} does not exist.",
                            f"Node ID '#{first.get('node')}'", errors=unknown)
    elif loose and not t.node_errors:
        t.error = top_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                            "; ".join(str(e.get("message")) for e in loose)[:2000], errors=loose)
    else:
        details = "\n".join(f"{cid}: {e['message']}" for cid, v in t.node_errors.items() for e in v["errors"])
        t.error = top_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                            details[:4000], errors=loose)
    return t
