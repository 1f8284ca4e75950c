"""An optional sentence-embedding model for prompt labels, used only when it is already on disk.

``local_embedder(name_or_path)`` returns a function ``texts -> vectors`` for
:func:`agents.labels.classify`, or ``None`` when ``sentence_transformers`` is not
installed or the model is neither a folder on disk nor in the local Hugging Face cache.
Nothing is ever downloaded: the hub is asked with ``local_files_only=True``.

>>> local_embedder(None) is None
True
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from agents.labels import Embedder


def _local_path(name_or_path: str) -> Path | None:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if "/" not in name_or_path or importlib.util.find_spec("huggingface_hub") is None:
        return None
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache (or a malformed name): no model
        return None


def local_embedder(name_or_path: str | os.PathLike[str] | None) -> Embedder | None:
    """A sentence-embedding function from a local model, or ``None`` if there is none."""
    if not name_or_path or importlib.util.find_spec("sentence_transformers") is None:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = _local_path(str(name_or_path))
    if path is None:
        return None
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu")
    except Exception:  # noqa: BLE001 - an unusable folder means no embedding labels, not a failure
        return None

    def embed(texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in v] for v in model.encode(texts, normalize_embeddings=True)]

    return embed
