"""The narrow context a block's ``run`` receives.

A block reaches the outside world only through its context: ``ctx.models`` (its models by
reference, typed: :class:`~orchestrator.model_access.Models`), ``ctx.progress`` (report step
i of n, with an optional preview), ``ctx.tiles`` (run tile functions wherever the tiles of a
tiled node go, see :mod:`orchestrator.runtime.tiling`),
``ctx.cancelled()`` / ``ctx.check_cancelled()``, a seeded ``ctx.rng`` and
``ctx.generator()``, ``ctx.device``, ``ctx.open_input(path)`` for files it reads (confined
to the input folder in the daemon) and
``ctx.save_image(name, image)`` for what it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np

from orchestrator.errors import BlockError, JobCancelled
from orchestrator.model_access import ModelProvider, Models
from orchestrator.runtime.limits import check_size
from orchestrator.runtime.tiling import BlockClassFn, LocalTileRunner, TileRunner, Tiling
from orchestrator.state.input_paths import InputPathError, confined_path, open_confined, shown

if TYPE_CHECKING:
    import torch

__all__ = ["Context", "ModelProvider", "Models", "OutputSink", "ProgressFn"]


class OutputSink(Protocol):
    """Where ``ctx.save_image`` writes: returns the paths (or names) it stored."""

    def save_image(self, node: str, name: str, image: np.ndarray) -> list[str]: ...


ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class Context:
    """What a running block may use. Built by the executor (or a worker) for one node."""

    node: str
    block: str
    seed: int
    device: str = "cpu"
    job: str | None = None
    # the typed model interface; built from a ModelProvider (or None: no models) given here
    models: Models = None  # type: ignore[assignment]
    outputs: OutputSink | None = None
    input_root: Path | None = None
    confine_inputs: bool = False
    on_event: ProgressFn | None = None
    is_cancelled: Callable[[], bool] | None = None
    limits: Any = None  # size limits checked around run (orchestrator.runtime.limits); None: unchecked
    # a tiled node (orchestrator.runtime.tiling): its resolved tile annotation (None: not tiled),
    # how its tiles find block classes, and the runner of its tile functions (None: built on
    # first use, running them here; a Ray worker sets one over the pool's workers)
    tile: Tiling | None = None
    block_class: BlockClassFn | None = None
    tile_runner: TileRunner | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.models = Models.over(self.models, node=self.node, device=self.device)
        self.rng = np.random.default_rng(self.seed)

    @property
    def tiles(self) -> TileRunner:
        """The tile runner of this node: runs tile functions here, or over every worker when
        the scheduler runs a tiled node (see :mod:`orchestrator.runtime.tiling`)."""
        if self.tile_runner is None:
            self.tile_runner = LocalTileRunner(self)
        return self.tile_runner

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

    def check_size(self, width: int, height: int, batch: int = 1, field: str = "params") -> None:
        """Refuse (a ``limit`` :class:`~orchestrator.errors.BlockError` naming ``field``) an output
        of ``batch`` x ``width`` x ``height`` pixels over the job's limits. Blocks whose output
        size is known only once they run (an upscale model's factor) call it before allocating;
        sizes set by params are checked for them already (:mod:`orchestrator.runtime.limits`)."""
        if self.limits is not None:
            check_size(self.node, width, height, batch, field, self.limits)

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
        """The path of a file a block reads (prefer :meth:`open_input`, which cannot race).

        With ``confine_inputs`` (always, in the daemon) ``path`` must name a regular file
        inside the input root: see :mod:`orchestrator.state.input_paths`. Without it (the
        in-process CLI, running the user's own graph) a relative path resolves under the
        input root and an absolute one is read as it is.
        """
        if self.confine_inputs:
            root = self._confined_root(path, field)
            try:
                return confined_path(root, str(path))
            except InputPathError as exc:
                raise self._input_error(path, field, str(exc)) from None
        p = Path(path).expanduser()
        root = (self.input_root or Path.cwd()).resolve()
        full = (p if p.is_absolute() else root / p).resolve()
        if not full.is_file():
            raise self._input_error(path, field, f"{str(path)!r}: no such file ({full})")
        return full

    def open_input(self, path: str | Path, field: str = "params.path") -> BinaryIO:
        """The file a block reads, open for reading in binary (close it, or use ``with``).

        In the daemon (``confine_inputs``) the name is resolved and opened in one step from
        the input folder, so nothing outside it can be read; errors name the node, the
        field and the name given, never a path of the host.
        """
        if self.confine_inputs:
            root = self._confined_root(path, field)
            try:
                return open_confined(root, str(path))
            except InputPathError as exc:
                raise self._input_error(path, field, str(exc)) from None
        return open(self.resolve_input(path, field), "rb")

    def _confined_root(self, path: str | Path, field: str) -> Path:
        if self.input_root is None:
            raise self._input_error(path, field, "this run has no input folder to read from")
        return self.input_root

    def _input_error(self, path: str | Path, field: str, message: str) -> BlockError:
        return BlockError(f"node {self.node!r}: {field} {message}", type="input", node=self.node,
                          field=field, value=shown(path))

    def save_image(self, name: str, image: np.ndarray) -> list[str]:
        """Store an output image ([B, H, W, C] float in 0..1); returns where each went."""
        if self.outputs is None:
            raise BlockError(
                f"node {self.node!r}: this run has nowhere to save outputs",
                type="input", node=self.node, field="params.name",
            )
        return self.outputs.save_image(self.node, name, image)
