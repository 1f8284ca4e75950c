"""Evaluate a planner over a prompt set: valid-graph rate, label accuracy, repair rounds, cost.

A prompt set is JSONL, one object per line: ``{"prompt": ..., "labels": [...],
"template": ...}``; ``labels`` and ``template`` (the expected ones) are optional.

Label accuracy is, over the prompts that give labels, the mean share of the given
subject/style/format labels the planner found (the task label is scored only when given);
template accuracy the share of prompts that got the expected template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.errors import AgentError
from agents.planner import Planner


@dataclass
class EvalReport:
    """The figures of one evaluation, and one result per prompt."""

    planner: str
    prompts: int = 0
    valid: int = 0
    accepted: int = 0
    label_scores: list[float] = field(default_factory=list)
    template_hits: list[bool] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def valid_rate(self) -> float:
        return self.valid / self.prompts if self.prompts else 0.0

    @property
    def label_accuracy(self) -> float | None:
        return sum(self.label_scores) / len(self.label_scores) if self.label_scores else None

    @property
    def template_accuracy(self) -> float | None:
        return sum(self.template_hits) / len(self.template_hits) if self.template_hits else None

    @property
    def mean_rounds(self) -> float:
        return sum(self.rounds) / len(self.rounds) if self.rounds else 0.0

    def summary(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"planner": self.planner, "prompts": self.prompts, "valid": self.valid,
                "valid_rate": r(self.valid_rate), "accepted": self.accepted,
                "label_accuracy": r(self.label_accuracy),
                "labelled_prompts": len(self.label_scores),
                "template_accuracy": r(self.template_accuracy),
                "mean_repair_rounds": r(self.mean_rounds),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost_usd, 6), "seconds": round(self.seconds, 3)}

    def format(self) -> str:
        """The figures as the CLI prints them."""
        s = self.summary()

        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        return "\n".join([
            f"planner:            {s['planner']}",
            f"prompts:            {s['prompts']}",
            f"valid-graph rate:   {pct(s['valid_rate'])} ({s['valid']}/{s['prompts']})",
            f"label accuracy:     {pct(s['label_accuracy'])} (over {s['labelled_prompts']} labelled)",
            f"template accuracy:  {pct(s['template_accuracy'])}",
            f"mean repair rounds: {s['mean_repair_rounds']:.2f}",
            f"tokens:             {s['prompt_tokens']} prompt + {s['completion_tokens']} completion",
            f"cost:               ${s['cost_usd']:.6f}",
        ])


def load_prompts(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL prompt set (blank lines and ``#`` comments skipped)."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{i}: not JSON: {exc.msg}") from None
        if isinstance(rec, str):
            rec = {"prompt": rec}
        if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str):
            raise ValueError(f"{path}:{i}: expected an object with a 'prompt' string")
        out.append(rec)
    return out


def _label_score(expected: Iterable[str], got: Iterable[str]) -> float:
    want = {str(x).lower() for x in expected}
    have = set(got)
    if "text-to-image" in have and "text-to-image" not in want:
        have.discard("text-to-image")
    return len(want & have) / len(want) if want else 1.0


def evaluate(planner: Planner, records: Iterable[dict[str, Any]]) -> EvalReport:
    """Plan every prompt of ``records`` with ``planner`` and gather the figures."""
    report = EvalReport(planner=planner.mode)
    for rec in records:
        report.prompts += 1
        prompt = rec["prompt"]
        result: dict[str, Any] = {"prompt": prompt}
        try:
            plan = planner.plan(prompt)
        except AgentError as exc:
            trace = exc.details.get("trace") or {}
            result.update(valid=False, errors=exc.details.get("errors") or [exc.to_dict()],
                          labels=trace.get("labels", []), template=trace.get("template"))
            rounds = max(0, len(trace.get("rounds", [])) - 1)
            usage = trace.get("usage") or {}
        else:
            report.valid += 1
            report.accepted += int(plan.accepted)
            result.update(valid=True, labels=plan.labels, template=plan.template)
            rounds = plan.rounds
            usage = plan.usage.to_dict()
            report.seconds += float(plan.trace.get("seconds", 0.0))
        report.rounds.append(rounds)
        report.prompt_tokens += int(usage.get("prompt_tokens", 0))
        report.completion_tokens += int(usage.get("completion_tokens", 0))
        report.cost_usd += float(usage.get("cost_usd", 0.0))
        if rec.get("labels"):
            score = _label_score(rec["labels"], result.get("labels") or [])
            report.label_scores.append(score)
            result["label_score"] = round(score, 4)
        if rec.get("template"):
            hit = result.get("template") == rec["template"]
            report.template_hits.append(hit)
            result["template_hit"] = hit
        result["rounds"] = rounds
        report.results.append(result)
    return report
