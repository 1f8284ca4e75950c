"""The orchestrator runtime. A plugin author needs only what this module exports::

    from orchestrator import Block, In, Out, Params, Resources, block, hookimpl

and, for blocks that take models, ``model_name(ref)`` and ``resolve_device(ctx.device)``;
``ctx.models`` is a :class:`Models` (``ctx.models.info(ref) -> ModelInfo``, ``.unet(ref)``,
``.vae(ref)``, ``.tokenizers(ref)``, ``.text_encoders(ref)``, ``.controlnet(ref)``,
``.image_encoder(ref)``, ``.upscaler(name)``, ``.onnx(ref, part)``, ``.scheduler(ref)``, ...;
see :mod:`orchestrator.model_access`).

A plugin that imports ComfyUI node classes onto its blocks (the ``register_comfy_mappings``
hook) writes its mappings with :class:`ComfyMapping`; a mapping's ``convert`` function gets a
:class:`NodeContext` and returns, per ComfyUI output, one of the import's values: :class:`Data`,
:class:`Model` (with :class:`ModelMerge`), :class:`Resource`, :class:`Const`, :class:`Cond`
(with :class:`PairOp`), :class:`MaskedLatent` or :class:`Lazy`; it raises :class:`Unresolved` for a
node it cannot build.
"""

from graphs.comfy.mapping import (
    ComfyMapping,
    Cond,
    Const,
    Data,
    Lazy,
    MaskedLatent,
    Model,
    ModelMerge,
    NodeContext,
    PairOp,
    Resource,
    Unresolved,
)
from graphs.model_refs import model_name
from graphs.types import register_port_type
from orchestrator.blocks import Block, In, Out, Params, Resources, block
from orchestrator.client import AsyncClient, Client
from orchestrator.context import Context
from orchestrator.errors import BlockError, JobCancelled, JobError
from orchestrator.hookspecs import hookimpl
from orchestrator.model_access import ModelInfo, ModelProvider, Models
from orchestrator.runtime.devices import resolve_device

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Block",
    "BlockError",
    "Client",
    "ComfyMapping",
    "Cond",
    "Const",
    "Context",
    "Data",
    "In",
    "JobCancelled",
    "JobError",
    "Lazy",
    "MaskedLatent",
    "Model",
    "ModelInfo",
    "ModelMerge",
    "ModelProvider",
    "Models",
    "NodeContext",
    "Out",
    "PairOp",
    "Params",
    "Resource",
    "Resources",
    "Unresolved",
    "__version__",
    "block",
    "hookimpl",
    "model_name",
    "register_port_type",
    "resolve_device",
]
