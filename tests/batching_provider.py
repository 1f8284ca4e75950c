"""A worker's model provider for the batching tests: the real ``ModelManager`` over the tiny
models, whose ``load(ref, "unet")`` returns only once ``parties`` nodes have asked, so that
their sampling loops start together (an event, not a clock)."""

from __future__ import annotations

import threading
from typing import Any


class MeetAtTheUNet:
    def __init__(self, provider: Any, parties: int, timeout: float = 120.0) -> None:
        self.provider = provider
        self.barrier = threading.Barrier(parties, timeout=timeout)

    def load(self, ref: Any, component: str | None = None, *, device: str = "cpu") -> Any:
        value = self.provider.load(ref, component, device=device)
        if component == "unet":
            self.barrier.wait()
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)


def meeting_tiny_models(cache_dir: str, parties: int) -> MeetAtTheUNet:
    from orchestrator.models import ModelManager, ModelRegistry

    return MeetAtTheUNet(ModelManager(ModelRegistry(cache_dir=cache_dir)), parties)
