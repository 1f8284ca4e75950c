"""The narrow context a block's ``run`` receives.

A block reaches the outside world only through its context: ``ctx.models`` (load a model
by reference), ``ctx.progress`` (report step i of n, with an optional preview), ``ctx.tiles`` (run tile
functions wherever the tiles of a tiled node go, see :mod:`orchestrator.tiling`),
``ctx.cancelled()`` / ``ctx.check_cancelled()``, a seeded ``ctx.rng`` and
``ctx.generator()``, ``ctx.device``, ``ctx.resolve_input(path)`` for files it reads and
``ctx.save_image(name, image)`` for what it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from orchestrator.errors import BlockError, JobCancelled

if TYPE_CHECKING:
    import torch


class ModelProvider(Protocol):
    """Loads models by reference and keeps them resident (see the model registry)."""

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        """The loaded model (or one component of it) named by ``ref``."""
        ...


class OutputSink(Protocol):
    """Where ``ctx.save_image`` writes: returns the paths (or names) it stored."""

    def save_image(self, node: str, name: str, image: np.ndarray) -> list[str]: ...


class _NoModels:
    def __init__(self, node: str) -> None:
        self.node = node

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        raise BlockError(
            f"node {self.node!r} needs model {ref!r} but this executor has no model registry",
            type="model", node=self.node, field="params.model",
        )


ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class Context:
    """What a running block may use. Built by the executor (or a worker) for one node."""

    node: str
    block: str
    seed: int
    device: str = "cpu"
    job: str | None = None
    models: ModelProvider = None  # type: ignore[assignment]
    outputs: OutputSink | None = None
    input_root: Path | None = None
    confine_inputs: bool = False
    on_event: ProgressFn | None = None
    is_cancelled: Callable[[], bool] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    limits: Any = None  # size limits checked around run (orchestrator.limits); None: unchecked

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = _NoModels(self.node)
        self.rng = np.random.default_rng(self.seed)

    @property
    def tiles(self) -> Any:
        """The tile runner of this node: runs tile functions here, or over every worker when
        the scheduler runs a tiled node (see :mod:`orchestrator.tiling`)."""
        runner = self.extra.get("tiles")
        if runner is None:
            from orchestrator.tiling import make_runner

            runner = self.extra["tiles"] = make_runner(self)
        return runner

    # -- progress and cancellation ---------------------------------------------------------

    def progress(
        self, step: int, total: int, *, preview: np.ndarray | None = None, kind: str = "step"
    ) -> None:
        """Report ``step`` of ``total`` (``kind`` is ``"step"`` or ``"tile"``); checks cancellation."""
        if self.on_event is not None:
            event: dict[str, Any] = {
                "event": kind, "node": self.node, "block": self.block, "step": step, "total": total,
            }
            if preview is not None:
                event["preview"] = preview
            self.on_event(event)
        self.check_cancelled()

    def cancelled(self) -> bool:
        """Whether the job was cancelled; long blocks check it between steps."""
        return bool(self.is_cancelled and self.is_cancelled())

    def check_cancelled(self) -> None:
        """Raise :class:`~orchestrator.errors.JobCancelled` if the job was cancelled."""
        if self.cancelled():
            raise JobCancelled(f"job cancelled during node {self.node!r}", node=self.node)

    # -- randomness ---------------------------------------------------------------------

    def generator(self, device: str | None = None, seed: int | None = None) -> torch.Generator:
        """A ``torch.Generator`` on ``device`` seeded with ``seed`` (default: the node's seed)."""
        import torch

        gen = torch.Generator(device=device or self.device)
        gen.manual_seed(self.seed if seed is None else seed)
        return gen

    # -- files --------------------------------------------------------------------------

    def resolve_input(self, path: str | Path, field: str = "params.path") -> Path:
        """The file a block reads: relative paths resolve under the input root.

        With ``confine_inputs`` (the daemon's setting) a path outside the input root is
        refused, so a graph cannot read arbitrary files of the host.
        """
        p = Path(path).expanduser()
        root = (self.input_root or Path.cwd()).resolve()
        full = (p if p.is_absolute() else root / p).resolve()
        if self.confine_inputs and root != full and root not in full.parents:
            raise BlockError(
                f"node {self.node!r}: {field} {str(path)!r} is outside the input folder {root}",
                type="input", node=self.node, field=field, value=str(path),
            )
        if not full.is_file():
            raise BlockError(
                f"node {self.node!r}: {field} {str(path)!r}: no such file ({full})",
                type="input", node=self.node, field=field, value=str(path),
            )
        return full

    def save_image(self, name: str, image: np.ndarray) -> list[str]:
        """Store an output image ([B, H, W, C] float in 0..1); returns where each went."""
        if self.outputs is None:
            raise BlockError(
                f"node {self.node!r}: this run has nowhere to save outputs",
                type="input", node=self.node, field="params.name",
            )
        return self.outputs.save_image(self.node, name, image)
