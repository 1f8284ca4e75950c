"""What the runtime hands the agent to plan with: the model library and the limits check.

The agent never imports the runtime (DESIGN.md); the daemon and the CLI call these and
pass the results to :func:`agents.daemon.make_planner` (or the planner's context):

- :func:`model_library`: a callable returning the model descriptions of ``orchestrator
  models --json`` (name, kind, family, origin, status), read again on each call so files
  dropped into the model folders are seen; a library that cannot be read falls back to the
  configured entries.
- :func:`limits_check`: ``graph -> problems`` with the configured limits
  (:func:`orchestrator.runtime.limits.check_limits`).
- :func:`image_size_reader`: ``name -> (width, height)`` of a given input picture, read from
  its header only (what an outpainting pads to the asked aspect); in the daemon only inside
  the input folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from graphs import BlockSpec, Graph
from orchestrator.runtime.limits import SizeLimits, check_limits

log = logging.getLogger(__name__)

ModelLibrary = Callable[[], list[dict[str, Any]]]
LimitsCheck = Callable[[Graph], list[dict[str, Any]]]
ImageSize = Callable[[str], "tuple[int, int] | None"]


def model_library(settings: Any, *, trusted: bool = False) -> ModelLibrary:
    """``() -> [model description]``: the configured models, the plugins' and the model folders'.
    One registry serves every call, so the folders' index and each file's header are read again
    only when a folder or a file changes."""
    from orchestrator.models import registry_from_settings
    from orchestrator.models.errors import ModelError

    registry: list[Any] = []

    def describe() -> list[dict[str, Any]]:
        try:
            if not registry:
                registry.append(registry_from_settings(settings, trusted=trusted))
            return registry[0].describe()  # type: ignore[no-any-return]
        except (ModelError, OSError, ValueError) as exc:  # a broken entry must not stop planning
            log.warning("the model library could not be read for the planner: %s", exc)
            return [dict(e) for e in getattr(settings, "models", []) or []]

    return describe


def limits_check(settings: Any, catalog: Mapping[str, BlockSpec]) -> LimitsCheck:
    """``graph -> problems`` against ``settings.limits`` (the defaults where there are none)."""
    limits = getattr(settings, "limits", None) or SizeLimits()

    def check(graph: Graph) -> list[dict[str, Any]]:
        return check_limits(graph, limits, catalog)

    return check


def input_files(pairs: list[str] | None, *, image: str | None = None, mask: str | None = None
                ) -> dict[str, str]:
    """``{role: absolute path}`` from ``--input ROLE=FILE`` options (and ``--image``/``--mask``):
    a ``ValueError`` names an unknown role, a repeated role or a file that is not there."""
    from pathlib import Path

    from graphs.library import ROLES

    out: dict[str, str] = {}
    items = [f"image={image}"] if image else []
    items += [f"mask={mask}"] if mask else []
    for item in [*items, *(pairs or [])]:
        role, sep, file = item.partition("=")
        role = role.strip()
        if not sep or not role or not file:
            raise ValueError(f"--input {item!r}: expected ROLE=FILE (roles: {', '.join(ROLES)})")
        if role not in ROLES:
            raise ValueError(f"--input {item!r}: unknown role {role!r}; roles: {', '.join(ROLES)}")
        if role in out:
            raise ValueError(f"--input: role {role!r} given twice")
        path = Path(file).expanduser()
        if not path.is_file():
            raise ValueError(f"--input {role}={file}: no such file")
        out[role] = str(path.resolve())
    return out


def image_size_reader(settings: Any, *, confined: bool) -> ImageSize:
    """``name -> (width, height) | None`` of an input picture, from its header (nothing decoded).

    ``confined`` (the daemon): ``name`` is opened only inside the input folder
    (:func:`orchestrator.state.input_paths.open_confined`); otherwise (the in-process CLI) it is
    the user's own file path. A name that cannot be read, or is not a picture, gives ``None``:
    the planner then says in its trace that it did not know the size.
    """
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    from orchestrator.state.input_paths import InputPathError, open_confined

    root = settings.effective_input_dir if confined else None

    def size(name: str) -> tuple[int, int] | None:
        try:
            handle = open_confined(root, name) if root is not None else open(Path(name).expanduser(), "rb")
            with handle, Image.open(handle) as image:
                width, height = image.size
        except (InputPathError, OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None
        return int(width), int(height)

    return size
