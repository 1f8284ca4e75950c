"""Several machines: the cluster-launcher config, and a job across a real two-node Ray cluster.

The two-node cluster (``ray.cluster_utils.Cluster``: two raylets on this machine, one
logical GPU each) cannot share the test session's Ray, so it runs in a child process: this
file run as a script prints a JSON report the test reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def test_cluster_config_has_a_head_gpu_workers_and_installs_the_project():
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert workers and all(t["resources"]["GPU"] >= 1 and t["max_workers"] >= 1 for t in workers)
    setup = " ; ".join(cfg["setup_commands"])
    pinned_torch = next(line for line in (ROOT / "constraints.txt").read_text().splitlines()
                        if line.startswith("torch=="))
    assert f"pip install -q {pinned_torch}" in setup
    assert "pip install -q -c constraints.txt -e ." in setup
    assert setup.index("torch==") < setup.index("-c constraints.txt")  # torch first
    head_start = " ; ".join(cfg["head_start_ray_commands"])
    assert "ray start --head" in head_start
    assert "orchestrator daemon start" in head_start and "--ray-address auto" in head_start
    assert any("ray start --address=" in c for c in cfg["worker_start_ray_commands"])


@pytest.mark.slow
def test_a_job_runs_across_a_two_node_cluster(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True,
                          timeout=280, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1])
    # one worker actor per logical GPU, one GPU per node: the pool spans both nodes
    assert len(report["cluster_nodes"]) == 2
    assert len(report["worker_nodes"]) == 2 and set(report["worker_nodes"]) == set(report["cluster_nodes"])
    # the fan-out ran on both nodes, and the merge read outputs made on both
    assert len(set(report["ran_on_nodes"])) == 2
    assert report["equal_to_local"] and report["merged_shape"] == [1, 256, 256, 3]


# -- the child process ------------------------------------------------------------------------------


def _child(tmp: str) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from graphs import GraphBuilder
    from orchestrator.runtime.executor import LocalExecutor
    from orchestrator.runtime.scheduler import Scheduler
    from orchestrator.runtime.worker import WorkerConfig

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1})
    cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    try:
        config = WorkerConfig(extra_plugins=("faults=fault_plugin",), sys_path=(str(TESTS),),
                              entry_points=False)
        with Scheduler(config=config, ray_address=cluster.address) as sched:
            sched.wait_ready(120)
            workers = sched.workers()
            node_of = {w["name"]: w["node_id"] for w in workers}
            b = GraphBuilder()
            # two big seeded images at once (one per GPU, so one per node; ~0.8 MB each: they
            # travel through Ray's object store between the nodes), then merged
            n1 = b.add("faults.noise", id="n1", width=256, height=256)
            n2 = b.add("faults.noise", id="n2", width=256, height=256)
            inv = b.add("faults.invert", id="inv", image=n2.image)
            b.add("faults.mix", id="merged", images=[n1.image, inv.image])
            graph = b.build()
            ran: list[str] = []
            result = sched.run(graph, on_event=lambda e: ran.append(node_of.get(e.get("worker"), ""))
                               if e["event"] == "node_started" and e["worker"] in node_of else None)
            local = LocalExecutor(sched.catalog).run(graph)
            import numpy as np

            equal = all(
                np.array_equal(result.outputs[n][p], local.outputs[n][p])
                for n in ("n1", "n2", "inv", "merged") for p in local.outputs[n]
            )
            return {
                "cluster_nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"]),
                "worker_nodes": sorted(w["node_id"] for w in workers),
                "ran_on_nodes": ran,
                "equal_to_local": bool(equal),
                "merged_shape": list(result.outputs["merged"]["image"].shape),
            }
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS))
    print(json.dumps(_child(sys.argv[1])), flush=True)
