"""The repair loop: check a proposed graph, let a critic correct it, a bounded number of rounds.

Every candidate is parsed and validated against the catalog (:func:`graphs.check`), given
the mechanical rule fixes (:func:`agents.rules.fix_rules`) and checked against the rules.
The critic then reads the prompt, the graph and every remaining problem (as the
structured error dicts) and answers with problems and a corrected graph. The loop stops
at the first graph without problems that the critic accepts (an offline critic accepts
every such graph), or after ``max_rounds`` critic rounds. A proposal that selected a library
template (``Proposal.select``) and passes every check is accepted without a critic call: the
template was reviewed when it was written, and the checks held its adaptation.

Each round is one entry of the trace, plain JSON data::

    {"round": 0, "actor": "planner:llm", "prompt_sent": [messages] | null,
     "answer": "raw text" | {...} | null, "accept": null, "problems": [],
     "graph": {...} | null, "fixes": [rule fixes], "errors": [error dicts],
     "warnings": [...], "decision": "accept" | "review" | "repair" | "fail",
     "usage": {...} | null}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents.context import PlanningContext
from agents.critic import Critic, Review
from agents.errors import AgentError
from agents.llm import Usage
from agents.request import Request
from agents.rules import check_rules, fix_rules
from graphs import Graph, check, check_document


@dataclass
class Proposal:
    """A planner's first candidate and how it came about."""

    actor: str
    doc: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)  # problems found before validation
    prompt_sent: list[dict[str, str]] | None = None
    answer: Any = None
    usage: Usage | None = None
    raw: str | None = None  # the answer text, when it held no graph
    select: bool = False  # a template selected and adapted: accepted without a critic when valid


@dataclass
class LoopResult:
    """The loop's outcome: the last graph, whether it was accepted, the rounds, the last problems."""

    graph: Graph | None
    accepted: bool
    rounds: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @property
    def valid(self) -> bool:
        return self.graph is not None and not self.errors

    @property
    def critic_rounds(self) -> int:
        return max(0, len(self.rounds) - 1)


def evaluate(doc: Any, pre_errors: list[dict[str, Any]], request: Request, ctx: PlanningContext
             ) -> tuple[Graph | None, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``(graph after rule fixes, problems, fixes, warnings)`` for one candidate document."""
    if doc is None:
        return None, list(pre_errors), [], []
    graph, parse_errors = check_document(doc, ctx.catalog)
    if graph is None:
        return None, list(pre_errors) + [e.to_dict() for e in parse_errors], [], []
    fixed, fixes = fix_rules(graph, request, ctx)
    errors = list(pre_errors) + [e.to_dict() for e in check(fixed, ctx.catalog)]
    rule_errors, warnings = check_rules(fixed, request, ctx)
    return fixed, errors + rule_errors, fixes, warnings


def _entry(k: int, actor: str, prompt_sent: Any, answer: Any, graph: Graph | None,
           fixes: list[dict[str, Any]], errors: list[dict[str, Any]], warnings: list[dict[str, Any]],
           usage: Usage | None, review: Review | None = None) -> dict[str, Any]:
    return {
        "round": k, "actor": actor, "prompt_sent": prompt_sent, "answer": answer,
        "accept": review.accept if review else None,
        "problems": list(review.problems) if review else [],
        "graph": graph.to_dict() if graph is not None else None,
        "fixes": fixes, "errors": errors, "warnings": warnings, "decision": "",
        "usage": usage.to_dict() if usage else None,
    }


def repair_loop(
    request: Request,
    ctx: PlanningContext,
    proposal: Proposal,
    critic: Critic,
    *,
    max_rounds: int,
    fallback: Critic | None = None,
) -> LoopResult:
    """Run the loop from ``proposal``; ``fallback`` reviews a round whose critic could not
    be reached (an LLM that keeps failing)."""
    graph, errors, fixes, warnings = evaluate(proposal.doc, proposal.errors, request, ctx)
    raw = proposal.raw
    entry = _entry(0, proposal.actor, proposal.prompt_sent, proposal.answer, graph, fixes, errors,
                   warnings, proposal.usage)
    rounds = [entry]
    if not errors and (not critic.reviews_valid or proposal.select):
        entry["decision"] = "accept"
        return LoopResult(graph, True, rounds, [])
    for k in range(1, max_rounds + 1):
        entry["decision"] = "review" if not errors else "repair"
        current = graph.to_dict() if graph is not None else None
        reviewer: Critic = critic
        try:
            review = critic.review(request, current, raw, errors)
        except AgentError as exc:
            if fallback is None or exc.type != "llm":
                raise
            reviewer = fallback
            review = fallback.review(request, current, raw, errors)
            review.problems.insert(0, f"the critic model failed: {exc.message}")
            review.usage = Usage.from_dict(exc.details.get("usage") or {})
        fixes, warnings = [], []
        if review.graph is not None:
            graph, errors, fixes, warnings = evaluate(review.graph, [], request, ctx)
            raw = None if graph is not None else json.dumps(review.graph)[:4000]
        entry = _entry(k, review.actor, review.prompt_sent, review.answer, graph, fixes, errors,
                       warnings, review.usage, review)
        rounds.append(entry)
        if not errors and (review.accept or not reviewer.reviews_valid):
            entry["decision"] = "accept"
            return LoopResult(graph, True, rounds, [])
        if errors and review.graph is None and not reviewer.reviews_valid:
            break  # an offline critic that changes nothing will not change anything next round
    entry["decision"] = "fail" if errors else "valid_at_bound"
    return LoopResult(graph, False, rounds, errors)
