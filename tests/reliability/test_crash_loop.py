"""The daemon SIGKILLed again and again with jobs queued and running: every job completes once."""

from __future__ import annotations

import random
import time

import httpx
import pytest
from kit import all_jobs, make_daemon, slow_graph, wait_final

from orchestrator.state.store import JobStore


@pytest.mark.slow
def test_sigkill_in_a_loop_then_restart_completes_every_job_exactly_once(tmp_path):
    rng = random.Random(7)
    d = make_daemon(tmp_path / "state", env={"ORCHESTRATOR_LIMITS__ATTEMPTS": "50"}).start()
    ids: list[str] = []
    names: dict[str, str] = {}

    def submit(n: int) -> None:
        with httpx.Client(base_url=d.url, timeout=30) as c:
            for _ in range(n):
                name = f"img{len(ids)}"
                job = c.post("/jobs", json={"graph": slow_graph(steps=4, step_s=0.1, value=rng.random(),
                                                                 name=name)}).json()
                ids.append(job["id"])
                names[job["id"]] = name

    submit(10)
    running_at_kill = 0
    for _ in range(6):
        time.sleep(rng.uniform(0.3, 1.2))
        states = [j["state"] for j in all_jobs(d.url)]
        running_at_kill += states.count("running")
        assert states.count("queued") + states.count("running") > 0  # the kill hits live work
        d.kill()
        d.start()
        submit(2)
    final = wait_final(d.url, ids, timeout=300)
    d.terminate()

    assert running_at_kill >= 3  # jobs really were interrupted mid-run
    assert {j["state"] for j in final.values()} == {"succeeded"}, [j["errors"] for j in final.values()]
    assert max(j["attempts"] for j in final.values()) >= 2
    store = JobStore(d.state / "jobs.db")
    try:
        assert store.integrity_check() == "ok"
        assert sum(store.counts().values()) == len(ids)  # nothing duplicated, nothing lost
        for job_id in ids:
            events = [e["event"] for e in store.events_after(job_id, 0, limit=10_000)]
            assert events.count("done") == 1, (job_id, events)
            assert [o["name"] for o in store.outputs(job_id)] == [names[job_id]]
            files = sorted(p.name for p in (d.state / "outputs" / job_id).iterdir())
            assert files == [f"{names[job_id]}.png"]  # one output, no half-written temp files
    finally:
        store.close()


def test_a_temp_file_left_by_a_kill_mid_write_is_removed_when_the_job_is_recovered(tmp_path):
    d = make_daemon(tmp_path / "state").start()
    job = httpx.post(f"{d.url}/jobs", json={"graph": slow_graph(steps=50, step_s=0.1, name="img")}).json()
    deadline = time.monotonic() + 30
    while httpx.get(f"{d.url}/jobs/{job['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    folder = d.state / "outputs" / job["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".img.png.k2j4x9.tmp").write_bytes(b"\x89PNG half")  # what a kill inside write_png leaves
    d.kill()
    d.start()
    try:
        assert wait_final(d.url, [job["id"]], timeout=60)[job["id"]]["state"] == "succeeded"
        assert sorted(p.name for p in folder.iterdir()) == ["img.png"]
    finally:
        d.terminate()
