"""A real daemon subprocess for end-to-end tests (restartable, killable)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.client import Client

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


class Daemon:
    """One daemon process on a state directory; restartable."""

    def __init__(self, state: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.extra = list(extra)
        inherited = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_TOKEN"}
        self.env = {**inherited, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
                    "ORCHESTRATOR_PLUGINS__EXTRA": "daemon_blocks", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 120.0) -> Daemon:
        info = self.state / "daemon.json"
        info.unlink(missing_ok=True)
        log = open(self.state / "test-daemon.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--state-dir", str(self.state), "daemon", "start",
             "--port", "0", "--engine", "local", *self.extra],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.state)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info.exists():
                data = json.loads(info.read_text())
                if data["pid"] == self.proc.pid:
                    self.url = data["url"]
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError((self.state / "test-daemon.log").read_text()[-3000:])
            time.sleep(0.1)
        raise TimeoutError("daemon did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def client(self, **kw) -> Client:
        return Client(self.url, **kw)
