"""The block API: what a plugin author writes.

A block is a small declaration: an id and a version, typed inputs and outputs, a pydantic
``Params`` model with bounds and descriptions, the resources it needs, whether it tiles,
and one ``run(ctx, **inputs)`` that returns a dict of outputs. It holds no weights: models
come from ``ctx.models`` at run time.

>>> from pydantic import Field
>>> @block("demo.scale", version="1.0.0", description="Multiply an image by a factor.")
... class Scale(Block):
...     inputs = {"image": In("IMAGE", "the image")}
...     outputs = {"image": Out("IMAGE", "the scaled image")}
...     class Params(Params):
...         factor: float = Field(1.0, ge=0.0, le=10.0, description="multiplier")
...     def run(self, ctx, image):
...         return {"image": (image * self.params.factor).clip(0, 1)}
>>> Scale.spec().id, [p.name for p in Scale.spec().inputs]
('demo.scale', ['image'])

``@block`` checks the declaration when the module is imported and raises
:class:`~orchestrator.errors.BlockDeclarationError` naming the class and what is wrong.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from graphs.catalog import BlockSpec, PortSpec
from graphs.types import is_port_type
from orchestrator.errors import BlockDeclarationError

if TYPE_CHECKING:
    from orchestrator.context import Context

BLOCK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.\-]+)?$")
TILING_STRATEGIES = ("split", "multidiffusion", "vae")


class Params(BaseModel):
    """Base for a block's params: unknown params are refused, values validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class In:
    """An input port: its type, a description, whether it may be left unwired or take a list."""

    type: str
    description: str = ""
    optional: bool = False
    multiple: bool = False


@dataclass(frozen=True)
class Out:
    """An output port."""

    type: str
    description: str = ""


@dataclass(frozen=True)
class Resources:
    """What a block needs to run: ``device`` is ``"cpu"`` or ``"gpu"``; rough memory in MiB.

    ``batch``: the block's UNet calls (``ctx.models.unet(ref)``) may be batched with
    other jobs' (cross-job batching, ``[batching]`` in the config): a worker runs such nodes of
    one model side by side and merges their compatible calls. Set it on sampling blocks.
    """

    device: str = "cpu"
    memory_mb: int = 0
    batch: bool = False


class Block:
    """Base class of every block; subclass it and decorate with :func:`block`."""

    id: ClassVar[str] = ""
    version: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[dict[str, In | str]] = {}
    outputs: ClassVar[dict[str, Out | str]] = {}
    Params: ClassVar[type[BaseModel] | None] = None
    resources: ClassVar[Resources] = Resources()
    tiling: ClassVar[str | None] = None
    cacheable: ClassVar[bool] = True  # False when run() has side effects (writes files)
    plugin: ClassVar[str] = ""
    _spec: ClassVar[BlockSpec | None] = None

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        model = type(self).Params
        if model is None:
            self.params: Any = None
        elif isinstance(params, model):
            self.params = params
        else:
            self.params = model.model_validate(dict(params or {}))

    def run(self, ctx: Context, **inputs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def spec(cls) -> BlockSpec:
        """The block as the graph layer and the agent see it."""
        if cls._spec is None:
            raise BlockDeclarationError(f"{cls.__qualname__} is not decorated with @block")
        return cls._spec


def block(
    id: str,
    *,
    version: str,
    description: str | None = None,
) -> Any:
    """Class decorator that declares a block and checks the declaration at import time."""

    def decorate(cls: type[Block]) -> type[Block]:
        problems = _declaration_problems(cls, id, version)
        if problems:
            raise BlockDeclarationError(
                f"block {id!r} ({cls.__module__}.{cls.__qualname__}): " + "; ".join(problems),
                node=None, field=None, block=id,
            )
        cls.id = id
        cls.version = version
        cls.description = inspect.cleandoc(description or cls.__doc__ or "")
        cls.inputs = {k: _as_in(v) for k, v in cls.inputs.items()}
        cls.outputs = {k: _as_out(v) for k, v in cls.outputs.items()}
        cls._spec = _make_spec(cls)
        return cls

    return decorate


def _as_in(port: In | str) -> In:
    return In(port) if isinstance(port, str) else port  # type: ignore[return-value]


def _as_out(port: Out | str) -> Out:
    return Out(port) if isinstance(port, str) else port


def _declaration_problems(cls: Any, id: str, version: str) -> list[str]:
    problems: list[str] = []
    if not (isinstance(cls, type) and issubclass(cls, Block)):
        return [f"{cls!r} is not a subclass of orchestrator.Block"]
    if not isinstance(id, str) or not BLOCK_ID.match(id):
        problems.append(f"id {id!r} must look like 'family.verb' (lower case, dots between)")
    if not isinstance(version, str) or not SEMVER.match(version):
        problems.append(f"version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    for kind, ports, cls_ in (("input", cls.inputs, In), ("output", cls.outputs, Out)):
        if not isinstance(ports, dict):
            problems.append(f"{kind}s must be a dict of name -> {cls_.__name__}")
            continue
        for name, port in ports.items():
            if not isinstance(name, str) or not name.isidentifier():
                problems.append(f"{kind} name {name!r} is not an identifier")
            p = port if isinstance(port, (In, Out)) else None
            type_name = port if isinstance(port, str) else getattr(p, "type", None)
            if type_name is None:
                problems.append(f"{kind} {name!r}: {port!r} is not a port type or {cls_.__name__}")
            elif not is_port_type(type_name):
                problems.append(f"{kind} {name!r}: unknown port type {type_name!r}")
    if not cls.outputs:
        problems.append("a block declares at least one output")
    params = cls.Params
    if params is not None:
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            problems.append("Params must be a pydantic model (subclass orchestrator.Params)")
        elif params.model_config.get("extra") != "forbid":
            problems.append("Params must refuse unknown params: subclass orchestrator.Params")
        else:
            try:
                params.model_json_schema()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"Params has no JSON Schema: {exc}")
    res = cls.resources
    if not isinstance(res, Resources) or res.device not in ("cpu", "gpu") or res.memory_mb < 0:
        problems.append(f"resources {res!r}: device must be 'cpu' or 'gpu', memory_mb >= 0")
    if cls.tiling is not None and cls.tiling not in TILING_STRATEGIES:
        problems.append(f"tiling {cls.tiling!r} is not one of {', '.join(TILING_STRATEGIES)}")
    run = cls.__dict__.get("run") or getattr(cls, "run", None)
    if run is None or run is Block.run:
        problems.append("run(self, ctx, **inputs) is not defined")
    else:
        problems.extend(_run_signature_problems(run, cls.inputs))
    return problems


def _run_signature_problems(run: Any, inputs: dict[str, Any]) -> list[str]:
    sig = inspect.signature(run)
    params = list(sig.parameters.values())
    if len(params) < 2:
        return ["run must take (self, ctx, ...)"]
    rest = params[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest):
        return []
    names = {p.name for p in rest}
    problems = [f"run() has no argument for input {n!r}" for n in inputs if n not in names]
    for p in rest:
        if p.name not in inputs:
            problems.append(f"run() argument {p.name!r} is not a declared input")
        elif p.default is inspect.Parameter.empty and getattr(_as_in(inputs[p.name]), "optional", False):
            problems.append(f"run() argument {p.name!r} is an optional input: give it a default")
    return problems


def _make_spec(cls: type[Block]) -> BlockSpec:
    inputs = tuple(
        PortSpec(n, p.type, p.description, p.optional, p.multiple)  # type: ignore[union-attr]
        for n, p in cls.inputs.items()
    )
    outputs = tuple(PortSpec(n, p.type, p.description) for n, p in cls.outputs.items())
    return BlockSpec(
        id=cls.id,
        version=cls.version,
        description=cls.description,
        inputs=inputs,
        outputs=outputs,
        params_model=cls.Params,
        tiling=cls.tiling,
        device=cls.resources.device,
        memory_mb=cls.resources.memory_mb,
        cacheable=cls.cacheable,
        plugin=cls.plugin,
    )
