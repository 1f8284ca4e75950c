"""Combine the condition branches of two graphs into one sampler.

The *condition branch* of a sampler node (``sd.denoise``, ``sd.inpaint``) is everything
upstream of its ``cond`` input: prompt encoders, ControlNet and region blocks, the images
and extractors they read. :func:`combine_conditions` copies the branch of ``other``'s
sampler into ``host`` under a prefix (as :func:`graphs.splice.insert` does) and joins it
with the host sampler's own conditioning in one combining node (``sd.cond_combine`` by
default), which the host sampler then reads. The rest of ``other`` (its latent, its
decoder, its save) is left out. Inputs are never mutated.

Errors are :class:`~graphs.errors.GraphError` as in :mod:`graphs.splice` (``binding``
when a sampler cannot be found or is ambiguous, ``id_clash``, ``bad_prefix``).

>>> from graphs import Graph
>>> def gen(prompt):
...     return Graph.from_dict({"nodes": {
...         "cond": {"block": "sd.encode_prompt", "params": {"prompt": prompt}},
...         "latent": {"block": "sd.empty_latent"},
...         "denoise": {"block": "sd.denoise", "inputs": {"cond": "cond.cond", "latent": "latent.latent"}}}})
>>> out = combine_conditions(gen("a fox"), gen("snow"), prefix="b")
>>> sorted(out.nodes)
['b_combine', 'b_cond', 'cond', 'denoise', 'latent']
>>> out.nodes["b_combine"].inputs, out.nodes["denoise"].inputs["cond"]
({'conds': ['cond.cond', 'b_cond.cond']}, 'b_combine.cond')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphs.errors import GraphError, GraphValidationError
from graphs.model import Graph, Node, split_reference
from graphs.splice import insert

__all__ = ["combine_conditions", "condition_branch", "find_sampler"]


def find_sampler(graph: Graph, node: str | None = None, input: str = "cond", *, which: str = "graph") -> str:
    """The id of the sampler: ``node`` if given, else the only node that reads a conditioning
    on ``input`` and whose own ``input``-named output nobody reads (ControlNet and region
    blocks also read ``cond``, but hand a ``cond`` on)."""
    if node is not None:
        if node not in graph.nodes or input not in graph.nodes[node].inputs:
            raise GraphValidationError([GraphError(
                f"{which}: node {node!r} does not exist or has no input {input!r} wired",
                type="binding", node=node, field=f"inputs.{input}", value=node)])
        return node
    passed_on = {r for n in graph.nodes.values() for _, _, r in n.references()}
    found = [nid for nid, n in graph.nodes.items()
             if isinstance(n.inputs.get(input), str) and f"{nid}.{input}" not in passed_on]
    if len(found) != 1:
        what = "no node" if not found else f"{len(found)} nodes ({', '.join(found)})"
        raise GraphValidationError([GraphError(
            f"{which}: {what} with a wired {input!r} input; name the sampler node",
            type="binding", field=f"inputs.{input}", value=found)])
    return found[0]


def condition_branch(graph: Graph, sampler: str, input: str = "cond") -> Graph:
    """The sub-graph of every node upstream of ``sampler``'s ``input`` (in graph order)."""
    start, _port = split_reference(graph.nodes[sampler].inputs[input])
    keep: set[str] = set()
    todo = [start]
    while todo:
        nid = todo.pop()
        if nid in keep or nid not in graph.nodes:
            continue
        keep.add(nid)
        todo.extend(split_reference(r)[0] for _, _, r in graph.nodes[nid].references())
    return Graph(nodes={nid: n.model_copy(deep=True) for nid, n in graph.nodes.items() if nid in keep})


def combine_conditions(
    host: Graph,
    other: Graph,
    *,
    prefix: str,
    host_node: str | None = None,
    other_node: str | None = None,
    input: str = "cond",
    combiner: str = "sd.cond_combine",
    params: Mapping[str, Any] | None = None,
) -> Graph:
    """``host`` whose sampler also gets the conditioning of ``other``'s sampler (see the module doc).

    ``host_node`` / ``other_node`` name the samplers when a graph has several; ``params``
    are the combining node's params.
    """
    h = find_sampler(host, host_node, input, which="host")
    o = find_sampler(other, other_node, input, which="other")
    branch = condition_branch(other, o, input)
    out = insert(host, branch, prefix=prefix)
    join = f"{prefix}_combine"
    if join in out.nodes:
        raise GraphValidationError([GraphError(
            f"node id {join!r} is already in the host graph; choose another prefix than {prefix!r}",
            type="id_clash", node=join, field="id", value=join)])
    src, port = split_reference(other.nodes[o].inputs[input])
    out.nodes[join] = Node(block=combiner, inputs={"conds": [host.nodes[h].inputs[input],
                                                             f"{prefix}_{src}.{port}"]},
                           params=dict(params or {}), meta={"group": prefix})
    out.nodes[h] = out.nodes[h].model_copy(update={"inputs": {**out.nodes[h].inputs, input: f"{join}.cond"}},
                                           deep=True)
    return out
