"""Pick a template for a prompt's labels from the score table (ComfyGen-IC's table, learned).

Each template gets, for each of the prompt's subject, style and format labels, the
table's mean score shrunk towards a prior: 0.6 when the template declares the label, 0.5
when its description names it, 0.4 otherwise (a prior worth ``PRIOR_WEIGHT`` jobs). The
template's score is the mean over the labels. Only templates for the prompt's task
(text-to-image, image-to-image, inpaint) compete, when there are any. A prompt that asks
for a composition (its ``intents``: style, palette, regions, pose, ...) gets the templates
that declare that intent; templates that need an intent compete only when it is asked.
A shape the prompt asks for (``wide``, ``tall``, ``large``) goes first: templates that
declare it rank above those that do not. Wide and tall count as a panorama's shape only
from about 2:1 (1:2) on (``PANORAMA_FROM``) or when the prompt names a panorama (360,
ultra-wide): an aspect the prompt gives (``labels.aspect``: a size, a ratio, a paper size,
"portrait orientation") between 1:2 and 2:1, such as 16:9 or 768x1152, is what a ComfyUI
user makes with the plain txt2img / hires template at the family's native area, so it is
planned so; the panorama template (tiled denoising across a long canvas) is kept for
the shapes the plain one cannot make without repeating its subject.
A model family the prompt asks for ("with SDXL": ``labels.family``) puts the templates made
for that family (``meta.model.family``) first. Templates whose blocks the catalog lacks come
last. A template for a composition the prompt does not ask for (``hires_fix`` competing on
labels alone) gets no more than the lowest prior on any label, so subjects and styles
(landscapes, urban, detailed) never make it win over the plain one; ratings still can.
Ties go to the plain template of the task (``meta.plain``; in a library that marks
none, its smallest graph without a format label), then the name.
"""

from __future__ import annotations

import re
from typing import Any

from agents.context import PlanningContext, base_family, template_labels, template_task
from agents.labels import Labels
from agents.scores import explore
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


def _task(template: Template) -> str:
    return template.task or template_task(template.graph)


def candidates(labels: Labels, ctx: PlanningContext) -> tuple[list[Template], str]:
    """The templates that compete for ``labels`` and how the pool was drawn (for the trace)."""
    everything = list(ctx.templates.values())
    if labels.intents:
        for intent in labels.intents:
            asked = [t for t in everything if intent in t.intents]
            same_task = [t for t in asked if _task(t) == labels.task]
            if same_task or asked:
                return same_task or asked, f"intent {intent!r}"
    plain = [t for t in everything if not t.requires_intent]
    pool = [t for t in plain if _task(t) == labels.task]
    # a template made for a shape (a panorama, a large image) competes only when that shape is asked
    shaped = [t for t in pool if _shape_fits(t, labels)]
    if shaped:
        return shaped, f"task {labels.task!r}"
    if pool:
        return pool, f"task {labels.task!r}"
    return plain or everything, "every template (none for the task)"


PANORAMA_FROM = 2.0  # width / height (or its inverse) from which wide / tall is a panorama's shape


def shape_formats(labels: Labels) -> set[str]:
    """The prompt's format labels that ask for a shaped template: ``wide`` and ``tall`` only
    when the aspect it gives (if any) is a panorama's, at least 2:1 or 1:2."""
    formats = set(labels.formats)
    aspect = labels.aspect
    if aspect is not None and aspect > 0 and max(aspect, 1 / aspect) < PANORAMA_FROM - 1e-6:
        formats -= {"wide", "tall"}
    return formats


def _shape_fits(template: Template, labels: Labels) -> bool:
    formats = {str(f).lower() for f in template.labels.get("formats", [])}
    return not formats or bool(formats & shape_formats(labels))


def rank_templates(labels: Labels, ctx: PlanningContext) -> list[dict[str, Any]]:
    """Every competing template with its score and per-label values, best first."""
    cells = ctx.scores.cells() if ctx.scores is not None else {}
    wanted = [*labels.content(), *labels.formats]
    shaped = shape_formats(labels)
    pool, _why = candidates(labels, ctx)
    # a library that marks no plain template (a plugin's, an older one): the smallest graph of
    # the task is its plain one
    legacy_plain = None if any(t.plain for t in pool) else \
        min(pool, key=lambda t: (bool(t.labels.get("formats")), len(t.graph.nodes), t.name)).name \
        if pool else None
    ranked = []
    for t in pool:
        declared = template_labels(t)
        description = t.description.lower()
        # a composition the prompt did not ask for (a second pass, a tiled one) wins no tie on what the
        # picture shows: its priors are at most the plain template's, only ratings can lift it
        unasked = bool(t.intents) and not set(t.intents) & set(labels.intents)
        values: dict[str, float] = {}
        for label in wanted or [labels.task]:
            prior = _prior(label, declared, description) if wanted else 0.5
            if unasked:
                prior = min(prior, PRIOR_NONE)
            count, mean = cells.get((label, t.name), (0, 0.0))
            values[label] = (PRIOR_WEIGHT * prior + count * mean) / (PRIOR_WEIGHT + count)
        score = sum(values.values()) / len(values)
        formats = {str(f).lower() for f in t.labels.get("formats", [])}
        model = t.graph.meta.get("model") if isinstance(t.graph.meta.get("model"), dict) else {}
        ranked.append({"template": t.name, "score": round(score, 4),
                       "formats": len(formats & shaped),
                       "family": bool(labels.family) and base_family(model.get("family")) == labels.family,
                       "labels": {k: round(v, 4) for k, v in values.items()},
                       "available": _available(t, ctx), "plain": t.plain or t.name == legacy_plain,
                       "nodes": len(t.graph.nodes)})
    ranked.sort(key=lambda r: (not r["available"], -r["formats"], not r["family"], -r["score"],
                               not r["plain"], r["template"]))
    return explore(ranked, cells, wanted or [labels.task])  # UCB1 among close candidates, once rated


def choose_template(labels: Labels, ctx: PlanningContext) -> Template | None:
    """The best template for ``labels``, or ``None`` when the library is empty."""
    ranked = rank_templates(labels, ctx)
    return ctx.templates[ranked[0]["template"]] if ranked else None
