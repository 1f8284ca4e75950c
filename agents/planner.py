"""The planner: a prompt in, a valid workflow graph and the trace of how it was made out.

>>> from agents.context import PlanningContext
>>> planner = Planner(PlanningContext(catalog={}, templates={}))
>>> planner.mode
'offline'

With no LLM (the default) the offline planner classifies the prompt by keyword rules,
picks the best template from the score table and adapts it; with an LLM (any litellm
model string) the model selects and adapts a template or composes a graph, and critiques
it. Both pass the same rule checks and the same repair loop. The daemon calls::

    plan = planner.plan(prompt)          # agents.planner.Plan; AgentError when no valid graph
    plan.graph, plan.trace, plan.usage   # the graph to run; what to keep with the job
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.adapt import adapt
from agents.choose import candidates, rank_templates
from agents.compose import apply_ops
from agents.context import PlanningContext
from agents.critic import LLMCritic, OfflineCritic
from agents.errors import AgentError
from agents.inputs import apply_inputs, note_unused_inputs, pick_with_inputs, require_inputs
from agents.labels import Embedder, Labels, classify
from agents.limits import hold_limits
from agents.llm import LLMClient, LLMConfig, Usage
from agents.prompts import planner_messages, str_list
from agents.repair import Proposal, repair_loop
from agents.request import Request, beyond_native, labels_text, parse_request, reading_notes, text_notes
from agents.slots import named_checkpoint
from graphs import Graph

DEFAULT_ROUNDS = 3


@dataclass
class Plan:
    """A planned graph: what the daemon runs, and what it keeps with the job."""

    prompt: str
    graph: Graph
    labels: list[str]
    template: str | None
    mode: str  # "select" or "compose"
    planner: str  # "offline" or "llm:<model>"
    accepted: bool  # False: valid, but the critic had not accepted it when the rounds ran out
    rounds: int  # critic rounds used
    trace: dict[str, Any]
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "graph": self.graph.to_dict(), "labels": list(self.labels),
                "template": self.template, "mode": self.mode, "planner": self.planner,
                "accepted": self.accepted, "rounds": self.rounds, "usage": self.usage.to_dict(),
                "trace": self.trace}


class Planner:
    """Plans graphs for prompts against one :class:`~agents.context.PlanningContext`."""

    def __init__(
        self,
        ctx: PlanningContext,
        *,
        llm: LLMClient | LLMConfig | None = None,
        rounds: int = DEFAULT_ROUNDS,
        embedder: Embedder | None = None,
        fallback_offline: bool = True,
    ) -> None:
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        self.ctx = ctx
        self.llm = LLMClient(llm) if isinstance(llm, LLMConfig) else llm
        self.rounds = rounds
        self.embedder = embedder
        self.fallback_offline = fallback_offline

    @property
    def mode(self) -> str:
        return f"llm:{self.llm.model}" if self.llm is not None else "offline"

    def request(self, prompt: str, *, seed: int | None = None, width: int | None = None,
                height: int | None = None, images: Mapping[str, str] | None = None,
                notes: list[str] | None = None) -> Request:
        """What ``prompt`` asks for, with the keyword (and embedding) labels; ``seed``,
        ``width`` and ``height`` given here win over what the prompt says. ``images`` (input
        files by role) can set the task: an image makes a plain prompt image-to-image, an image
        and a mask an inpainting, a style/palette/reference/control input its composition."""
        notes = notes if notes is not None else []
        request = parse_request(prompt, classify(labels_text(prompt), embedder=self.embedder))
        reading_notes(prompt, request, notes, embedder=self.embedder is not None)
        named, request.text = named_checkpoint(request.text, self.ctx)
        request.model = named.name if named is not None else None
        if seed is not None:
            request.seed = seed
        if width and height:
            request.width, request.height, request.aspect = width, height, width / height
        request.images = {str(k): str(v) for k, v in (images or {}).items()}
        beyond_native(request, self.ctx.native_size(request.model or self.ctx.default_model))
        apply_inputs(request, notes)
        return request

    def plan(self, prompt: str, *, seed: int | None = None, width: int | None = None,
             height: int | None = None, template: str | None = None,
             images: Mapping[str, str] | None = None) -> Plan:
        """Plan a graph for ``prompt``. Raises :class:`AgentError` (``unrepaired``, with the last
        ``errors`` and the ``trace``) when no valid graph came out of the bounded rounds.

        ``template`` forces a template (select-and-adapt without asking the planner model);
        ``images`` names input files (``image``, ``mask``) for image-to-image and inpainting.
        """
        if not prompt or not prompt.strip():
            raise AgentError("the prompt is empty", type="config", field="prompt")
        if template is not None and template not in self.ctx.templates:
            raise AgentError(f"no template {template!r}; templates: {', '.join(sorted(self.ctx.templates))}",
                             type="config", field="template", value=template)
        started = time.monotonic()
        notes: list[str] = []
        request = self.request(prompt, seed=seed, width=width, height=height, images=images, notes=notes)
        text_notes(request, notes)
        failed: list[dict[str, Any]] = []  # LLM calls that failed before a round was made
        if template is not None:
            proposal, info = self._propose_offline(request, notes, forced=template)
            if self.llm is not None:
                info["planner"] = f"llm:{self.llm.model}"
        else:
            proposal, info = self._propose(request, notes, failed)
        request = info.pop("request")
        offline_critic = OfflineCritic(self.ctx)
        critic = LLMCritic(self.llm, self.ctx) if self.llm is not None and info["planner"] != "offline" \
            else offline_critic
        result = repair_loop(request, self.ctx, proposal, critic, max_rounds=self.rounds,
                             fallback=offline_critic if self.fallback_offline else None)
        limit_errors: list[dict[str, Any]] = []
        if result.valid and result.graph is not None:
            result.graph, limit_errors = hold_limits(result.graph, self.ctx, notes)
        usage = Usage()
        for entry in [*failed, *result.rounds]:
            if entry.get("usage"):
                usage.add(Usage.from_dict(entry["usage"]))
        trace = {
            "prompt": request.prompt, "planner": info["planner"], "request": request.to_dict(),
            "labels": request.labels.all(), "mode": info["mode"], "template": info["template"],
            "ranking": info["ranking"], "pool": info.get("pool"), "models": info.get("models"),
            "inputs": {r: Path(v).name for r, v in request.images.items()}, "notes": notes,
            "rounds": result.rounds,
            "outcome": "accepted" if result.accepted else "valid_at_bound" if result.valid else "failed",
            "errors": result.errors, "usage": usage.to_dict(),
            "seconds": round(time.monotonic() - started, 3),
        }
        if limit_errors:
            first = limit_errors[0]
            raise AgentError("the planned graph breaks the limits even after clamping: "
                             f"{first.get('message')}",
                             type="limit", node=first.get("node"), field=first.get("field"),
                             errors=limit_errors, trace=trace)
        if not result.valid or result.graph is None:
            count = len(result.errors)
            head = "; ".join(str(e.get("message")) for e in result.errors[:3])
            raise AgentError(
                f"no valid graph after {result.critic_rounds} repair round(s): {count} problem(s): {head}",
                type="unrepaired", errors=result.errors, trace=trace,
            )
        graph = result.graph.model_copy(deep=True)
        graph.meta = {**graph.meta, "name": graph.meta.get("name") or info["template"] or "composed",
                      "prompt": request.prompt, "labels": request.labels.all(),
                      "template": info["template"], "planner": info["planner"]}
        return Plan(prompt=request.prompt, graph=graph, labels=request.labels.all(),
                    template=info["template"], mode=info["mode"], planner=info["planner"],
                    accepted=result.accepted, rounds=result.critic_rounds, trace=trace, usage=usage)

    # -- proposals ------------------------------------------------------------------------

    def _propose(self, request: Request, notes: list[str], failed: list[dict[str, Any]]
                 ) -> tuple[Proposal, dict[str, Any]]:
        if self.llm is not None:
            try:
                return self._propose_llm(request)
            except AgentError as exc:
                if exc.type != "llm" or not self.fallback_offline:
                    raise
                notes.append(f"the planner model failed, planned offline: {exc.message}")
                failed.append({"usage": exc.details.get("usage")})
        return self._propose_offline(request, notes)

    def _propose_offline(self, request: Request, notes: list[str], forced: str | None = None
                         ) -> tuple[Proposal, dict[str, Any]]:
        ranking = rank_templates(request.labels, self.ctx)
        if not ranking:
            raise AgentError("the template library is empty: nothing to plan from", type="config")
        _pool, why = candidates(request.labels, self.ctx)
        if forced is not None:
            name = forced
            require_inputs(self.ctx.templates[name], request, self.ctx)
        else:
            name, request = pick_with_inputs(ranking, request, self.ctx, notes)
        note_unused_inputs(self.ctx.templates[name], request, notes)
        graph, changes = adapt(self.ctx.templates[name].graph, request, self.ctx)
        models = next((c["value"] for c in changes if c.get("field") == "models"), None)
        for note in (models or {}).get("notes", []):
            notes.append(note)
        answer = {"template": name, "ranking": ranking[:3], "changes": changes}
        proposal = Proposal("planner:offline", graph.to_dict(), answer=answer)
        return proposal, {"planner": "offline", "mode": "select", "template": name, "pool": why,
                          "ranking": ranking[:5], "request": request, "models": models}

    def _propose_llm(self, request: Request) -> tuple[Proposal, dict[str, Any]]:
        assert self.llm is not None
        ranking = rank_templates(request.labels, self.ctx)
        messages = planner_messages(request, self.ctx, ranking)
        answer = self.llm.complete_json(messages)
        info: dict[str, Any] = {"planner": f"llm:{self.llm.model}", "mode": "compose", "template": None,
                                "ranking": ranking[:5], "request": request}
        proposal = Proposal("planner:llm", None, prompt_sent=messages, answer=answer.text,
                            usage=answer.usage)
        data = answer.data
        if data is None:
            proposal.errors = [answer.error.to_dict()] if answer.error else []
            proposal.raw = answer.text
            return proposal, info
        labels = str_list(data.get("labels"))
        if labels:
            chosen = Labels.from_list(labels)
            if not any(label in ("text-to-image", "image-to-image", "inpaint") for label in labels):
                chosen.task = request.labels.task
            if "people" in request.labels.subjects and "people" not in chosen.subjects:
                chosen.subjects.append("people")  # the people rules hold whatever the model says
            relabelled = parse_request(request.prompt, chosen)
            relabelled.seed, relabelled.images = request.seed, request.images
            relabelled.model, relabelled.text = request.model, request.text
            request = info["request"] = relabelled
        mode = data.get("mode")
        if mode not in ("select", "compose"):
            mode = "compose" if ("graph" in data or "ops" in data) else "select"
        info["mode"] = mode
        if mode == "select":
            name = data.get("template")
            if not isinstance(name, str) or name not in self.ctx.templates:
                proposal.errors = [AgentError(
                    f"no template {name!r}; templates: {', '.join(sorted(self.ctx.templates))}",
                    type="compose", field="template", value=name).to_dict()]
                proposal.raw = answer.text
                return proposal, info
            settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
            require_inputs(self.ctx.templates[name], request, self.ctx)
            graph, _changes = adapt(self.ctx.templates[name].graph, request, self.ctx, settings=settings)
            proposal.doc, proposal.select = graph.to_dict(), True
            info["template"] = name
            return proposal, info
        if isinstance(data.get("graph"), dict):
            proposal.doc = data["graph"]
            return proposal, info
        base_name = data.get("base")
        base = None
        if isinstance(base_name, str) and base_name in self.ctx.templates:
            base = self.ctx.templates[base_name].graph
            info["template"] = base_name
        ops = data.get("ops") if isinstance(data.get("ops"), list) else []
        graph, errors = apply_ops(base, ops, self.ctx.templates)
        if base is None and base_name is not None:
            errors.insert(0, AgentError(f"no template {base_name!r} to start from", type="compose",
                                        field="base", value=base_name).to_dict())
        if base is None and not ops:
            errors.append(AgentError("a compose answer needs a 'graph' or 'ops'", type="bad_answer")
                          .to_dict())
        proposal.doc, proposal.errors = graph.to_dict(), errors
        if errors and not graph.nodes:
            proposal.doc, proposal.raw = None, answer.text
        return proposal, info
