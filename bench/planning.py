"""(3) Planning a 500-node graph, and the cache when node ids are renumbered.

*Planning* is what the daemon does to a graph before its first node runs: parse the JSON,
validate it against the catalog, order it, validate every node's params and give every
node its content key (``Graph.from_dict`` + ``compile_graph``). The baseline is the bare
minimum any scheduler does: a networkx topological sort of the same edges.

Then the cache: the graph runs once on the in-process executor with a result cache, and
again with every node id renamed (a permutation: same work, other names). Content keys do
not depend on ids, so every node of the second run should come from the cache.
"""

from __future__ import annotations

import random
from typing import Any

from bench.core import Context, Row, alternate, bench_catalog, median, spread

NAME = "planning"
TITLE = "planning time for a 500-node graph; cache hits when node ids are renumbered"


def layered_graph(n: int, seed: int = 0) -> dict[str, Any]:
    """A DAG of ``n`` nodes: each reads one to three earlier nodes (mostly recent ones)."""
    rng = random.Random(seed)
    nodes: dict[str, Any] = {}
    for i in range(n):
        node: dict[str, Any] = {"block": "bench.noop", "params": {"value": rng.randrange(1000)}}
        if i:
            k = min(i, rng.randint(1, 3))
            srcs = sorted({max(0, i - 1 - int(rng.expovariate(0.2))) for _ in range(k)})
            node["inputs"] = {"after": [f"n{s}.value" for s in srcs]}
        nodes[f"n{i}"] = node
    return {"format": "orchestrator.graph/1", "nodes": nodes}


def renumber(doc: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    """The same graph with every node id replaced (a random permutation of new names)."""
    ids = list(doc["nodes"])
    perm = list(range(len(ids)))
    random.Random(seed).shuffle(perm)
    new = {old: f"step_{perm[i]:04d}" for i, old in enumerate(ids)}

    def ref(r: str) -> str:
        src, port = r.split(".")
        return f"{new[src]}.{port}"

    nodes = {}
    for old, node in doc["nodes"].items():
        node = dict(node)
        if "inputs" in node:
            node["inputs"] = {k: [ref(r) for r in v] if isinstance(v, list) else ref(v)
                              for k, v in node["inputs"].items()}
        nodes[new[old]] = node
    return {**doc, "nodes": nodes}


def run(ctx: Context) -> list[Row]:
    import networkx as nx

    from graphs import Graph
    from orchestrator.runtime.cache import ResultCache
    from orchestrator.runtime.compile import compile_graph
    from orchestrator.runtime.executor import LocalExecutor

    catalog = bench_catalog()
    n = 500
    doc = layered_graph(n)
    edges = [(r.split(".")[0], dst) for dst, node in doc["nodes"].items()
             for r in node.get("inputs", {}).get("after", [])]

    def ours() -> Any:
        return compile_graph(Graph.from_dict(doc), catalog)

    def baseline() -> Any:
        g = nx.DiGraph()
        g.add_nodes_from(doc["nodes"])
        g.add_edges_from(edges)
        return list(nx.topological_sort(g))

    reps = ctx.n(3, 15)
    t = alternate({"ours": ours, "nx": baseline}, reps, ctx.w(1, 2))
    rows = [Row(NAME, f"plan {n} nodes: parse, validate, order, params, content keys", median(t["ours"]),
                median(t["nx"]), base_label="networkx topological sort",
                note=f"{median(t['ours']) / n * 1e6:.0f} us/node; ours {spread(t['ours'])}; {reps} reps",
                extra={"samples": t, "nodes": n, "edges": len(edges)})]

    # the cache across renamed ids
    cache = ResultCache(max_entries=4 * n)
    executor = LocalExecutor(catalog, cache=cache)
    renamed = renumber(doc)
    first = executor.run(Graph.from_dict(doc))
    second = executor.run(Graph.from_dict(renamed))
    ok = all(second.outputs[new]["value"] == first.outputs[old]["value"]
             for old, new in zip(doc["nodes"], renamed["nodes"], strict=True))  # order is kept
    hits = len(second.cached)
    rows.append(Row(NAME, f"cache hits when all {n} node ids are renumbered", float(hits), float(n),
                    unit="hits", base_label="nodes", ratio=hits / n,
                    note="same outputs" if ok else "OUTPUTS DIFFER",
                    extra={"hits": hits, "nodes": n, "same_outputs": ok}))
    return rows


def skip_reason() -> str | None:
    return None
