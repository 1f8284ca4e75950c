"""The model registry's error: a :class:`~orchestrator.errors.BlockError` of type ``model``."""

from __future__ import annotations

from orchestrator.errors import BlockError


class ModelError(BlockError):
    """A model is not configured, not where its entry says, in a refused format, or broken.

    ``to_dict()`` carries ``reason`` (``unknown``, ``missing``, ``pickle``, ``format``,
    ``component``, ``load``) and, where it applies, ``model`` and ``path``.

    >>> ModelError("no model 'x'", reason="unknown", model="x").to_dict()["type"]
    'model'
    """

    type = "model"
