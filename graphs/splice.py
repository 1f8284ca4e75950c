"""Splicing: put one graph into another under prefixed node ids, or take it out again.

A *piece* is any graph. Inserted into a *host*, its node ``load`` becomes ``<prefix>_load``
and gets ``meta.group = prefix`` (a piece node already in a group ``g`` gets
``<prefix>_g``), so renderers draw the piece in one frame and :func:`extract` can take it
out again. Nothing here mutates its arguments: every function returns a new graph.

Binding. ``bind`` maps references *as the piece writes them* to host outputs:

- an **open input** of the piece, a reference to a node the piece does not have
  (``"in.image"``, where no node ``in`` exists), is the piece's parameter; binding it to
  ``"decode.image"`` wires every reader to the host's output. An open input left unbound
  must name a host node (the piece then reads that node directly).
- a **piece output** (``"load.image"``, a node of the piece) may be bound too: its readers
  read the host output instead, and piece nodes that nothing reads any more are left out,
  with whatever only fed them. This is how a library template's ``image.load`` (or its
  whole generator, bound at ``decode.image``) becomes "the host's image".

Every problem is collected and raised once as a
:class:`~graphs.errors.GraphValidationError` of :class:`~graphs.errors.GraphError` with
these ``type`` values:

- ``bad_prefix``: the prefix cannot start a node id;
- ``id_clash``: a prefixed id is already a host node (``node`` names it);
- ``binding``: a bind key that is neither an open input nor a piece output, a bind value
  or open input that names no host node, a ``drop`` that names no piece node or one still
  read, an output of a replaced node that is read but not mapped (``field`` says which).

>>> from graphs import Graph
>>> host = Graph.from_dict({"nodes": {"gen": {"block": "x.gen"}}})
>>> piece = Graph.from_dict({"nodes": {
...     "gray": {"block": "image.grayscale", "inputs": {"image": "in.image"}},
...     "save": {"block": "image.save", "inputs": {"image": "gray.image"}}}})
>>> open_inputs(piece)
['in.image']
>>> out = insert(host, piece, prefix="g", bind={"in.image": "gen.image"})
>>> sorted(out.nodes), out.nodes["g_gray"].inputs, out.nodes["g_gray"].meta
(['g_gray', 'g_save', 'gen'], {'image': 'gen.image'}, {'group': 'g'})
>>> back, again = extract(out, "g")
>>> back == host, insert(back, again, prefix="g") == out
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphs.errors import GraphError, GraphValidationError
from graphs.model import NODE_ID, Graph, Node, split_reference

__all__ = ["extract", "insert", "map_references", "open_inputs", "replace_node"]


def _ref_node(ref: Any) -> str | None:
    """The node a well-formed reference names, else ``None``."""
    try:
        return split_reference(ref)[0]
    except ValueError:
        return None


def map_references(node: Node, fn: Callable[[str], str]) -> Node:
    """A copy of ``node`` whose every input reference went through ``fn``."""
    inputs: dict[str, str | list[str]] = {}
    for name, ref in node.inputs.items():
        inputs[name] = [fn(r) for r in ref] if isinstance(ref, list) else fn(ref)
    return node.model_copy(update={"inputs": inputs}, deep=True)


def open_inputs(piece: Graph) -> list[str]:
    """References of ``piece`` to nodes it does not have (its parameters), sorted."""
    found = set()
    for node in piece.nodes.values():
        for _name, _i, ref in node.references():
            src = _ref_node(ref)
            if src is not None and src not in piece.nodes:
                found.add(ref)
    return sorted(found)


def _group(prefix: str, node: Node) -> dict[str, Any]:
    meta = dict(node.meta)
    inner = meta.get("group")
    meta["group"] = f"{prefix}_{inner}" if inner else prefix
    return meta


def _binding(message: str, field: str, value: Any = None, node: str | None = None) -> GraphError:
    details = {} if value is None else {"value": value}
    return GraphError(message, type="binding", node=node, field=field, **details)


def insert(
    host: Graph,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
) -> Graph:
    """``host`` plus the nodes of ``piece`` as ``<prefix>_<id>`` (see the module doc).

    ``drop`` names piece nodes to leave out (their readers must be left out too, or bound).
    """
    errors: list[GraphError] = []
    bind = dict(bind or {})
    drop = list(drop)
    if not isinstance(prefix, str) or not NODE_ID.match(prefix):
        raise GraphValidationError([GraphError(
            f"prefix {prefix!r} cannot start a node id (a letter or '_', then letters, digits, '_', '-')",
            type="bad_prefix", field="prefix", value=prefix)])
    opens = set(open_inputs(piece))
    for key, value in bind.items():
        src = _ref_node(key)
        if src is None:
            errors.append(_binding(f"bind key {key!r} is not a reference 'node.port'", f"bind.{key}", key))
        elif src not in piece.nodes and key not in opens:
            errors.append(_binding(
                f"bind key {key!r} names no node {src!r} of the piece and is none of its open inputs "
                f"({', '.join(sorted(opens)) or 'none'})", f"bind.{key}", key))
        dst = _ref_node(value)
        if dst is None or dst not in host.nodes:
            what = "is not a reference 'node.port'" if dst is None else f"names no node {dst!r}"
            errors.append(_binding(f"bind value {value!r} for {key!r} {what} of the host; host nodes: "
                                   f"{', '.join(sorted(host.nodes)) or 'none'}", f"bind.{key}", value))
    for ref in sorted(opens - set(bind)):
        src = _ref_node(ref)
        if src not in host.nodes:
            errors.append(_binding(
                f"open input {ref!r} of the piece is not bound and names no node {src!r} of the host; "
                f"bind it to a host output", f"bind.{ref}", ref))

    def rename(node_id: str) -> str:
        return f"{prefix}_{node_id}"

    def rewrite(ref: str) -> str:
        if ref in bind:
            return bind[ref]
        src = _ref_node(ref)
        return f"{rename(src)}.{split_reference(ref)[1]}" if src in piece.nodes else ref

    nodes = {nid: map_references(n, rewrite) for nid, n in piece.nodes.items()}
    for name in drop:
        if name not in piece.nodes:
            errors.append(_binding(f"drop names no piece node {name!r}", "drop", name))

    def readers(node_id: str) -> list[str]:
        target = rename(node_id)
        return [nid for nid, n in nodes.items()
                if any(_ref_node(r) == target for _, _, r in n.references())]

    # every read of a bound node goes to the host now: leave it out, and what only fed it
    bound_away = {n for n in {_ref_node(k) for k in bind} & set(piece.nodes) if not readers(n)}
    fed = {nid for nid in piece.nodes if readers(nid)}  # nodes something reads (not sinks)
    more = bound_away
    while more:
        more = {nid for nid in fed - bound_away if all(r in bound_away for r in readers(nid))}
        bound_away |= more
    dropped = bound_away | {d for d in drop if d in piece.nodes}
    for node_id in sorted(set(drop) & set(piece.nodes)):
        kept = [r for r in readers(node_id) if r not in dropped]
        if kept:
            errors.append(_binding(f"cannot drop {node_id!r}: {', '.join(kept)} still read it "
                                   f"(bind its outputs, or drop them too)", "drop", node_id))
    out = host.model_copy(deep=True)
    for node_id, node in nodes.items():
        if node_id in dropped:
            continue
        new_id = rename(node_id)
        if new_id in out.nodes:
            errors.append(GraphError(
                f"node id {new_id!r} is already in the host graph; choose another prefix than {prefix!r}",
                type="id_clash", node=new_id, field="id", value=new_id))
            continue
        out.nodes[new_id] = node.model_copy(update={"meta": _group(prefix, node)})
    if errors:
        raise GraphValidationError(errors)
    return out


def replace_node(
    host: Graph,
    node_id: str,
    piece: Graph,
    *,
    prefix: str,
    bind: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
) -> Graph:
    """``host`` with ``node_id`` replaced by ``piece``.

    ``bind`` is as for :func:`insert` (it may not name ``node_id``); ``outputs`` maps each
    output port of the replaced node that the host reads to the piece output
    (``"decode.image"``, in the piece's own ids) its readers read now.
    """
    if node_id not in host.nodes:
        raise GraphValidationError([_binding(
            f"replace: no node {node_id!r} in the graph; nodes: {', '.join(sorted(host.nodes))}",
            "node", node_id)])
    errors: list[GraphError] = []
    outputs = dict(outputs or {})
    for port, ref in outputs.items():
        if _ref_node(ref) not in piece.nodes:
            errors.append(_binding(f"outputs[{port!r}] = {ref!r} names no node of the piece",
                                   f"outputs.{port}", ref))
    for key, value in (bind or {}).items():
        if _ref_node(value) == node_id:
            errors.append(_binding(f"bind value {value!r} for {key!r} reads the node being replaced",
                                   f"bind.{key}", value))
    read = sorted({split_reference(r)[1] for n in host.nodes.values() for _, _, r in n.references()
                   if _ref_node(r) == node_id})
    for port in read:
        if port not in outputs:
            errors.append(_binding(
                f"replace {node_id!r}: its output {port!r} is read but not mapped in outputs",
                f"outputs.{port}", node=node_id))
    if errors:
        raise GraphValidationError(errors)
    without = host.model_copy(deep=True)
    del without.nodes[node_id]
    out = insert(without, piece, prefix=prefix, bind=bind)

    def rewrite(ref: str) -> str:
        if _ref_node(ref) != node_id:
            return ref
        inner, inner_port = split_reference(outputs[split_reference(ref)[1]])
        return f"{prefix}_{inner}.{inner_port}"

    for nid in without.nodes:
        out.nodes[nid] = map_references(out.nodes[nid], rewrite)
    return out


def extract(graph: Graph, prefix: str) -> tuple[Graph, Graph]:
    """The inverse of :func:`insert`: ``(graph without the group, the piece)``.

    The group is every node whose ``meta.group`` is ``prefix`` or starts with
    ``prefix + "_"``. The piece gets its ids and groups back without the prefix; its
    references to the rest of the graph stay as open inputs, so
    ``insert(*extract(g, p), prefix=p) == g``. Host nodes that read the group are an error
    (``binding``): take their readers out first, or use :func:`replace_node`.
    """
    def member(node: Node) -> bool:
        group = node.meta.get("group")
        return isinstance(group, str) and (group == prefix or group.startswith(prefix + "_"))

    ids = {nid for nid, n in graph.nodes.items() if member(n)}
    errors = [_binding(f"node {nid!r} is not in group {prefix!r} but reads it ({ref!r})",
                       "inputs", ref, node=nid)
              for nid, n in graph.nodes.items() if nid not in ids
              for _, _, ref in n.references() if _ref_node(ref) in ids]
    bad = sorted(nid for nid in ids if not nid.startswith(prefix + "_"))
    errors += [_binding(f"node {nid!r} is in group {prefix!r} but its id lacks the prefix",
                        "id", nid, node=nid) for nid in bad]
    if errors:
        raise GraphValidationError(errors)
    cut = len(prefix) + 1

    def unprefix(ref: str) -> str:
        src = _ref_node(ref)
        return f"{src[cut:]}.{split_reference(ref)[1]}" if src in ids else ref

    host = graph.model_copy(deep=True)
    piece = Graph()
    for nid in [n for n in graph.nodes if n in ids]:
        node = map_references(host.nodes.pop(nid), unprefix)
        meta = dict(node.meta)
        inner = meta.pop("group")
        if inner != prefix:
            meta["group"] = inner[cut:]
        piece.nodes[nid[cut:]] = node.model_copy(update={"meta": meta})
    return host, piece
