"""Strip host paths from what a client without the token may see.

Without a token every local user can talk to the daemon, so ``/models``, ``/metrics`` and
job errors must not tell them where the operator keeps files. Keys that only hold paths
are dropped; absolute paths inside messages become their last component.

>>> redact({"name": "m", "path": "/home/ann/m.safetensors", "error": "bad file /home/ann/x/m.ckpt: x"})
{'name': 'm', 'error': 'bad file <path>/m.ckpt: x'}
>>> redact_text("see C:\\\\Users\\\\ann\\\\m.pt and ~/models/a.pt")
'see <path>\\\\m.pt and <path>/a.pt'
"""

from __future__ import annotations

import re
from typing import Any

PATH_KEYS = frozenset({"path", "source", "converted", "onnx", "folder", "file", "cache_dir",
                       "state_dir", "input_dir", "outputs_dir"})
_POSIX = re.compile(r"(?<![\w.:/])(?:~/|/)(?:[^\s'\"`<>|/]+/)*([^\s'\"`<>|/,;)]+)")
_WINDOWS = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s'\"`<>|\\]+\\)*([^\s'\"`<>|\\,;)]+)")


def redact_text(text: str) -> str:
    """``text`` with every absolute (or ``~``) path reduced to ``<path>/<last component>``."""
    text = _WINDOWS.sub(lambda m: "<path>\\" + m.group(1), text)
    return _POSIX.sub(lambda m: "<path>/" + m.group(1), text)


def redact(value: Any) -> Any:
    """A copy of a JSON-like ``value`` without path keys and with paths cut out of strings."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in PATH_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
