"""The catalog of registered blocks, as classes to run and as JSON to describe.

>>> from orchestrator.plugins import load_plugins
>>> catalog = load_plugins(entry_points=False).catalog
>>> "image.grayscale" in catalog, catalog["image.grayscale"].version
(True, '1.0.0')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from graphs.catalog import BlockSpec
from orchestrator.blocks import Block


class Catalog(Mapping[str, BlockSpec]):
    """Block id -> :class:`graphs.BlockSpec`; :meth:`block_class` gives the class to run."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Block]] = {}
        self._specs: dict[str, BlockSpec] = {}

    def add(self, cls: type[Block], plugin: str) -> None:
        spec = dataclasses.replace(cls.spec(), plugin=plugin)
        self._classes[spec.id] = cls
        self._specs[spec.id] = spec

    def block_class(self, block_id: str) -> type[Block]:
        return self._classes[block_id]

    def versions(self) -> dict[str, str]:
        return {k: s.version for k, s in self._specs.items()}

    def __getitem__(self, key: str) -> BlockSpec:
        return self._specs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def to_json(self) -> list[dict[str, Any]]:
        """Every block described as JSON (ports, params JSON Schema, description), sorted by id."""
        return [self._specs[k].to_dict() for k in sorted(self._specs)]
