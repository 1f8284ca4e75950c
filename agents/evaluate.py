"""Evaluate a planner over a prompt set, by what a user sees: the template, the aspect, the
inputs asked for, the model family, the limits; per category and per split.

A prompt set is JSONL, one object per line (``#`` lines are comments). The fields
(:data:`EVAL_FIELDS`; only ``prompt`` is required)::

    id        "d001"            a stable name for the record
    split     "dev"|"heldout"   heldout: written without reading the planner's rules
    category  "portraits"       what the figures are grouped by
    prompt    "a red fox ..."   what the user typed
    templates ["txt2img", ...]  every template a ComfyUI user would accept (any one is a hit);
                                ``template`` (one name) is read as ``templates: [template]``
    aspect    1.5 | [lo, hi]    the width/height the prompt asks for: a number is kept within
                                :data:`ASPECT_TOLERANCE` (25%), a pair is a range; null: not asked
    inputs    ["image", "mask"] the input roles the prompt implies (image, mask, style, palette,
                                reference, control): planned without them, the planner must
                                refuse naming each role (or note a fallback in its trace);
                                planned with one file per role, every file must reach the graph
    family    "sd1"             the family of the model the plan should run on, against the
                                model library the evaluation is given (a built-in test model
                                is a miss when the library has a real checkpoint); null: not
                                checked
    labels    [...]             the labels a planner should find (label accuracy)
    limits    "may_refuse"      a refusal with a ``limit`` error counts as holding the limits
                                (otherwise the plan must pass the limits check)
    note      "..."             why the record is there

The agent does not import the daemon: the caller passes ``limits_check(graph) -> [error
dicts]`` (the CLI passes :func:`orchestrator.runtime.limits.check_limits` with the configured limits)
and the folder where the input files are made.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.errors import AgentError
from agents.planner import Planner
from agents.sizes import output_size, primary_model
from agents.tokens import estimate_tokens
from graphs import Graph

EVAL_FIELDS = ("id", "split", "category", "prompt", "templates", "aspect", "inputs", "family",
               "labels", "limits", "note")
ROLES = ("image", "mask", "style", "palette", "reference", "control")
ASPECT_TOLERANCE = 0.25
CHECKS = ("valid", "template", "aspect", "inputs", "family", "limits")

LimitsCheck = Callable[[Graph], list[dict[str, Any]]]

_FAMILY_ALIASES = {"sd15": "sd1", "sd1.5": "sd1", "sd-1": "sd1", "sd14": "sd1", "sd21": "sd2",
                   "sd2.1": "sd2", "sd-2": "sd2", "sd-xl": "sdxl", "xl": "sdxl"}


def norm_family(family: Any) -> str:
    """``"SD15"`` and ``"sd1"`` alike: a family name in lower case, aliases folded."""
    name = str(family or "").strip().lower()
    return _FAMILY_ALIASES.get(name, name)


@dataclass
class Tally:
    """Hits over the records a check applies to."""

    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(hit)
        self.total += 1

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {"hits": self.hits, "total": self.total, "rate": None if rate is None else round(rate, 4)}


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
    calls: int = 0
    plan_tokens: list[int] = field(default_factory=list)  # prompt + completion tokens per plan
    call_tokens_max: int = 0  # the largest single call (prompt + completion), as the server counted
    est_plan_tokens: list[int] = field(default_factory=list)  # estimated from the messages sent
    est_call_max: int = 0  # the largest call's messages + answer, estimated (agents.tokens)
    cost_usd: float = 0.0
    seconds: float = 0.0
    groups: dict[str, dict[str, Tally]] = field(default_factory=dict)  # "category:x" -> check -> tally
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

    def tally(self, group: str, check: str, hit: bool) -> None:
        self.groups.setdefault(group, {}).setdefault(check, Tally()).add(hit)

    def check_rate(self, check: str, group: str = "all") -> float | None:
        tally = self.groups.get(group, {}).get(check)
        return tally.rate if tally else None

    def summary(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        overall = self.groups.get("all", {})
        return {"planner": self.planner, "prompts": self.prompts, "valid": self.valid,
                "valid_rate": r(self.valid_rate), "accepted": self.accepted,
                "label_accuracy": r(self.label_accuracy),
                "labelled_prompts": len(self.label_scores),
                "template_accuracy": r(self.template_accuracy),
                "checks": {c: overall[c].to_dict() for c in CHECKS if c in overall},
                "mean_repair_rounds": r(self.mean_rounds),
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "tokens_per_plan_mean": r(sum(self.plan_tokens) / len(self.plan_tokens))
                if self.plan_tokens else 0.0,
                "tokens_per_plan_max": max(self.plan_tokens, default=0),
                "call_tokens_max": self.call_tokens_max,
                "est_tokens_per_plan_mean": r(sum(self.est_plan_tokens) / len(self.est_plan_tokens))
                if self.est_plan_tokens else 0.0,
                "est_tokens_per_plan_max": max(self.est_plan_tokens, default=0),
                "est_call_tokens_max": self.est_call_max,
                "cost_usd": round(self.cost_usd, 6), "seconds": round(self.seconds, 3)}

    def breakdown(self) -> dict[str, dict[str, Any]]:
        """Per group (``all``, ``split:dev``, ``category:portraits``, ...): each check's tally."""
        return {g: {c: t[c].to_dict() for c in CHECKS if c in t} for g, t in sorted(self.groups.items())}

    def format(self) -> str:
        """The figures as the CLI prints them."""
        s = self.summary()

        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        lines = [
            f"planner:            {s['planner']}",
            f"prompts:            {s['prompts']}",
            f"valid-graph rate:   {pct(s['valid_rate'])} ({s['valid']}/{s['prompts']})",
            f"label accuracy:     {pct(s['label_accuracy'])} (over {s['labelled_prompts']} labelled)",
            f"template accuracy:  {pct(s['template_accuracy'])}",
            f"mean repair rounds: {s['mean_repair_rounds']:.2f}",
            f"tokens:             {s['prompt_tokens']} prompt + {s['completion_tokens']} completion"
            f" in {s['calls']} call(s); per plan mean {s['tokens_per_plan_mean']:.0f}, "
            f"max {s['tokens_per_plan_max']}; largest call {s['call_tokens_max']}",
            f"estimated tokens:   per plan mean {s['est_tokens_per_plan_mean']:.0f}, max "
            f"{s['est_tokens_per_plan_max']}; largest call {s['est_call_tokens_max']} (messages + answer)",
            f"cost:               ${s['cost_usd']:.6f}",
        ]
        if self.groups:
            lines.append("")
            lines.append(f"{'group':<24} " + " ".join(f"{c:>13}" for c in CHECKS))
            for group, tallies in sorted(self.groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
                cells = []
                for c in CHECKS:
                    t = tallies.get(c)
                    cells.append(f"{'-':>13}" if t is None else f"{pct(t.rate):>6} {t.hits:>3}/{t.total:<3}")
                lines.append(f"{group:<24} " + " ".join(cells))
        return "\n".join(lines)


def load_prompts(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL prompt set (blank lines and ``#`` comments skipped), checked:
    a ``ValueError`` names the line of a record that is not one (fields of the wrong type,
    an unknown input role)."""
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
        problem = _record_problem(rec)
        if problem:
            raise ValueError(f"{path}:{i}: {problem}")
        out.append(rec)
    return out


def _record_problem(rec: Mapping[str, Any]) -> str | None:
    templates = rec.get("templates")
    if templates is not None and (not isinstance(templates, list)
                                  or not all(isinstance(t, str) for t in templates)):
        return "'templates' must be a list of template names"
    inputs = rec.get("inputs")
    if inputs is not None:
        if not isinstance(inputs, list) or not all(isinstance(r, str) for r in inputs):
            return "'inputs' must be a list of role names"
        unknown = [r for r in inputs if r not in ROLES]
        if unknown:
            return f"unknown input role(s) {unknown}; roles: {', '.join(ROLES)}"
    aspect = rec.get("aspect")
    if aspect is not None and not _aspect_ok(aspect):
        return "'aspect' must be a positive number or a [low, high] pair"
    return None


def _aspect_ok(aspect: Any) -> bool:
    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0

    if num(aspect):
        return True
    return isinstance(aspect, list) and len(aspect) == 2 and all(map(num, aspect)) and aspect[0] <= aspect[1]


def aspect_hit(expected: Any, got: float | None) -> bool:
    """Whether ``got`` (width/height) keeps the ``expected`` aspect (a number within 25%, or a range)."""
    if got is None:
        return False
    if isinstance(expected, list):
        return expected[0] <= got <= expected[1]
    return abs(got - float(expected)) <= ASPECT_TOLERANCE * float(expected)


def expected_templates(rec: Mapping[str, Any]) -> list[str]:
    if rec.get("templates"):
        return list(rec["templates"])
    return [rec["template"]] if isinstance(rec.get("template"), str) else []


def _label_score(expected: Iterable[str], got: Iterable[str]) -> float:
    want = {str(x).lower() for x in expected}
    have = set(got)
    if "text-to-image" in have and "text-to-image" not in want:
        have.discard("text-to-image")
    return len(want & have) / len(want) if want else 1.0


def _names_role(errors: Any, role: str) -> bool:
    """Whether an error list (or a trace's notes) names ``role`` as a word."""
    text = json.dumps(errors, default=str).lower()
    return re.search(r"(?<![a-z])" + re.escape(role) + r"(?![a-z])", text) is not None


def _asks_role(notes: Any, role: str) -> bool:
    """Whether a plan's notes ask for ``role`` (a fallback that says how to give it: "--input mask=FILE"),
    not only name the word (a note listing the labels found, "image-to-image", asks for nothing)."""
    text = json.dumps(notes, default=str).lower()
    return re.search(r"--input " + re.escape(role) + r"=|\binputs? '?" + re.escape(role) + r"(?![a-z])",
                     text) is not None


def _uses_file(graph: Graph, path: str) -> bool:
    return any(path in json.dumps(node.params, default=str) for node in graph.nodes.values())


def make_inputs(folder: Path, roles: Iterable[str]) -> dict[str, str]:
    """One small real PNG per role in ``folder`` (made once): ``{role: path}``."""
    from PIL import Image

    out = {}
    for role in roles:
        path = folder / f"eval_{role}.png"
        if not path.exists():
            mode, colour = ("L", 255) if role == "mask" else ("RGB", (120, 90, 60))
            Image.new(mode, (64, 64), colour).save(path)
        out[role] = str(path)
    return out


def _usage_of(trace: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The trace's usage and its largest single call (prompt + completion tokens)."""
    largest = 0
    for entry in trace.get("rounds") or []:
        u = entry.get("usage") or {}
        calls = max(1, int(u.get("calls", 1) or 1))
        largest = max(largest, (int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)))
                      // calls)
    return dict(trace.get("usage") or {}), largest


def _estimates(trace: Mapping[str, Any]) -> tuple[int, int]:
    """``(tokens of every call, the largest call)`` of a trace, estimated from the messages
    sent and the answers (no tokenizer): what a local model's context must hold."""
    total = largest = 0
    for entry in trace.get("rounds") or []:
        sent = entry.get("prompt_sent")
        if not isinstance(sent, list):
            continue
        answer = entry.get("answer")
        answer_text = answer if isinstance(answer, str) else json.dumps(answer, default=str)
        call = estimate_tokens(sent) + estimate_tokens(answer_text)
        total += call
        largest = max(largest, call)
    return total, largest


def _plan(planner: Planner, prompt: str, images: Mapping[str, str] | None
          ) -> tuple[Any, AgentError | None]:
    try:
        if images:
            return planner.plan(prompt, images=images), None
        return planner.plan(prompt), None
    except AgentError as exc:
        return None, exc


def evaluate(planner: Planner, records: Iterable[dict[str, Any]], *,
             limits_check: LimitsCheck | None = None, input_dir: str | Path | None = None
             ) -> EvalReport:
    """Plan every prompt of ``records`` with ``planner`` and gather the figures.

    ``limits_check`` (a graph's limit problems) scores the ``limits`` check; without it the
    check is left out. Input files are made in ``input_dir`` (a temporary folder by default).
    """
    report = EvalReport(planner=planner.mode)
    with tempfile.TemporaryDirectory(prefix="agent-eval-") as tmp:
        folder = Path(input_dir) if input_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for rec in records:
            _evaluate_one(planner, rec, report, limits_check, folder)
    return report


def _evaluate_one(planner: Planner, rec: dict[str, Any], report: EvalReport,
                  limits_check: LimitsCheck | None, folder: Path) -> None:
    report.prompts += 1
    prompt = rec["prompt"]
    roles = [r for r in rec.get("inputs") or [] if r in ROLES]
    result: dict[str, Any] = {"id": rec.get("id"), "category": rec.get("category"),
                              "split": rec.get("split"), "prompt": prompt}
    checks: dict[str, bool] = {}
    traces: list[Mapping[str, Any]] = []
    asked = True
    if roles:  # first without the files: the planner must ask for each role
        bare, err = _plan(planner, prompt, None)
        if err is not None:
            asked = all(_names_role(err.details.get("errors") or [err.to_dict()], r) for r in roles)
            traces.append(err.details.get("trace") or {})
        else:
            asked = all(_asks_role(bare.trace.get("notes", []), r) for r in roles)
            traces.append(bare.trace)
        result["asked_for_inputs"] = asked
    images = make_inputs(folder, roles) if roles else None
    plan, err = _plan(planner, prompt, images)
    if err is not None:
        trace = err.details.get("trace") or {}
        errors = err.details.get("errors") or [err.to_dict()]
        result.update(valid=False, errors=errors, labels=trace.get("labels", []),
                      template=trace.get("template"))
        rounds = max(0, len(trace.get("rounds", [])) - 1)
        traces.append(trace)
    else:
        report.valid += 1
        report.accepted += int(plan.accepted)
        result.update(valid=True, labels=plan.labels, template=plan.template)
        rounds = plan.rounds
        report.seconds += float(plan.trace.get("seconds", 0.0))
        traces.append(plan.trace)
    checks["valid"] = plan is not None
    plan_tokens = est_tokens = 0
    for trace in traces:
        est, est_largest = _estimates(trace)
        est_tokens += est
        report.est_call_max = max(report.est_call_max, est_largest)
        usage, largest = _usage_of(trace)
        report.calls += int(usage.get("calls", 0))
        report.prompt_tokens += int(usage.get("prompt_tokens", 0))
        report.completion_tokens += int(usage.get("completion_tokens", 0))
        report.cost_usd += float(usage.get("cost_usd", 0.0))
        report.call_tokens_max = max(report.call_tokens_max, largest)
        plan_tokens += int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
    report.plan_tokens.append(plan_tokens)
    report.est_plan_tokens.append(est_tokens)
    report.rounds.append(rounds)
    if rec.get("labels"):
        score = _label_score(rec["labels"], result.get("labels") or [])
        report.label_scores.append(score)
        result["label_score"] = round(score, 4)
    wanted = expected_templates(rec)
    if wanted:
        hit = result.get("template") in wanted
        report.template_hits.append(hit)
        checks["template"] = hit
    graph = plan.graph if plan is not None else None
    if rec.get("aspect") is not None:
        size = output_size(graph) if graph is not None else None
        got = size[0] / size[1] if size else None
        result["aspect"] = None if got is None else round(got, 4)
        checks["aspect"] = aspect_hit(rec["aspect"], got)
    if roles:
        reached = graph is not None and images is not None and all(_uses_file(graph, images[r])
                                                                  for r in roles)
        checks["inputs"] = asked and reached
    if rec.get("family") and graph is not None:
        model = primary_model(graph, planner.ctx.catalog)
        info = planner.ctx.models.get(model) if model else None
        result["model"] = model
        real = [m for m in planner.ctx.models.values()
                if not getattr(m, "builtin", False) and getattr(m, "kind", "checkpoint") == "checkpoint"]
        checks["family"] = (info is not None and norm_family(getattr(info, "base", info.family))
                            == norm_family(rec["family"])
                            and not (getattr(info, "builtin", False) and real))
    elif rec.get("family"):
        checks["family"] = False
    if limits_check is not None:
        if graph is not None:
            problems = limits_check(graph)
            result["limit_problems"] = problems
            checks["limits"] = not problems
        else:
            checks["limits"] = rec.get("limits") == "may_refuse" and any(
                e.get("type") == "limit" for e in result.get("errors") or [])
    result["checks"] = checks
    result["rounds"] = rounds
    report.results.append(result)
    groups = ["all", f"split:{rec.get('split') or 'none'}", f"category:{rec.get('category') or 'none'}"]
    for group in groups:
        for check, hit in checks.items():
            report.tally(group, check, hit)
