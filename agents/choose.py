"""Pick a template for a prompt's labels from the score table (ComfyGen-IC's table, learned).

Each template gets, for each of the prompt's subject, style and format labels, the
table's mean score shrunk towards a prior: 0.6 when the template declares the label, 0.5
when its description names it, 0.4 otherwise (a prior worth ``PRIOR_WEIGHT`` jobs). The
template's score is the mean over the labels. Only templates for the prompt's task
(text-to-image, image-to-image, inpaint) compete, when there are any; templates whose
blocks the catalog lacks come last. Ties go to the smaller graph, then to a template on
the default model, then the name.
"""

from __future__ import annotations

import re
from typing import Any

from agents.context import PlanningContext, template_labels, template_task
from agents.labels import Labels
from agents.sizes import primary_model
from graphs import Template

PRIOR_WEIGHT = 2.0
PRIOR_DECLARED = 0.6
PRIOR_DESCRIBED = 0.5
PRIOR_NONE = 0.4


def _prior(label: str, declared: set[str], description: str) -> float:
    if label in declared:
        return PRIOR_DECLARED
    if re.search(r"\b" + re.escape(label) + r"\b", description):
        return PRIOR_DESCRIBED
    return PRIOR_NONE


def _available(template: Template, ctx: PlanningContext) -> bool:
    return all(n.block in ctx.catalog for n in template.graph.nodes.values())


def rank_templates(labels: Labels, ctx: PlanningContext) -> list[dict[str, Any]]:
    """Every competing template with its score and per-label values, best first."""
    cells = ctx.scores.cells() if ctx.scores is not None else {}
    wanted = [*labels.content(), *labels.formats]
    pool = [t for t in ctx.templates.values() if template_task(t.graph) == labels.task]
    pool = pool or list(ctx.templates.values())
    default_model = ctx.fallback_model()
    ranked = []
    for t in pool:
        declared = template_labels(t)
        description = t.description.lower()
        values: dict[str, float] = {}
        for label in wanted or [labels.task]:
            prior = _prior(label, declared, description) if wanted else 0.5
            count, mean = cells.get((label, t.name), (0, 0.0))
            values[label] = (PRIOR_WEIGHT * prior + count * mean) / (PRIOR_WEIGHT + count)
        score = sum(values.values()) / len(values)
        ranked.append({"template": t.name, "score": round(score, 4),
                       "labels": {k: round(v, 4) for k, v in values.items()},
                       "available": _available(t, ctx), "nodes": len(t.graph.nodes),
                       "default_model": primary_model(t.graph, ctx.catalog) == default_model})
    ranked.sort(key=lambda r: (not r["available"], -r["score"], r["nodes"], not r["default_model"],
                               r["template"]))
    return ranked


def choose_template(labels: Labels, ctx: PlanningContext) -> Template | None:
    """The best template for ``labels``, or ``None`` when the library is empty."""
    ranked = rank_templates(labels, ctx)
    return ctx.templates[ranked[0]["template"]] if ranked else None
