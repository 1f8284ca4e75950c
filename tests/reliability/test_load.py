"""Load: concurrent submissions all land once, a full queue answers 429, /health stays quick."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

import httpx
import pytest
from kit import all_jobs, make_daemon, slow_graph, submit_many, wait_final

from orchestrator.state.store import JobStore


@pytest.mark.slow
def test_200_concurrent_submissions_are_each_on_disk_once_and_reach_a_final_state(tmp_path):
    d = make_daemon(tmp_path / "state").start()
    try:
        bodies = [{"graph": slow_graph(value=i / 200), "name": f"job{i}"} for i in range(200)]
        answers = asyncio.run(submit_many(d.url, bodies))
        assert [r.status_code for r in answers] == [201] * 200
        ids = [r.json()["id"] for r in answers]
        assert len(set(ids)) == 200  # no duplicate ids
        store = JobStore(d.state / "jobs.db")  # every accepted job is on disk already
        try:
            assert all(store.get(i) is not None for i in ids)
        finally:
            store.close()
        final = wait_final(d.url, ids, timeout=300)
        assert {j["state"] for j in final.values()} == {"succeeded"}
        assert sorted(j["name"] for j in final.values()) == sorted(b["name"] for b in bodies)
        assert len(all_jobs(d.url)) == 200  # nothing extra, nothing twice
        for job_id in ids[:: 20]:
            events = httpx.get(f"{d.url}/jobs/{job_id}/events", params={"format": "json"}).json()["events"]
            assert [e["event"] for e in events].count("done") == 1
    finally:
        d.terminate()


def test_a_full_queue_answers_429_with_retry_after_and_never_exceeds_its_bound(tmp_path):
    d = make_daemon(tmp_path / "state", env={"ORCHESTRATOR_LIMITS__QUEUED": "10"}).start()
    try:
        blocker = httpx.post(f"{d.url}/jobs", json={"graph": slow_graph(steps=300, step_s=0.2)}).json()
        deadline = time.monotonic() + 30
        while httpx.get(f"{d.url}/jobs/{blocker['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answers = asyncio.run(submit_many(d.url, [{"graph": slow_graph(value=i / 100)} for i in range(100)]))
        codes = [r.status_code for r in answers]
        assert set(codes) == {201, 429}
        assert codes.count(201) == 10  # the bound holds under a burst, not just one at a time
        for r in answers:
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) > 0
                assert r.json()["errors"][0]["type"] == "queue_full"
        assert httpx.get(f"{d.url}/metrics").json()["queue_depth"] == 10
        assert len(all_jobs(d.url)) == 11  # refused ones were never written
        httpx.post(f"{d.url}/jobs/{blocker['id']}/cancel")
        ids = [r.json()["id"] for r in answers if r.status_code == 201]
        assert {j["state"] for j in wait_final(d.url, ids, timeout=120).values()} == {"succeeded"}
        assert httpx.post(f"{d.url}/jobs", json={"graph": slow_graph()}).status_code == 201
    finally:
        d.terminate()


BURNER = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@pytest.mark.slow
def test_health_and_status_answer_quickly_while_both_cpus_are_busy(tmp_path):
    d = make_daemon(tmp_path / "state").start()
    burners = [subprocess.Popen([sys.executable, "-c", BURNER.format(s=60)]) for _ in range(2)]
    try:
        # and the daemon's own job thread holds the GIL with pure-Python work
        job = httpx.post(f"{d.url}/jobs", json={"graph": {"nodes": {
            "b": {"block": "stress.burn", "params": {"seconds": 60}}}}}).json()
        deadline = time.monotonic() + 30
        while httpx.get(f"{d.url}/jobs/{job['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        health, status = [], []
        with httpx.Client(base_url=d.url, timeout=30) as c:
            for _ in range(20):
                t0 = time.perf_counter()
                assert c.get("/health").json()["ok"] is True
                health.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert c.get(f"/jobs/{job['id']}").json()["state"] == "running"
                status.append(time.perf_counter() - t0)
                time.sleep(0.05)
        assert max(health) < 2.0 and statistics.median(health) < 0.5, health
        assert max(status) < 2.0 and statistics.median(status) < 0.5, status
        httpx.post(f"{d.url}/jobs/{job['id']}/cancel")
        assert wait_final(d.url, [job["id"]], timeout=60)[job["id"]]["state"] == "cancelled"
    finally:
        for p in burners:
            p.kill()
            p.wait()
        d.terminate()


def test_the_store_bounds_the_queue_atomically_under_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.state.store import QueueFull

    store = JobStore(tmp_path / "jobs.db")

    def one(i: int) -> bool:
        try:
            store.create(kind="graph", request={}, graph={"nodes": {}}, name=str(i), max_queued=7)
            return True
        except QueueFull as exc:
            assert exc.to_dict()["type"] == "queue_full"
            return False

    try:
        with ThreadPoolExecutor(16) as pool:
            accepted = sum(pool.map(one, range(64)))
        assert accepted == 7 and store.counts()["queued"] == 7
    finally:
        store.close()
