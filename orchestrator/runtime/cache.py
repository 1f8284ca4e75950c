"""Bounded in-memory caches of node results: LRU, at most ``max_entries`` and ``max_bytes``.

:func:`measure_bytes` sizes a node's outputs (numpy arrays, torch tensors, PIL images, bytes,
and the dicts, lists, dataclasses and objects that hold them); :class:`ResultCache` keeps
outputs in this process (the local engine), and :class:`ObjectCache` keeps
Ray object references (the Ray engine) under the same two bounds: both are thin
subclasses of the one implementation, :class:`BoundedLRU`. An entry larger than the
whole byte budget is not cached at all.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

AUTO_FRACTION = 8  # the default byte budget is 1/8 of the machine's memory ...
AUTO_CAP = 4 << 30  # ... at most 4 GiB ...
AUTO_FLOOR = 64 << 20  # ... and at least 64 MiB
MAX_DEPTH = 64  # nesting deeper than this is counted by its container only

_PIL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def physical_memory() -> int | None:
    """The machine's memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def default_max_bytes(memory: int | None = None) -> int:
    """The byte budget when none is configured: 1/8 of memory, between 64 MiB and 4 GiB.

    >>> default_max_bytes(16 << 30) == 2 << 30, default_max_bytes(64 << 30) == 4 << 30
    (True, True)
    """
    memory = physical_memory() if memory is None else memory
    if not memory:
        return 1 << 30
    return max(AUTO_FLOOR, min(AUTO_CAP, memory // AUTO_FRACTION))


def resolve_max_bytes(configured: int | None) -> int:
    """``[cache] max_bytes`` as set, or the automatic default when it is None."""
    return default_max_bytes() if configured is None else int(configured)


def measure_bytes(value: Any) -> int:
    """The memory ``value`` holds: buffers exactly, Python containers roughly, shared buffers once.

    >>> import numpy as np
    >>> a = np.zeros((256, 256), dtype=np.float32)
    >>> measure_bytes({"x": a, "y": [a, a]}) < 2 * a.nbytes   # one buffer, counted once
    True
    """
    return _measure(value, set(), 0)


def _measure(value: Any, seen: set[Any], depth: int) -> int:
    if value is None or isinstance(value, (bool, int, float, complex)):
        return sys.getsizeof(value)
    if isinstance(value, (str, bytes, bytearray)):
        return sys.getsizeof(value)
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, memoryview):
        return value.nbytes
    buffer = _buffer_bytes(value, seen)
    if buffer is not None:
        return buffer
    if depth >= MAX_DEPTH:
        return sys.getsizeof(value)
    if isinstance(value, Mapping):
        return sys.getsizeof(value) + sum(_measure(k, seen, depth + 1) + _measure(v, seen, depth + 1)
                                          for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sys.getsizeof(value) + sum(_measure(v, seen, depth + 1) for v in value)
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        return sys.getsizeof(value) + _measure(fields, seen, depth + 1)
    slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
    if slots:
        return sys.getsizeof(value) + sum(_measure(getattr(value, s, None), seen, depth + 1)
                                          for s in slots if isinstance(s, str))
    return sys.getsizeof(value)


def _buffer_bytes(value: Any, seen: set[Any]) -> int | None:
    """Bytes of an array, a tensor or an image (its whole buffer, once); None for anything else."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        base = value
        while isinstance(base.base, np.ndarray):  # a view keeps its whole base alive
            base = base.base
        if base is not value:
            if id(base) in seen:
                return 0
            seen.add(id(base))
        return int(base.nbytes) + 112
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        return sys.getsizeof(value)  # a model: its weights belong to the model manager, not the cache
    if torch is not None and isinstance(value, torch.Tensor):
        try:
            storage = value.untyped_storage()
            key = ("torch", storage.data_ptr(), value.device.type)
            if key in seen:
                return 0
            seen.add(key)
            return int(storage.nbytes()) + 200
        except (RuntimeError, NotImplementedError):  # meta or sparse tensors
            return int(value.element_size() * value.nelement()) + 200
    image = sys.modules.get("PIL.Image")
    if image is not None and isinstance(value, image.Image):
        bands = len(value.getbands())
        per = _PIL_BYTES.get(value.mode, 1)
        return int(value.width * value.height * (per if bands == 1 else bands * per)) + 200
    return None


class BoundedLRU:
    """An LRU map whose entries carry a size: at most ``max_entries`` and ``max_bytes``.

    ``max_bytes=None`` takes :func:`default_max_bytes`. An entry larger than the whole budget
    is refused (``put`` returns False) and drops an older entry under its key.

    >>> c = BoundedLRU(max_entries=2, max_bytes=100)
    >>> c.put("a", "A", 60), c.put("b", "B", 60), c.put("c", "C", 101)
    (True, True, False)
    >>> "a" in c, c.get("b"), c.bytes
    (False, 'B', 60)
    """

    def __init__(self, max_entries: int = 256, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = resolve_max_bytes(max_bytes)
        self._data: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.refused = 0  # entries too large for the whole budget

    def get(self, key: str) -> Any | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: str, value: Any, nbytes: int) -> bool:
        """Keep ``value`` (``nbytes`` large) under ``key``, evicting the least recently used."""
        self.discard(key)
        if nbytes > self.max_bytes or self.max_entries <= 0:
            self.refused += 1
            return False
        self._data[key] = (value, nbytes)
        self.bytes += nbytes
        while self._data and (len(self._data) > self.max_entries or self.bytes > self.max_bytes):
            _k, (_v, n) = self._data.popitem(last=False)
            self.bytes -= n
            self.evictions += 1
        return True

    def discard(self, key: str) -> None:
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._data), "bytes": self.bytes, "max_entries": self.max_entries,
                "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions, "refused": self.refused}

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


class ResultCache(BoundedLRU):
    """Node outputs (``{port: value}``) of in-process runs, sized by :func:`measure_bytes`.

    >>> c = ResultCache(max_entries=1); c.put("a", {"x": 1}); c.put("b", {"x": 2})
    True
    True
    >>> c.get("a") is None, c.get("b"), c.hits, c.misses
    (True, {'x': 2}, 1, 1)
    """

    def get(self, key: str) -> dict[str, Any] | None:
        return super().get(key)  # type: ignore[no-any-return]

    def put(self, key: str, outputs: dict[str, Any], nbytes: int | None = None) -> bool:
        """Keep ``outputs`` under ``key`` (measured unless ``nbytes`` is given)."""
        return super().put(key, outputs, measure_bytes(outputs) if nbytes is None else int(nbytes))


class ObjectCache(BoundedLRU):
    """Node outputs by content key, as Ray object references; LRU, bounded in entries and bytes.

    Holding a reference keeps the object alive in Ray's object store; evicting drops it. The
    size of an entry is what the worker measured (``measure_bytes``) when the node ran.

    >>> c = ObjectCache(max_entries=2, max_bytes=100)
    >>> c.put("a", "ref-a", 60); c.put("b", "ref-b", 60)
    >>> "a" in c, c.get("b"), c.bytes
    (False, 'ref-b', 60)
    """

    def __init__(self, max_entries: int = 1024, max_bytes: int | None = None) -> None:
        super().__init__(max_entries=max_entries, max_bytes=max_bytes)

    def put(self, key: str, ref: Any, nbytes: int = 0) -> None:  # type: ignore[override]
        super().put(key, ref, int(nbytes))
