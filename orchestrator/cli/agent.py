"""CLI commands of the agent: ``plan``, ``rate``, ``agent scores``, ``agent export``, ``agent eval``.

``orchestrator plan "a wide panorama of a mountain lake at dawn"`` prints the planned graph
and the trace of how it was made (``-o FILE`` also writes the graph); ``--llm MODEL``
plans with a litellm model instead of the offline planner. The agent's settings are the
``[agent]`` section of the config (``orchestrator.config.AgentSettings``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agents.errors import AgentError
from agents.evaluate import evaluate, load_prompts
from agents.factory import build_planner, open_scores, scores_path
from agents.planner import Planner
from orchestrator.cli.main import CliError, plugin_host
from orchestrator.config import Settings


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _model_entries(settings: Settings, host: Any) -> list[dict[str, Any]]:
    entries = [dict(e) for _plugin, items in host.call_hook("register_models") for e in items
               if isinstance(e, dict)]
    return entries + [dict(e) for e in settings.models]


def _planner(args: argparse.Namespace, settings: Settings, *, learn: bool = True) -> Planner:
    host = plugin_host(settings)
    for problem in host.problems:
        print(f"warning: {problem.message}", file=sys.stderr)
    scores = open_scores(settings.agent, settings.state_dir) if learn else None
    from orchestrator.agent_context import image_size_reader, limits_check, model_library

    planner = build_planner(settings.agent, host.catalog, host.templates,
                            models=model_library(settings, trusted=True)(), scores=scores,
                            llm=getattr(args, "llm", None))
    planner.ctx.limits = limits_check(settings, host.catalog)
    planner.ctx.image_size = image_size_reader(settings, confined=False)
    if getattr(args, "rounds", None) is not None:
        planner.rounds = args.rounds
    return planner


def _failed(exc: AgentError, as_json: bool) -> int:
    errors = exc.details.get("errors") or [exc.to_dict()]
    print(f"error: {exc.message}", file=sys.stderr)
    if as_json:
        _print_json({"errors": errors, "trace": exc.details.get("trace")})
    else:
        for e in errors:
            print(f"  [{e.get('type')}] {e.get('message')}", file=sys.stderr)
    return 1


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.agent_context import input_files

    try:
        images = input_files(args.input, image=args.image, mask=args.mask)
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None
    planner = _planner(args, settings)
    try:
        plan = planner.plan(args.prompt, seed=args.seed, width=args.width, height=args.height,
                            template=args.template, images=images)
    except AgentError as exc:
        return _failed(exc, args.json)
    if args.output:
        plan.graph.dump(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    if args.brief:
        print(f"planner: {plan.planner}  template: {plan.template}  mode: {plan.mode}  "
              f"labels: {', '.join(plan.labels)}")
        models = plan.trace.get("models") or {}
        if models.get("checkpoint"):
            print(f"  model: {models['checkpoint']} ({models.get('why')})")
        for note in plan.trace.get("notes") or []:
            print(f"  note: {note}")
        for r in plan.trace["rounds"]:
            print(f"  round {r['round']} {r['actor']:<16} {r['decision']:<14} "
                  f"{len(r['errors'])} problem(s), {len(r['fixes'])} fix(es)")
        usage = plan.usage
        print(f"  tokens: {usage.total_tokens}  cost: ${usage.cost_usd:.6f}")
        if not args.output:
            print(plan.graph.to_json())
        return 0
    _print_json({"graph": plan.graph.to_dict(), "template": plan.template, "labels": plan.labels,
                 "accepted": plan.accepted, "rounds": plan.rounds, "usage": plan.usage.to_dict(),
                 "trace": plan.trace})
    return 0


def cmd_scores(args: argparse.Namespace, settings: Settings) -> int:
    path = scores_path(settings.agent, settings.state_dir)
    rows: list[dict[str, Any]] = []
    model_rows: list[dict[str, Any]] = []
    sources: dict[str, int] = {}
    if path.is_file():
        with open_scores(settings.agent, settings.state_dir) as table:
            rows, model_rows, sources = table.rows(), table.model_rows(), table.sources()
    if args.json:
        _print_json({"path": str(path), "rows": rows, "models": model_rows, "sources": sources})
        return 0
    if not rows:
        print(f"no scored jobs yet: rate a job (orchestrator rate JOB 1..5) to teach the planner ({path})")
        return 0
    print(f"learned from {sources.get('rating', 0)} rating(s) and {sources.get('scorer', 0)} "
          f"scorer score(s) ({path})")
    print(f"{'label':<18} {'template':<22} {'count':>6} {'mean':>7}")
    for r in rows:
        print(f"{r['label']:<18} {r['template']:<22} {r['count']:>6} {r['mean']:>7.3f}")
    if model_rows:
        print(f"\nper model:\n{'label':<18} {'template':<22} {'model':<24} {'count':>6} {'mean':>7}")
        for r in model_rows:
            print(f"{r['label']:<18} {r['template']:<22} {r['model']:<24} {r['count']:>6} {r['mean']:>7.3f}")
    return 0


def cmd_rate(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.client import Client
    from orchestrator.server.ratings import MAX_STARS, MIN_STARS

    if not MIN_STARS <= args.score <= MAX_STARS:
        raise CliError(f"SCORE is {MIN_STARS}..{MAX_STARS} stars, got {args.score:g}")
    with Client(args.url, token=settings.effective_token(), state_dir=settings.state_dir) as client:
        out = client.job(args.id).rate(args.score)
    previous = "" if out.get("previous") is None else f" (was {out['previous']:g})"
    learned = "the agent learned from it" if out.get("learned") else "not a planned job: kept, not learned"
    print(f"{out['id']} rated {out['rating']:g}{previous}; {learned}")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    path = scores_path(settings.agent, settings.state_dir)
    if not path.is_file():
        count = 0
        if args.output:
            Path(args.output).write_text("", encoding="utf-8")
    else:
        with open_scores(settings.agent, settings.state_dir) as table:
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    count = table.export_jsonl(out)
            else:
                count = table.export_jsonl(sys.stdout)
    print(f"exported {count} record(s)", file=sys.stderr)
    return 0


def _eval_models(args: argparse.Namespace, settings: Settings
                 ) -> tuple[list[dict[str, Any]], str | None] | None:
    """The model library to evaluate against: ``--models FILE``, else a ``models.json`` beside
    the prompt set, else ``None`` (the configured models)."""
    path = Path(args.models) if args.models else Path(args.prompts).with_name("models.json")
    if not args.models and not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: cannot read a model library: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else data
    if not isinstance(models, list) or not all(isinstance(m, dict) and isinstance(m.get("name"), str)
                                               for m in models):
        raise CliError(f"{path}: expected {{\"models\": [{{\"name\": ..., \"family\": ...}}, ...]}}")
    default = data.get("default_model") if isinstance(data, dict) else None
    return [dict(m) for m in models], default if isinstance(default, str) else None


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    try:
        records = load_prompts(args.prompts)
    except OSError as exc:
        raise CliError(f"{args.prompts}: cannot read: {exc}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.split:
        records = [r for r in records if r.get("split") == args.split]
    if args.category:
        records = [r for r in records if r.get("category") in args.category]
    library = _eval_models(args, settings)
    planner = _planner(args, settings, learn=False)
    if library is not None:  # the set's model descriptions (as `orchestrator models --json` rows)
        from agents.context import models_from_entries

        models, default = library
        planner.ctx.models = models_from_entries(models)
        planner.ctx.default_model = default or planner.ctx.default_model
    catalog = planner.ctx.catalog

    def limits_check(graph: Any) -> list[dict[str, Any]]:
        from orchestrator.runtime.limits import check_limits

        return check_limits(graph, settings.limits, catalog)

    report = evaluate(planner, records, limits_check=limits_check)
    if args.json:
        _print_json({"summary": report.summary(), "groups": report.breakdown(),
                     "results": report.results})
    else:
        print(report.format())
    return 0


def register(sub: Any) -> None:
    """Add ``plan`` and ``agent {scores, export, eval}`` to the ``orchestrator`` command."""
    p = sub.add_parser("plan", help="plan a workflow graph for a prompt (print graph and trace)")
    p.add_argument("prompt", help="the text prompt")
    p.add_argument("--llm", metavar="MODEL", help="litellm model string; 'offline': no LLM")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the graph to FILE")
    p.add_argument("--rounds", type=int, help="critic and repair rounds at most")
    p.add_argument("--seed", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--template", help="use this template (select-and-adapt)")
    p.add_argument("--image", metavar="FILE", help="input image (image-to-image, inpainting)")
    p.add_argument("--mask", metavar="FILE", help="inpainting mask (the same as --input mask=FILE)")
    p.add_argument("--input", action="append", metavar="ROLE=FILE",
                   help="an input by role: image, mask, style, palette, reference, control (repeatable)")
    p.add_argument("--brief", action="store_true", help="a summary of the rounds, then the graph")
    p.add_argument("--json", action="store_true", help="errors as JSON (with the trace) on failure")
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("rate", help="rate a finished job's outputs 1..5 stars (the agent learns from it)")
    p.add_argument("id", metavar="JOB")
    p.add_argument("score", metavar="SCORE", type=float, help="1 (bad) .. 5 (best) stars")
    p.add_argument("--url", help="the daemon's URL (default: the running daemon's)")
    p.set_defaults(handler=cmd_rate)

    p = sub.add_parser("agent", help="the agent's score table, training data and evaluation")
    asub = p.add_subparsers(dest="agent_command", metavar="ACTION")
    a = asub.add_parser("scores", help="show what was learned: label x template (x model) scores")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_scores)
    a = asub.add_parser("export", help="write every scored (prompt, labels, graph, score) as JSONL")
    a.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    a.set_defaults(handler=cmd_export)
    a = asub.add_parser("eval", help="run the planner over a JSONL prompt set and print figures")
    a.add_argument("prompts", metavar="PROMPTS.jsonl")
    a.add_argument("--llm", metavar="MODEL", help="litellm model string; 'offline': no LLM")
    a.add_argument("--rounds", type=int, help="critic and repair rounds at most")
    a.add_argument("--models", metavar="FILE", help="model library to plan against (JSON: "
                   "{\"default_model\": ..., \"models\": [...]}); default: models.json beside the "
                   "prompt set, else the configured models")
    a.add_argument("--split", choices=("dev", "heldout"), help="only the records of this split")
    a.add_argument("--category", action="append", help="only this category (repeatable)")
    a.add_argument("--json", action="store_true", help="figures and per-prompt results as JSON")
    a.set_defaults(handler=cmd_eval)
