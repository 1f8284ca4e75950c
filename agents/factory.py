"""Build a planner from settings: what the daemon and the CLI call.

``settings`` is the ``agent`` section of the orchestrator's settings (or anything with
the same attributes: ``llm``, ``base_url``, ``api_key_env``, ``rounds``, ``timeout_s``,
``retries``, ``temperature``, ``embedding_model``, ``default_model``, ``scores``)::

    planner = build_planner(settings.agent, host.catalog, host.templates,
                            models=settings.models, scores=open_scores(settings.agent, settings.state_dir))
    plan = planner.plan("a wide panorama of a mountain lake at dawn")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agents.context import ModelInfo, PlanningContext
from agents.embeddings import local_embedder
from agents.llm import LLMClient, LLMConfig
from agents.planner import DEFAULT_ROUNDS, Planner
from agents.scores import ScoreTable
from graphs import BlockSpec, Template


def scores_path(settings: Any, state_dir: str | Path) -> Path:
    """Where the score table lives: ``settings.scores``, else ``<state_dir>/agent/scores.sqlite``."""
    configured = getattr(settings, "scores", None)
    return Path(configured) if configured else Path(state_dir) / "agent" / "scores.sqlite"


def open_scores(settings: Any, state_dir: str | Path) -> ScoreTable:
    """The score table file of these settings, created when missing."""
    return ScoreTable(scores_path(settings, state_dir))


def build_planner(
    settings: Any,
    catalog: Mapping[str, BlockSpec],
    templates: Mapping[str, Template] | Iterable[Template],
    *,
    models: Mapping[str, ModelInfo] | Iterable[Mapping[str, Any]] | None = None,
    scores: ScoreTable | None = None,
    llm: str | LLMConfig | None = None,
    env: Mapping[str, str] | None = None,
) -> Planner:
    """A :class:`Planner` for these agent settings; ``llm`` overrides the configured model
    (``"offline"`` forces the offline planner; an :class:`LLMConfig` is used as it is)."""
    ctx = PlanningContext.build(catalog, templates, models=models, scores=scores,
                                default_model=getattr(settings, "default_model", None))
    if scores is not None and ctx.model_score is None:  # the user's checkpoints ranked by ratings
        ctx.model_score = scores.model_score
    if isinstance(llm, LLMConfig):
        config: LLMConfig | None = llm
    else:
        config = None if llm == "offline" else LLMConfig.from_settings(settings, model=llm, env=env)
    return Planner(
        ctx,
        llm=LLMClient(config) if config is not None else None,
        rounds=int(getattr(settings, "rounds", DEFAULT_ROUNDS)),
        embedder=local_embedder(getattr(settings, "embedding_model", None)),
    )
