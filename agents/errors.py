"""Agent errors: one flat family, each an error *and* a plain dict.

:class:`AgentError` reads like :class:`graphs.GraphError`: ``to_dict()`` gives ``type``,
``message``, ``node``, ``field`` and any details, so the repair loop can hand rule
problems to the critic next to validation errors, and the daemon can store them.

The ``type`` values:

- ``llm``: the model could not be reached or kept failing after the bounded retries.
- ``bad_answer``: the model answered, but not with the JSON object that was asked for.
- ``compose``: a composition step names a template, node or port that does not exist.
- ``rule``: a rule check failed (``rule`` names which: ``size``, ``aspect``, ``tiling``,
  ``negative_prompt``, ``model``, ``prompt``).
- ``unrepaired``: the repair loop ran out of rounds; ``errors`` holds the last problems.
- ``config``: the agent's settings are unusable (no templates, an unknown template).
"""

from __future__ import annotations

from graphs.errors import StructuredError


class AgentError(StructuredError):
    """One problem the agent met.

    >>> AgentError("no graph", type="bad_answer").to_dict()
    {'type': 'bad_answer', 'message': 'no graph', 'node': None, 'field': None}
    """

    type: str = "agent"
