"""The orchestrator's errors: :class:`BlockError` and :class:`JobError` families.

Each error is also a dict (``to_dict()``) with ``type``, ``message``, ``node``, ``field``
like :class:`graphs.GraphError`, so the API, the CLI and the agent read them the same way.

``BlockError`` types: ``declaration`` (a block class is declared wrongly), ``plugin`` (a
plugin failed to load or register), ``duplicate_block``, ``block_failed`` (a block raised
while running), ``bad_output`` (a block returned the wrong outputs), ``model`` (a model
is missing or cannot be loaded), ``input`` (a block's input file or value is unusable).

``JobError`` types: ``cancelled``, ``timeout``, ``worker_died``, ``job``.
"""

from __future__ import annotations

from typing import Any

from graphs.errors import StructuredError


class _ErrorDict(StructuredError):
    """The runtime's errors share the structured-error base of ``graphs``."""


class BlockError(_ErrorDict):
    """A block could not be declared, registered, loaded or run.

    >>> BlockError("boom", type="block_failed", node="n").to_dict()["node"]
    'n'
    """

    type = "block"


class BlockDeclarationError(BlockError, TypeError):
    """A block class is declared wrongly (raised by ``@block`` at import time)."""

    type = "declaration"


class PluginError(BlockError):
    """One or more plugins failed to load (raised only in strict mode)."""

    type = "plugin"

    def __init__(self, problems: list[BlockError]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems) or "plugin error")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["errors"] = [p.to_dict() for p in self.problems]
        return out


class JobError(_ErrorDict):
    """A job failed as a whole (cancelled, timed out, lost its worker too often)."""

    type = "job"


class JobCancelled(JobError):
    """Raised inside a block by ``ctx.check_cancelled()`` once its job is cancelled."""

    type = "cancelled"


def plain_error(exc: BaseException, node: str, block: str) -> BlockError | JobError:
    """Our error for ``exc`` as a plain, always-picklable instance of a base class."""
    if isinstance(exc, (BlockError, JobError)):
        cls: type[BlockError | JobError]
        cls = JobCancelled if isinstance(exc, JobCancelled) else (
            JobError if isinstance(exc, JobError) else BlockError)
        details = {k: v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v)
                   for k, v in exc.details.items()}
        return cls(exc.message, type=exc.type, node=exc.node or node, field=exc.field, **details)
    return BlockError(f"node {node!r} ({block}) failed in its worker: {type(exc).__name__}: {exc}",
                      type="block_failed", node=node, block=block, exception=type(exc).__name__)
