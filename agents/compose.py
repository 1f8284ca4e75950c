"""Compose: build or extend a graph from blocks and library pieces by splicing.

The splicing functions are pure (they return a new graph and never touch their inputs)
and give spliced nodes prefixed ids, as ComfyUI's ``add_graph_prefix`` does:

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
from graphs import Graph, GraphError, Node, Template, split_reference
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


def _map_refs(node: Node, fn: Any) -> Node:
    inputs: dict[str, str | list[str]] = {}
    for name, ref in node.inputs.items():
        inputs[name] = [fn(r) for r in ref] if isinstance(ref, list) else fn(ref)
    return node.model_copy(update={"inputs": inputs}, deep=True)


def insert(
    host: Graph,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
) -> Graph:
    """``host`` plus the nodes of ``piece`` as ``<prefix>_<id>``.

    ``bind`` maps piece outputs (``"load.image"``) to host outputs (``"decode.image"``):
    every piece reference to the one reads the other. Piece nodes that nothing reads any
    more once bound, and those in ``drop``, are left out.
    """
    bind = dict(bind or {})
    if not prefix or not NODE_ID.match(prefix):
        raise _error(f"prefix {prefix!r} is not a valid node id start")
    for src, dst in bind.items():
        _check_ref(src, piece, f"bind key {src!r}")
        _check_ref(dst, host, f"bind value {dst!r}")

    def rename(node_id: str) -> str:
        return f"{prefix}_{node_id}"

    def rewrite(ref: str) -> str:
        if ref in bind:
            return bind[ref]
        try:
            src, port = split_reference(ref)
        except ValueError:
            return ref
        return f"{rename(src)}.{port}" if src in piece.nodes else ref

    nodes = {nid: _map_refs(n, rewrite) for nid, n in piece.nodes.items()}
    unknown = sorted(set(drop) - set(piece.nodes))
    if unknown:
        raise _error(f"drop names no piece node: {', '.join(unknown)}")

    def readers(node_id: str) -> list[str]:
        target = rename(node_id)
        return [nid for nid, n in nodes.items()
                if any(_is_ref(r) and split_reference(r)[0] == target for _, _, r in n.references())]

    dropped = set(drop)
    for node_id in {split_reference(k)[0] for k in bind}:
        if not readers(node_id):
            dropped.add(node_id)  # every read of it is bound to the host: leave it out
    for node_id in sorted(set(drop)):
        kept = [r for r in readers(node_id) if r not in dropped]
        if kept:
            raise _error(f"cannot drop {node_id!r}: {', '.join(kept)} still read it")
    out = host.model_copy(deep=True)
    for node_id, node in nodes.items():
        if node_id in dropped:
            continue
        new_id = rename(node_id)
        if new_id in out.nodes:
            raise _error(f"node id {new_id!r} is already in the host graph; choose another prefix")
        out.nodes[new_id] = node
    return out


def _is_ref(ref: Any) -> bool:
    try:
        split_reference(ref)
    except ValueError:
        return False
    return True


def replace_node(
    host: Graph,
    node_id: str,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
) -> Graph:
    """``host`` with ``node_id`` replaced by ``piece``: ``bind`` as for :func:`insert`
    (host references must not name ``node_id``), ``outputs`` maps each output port of the
    replaced node to the piece output (``"decode.image"``) its consumers now read."""
    if node_id not in host.nodes:
        raise _error(f"replace: no node {node_id!r} in the graph")
    outputs = dict(outputs or {})
    for port, ref in outputs.items():
        _check_ref(ref, piece, f"outputs[{port!r}]")
    without = host.model_copy(deep=True)
    del without.nodes[node_id]
    out = insert(without, piece, prefix=prefix, bind=bind)

    def rewrite(ref: str) -> str:
        try:
            src, port = split_reference(ref)
        except ValueError:
            return ref
        if src != node_id:
            return ref
        if port not in outputs:
            raise _error(f"replace {node_id!r}: its output {port!r} is read but not mapped in outputs")
        inner, inner_port = split_reference(outputs[port])
        return f"{prefix}_{inner}.{inner_port}"

    for nid in list(without.nodes):
        out.nodes[nid] = _map_refs(out.nodes[nid], rewrite)
    return out


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
