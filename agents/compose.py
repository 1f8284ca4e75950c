"""Compose: build or extend a graph from blocks and library pieces by splicing.

The splicing functions are :mod:`graphs.splice`'s (pure: they return a new graph and never
touch their inputs; spliced nodes get prefixed ids and ``meta.group``, as ComfyUI's
``add_graph_prefix`` does), with their errors as the agent's ``compose`` errors:

- :func:`insert` puts a piece (a template graph) into a host, binding the piece's
  references to host outputs; piece nodes whose outputs are all bound are left out.
- :func:`replace_node` swaps one host node for a piece, rewiring its consumers.

:func:`apply_ops` runs a list of composition steps (what an LLM's compose answer holds)
and reports each step that fails as an error dict, so the critic can repair it.

>>> from graphs import Graph
>>> host = Graph.from_dict({"nodes": {"gen": {"block": "x.gen"},
...                                   "save": {"block": "image.save", "inputs": {"image": "gen.image"}}}})
>>> piece = Graph.from_dict({"nodes": {
...     "load": {"block": "image.load", "params": {"path": "a.png"}},
...     "gray": {"block": "image.grayscale", "inputs": {"image": "load.image"}}}})
>>> out = insert(host, piece, prefix="g", bind={"load.image": "gen.image"})
>>> sorted(out.nodes), out.nodes["g_gray"].inputs
(['g_gray', 'gen', 'save'], {'image': 'gen.image'})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from agents.errors import AgentError
from graphs import Graph, GraphError, GraphValidationError, Node, Template, splice, split_reference
from graphs.model import NODE_ID


def _error(message: str, **details: Any) -> AgentError:
    return AgentError(message, type="compose", **details)


def _check_ref(ref: str, graph: Graph, what: str) -> None:
    try:
        node, _port = split_reference(ref)
    except ValueError as exc:
        raise _error(f"{what}: {exc}") from None
    if node not in graph.nodes:
        raise _error(f"{what}: reference {ref!r} names no node {node!r}; nodes: "
                     f"{', '.join(sorted(graph.nodes))}")


def _compose_error(exc: GraphValidationError) -> AgentError:
    """A splicing error as the agent's ``compose`` error, keeping the structured graph errors."""
    message = exc.errors[0].message if len(exc.errors) == 1 else exc.message
    return _error(message, errors=[e.to_dict() for e in exc.errors])


def insert(
    host: Graph,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
) -> Graph:
    """:func:`graphs.splice.insert`, its errors as :class:`~agents.errors.AgentError`."""
    try:
        return splice.insert(host, piece, prefix=prefix, bind=bind, drop=drop)
    except GraphValidationError as exc:
        raise _compose_error(exc) from None


def replace_node(
    host: Graph,
    node_id: str,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
) -> Graph:
    """:func:`graphs.splice.replace_node`, its errors as :class:`~agents.errors.AgentError`."""
    try:
        return splice.replace_node(host, node_id, piece, prefix=prefix, bind=bind, outputs=outputs)
    except GraphValidationError as exc:
        raise _compose_error(exc) from None


def apply_ops(
    base: Graph | None, ops: Iterable[Any], templates: Mapping[str, Template]
) -> tuple[Graph, list[dict[str, Any]]]:
    """Run composition steps on ``base`` (or an empty graph); the result and one error dict
    per step that failed (the step is skipped). Steps::

        {"op": "template", "name": "txt2img"}                       start from a template
        {"op": "insert", "template": "T", "prefix": "p", "bind": {...}, "drop": [...]}
        {"op": "replace", "node": "n", "template": "T", "prefix": "p", "bind": {...},
         "outputs": {"image": "decode.image"}}
        {"op": "add", "id": "n", "block": "b", "inputs": {...}, "params": {...}}
        {"op": "remove", "node": "n"}
        {"op": "wire", "node": "n", "input": "image", "from": "m.image"}
        {"op": "set", "node": "n", "params": {...}}
    """
    graph = base.model_copy(deep=True) if base is not None else Graph()
    errors: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        try:
            graph = _apply(graph, op, templates)
        except AgentError as exc:
            exc.details.setdefault("step", i)
            errors.append(exc.to_dict())
        except (GraphError, ValidationError, ValueError, TypeError, KeyError) as exc:
            errors.append(_error(f"step {i}: {type(exc).__name__}: {exc}", step=i).to_dict())
    return graph, errors


def _template(templates: Mapping[str, Template], name: Any) -> Graph:
    if name not in templates:
        raise _error(f"no template {name!r}; templates: {', '.join(sorted(templates))}")
    return templates[name].graph.model_copy(deep=True)


def _apply(graph: Graph, op: Any, templates: Mapping[str, Template]) -> Graph:
    if not isinstance(op, Mapping) or not isinstance(op.get("op"), str):
        raise _error(f"a step is an object with an 'op', got {op!r}")
    kind = op["op"]
    if kind == "template":
        out = _template(templates, op.get("name"))
        out.meta = {}
        return out
    if kind == "insert":
        return insert(graph, _template(templates, op.get("template")), prefix=str(op.get("prefix", "")),
                      bind=op.get("bind") or {}, drop=op.get("drop") or ())
    if kind == "replace":
        return replace_node(graph, str(op.get("node")), _template(templates, op.get("template")),
                            prefix=str(op.get("prefix", "")), bind=op.get("bind") or {},
                            outputs=op.get("outputs") or {})
    out = graph.model_copy(deep=True)
    if kind == "add":
        node_id = str(op.get("id", ""))
        if not NODE_ID.match(node_id) or node_id in out.nodes:
            raise _error(f"add: node id {node_id!r} is invalid or already used")
        out.nodes[node_id] = Node.model_validate(
            {k: op[k] for k in ("block", "inputs", "params", "tile") if k in op})
        return out
    node_id = str(op.get("node"))
    if node_id not in out.nodes:
        raise _error(f"{kind}: no node {node_id!r}; nodes: {', '.join(sorted(out.nodes))}")
    if kind == "remove":
        del out.nodes[node_id]
        return out
    if kind == "wire":
        source = op.get("from")
        refs = source if isinstance(source, list) else [source]
        for ref in refs:
            _check_ref(ref, out, f"wire {node_id}.{op.get('input')}")
        out.nodes[node_id].inputs[str(op.get("input"))] = source
        return out
    if kind == "set":
        params = op.get("params") or {}
        if not isinstance(params, Mapping):
            raise _error(f"set {node_id}: params must be an object")
        out.nodes[node_id].params.update(params)
        return out
    raise _error(f"unknown op {kind!r}; ops: template, insert, replace, add, remove, wire, set")
