"""Ratings of a job's outputs: the route, the request body and the star scale.

A user rates a succeeded job 1..5 stars (``POST /jobs/{id}/rating`` with ``{"score": 4}``);
rating again replaces the rating. A planned job's rating teaches the agent's score table
(label x template x model) as ``(stars - 1) / 4`` in ``0..1``, the same mapping as
:func:`agents.scores.stars_to_score`.

>>> RatingRequest(score=4).score, stars_to_unit(4)
(4.0, 0.75)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.protocol import JOB_RATING as JOB_RATING  # re-exported; defined with the routes

MIN_STARS, MAX_STARS = 1, 5


class RatingRequest(BaseModel):
    """``POST /jobs/{id}/rating``: how good the job's outputs are, 1 (bad) to 5 (best) stars."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    score: float = Field(..., ge=MIN_STARS, le=MAX_STARS, description="1..5 stars (halves allowed)")


def stars_to_unit(stars: float) -> float:
    """1..5 stars as a score in ``0..1``."""
    return (float(stars) - MIN_STARS) / (MAX_STARS - MIN_STARS)
