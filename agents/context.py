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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphs import BlockSpec, Graph, Template
from graphs.library import TemplateInput

if TYPE_CHECKING:
    from agents.scores import ScoreTable

FAMILY_NATIVE = {"tiny": 64, "sd1": 512, "sd15": 512, "sd2": 768, "sdxl": 1024, "sd3": 1024,
                 "flux": 1024}
DEFAULT_NATIVE = 512
KINDS = ("checkpoint", "lora", "embedding", "controlnet", "vae", "upscaler", "clip_vision",
         "ip_adapter", "onnx")


def family_native(family: str | None) -> int:
    """The native size of a family: SD 1.x 512, SD 2.x 768 (its v-prediction models; an SD 2.x
    epsilon model, ``sd2`` without ``-v``, is the 512 base), SDXL 1024.

    >>> family_native("sd2-v"), family_native("sd2"), family_native("sdxl-inpaint"), family_native("")
    (768, 512, 1024, 512)
    """
    fam = str(family or "").lower()
    if fam.startswith("sd2") and not fam.startswith("sd2-v"):
        return 512
    return FAMILY_NATIVE.get(base_family(fam), DEFAULT_NATIVE)


def base_family(family: str | None) -> str:
    """The architecture class of a family name: ``sd1``, ``sd2``, ``sdxl``, ... (variants such as
    ``-inpaint``, ``-v`` or ``-refiner`` dropped).

    >>> base_family("sd2-v-inpaint"), base_family("SDXL"), base_family(None)
    ('sd2', 'sdxl', '')
    """
    return str(family or "").lower().split("-")[0]


@dataclass(frozen=True)
class ModelInfo:
    """A model the planner may reference: its name, native (training) size in pixels, family
    (``sd1``, ``sd2-v``, ``sdxl``, ``sd1-inpaint``, ...), kind (``checkpoint``, ``lora``,
    ``controlnet``, ...) and whether it is a built-in random-weight test model."""

    name: str
    native: int = DEFAULT_NATIVE
    family: str = ""
    kind: str = "checkpoint"
    builtin: bool = False

    @property
    def base(self) -> str:
        return base_family(self.family)

    @property
    def variant(self) -> str:
        """``inpaint``, ``refiner`` or ``""``."""
        fam = self.family.lower()
        return "inpaint" if fam.endswith("-inpaint") else "refiner" if fam.endswith("-refiner") else ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "native": self.native, "family": self.family, "kind": self.kind,
                "builtin": self.builtin}


BUILTIN_MODELS: dict[str, ModelInfo] = {
    "tiny-sd": ModelInfo("tiny-sd", 64, "sd1", builtin=True),
    "tiny-sd-inpaint": ModelInfo("tiny-sd-inpaint", 64, "sd1-inpaint", builtin=True),
    "tiny-sdxl": ModelInfo("tiny-sdxl", 64, "sdxl", builtin=True),
    "tiny-controlnet": ModelInfo("tiny-controlnet", 64, "sd1", "controlnet", builtin=True),
    "tiny-clip-vision": ModelInfo("tiny-clip-vision", 64, "", "clip_vision", builtin=True),
    "tiny-ip-adapter": ModelInfo("tiny-ip-adapter", 64, "sd1", "ip_adapter", builtin=True),
}


def models_from_entries(entries: Iterable[Mapping[str, Any]], *, builtins: bool = True
                        ) -> dict[str, ModelInfo]:
    """Known models from model descriptions: config entries (``name``, optional ``family``,
    ``native_size``) or the rows of the model library (``orchestrator models --json``: ``name``,
    ``kind``, ``family``, ``origin``, ``status``). Rows with ``status: "error"`` are left out;
    built-in names keep their built-in description."""
    out = dict(BUILTIN_MODELS) if builtins else {}
    for entry in entries:
        name = entry.get("name")
        if not name or not isinstance(name, str) or entry.get("status") == "error":
            continue
        if name in BUILTIN_MODELS or entry.get("origin") == "builtin":
            if name not in out and name in BUILTIN_MODELS:
                out[name] = BUILTIN_MODELS[name]
            continue
        family = str(entry.get("family") or "").lower()
        if family == "auto":
            family = ""
        kind = str(entry.get("kind") or "checkpoint").lower()
        kind = kind if kind in KINDS else "checkpoint" if kind == "file" and not family else kind
        native = entry.get("native_size") or family_native(family)
        out[name] = ModelInfo(name, int(native), family, kind)
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


def template_inputs(template: Template) -> list[TemplateInput]:
    """The named inputs of a template: those it declares (``meta.inputs``), else one per loading
    node of a template that declares none (``load_mask`` -> ``mask``, the first ``load`` ->
    ``image``, others by node id)."""
    declared = template.inputs
    if declared or "inputs" in template.graph.meta:
        return declared
    out: list[TemplateInput] = []
    roles: set[str] = set()
    for node_id, node in template.graph.nodes.items():
        if node.block.endswith(".load_mask"):
            role = "mask"
        elif node.block.endswith(".load"):
            role = "image" if "image" not in roles else node_id
        else:
            continue
        roles.add(role)
        out.append(TemplateInput(role, node_id))
    return out


def expected_kind(block: str, param: str = "model") -> str:
    """The kind of model a block's param names: ``onnx`` for ONNX blocks, ``controlnet``,
    ``ip_adapter`` (``adapter``), ``clip_vision`` for image embeddings, else ``checkpoint``."""
    if param == "adapter":
        return "ip_adapter"
    if block.startswith("onnx."):
        return "onnx"
    if block.endswith("controlnet"):
        return "controlnet"
    if block.endswith("image_embed"):
        return "clip_vision"
    return "checkpoint"


def missing_models(template: Template, ctx: PlanningContext) -> list[tuple[str, str]]:
    """``(name, kind)`` of the models other than checkpoints that ``template`` names and the
    context's model library lacks (a depth estimator's ONNX file, ...): it cannot run without them."""
    out = []
    for node in template.graph.nodes.values():
        for param in ("model", "adapter"):
            ref = node.params.get(param)
            name = ref if isinstance(ref, str) else ref.get("name") if isinstance(ref, dict) else None
            if not isinstance(name, str) or name in BUILTIN_MODELS or name in ctx.models:
                continue
            if name.removesuffix(".onnx") in ctx.models or f"{name}.onnx" in ctx.models:
                continue
            kind = expected_kind(node.block, param)
            if kind != "checkpoint" and (name, kind) not in out:  # a checkpoint slot is filled by the planner
                out.append((name, kind))
    return out


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
    # learned preference of a model for a prompt's labels (higher is better); None: names decide
    model_score: Callable[[list[str], str], float] | None = None
    # the daemon's limits check: graph -> problems ({"type", "message", "node", "field", "value",
    # "bound"}); None: no limits known here
    limits: Callable[[Graph], list[dict[str, Any]]] | None = None
    # the (width, height) of a given input file, where the caller can read it safely (the CLI's
    # local files; None: unknown, and nothing is read here): what an outpainting pads to an aspect
    image_size: Callable[[str], tuple[int, int] | None] | None = None

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
        users = [m.name for m in self.checkpoints() if not m.builtin]
        return users[0] if users else next(iter(self.models), None)

    def checkpoints(self) -> list[ModelInfo]:
        """The models a checkpoint slot may take (no refiners), the user's before the built-ins."""
        found = [m for m in self.models.values() if m.kind == "checkpoint" and m.variant != "refiner"]
        return sorted(found, key=lambda m: m.builtin)

    def of_kind(self, kind: str) -> list[ModelInfo]:
        return [m for m in self.models.values() if m.kind == kind]
