"""The daemon process: wire plugins, engine, store, planner and HTTP API; serve; stop cleanly.

The state directory holds ``jobs.db`` (the SQLite store), ``outputs/<job>/``, ``cache/``
(models), ``logs/daemon.log`` and, while the daemon runs, ``daemon.json`` (pid, url).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from orchestrator.config import ConfigError, Settings
from orchestrator.plugins import plugin_host_from_settings
from orchestrator.runtime.engine import Engine, LocalEngine
from orchestrator.server.connections import ConnectionGovernor
from orchestrator.server.security import is_loopback
from orchestrator.server.service import JobService, Planner
from orchestrator.state.retention import AutoPruner, Policy, Retention
from orchestrator.state.store import JobStore

log = logging.getLogger("orchestrator.server.daemon")

INFO_FILE = "daemon.json"


def info_path(settings: Settings) -> Path:
    return settings.state_dir / INFO_FILE


def read_info(settings: Settings) -> dict[str, Any] | None:
    """The running daemon's ``daemon.json`` (pid, url), or None when there is none."""
    try:
        return json.loads(info_path(settings).read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not is_loopback(settings.host) and not settings.effective_token():
        raise ConfigError(
            f"refusing to listen on {settings.host!r} without a token: set ORCHESTRATOR_TOKEN, "
            "token_file (a 0600 file) or token in the config file (or bind 127.0.0.1)"
        )


def make_private(state: Path) -> None:
    """Keep the state directory to its owner: new files 0600, folders 0700, the store too.

    Jobs, prompts, outputs and the store are the operator's; other local users get nothing
    from the disk (the HTTP API has its own rules).
    """
    os.umask(0o077)
    state.mkdir(parents=True, exist_ok=True)
    for path in [state, *(state / d for d in ("outputs", "logs", "cache", "inputs", "agent"))]:
        with contextlib.suppress(OSError):  # not ours, or not there: leave it
            if path.is_dir() and path.stat().st_uid == os.getuid():
                path.chmod(0o700)
    for path in state.glob("jobs.db*"):
        with contextlib.suppress(OSError):
            if path.stat().st_uid == os.getuid():
                path.chmod(0o600)


def make_engine(settings: Settings, host: Any) -> Engine:
    """The Ray engine by default, the in-process one with ``engine = "local"``."""
    if settings.engine == "local":
        return LocalEngine(host.catalog, settings)
    try:
        module = importlib.import_module("orchestrator.runtime.ray_engine")
    except ImportError:
        log.warning("the Ray engine is not installed; running jobs in-process")
        return LocalEngine(host.catalog, settings)
    return module.RayEngine(host.catalog, settings)  # type: ignore[no-any-return]


def make_planner(settings: Settings, host: Any) -> Planner | None:
    """The agent's planner for prompt jobs, when the agents package provides one."""
    try:
        module = importlib.import_module("agents.daemon")
    except ImportError:
        return None
    from orchestrator.agent_context import image_size_reader, limits_check, model_library

    # the agent gets the model library and the limits check from here: it imports neither
    return module.make_planner(settings, host, models=model_library(settings),  # type: ignore[no-any-return]
                               limits=limits_check(settings, host.catalog),
                               image_size=image_size_reader(settings, confined=True))


def make_score_recorder(settings: Settings) -> Any:
    """What learns from scored jobs: the agent's score table, when the agents package is there."""
    try:
        module = importlib.import_module("agents.daemon")
    except ImportError:
        return None
    factory = getattr(module, "make_score_recorder", None)
    return factory(settings) if factory is not None else None


def _model_registry(settings: Settings) -> Any:
    """The configured models, for ``GET /models`` (the weights live in the engine)."""
    try:
        from orchestrator.models import registry_from_settings

        return registry_from_settings(settings)
    except Exception:  # a bad model entry must not stop the daemon; it is logged
        log.exception("the model registry could not be built")
        return None


def _write_info(settings: Settings, data: dict[str, Any]) -> None:
    path = info_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def serve(settings: Settings) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit status."""
    from orchestrator.server.api import create_app

    settings = settings.model_copy(update={"token": settings.effective_token()})
    check_exposure(settings)
    state = settings.state_dir
    make_private(state)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    existing = read_info(settings)
    if existing and existing.get("pid") != os.getpid() and pid_alive(int(existing["pid"])):
        raise ConfigError(f"a daemon (pid {existing['pid']}) already runs on this state "
                          f"directory at {existing.get('url')}")
    host, settings = plugin_host_from_settings(settings)
    for p in host.problems:
        log.warning("plugin problem: %s", p.message)
    engine = make_engine(settings, host)
    store = JobStore(state / "jobs.db", max_progress_events=settings.retention.max_progress_events)
    retention = Retention(store, state / "outputs", Policy.from_settings(settings.retention))
    pruner = AutoPruner(retention, interval_s=settings.retention.interval_s) \
        if settings.retention.auto else None
    service = JobService(store, engine, outputs_root=state / "outputs",
                         planner=make_planner(settings, host), max_attempts=settings.limits.attempts,
                         on_scored=make_score_recorder(settings),
                         on_finished=pruner.poke if pruner is not None else None)
    governor = ConnectionGovernor.from_settings(settings.server)
    app = create_app(service, settings, models=_model_registry(settings), governor=governor,
                     retention=retention)

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)  # accept connections (they queue) before anyone learns the address
    port = sock.getsockname()[1]
    url_host = f"[{settings.host}]" if family == socket.AF_INET6 else settings.host
    url = f"http://{url_host}:{port}"

    service.start()
    if pruner is not None:
        pruner.start()
    # keep-alive longer than clients keep idle connections (httpx: 5 s), so a client never
    # sends on a connection the server is closing at that moment; the governor's protocol adds
    # header/body deadlines and the connection cap (orchestrator/server/connections.py)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3,
                            access_log=False, timeout_keep_alive=75, http=governor.protocol(),
                            ws_max_size=1 << 20)  # ComfyUI's /ws: clients send only small messages
    server = _Server(config)

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        server.should_exit = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _write_info(settings, {"pid": os.getpid(), "url": url, "host": settings.host, "port": port,
                           "started_at": time.time(), "engine": type(engine).__name__})
    print(f"orchestrator daemon listening on {url} (state: {state})", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        log.info("stopping: letting running nodes reach a step boundary")
        if pruner is not None:
            pruner.stop()
        service.stop()
        store.close()
        info = read_info(settings)
        if info and info.get("pid") == os.getpid():
            info_path(settings).unlink(missing_ok=True)
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal capture: it re-raises SIGTERM on exit, which
    would kill the process before the job service is stopped cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


LOG_KEEP_BYTES = 16 << 20  # a detached daemon's log is rotated at start once over this


def rotate_log(path: Path, max_bytes: int = LOG_KEEP_BYTES) -> None:
    """Move ``path`` to ``path.1`` (replacing an older one) when it is over ``max_bytes``, so the
    logs of daemons started again and again take at most about twice that on disk."""
    try:
        if path.stat().st_size > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:  # no log yet, or not ours to move: append to it as before
        pass


def start_detached(settings: Settings, argv: list[str], timeout: float = 180.0) -> dict[str, Any]:
    """Start ``orchestrator daemon start`` (without ``--detach``) in the background; wait for it."""
    log_path = settings.state_dir / "logs" / "daemon.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rotate_log(log_path)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *argv], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    (settings.state_dir / "daemon.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_info(settings)
        if info and info.get("pid") == proc.pid:
            return info
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ConfigError(f"the daemon exited with status {proc.returncode}; log {log_path}:\n{tail}")
        time.sleep(0.2)
    raise ConfigError(f"the daemon did not come up within {timeout:.0f}s; see {log_path}")


def stop(settings: Settings, timeout: float = 60.0) -> bool:
    """SIGTERM the running daemon and wait for it to exit; False if none was running."""
    info = read_info(settings)
    if not info or not pid_alive(int(info["pid"])):
        info_path(settings).unlink(missing_ok=True)
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        try:  # reap it when it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    raise ConfigError(f"daemon pid {pid} did not stop within {timeout:.0f}s")
