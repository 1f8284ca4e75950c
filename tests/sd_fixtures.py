"""Fixtures and helpers for tests that use the built-in tiny models.

Import from a test module (the tests folder is not a package)::

    sys.path.insert(0, str(Path(__file__).parent))
    import sd_fixtures
    models = sd_fixtures.models                      # the fixtures a module uses
    one_torch_thread = sd_fixtures.one_torch_thread  # autouse: one torch thread in the module

The tiny models are built once into a cache shared by test sessions
(``$ORCHESTRATOR_TEST_CACHE``, default ``<tmp>/orchestrator-test-cache-<uid>``); builds are
versioned and atomic, and ``test_models.py`` checks their weights against fixed checksums.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.models import ModelManager, ModelRegistry


def tiny_cache_dir() -> Path:
    named = os.environ.get("ORCHESTRATOR_TEST_CACHE")
    if named:
        return Path(named)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"orchestrator-test-cache-{uid}"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread, and far more steadily on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model_registry() -> ModelRegistry:
    """The registry with only the built-ins, over the shared test cache."""
    return ModelRegistry(cache_dir=tiny_cache_dir())


@pytest.fixture(scope="session")
def models(model_registry: ModelRegistry) -> ModelManager:
    """One model manager for the session (components stay resident between tests)."""
    return ModelManager(model_registry)


def write_png(path: Path, array: np.ndarray) -> Path:
    """Save a uint8 ``[H, W, 3]`` or ``[H, W]`` array as PNG."""
    Image.fromarray(array).save(path)
    return path


def noise_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB image, uint8 ``[size, size, 3]``."""
    rng = np.random.default_rng(seed)
    small = rng.random((size // 8, size // 8, 3))
    big = np.kron(small, np.ones((8, 8, 1)))
    return (np.clip(0.7 * big + 0.3 * rng.random((size, size, 3)), 0, 1) * 255).astype(np.uint8)


def rect_mask(size: int = 64, box: tuple[int, int, int, int] = (8, 16, 40, 48)) -> np.ndarray:
    """A uint8 mask, 255 inside ``box`` = (left, top, right, bottom)."""
    m = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return m
