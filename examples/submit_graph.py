"""Submit a graph to a running daemon, follow its progress, save the result.

    orchestrator daemon start --detach          # once
    python examples/submit_graph.py outputs/    # then this
"""

from __future__ import annotations

import sys

from graphs import GraphBuilder
from orchestrator import Client


def main(out_dir: str = "outputs") -> None:
    b = GraphBuilder()
    img = b.add("image.solid", width=256, height=128, color=[0.9, 0.4, 0.1])
    edges = b.add("image.canny", image=img.image)
    b.add("image.save", image=edges.image, name="edges")
    with Client() as client:  # finds the daemon through the state directory
        job = client.submit(graph=b.build(), priority=1)
        for event in job.events():
            print(event["event"], event.get("node", ""), event.get("step", ""))
        for path in job.save(out_dir):
            print("saved", path)


if __name__ == "__main__":
    main(*sys.argv[1:])
