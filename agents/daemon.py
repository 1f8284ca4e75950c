"""The daemon's entry to the agent: ``make_planner(settings, host)``.

The daemon (``orchestrator.server.daemon.make_planner``) imports this module and hands prompt
jobs to the callable it returns::

    planner = make_planner(settings, host, models=library, limits=check)
    graph_doc, rounds = planner(prompt, options) # options: the job's AgentOptions as a dict

``settings`` is the orchestrator's Settings, ``host`` its PluginHost; ``models`` the model
library (a callable returning model descriptions, read on each plan; see
``orchestrator.agent_context.model_library``) and ``limits`` the limits check (graph ->
problems) the runtime hands in, so the agent imports neither. ``options["inputs"]`` maps input
roles (``image``, ``mask``, ``style``, ...) to files in the input folder.

``rounds`` is the trace's list of rounds (see :mod:`agents.repair`); the rest of the trace
(labels, template, ranking, outcome, token and cost usage) is in ``graph_doc["meta"]["agent"]``.
On failure the callable raises :class:`~agents.errors.AgentError` whose ``to_dict()``
holds the last ``errors`` and the ``trace``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from agents.context import models_from_entries
from agents.factory import build_planner, open_scores
from agents.llm import LLMConfig
from agents.planner import Planner

MAX_PLANNERS = 16  # planners kept (one per allowed LLM and round count in use), least recent out

PlanFn = Callable[[str, dict[str, Any]], tuple[dict[str, Any], list[dict[str, Any]]]]


def _model_entries(settings: Any, host: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    call = getattr(host, "call_hook", None)
    if call is not None:
        for _plugin, items in call("register_models"):
            entries.extend(dict(e) for e in items if isinstance(e, dict))
    entries.extend(dict(e) for e in getattr(settings, "models", []) or [])
    return entries


ModelSource = Callable[[], list[dict[str, Any]]] | list[dict[str, Any]]
LimitsFn = Callable[[Any], list[dict[str, Any]]]


def make_planner(settings: Any, host: Any, *, models: ModelSource | None = None,
                 limits: LimitsFn | None = None,
                 image_size: Callable[[str], tuple[int, int] | None] | None = None) -> PlanFn:
    """A thread-safe ``planner(prompt, options) -> (graph dict, trace rounds)`` for the daemon.

    ``options["llm"]`` picks an LLM only from the operator's allow-list (see
    :meth:`orchestrator.config.AgentSettings.pick_llm`); anything else fails the job with an
    :class:`~agents.errors.AgentError` naming ``agent.llm``. At most :data:`MAX_PLANNERS`
    planners are kept.
    """
    agent = settings.agent
    scores = open_scores(agent, settings.state_dir)
    library = models if callable(models) else None
    entries = _model_entries(settings, host) if models is None else [] if library is not None else models
    planners: OrderedDict[tuple[str | None, int], Planner] = OrderedDict()
    lock = threading.Lock()

    def planner_for(llm: str | None, rounds: int) -> Planner:
        config = LLMConfig.for_request(agent, llm)  # AgentError unless the operator allows it
        key = (llm, rounds)  # llm: None or a name the allow-list has, so the keys are bounded
        with lock:
            if key in planners:
                planners.move_to_end(key)
                return planners[key]
        p = build_planner(agent, host.catalog, host.templates, models=entries or None, scores=scores,
                          llm=config if config is not None else "offline")
        p.rounds = rounds
        p.ctx.limits = limits
        p.ctx.image_size = image_size
        with lock:
            planners[key] = p
            while len(planners) > MAX_PLANNERS:
                planners.popitem(last=False)
        return p

    def plan(prompt: str, options: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rounds = options.get("rounds")
        planner = planner_for(options.get("llm"), int(agent.rounds if rounds is None else rounds))
        if library is not None:  # the model folders as they are now
            planner.ctx.models = models_from_entries(library())
        inputs = options.get("inputs") if isinstance(options.get("inputs"), dict) else None
        result = planner.plan(prompt, seed=options.get("seed"), width=options.get("width"),
                              height=options.get("height"), template=options.get("template"),
                              images=inputs)
        doc = result.graph.to_dict()
        summary = {k: v for k, v in result.trace.items() if k != "rounds"}
        doc.setdefault("meta", {})["agent"] = summary
        if agent.scorer:
            doc = add_scorer(doc, agent.scorer)
        return doc, result.trace["rounds"]

    plan.template_names = sorted(host.templates)  # type: ignore[attr-defined]  # what agent.template may name
    plan.llm_names = agent.llm_names()  # type: ignore[attr-defined]
    return plan


SCORER_BLOCK = "onnx.run"


def add_scorer(doc: dict[str, Any], model: str) -> dict[str, Any]:
    """A copy of a planned graph whose saved image is also scored by the ONNX model ``model``.

    The scorer node has ``meta.role = "score"``: the daemon keeps its ``score`` output with
    the job and feeds it to the score table. Graphs that save no image are returned as they are.

    >>> g = {"nodes": {"img": {"block": "x.make"},
    ...                "save": {"block": "image.save", "inputs": {"image": "img.image"}}}}
    >>> add_scorer(g, "scorer.onnx")["nodes"]["score"]["inputs"]
    {'image': 'img.image'}
    """
    nodes = dict(doc.get("nodes", {}))
    source = next((n["inputs"]["image"] for n in nodes.values()
                   if n.get("block") == "image.save" and isinstance(n.get("inputs", {}).get("image"), str)),
                  None)
    if source is None:
        return doc
    node_id, i = "score", 2
    while node_id in nodes:
        node_id, i = f"score_{i}", i + 1
    nodes[node_id] = {"block": SCORER_BLOCK, "inputs": {"image": source},
                      "params": {"model": model}, "meta": {"role": "score"}}
    return {**doc, "nodes": nodes}


def make_score_recorder(settings: Any) -> Callable[..., bool]:
    """``record(graph dict, score 0..1, job id, source="scorer")``: scored planned graphs
    update the score table (``source="rating"`` for a user's rating, replacing the job's
    earlier rating); whether the graph was a planned one, so something was learned."""
    scores = open_scores(settings.agent, settings.state_dir)

    def record(graph: dict[str, Any], score: float, job: str, source: str = "scorer") -> bool:
        if isinstance((graph.get("meta") or {}).get("prompt"), str):
            scores.record_graph(graph, score, job=job, source=source)
            return True
        return False

    return record
