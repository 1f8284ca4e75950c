"""Content keys: a node's identity by what it computes, not by its id.

A node's key hashes its block id and version, its params, its tile annotation, the
keys of the outputs it reads and, when given, what else it depends on (``extra``: the
content digests of the input files it reads), so a changed file changes the key of its
node and of everything downstream. Two graphs that compute the same thing give their nodes
the same keys whatever the node ids, so results can be reused across jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from graphs.model import Graph, split_reference


def content_keys(graph: Graph, versions: Mapping[str, str],
                 extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``{node_id: key}`` for every node; ``versions`` maps block id to block version and
    ``extra`` maps a node id to more JSON content its key covers (absent: nothing more).

    >>> from graphs import GraphBuilder
    >>> b = GraphBuilder(); a = b.add("x.src", id="a", v=1); _ = b.add("x.sink", id="b", i=a.out)
    >>> c = GraphBuilder(); a2 = c.add("x.src", id="z", v=1); _ = c.add("x.sink", id="y", i=a2.out)
    >>> v = {"x.src": "1.0.0", "x.sink": "1.0.0"}
    >>> content_keys(b.build(), v)["b"] == content_keys(c.build(), v)["y"]
    True
    """
    keys: dict[str, str] = {}
    for node_id in graph.topological_order():
        node = graph.nodes[node_id]
        inputs: dict[str, Any] = {}
        for name, ref in node.inputs.items():
            refs = ref if isinstance(ref, list) else [ref]
            resolved = []
            for r in refs:
                src, port = split_reference(r)
                resolved.append([keys[src], port])
            inputs[name] = resolved if isinstance(ref, list) else resolved[0]
        doc = {
            "block": node.block,
            "version": versions.get(node.block, "?"),
            "params": node.params,
            "tile": node.tile.model_dump() if node.tile else None,
            "inputs": inputs,
        }
        if extra and node_id in extra:
            doc["extra"] = extra[node_id]
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=repr)
        keys[node_id] = hashlib.sha256(blob.encode()).hexdigest()
    return keys
