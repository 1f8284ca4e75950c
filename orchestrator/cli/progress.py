"""A one-line progress display for job events (steps, tiles), used by ``run`` and ``submit``."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A one-line progress display on stderr fed by job events.

    >>> import io
    >>> out = io.StringIO(); p = Progress(out)
    >>> for e in ({"event": "node_started", "node": "d", "block": "sd.denoise"},
    ...           {"event": "tile", "node": "d", "step": 4, "total": 4, "sampler_step": 1,
    ...            "sampler_total": 2},
    ...           {"event": "node_finished", "node": "d", "seconds": 1.5}):
    ...     p.show(e)
    >>> print(out.getvalue().strip())
    d (sd.denoise) ...
    d tile 4/4 [####################] step 1/2
    d done (1.50s)
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def show(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind in ("step", "tile"):
            total = max(1, int(event.get("total") or 1))
            step = int(event.get("step") or 0)
            filled = int(20 * step / total)
            line = f"{event.get('node')} {kind} {step}/{total} [{'#' * filled}{'.' * (20 - filled)}]"
            if kind == "tile" and event.get("sampler_total"):
                line += f" step {event.get('sampler_step')}/{event['sampler_total']}"
            if self.tty:
                self.stream.write(f"\r{line:<70}")
                self.stream.flush()
            elif step == total:
                print(line, file=self.stream)
            return
        if self.tty:
            self.stream.write("\r" + " " * 70 + "\r")
        if kind == "node_started":
            print(f"{event['node']} ({event.get('block')}) ...", file=self.stream)
        elif kind == "node_finished":
            took = "cached" if event.get("cached") else f"{float(event.get('seconds') or 0):.2f}s"
            print(f"{event['node']} done ({took})", file=self.stream)
        elif kind == "done":
            print(f"job {event['state']}", file=self.stream)
        elif kind in ("queued", "planning", "running", "planned"):
            print(kind, file=self.stream)

