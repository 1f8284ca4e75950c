"""Shared fixtures. One Ray instance per test session (ray.init is slow here).

The offline environment and --slow live in the root conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.plugins import load_plugins

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # helper modules (daemon_process, daemon_blocks) import by name
    sys.path.insert(0, str(TESTS))


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
        # address="local": always a fresh local instance, never a cluster left on this machine
        ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, namespace="orchestrator-tests")
    yield ray
    ray.shutdown()


@pytest.fixture()
def state(tmp_path):
    """An empty daemon state directory."""
    s = tmp_path / "state"
    s.mkdir()
    return s


@pytest.fixture()
def daemon(state):
    """A running daemon (in-process engine, test blocks loaded) on 127.0.0.1, port 0."""
    from daemon_process import Daemon

    d = Daemon(state).start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.kill()
