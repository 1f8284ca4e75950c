"""Graph errors: one flat family, each an error *and* a plain dict.

Every problem found in a graph is a :class:`GraphError` with a ``type`` (a stable,
machine-readable name), a human ``message`` that names the node, the field and the
value, and the ``node`` / ``field`` it concerns. Validation collects every problem and
raises them once, together, as :class:`GraphValidationError`.

The ``type`` values:

- ``format``: the document is not graph JSON (bad JSON, wrong ``format`` tag, bad shape).
- ``duplicate_node``: two nodes share one id.
- ``unknown_block``: a node names a block the catalog does not have.
- ``unknown_input``: a node wires an input its block does not declare.
- ``missing_input``: a required input is not wired.
- ``bad_reference``: an input is not of the form ``"node.port"``.
- ``dangling_reference``: an input refers to a node or an output port that does not exist.
- ``type_mismatch``: an output of one type is wired to an input of another.
- ``cycle``: the nodes form a cycle.
- ``invalid_param``: a param fails its block's schema (unknown, missing, wrong type, or
  out of bounds; the dict then carries ``value`` and, where there is one, ``bound``).
- ``invalid_tile``: a ``tile`` annotation on a block that does not tile, or a bad one.
"""

from __future__ import annotations

from typing import Any


class StructuredError(Exception):
    """An error that is also a plain dict: ``type``, ``message``, ``node``, ``field`` and details.

    The base of every package's error family (``GraphError`` here, ``BlockError`` and
    ``JobError`` in the runtime, ``AgentError`` in the agent), so the API, the CLI and the
    agent's repair loop read them all the same way.
    """

    type: str = "error"

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        node: str | None = None,
        field: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        self.node = node
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The error as the dict the API, the CLI and the agent all read."""
        out: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "node": self.node,
            "field": self.field,
        }
        out.update(self.details)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.type}, node={self.node!r}, field={self.field!r}: "
                f"{self.message})")


class GraphError(StructuredError):
    """One problem in a workflow graph.

    >>> GraphError("no such block", type="unknown_block", node="n1", field="block").to_dict()
    {'type': 'unknown_block', 'message': 'no such block', 'node': 'n1', 'field': 'block'}
    """

    type: str = "graph"


class GraphValidationError(GraphError):
    """Every problem of one graph, raised once.

    ``errors`` holds the individual :class:`GraphError`; ``to_dict()`` lists them too.
    """

    type = "validation"

    def __init__(self, errors: list[GraphError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        head = "; ".join(e.message for e in self.errors[:3])
        more = f" (and {count - 3} more)" if count > 3 else ""
        super().__init__(f"graph has {count} problem{'s' if count != 1 else ''}: {head}{more}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["errors"] = [e.to_dict() for e in self.errors]
        return out
