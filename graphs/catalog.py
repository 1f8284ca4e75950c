"""What validation needs to know about a block: its ports, its params, how it tiles.

The runtime (``orchestrator``) describes every registered block as a :class:`BlockSpec`;
``graphs`` and ``agents`` only ever see these. A catalog is any mapping from block id to
:class:`BlockSpec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class PortSpec:
    """One input or output port of a block."""

    name: str
    type: str
    description: str = ""
    optional: bool = False
    multiple: bool = False  # an input that takes a list of references

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.description:
            out["description"] = self.description
        if self.optional:
            out["optional"] = True
        if self.multiple:
            out["multiple"] = True
        return out


@dataclass(frozen=True)
class ParamProblem:
    """A param that fails its schema: which one, why, the value received and the bound."""

    field: str
    message: str
    value: Any = None
    bound: Any = None
    missing: bool = False


@dataclass(frozen=True)
class BlockSpec:
    """A block as the graph layer sees it."""

    id: str
    version: str
    description: str = ""
    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    params_model: type[BaseModel] | None = None
    tiling: str | None = None  # the tiling strategy the block supports, if any
    device: str = "cpu"  # "cpu" or "gpu"
    memory_mb: int = 0
    cacheable: bool = True  # False for blocks with side effects (saving files)
    plugin: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def input(self, name: str) -> PortSpec | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> PortSpec | None:
        return next((p for p in self.outputs if p.name == name), None)

    def params_schema(self) -> dict[str, Any]:
        """The params' JSON Schema (what the agent reads)."""
        if self.params_model is None:
            return {"type": "object", "properties": {}, "additionalProperties": False}
        return self.params_model.model_json_schema()

    def check_params(self, params: Mapping[str, Any]) -> list[ParamProblem]:
        """Every way ``params`` fails the schema; empty when they pass."""
        if self.params_model is None:
            return [
                ParamProblem(k, f"block {self.id!r} takes no params", value=v) for k, v in params.items()
            ]
        try:
            self.params_model.model_validate(dict(params))
        except ValidationError as exc:
            return [_problem(err) for err in exc.errors()]
        return []

    def parse_params(self, params: Mapping[str, Any]) -> BaseModel | None:
        """The validated params object (defaults filled in)."""
        if self.params_model is None:
            return None
        return self.params_model.model_validate(dict(params))

    def to_dict(self) -> dict[str, Any]:
        """The JSON description served by the CLI and the API and read by the agent."""
        return {
            "id": self.id,
            "version": self.version,
            "description": self.description,
            "inputs": [p.to_dict() for p in self.inputs],
            "outputs": [p.to_dict() for p in self.outputs],
            "params": self.params_schema(),
            "tiling": self.tiling,
            "device": self.device,
            "memory_mb": self.memory_mb,
            "cacheable": self.cacheable,
            "plugin": self.plugin,
        }


_BOUND_KEYS = ("ge", "gt", "le", "lt", "min_length", "max_length", "expected", "pattern")


def _problem(err: Mapping[str, Any]) -> ParamProblem:
    loc = ".".join(str(p) for p in err["loc"]) or "params"
    ctx = err.get("ctx") or {}
    bound = None
    for key in _BOUND_KEYS:
        if key in ctx:
            bound = {key: _plain(ctx[key])}
            break
    if err["type"] == "missing":
        return ParamProblem(loc, "required param is missing", missing=True)
    if err["type"] == "extra_forbidden":
        return ParamProblem(loc, "unknown param", value=_plain(err.get("input")))
    return ParamProblem(loc, err["msg"], value=_plain(err.get("input")), bound=bound)


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


Catalog = Mapping[str, BlockSpec]
