"""What the agent plans with: the block catalog, the template library, known models, scores.

The daemon (or the CLI) builds a :class:`PlanningContext` from the plugin host's
``catalog`` and ``templates``, the configured models and the score table; the agent
reads nothing else of the runtime.

>>> ctx = PlanningContext(catalog={}, templates={})
>>> ctx.native_size("tiny-sd"), ctx.native_size("an-sdxl-finetune")
(64, 512)
>>> models_from_entries([{"name": "dreamshaper", "family": "sdxl"}])["dreamshaper"].native
1024
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphs import BlockSpec, Graph, Template

if TYPE_CHECKING:
    from agents.scores import ScoreTable

FAMILY_NATIVE = {"tiny": 64, "sd1": 512, "sd15": 512, "sd2": 768, "sdxl": 1024, "sd3": 1024,
                 "flux": 1024}
DEFAULT_NATIVE = 512


@dataclass(frozen=True)
class ModelInfo:
    """A model the planner may reference: its name and native (training) size in pixels."""

    name: str
    native: int = DEFAULT_NATIVE
    family: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "native": self.native, "family": self.family}


BUILTIN_MODELS: dict[str, ModelInfo] = {
    "tiny-sd": ModelInfo("tiny-sd", 64, "tiny"),
    "tiny-sdxl": ModelInfo("tiny-sdxl", 64, "tiny"),
}


def models_from_entries(entries: Iterable[Mapping[str, Any]], *, builtins: bool = True
                        ) -> dict[str, ModelInfo]:
    """Known models from config entries (``name``, optional ``native_size`` or ``family``)."""
    out = dict(BUILTIN_MODELS) if builtins else {}
    for entry in entries:
        name = entry.get("name")
        if not name:
            continue
        family = str(entry.get("family") or "").lower()
        native = entry.get("native_size") or FAMILY_NATIVE.get(family) or DEFAULT_NATIVE
        out[str(name)] = ModelInfo(str(name), int(native), family)
    return out


def template_task(graph: Graph) -> str:
    """What a template needs as input: ``inpaint``, ``image-to-image`` or ``text-to-image``."""
    declared = graph.meta.get("labels", {}).get("tasks") if isinstance(graph.meta.get("labels"), dict) \
        else None
    if declared:
        return str(declared[0])
    blocks = {n.block for n in graph.nodes.values()}
    if any(b.endswith(("load_mask", ".inpaint")) for b in blocks):
        return "inpaint"
    if any(b.endswith(".load") for b in blocks):
        return "image-to-image"
    return "text-to-image"


def template_labels(template: Template) -> set[str]:
    """Every label a template declares (subjects, styles, formats such as ``wide``)."""
    return {str(v).lower() for values in template.labels.values() for v in values}


@dataclass
class PlanningContext:
    """The catalog, the templates, the models and the score table one plan reads."""

    catalog: Mapping[str, BlockSpec]
    templates: Mapping[str, Template]
    models: Mapping[str, ModelInfo] = field(default_factory=lambda: dict(BUILTIN_MODELS))
    scores: ScoreTable | None = None
    default_model: str | None = None

    @classmethod
    def build(
        cls,
        catalog: Mapping[str, BlockSpec],
        templates: Mapping[str, Template] | Iterable[Template],
        *,
        models: Mapping[str, ModelInfo] | Iterable[Mapping[str, Any]] | None = None,
        scores: ScoreTable | None = None,
        default_model: str | None = None,
    ) -> PlanningContext:
        """A context from a plugin host's ``catalog`` and ``templates`` and config model entries."""
        if not isinstance(templates, Mapping):
            templates = {t.name: t for t in templates}
        if models is None:
            known = dict(BUILTIN_MODELS)
        elif isinstance(models, Mapping):
            known = dict(models)
        else:
            known = models_from_entries(models)
        return cls(catalog=catalog, templates=dict(templates), models=known, scores=scores,
                   default_model=default_model)

    def native_size(self, model: str | None) -> int:
        """The native size of ``model`` (the default when unknown)."""
        if model and model in self.models:
            return self.models[model].native
        if model and model in BUILTIN_MODELS:
            return BUILTIN_MODELS[model].native
        return DEFAULT_NATIVE

    def fallback_model(self, preferred: str | None = None) -> str | None:
        """The model to use where a reference names an unknown one."""
        for name in (preferred, self.default_model):
            if name and name in self.models:
                return name
        return next(iter(self.models), None)
