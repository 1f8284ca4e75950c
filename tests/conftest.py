"""Shared fixtures. One Ray instance per test session (ray.init is slow here).

The offline environment and --slow live in the root conftest.py."""

from __future__ import annotations

import pytest

from orchestrator.plugins import load_plugins


@pytest.fixture(scope="session")
def catalog():
    """The catalog of built-in blocks (no third-party entry points)."""
    host = load_plugins(entry_points=False)
    assert not host.problems, [p.to_dict() for p in host.problems]
    return host.catalog


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with two logical GPUs, started once per test session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, namespace="orchestrator-tests")
    yield ray
    ray.shutdown()
