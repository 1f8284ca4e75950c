"""The orchestrator runtime. A plugin author needs only what this module exports::

    from orchestrator import Block, In, Out, Params, Resources, block, hookimpl

and, for blocks that take models, ``model_name(ref)`` and ``resolve_device(ctx.device)``.
"""

from graphs.model_refs import model_name
from graphs.types import register_port_type
from orchestrator.blocks import Block, In, Out, Params, Resources, block
from orchestrator.client import AsyncClient, Client
from orchestrator.context import Context
from orchestrator.errors import BlockError, JobCancelled, JobError
from orchestrator.hookspecs import hookimpl
from orchestrator.runtime.devices import resolve_device

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Block",
    "BlockError",
    "Client",
    "Context",
    "In",
    "JobCancelled",
    "JobError",
    "Out",
    "Params",
    "Resources",
    "__version__",
    "block",
    "hookimpl",
    "model_name",
    "register_port_type",
    "resolve_device",
]
