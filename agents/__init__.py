"""The agent: an LLM planner and critic (litellm) that builds workflow graphs, and an offline planner.

Imports ``graphs`` and the catalog description only; never the scheduler or Ray.

A prompt becomes a graph in three steps: labels and size from the prompt
(:mod:`agents.labels`, :mod:`agents.request`), a proposal (the offline planner picks and
adapts a template by the score table; an LLM selects-and-adapts or composes), and the
repair loop (validation, rule checks and fixes, a critic, bounded rounds), each round kept
in the trace. Scored jobs teach the score table (:mod:`agents.scores`).

>>> from agents import Planner, PlanningContext
>>> from graphs.library import builtin_templates
>>> planner = Planner(PlanningContext.build({}, builtin_templates()))
>>> planner.request("a red fox in the snow, seed 3").labels.subjects
['wildlife']
"""

from agents.context import BUILTIN_MODELS, ModelInfo, PlanningContext, models_from_entries
from agents.errors import AgentError
from agents.evaluate import EvalReport, evaluate, load_prompts
from agents.factory import build_planner, open_scores, scores_path
from agents.labels import Labels, classify
from agents.llm import LLMClient, LLMConfig, Usage
from agents.planner import Plan, Planner
from agents.request import Request, parse_request
from agents.scores import ScoreTable

__all__ = [
    "BUILTIN_MODELS", "AgentError", "EvalReport", "LLMClient", "LLMConfig", "Labels", "ModelInfo",
    "Plan", "Planner", "PlanningContext", "Request", "ScoreTable", "Usage", "build_planner",
    "classify", "evaluate", "load_prompts", "models_from_entries", "open_scores", "parse_request",
    "scores_path",
]
