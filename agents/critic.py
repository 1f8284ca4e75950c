"""Critics: read the prompt, a graph and its problems; say what is wrong and give a corrected graph.

- :class:`LLMCritic` asks the model (see :func:`agents.prompts.critic_messages`).
- :class:`OfflineCritic` needs no model: it accepts a graph without problems and makes
  the mechanical repairs (out-of-bounds params clamped to their bound, unknown params
  dropped, tile annotations removed from blocks that do not tile). The rule fixes run on
  every candidate before any critic sees it (:mod:`agents.repair`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.context import PlanningContext
from agents.llm import LLMClient, Usage
from agents.prompts import critic_messages, read_review
from agents.request import Request
from graphs import Graph, GraphError


@dataclass
class Review:
    """A critic's verdict on one candidate."""

    actor: str
    accept: bool
    problems: list[str] = field(default_factory=list)
    graph: dict[str, Any] | None = None  # the corrected graph, if the critic gave one
    prompt_sent: list[dict[str, str]] | None = None
    answer: str | None = None
    usage: Usage | None = None


class Critic(Protocol):
    """Anything that reviews a candidate graph."""

    actor: str
    reviews_valid: bool  # whether a graph without problems is still sent for review

    def review(self, request: Request, graph: dict[str, Any] | None, raw: str | None,
               errors: list[dict[str, Any]]) -> Review: ...


class LLMCritic:
    """The model reviews every candidate, valid or not."""

    actor = "critic:llm"
    reviews_valid = True

    def __init__(self, llm: LLMClient, ctx: PlanningContext) -> None:
        self.llm = llm
        self.ctx = ctx

    def review(self, request: Request, graph: dict[str, Any] | None, raw: str | None,
               errors: list[dict[str, Any]]) -> Review:
        messages = critic_messages(request, self.ctx, graph, raw, errors)
        answer = self.llm.complete_json(messages)  # AgentError(type="llm") propagates
        if answer.data is None:
            problems = [answer.error.message] if answer.error else ["no answer"]
            return Review(self.actor, False, problems, None, messages, answer.text, answer.usage)
        accept, problems, corrected = read_review(answer.data)
        return Review(self.actor, accept, problems, corrected, messages, answer.text, answer.usage)


class OfflineCritic:
    """Accepts graphs without problems; repairs what needs no judgement."""

    actor = "critic:offline"
    reviews_valid = False

    def __init__(self, ctx: PlanningContext) -> None:
        self.ctx = ctx

    def review(self, request: Request, graph: dict[str, Any] | None, raw: str | None,
               errors: list[dict[str, Any]]) -> Review:
        problems = [str(e.get("message", e)) for e in errors]
        if not errors:
            return Review(self.actor, True)
        if graph is None:
            return Review(self.actor, False, problems)
        try:
            parsed = Graph.from_dict(graph)
        except GraphError:
            return Review(self.actor, False, problems)
        fixed, changed = self.repair(parsed)
        return Review(self.actor, False, problems + changed, fixed.to_dict() if changed else None)

    def repair(self, graph: Graph) -> tuple[Graph, list[str]]:
        """A copy with params clamped or dropped and bad tile annotations removed; what changed."""
        out = graph.model_copy(deep=True)
        changed: list[str] = []
        for node_id, node in out.nodes.items():
            spec = self.ctx.catalog.get(node.block)
            if spec is None:
                continue
            if node.tile is not None and not spec.tiling:
                node.tile = None
                changed.append(f"removed the tile annotation of {node_id!r}: {spec.id} does not tile")
            for problem in spec.check_params(node.params):
                name = problem.field.split(".")[0]
                if problem.message == "unknown param" and name in node.params:
                    del node.params[name]
                    changed.append(f"dropped unknown param {node_id}.{name}")
                elif problem.bound and isinstance(problem.value, (int, float)) and name in node.params:
                    clamped = _clamp(problem.value, problem.bound)
                    if clamped is not None:
                        node.params[name] = clamped
                        changed.append(f"clamped {node_id}.{name} {problem.value!r} -> {clamped!r}")
        return out, changed


def _clamp(value: float, bound: dict[str, Any]) -> float | None:
    (kind, limit), = bound.items()
    if not isinstance(limit, (int, float)):
        return None
    step = 1 if isinstance(value, int) and isinstance(limit, int) else 1e-6
    return {"ge": limit, "le": limit, "gt": limit + step, "lt": limit - step}.get(kind)
