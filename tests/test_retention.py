"""Job retention on a real store and real folders: what goes, what stays, crash safety, the CLI."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.protocol import JobState
from orchestrator.state.retention import (
    DAY,
    AutoPruner,
    Policy,
    Retention,
    folder_bytes,
    parse_duration,
    parse_size,
    select,
)
from orchestrator.state.store import JobStore

KB = 1024


def finished_job(store: JobStore, outputs, *, size: int = KB, state=JobState.SUCCEEDED,
                 key: str | None = None, finished_at: float | None = None) -> str:
    """A job that ran and finished, with a real output file of ``size`` bytes and its row."""
    job, _ = store.create(kind="graph", request={"graph": {}}, graph={"nodes": {}},
                          idempotency_key=key, body_hash="h")
    claimed = store.claim_next()
    assert claimed["id"] == job["id"]
    folder = outputs / job["id"]
    folder.mkdir(parents=True)
    (folder / "out.png").write_bytes(b"\x89PNG" + b"x" * (size - 4))
    store.add_output(job["id"], "out", "save", str(folder / "out.png"))
    store.add_event(job["id"], {"event": "step", "node": "s", "step": 1, "total": 1})
    store.finish(job["id"], state)
    if finished_at is not None:
        store.update(job["id"], finished_at=finished_at)
    return job["id"]


@pytest.fixture()
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    yield s
    s.close()


def rows(store: JobStore, table: str, job_id: str) -> int:
    col = "id" if table == "jobs" else "job_id"
    with store._lock:
        return store._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {col} = ?", (job_id,)).fetchone()[0]


def test_count_budget_keeps_the_newest_and_removes_rows_and_folders(store, tmp_path):
    outputs = tmp_path / "outputs"
    ids = [finished_job(store, outputs, key=f"k{i}") for i in range(12)]
    report = Retention(store, outputs, Policy(max_age_s=None, max_jobs=5, max_output_bytes=None,
                                              keep_latest=2)).prune()
    assert report.jobs == ids[:7] and report.reasons["count"] == 7 and report.kept_jobs == 5
    assert store.count_jobs() == 5 and report.freed_bytes == 7 * KB
    for job_id in ids[:7]:
        assert store.get(job_id) is None and not (outputs / job_id).exists()
        assert rows(store, "events", job_id) == rows(store, "outputs", job_id) == 0
    for job_id in ids[7:]:  # what stays is whole: rows, events, outputs, files
        assert store.get(job_id)["state"] == "succeeded" and (outputs / job_id / "out.png").is_file()
        assert [o["name"] for o in store.outputs(job_id)] == ["out"]
    # a pruned job's idempotency key makes a new job; a kept one's still answers with its job
    again, created = store.create(kind="graph", request={}, idempotency_key="k0", body_hash="h")
    assert created and again["id"] not in ids
    kept, created = store.create(kind="graph", request={}, idempotency_key="k11", body_hash="h")
    assert not created and kept["id"] == ids[11]


def test_active_jobs_and_the_newest_are_never_pruned(store, tmp_path):
    outputs = tmp_path / "outputs"
    done = [finished_job(store, outputs) for _ in range(4)]
    running, _ = store.create(kind="graph", request={})
    store.claim_next()
    queued, _ = store.create(kind="graph", request={})
    (outputs / running["id"]).mkdir()
    (outputs / running["id"] / "partial.png").write_bytes(b"x" * 10)
    report = Retention(store, outputs, Policy(max_age_s=0.0, max_jobs=0, max_output_bytes=0,
                                              keep_latest=1)).prune()
    assert report.jobs == done[:3]
    assert store.get(running["id"])["state"] == "running" and store.get(queued["id"])["state"] == "queued"
    assert (outputs / running["id"] / "partial.png").is_file() and store.get(done[3]) is not None


def test_age_and_disk_budget(store, tmp_path):
    outputs = tmp_path / "outputs"
    now = 1_000 * DAY
    old = [finished_job(store, outputs, size=10 * KB, finished_at=now - 40 * DAY) for _ in range(3)]
    new = [finished_job(store, outputs, size=10 * KB, finished_at=now - DAY + i) for i in range(6)]
    ret = Retention(store, outputs, Policy(max_age_s=30 * DAY, max_jobs=None,
                                           max_output_bytes=35 * KB, keep_latest=0))
    report = ret.prune(now=now)
    assert report.reasons == {"age": 3, "count": 0, "bytes": 3}
    assert report.jobs == old + new[:3]
    assert folder_bytes(outputs) <= 35 * KB and report.kept_output_bytes == 30 * KB
    assert sorted(p.name for p in outputs.iterdir()) == sorted(new[3:])


def test_dry_run_removes_nothing(store, tmp_path):
    outputs = tmp_path / "outputs"
    ids = [finished_job(store, outputs) for _ in range(5)]
    (outputs / "0123456789abcdef").mkdir()  # an orphan folder
    report = Retention(store, outputs, Policy(max_jobs=2, keep_latest=0)).prune(dry_run=True)
    assert report.dry_run and report.jobs == ids[:3] and report.orphans == 1 and report.kept_jobs == 2
    assert store.count_jobs() == 5 and all((outputs / i).is_dir() for i in ids)
    assert (outputs / "0123456789abcdef").is_dir()


def test_a_crash_between_rows_and_files_leaves_orphans_that_the_next_prune_removes(store, tmp_path):
    outputs = tmp_path / "outputs"
    ids = [finished_job(store, outputs) for _ in range(4)]
    assert store.delete_jobs(ids[:2]) == ids[:2]  # the transaction committed, then "the crash"
    assert all((outputs / i).is_dir() for i in ids)  # files without rows: harmless ...
    for job_id in ids[2:]:  # ... and no row points at a missing file
        assert all(Path(o["path"]).is_file() for o in store.outputs(job_id))
    (outputs / "not-a-job").mkdir()  # not ours to judge: left alone
    (outputs / "notes.txt").write_text("x")
    report = Retention(store, outputs, Policy(max_age_s=None, max_jobs=None, max_output_bytes=None,
                                              keep_latest=0)).prune()
    assert report.orphans == 2 and report.jobs == [] and report.orphan_bytes == 2 * KB
    assert sorted(p.name for p in outputs.iterdir()) == sorted([*ids[2:], "not-a-job", "notes.txt"])


def test_a_link_in_a_job_folder_is_removed_not_followed(store, tmp_path):
    outputs = tmp_path / "outputs"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep me")
    job_id = finished_job(store, outputs)
    (outputs / job_id / "link").symlink_to(outside, target_is_directory=True)
    orphan = outputs / "fedcba9876543210"
    orphan.symlink_to(outside, target_is_directory=True)
    Retention(store, outputs, Policy(max_jobs=0, keep_latest=0)).prune()
    assert not (outputs / job_id).exists() and not orphan.exists()
    assert (outside / "keep.txt").read_text() == "keep me"


def test_only_finished_rows_are_deleted_even_when_asked(store, tmp_path):
    running, _ = store.create(kind="graph", request={})
    store.claim_next()
    assert store.delete_jobs([running["id"], "nope"]) == []
    assert store.get(running["id"]) is not None


def test_a_store_from_before_retention_is_upgraded(tmp_path):
    db = sqlite3.connect(tmp_path / "jobs.db")
    db.executescript("""CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
        state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, kind TEXT NOT NULL, name TEXT,
        prompt TEXT, request TEXT NOT NULL, graph TEXT, trace TEXT NOT NULL DEFAULT '[]',
        errors TEXT NOT NULL DEFAULT '[]', timings TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL, started_at REAL, finished_at REAL, idem_key TEXT UNIQUE,
        body_hash TEXT, score REAL);
        INSERT INTO jobs (id, state, kind, request, created_at, finished_at)
        VALUES ('00000000000000aa', 'succeeded', 'graph', '{}', 1.0, 2.0);""")
    db.commit()
    db.close()
    (tmp_path / "outputs" / "00000000000000aa").mkdir(parents=True)
    (tmp_path / "outputs" / "00000000000000aa" / "a.png").write_bytes(b"x" * 3000)
    store = JobStore(tmp_path / "jobs.db")
    ret = Retention(store, tmp_path / "outputs", Policy(max_age_s=None, max_jobs=None,
                                                        max_output_bytes=None))
    assert ret.prune().kept_output_bytes == 3000  # measured once, then read from the row
    assert store.finished_jobs()[0]["output_bytes"] == 3000
    store.close()


def test_progress_events_are_capped_per_job_and_the_rest_kept(tmp_path):
    store = JobStore(tmp_path / "jobs.db", max_progress_events=100)
    job, _ = store.create(kind="graph", request={})
    store.claim_next()
    for i in range(2000):
        store.add_event(job["id"], {"event": "step", "node": "s", "step": i + 1, "total": 2000})
        if i % 500 == 0:
            store.add_event(job["id"], {"event": "node_started", "node": f"n{i}"})
    store.finish(job["id"], JobState.SUCCEEDED)
    events = store.events_after(job["id"], 0, limit=10_000)
    steps = [e for e in events if e["event"] == "step"]
    assert 100 <= len(steps) <= 125 and steps[-1]["step"] == 2000  # the newest are kept
    others = [e["event"] for e in events if e["event"] != "step"]
    assert others == ["queued", "running", *["node_started"] * 4, "done"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # a resuming stream's cursor still works
    other, _ = store.create(kind="graph", request={})
    store.add_event(other["id"], {"event": "step", "step": 1})
    assert len(store.events_after(other["id"])) == 2  # another job's events are its own
    store.close()


def test_durations_and_sizes():
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800 and parse_duration("2w") == 14 * DAY
    assert parse_size("500M") == 500 << 20 and parse_size("1.5k") == 1536
    for bad in ("", "-1d", "7y", "1e9d", "NaN", "inf", "٣d", "1d; rm -rf /"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    for bad in ("", "-5", "5 parsecs", "NaN", "1e99"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_policy_narrowed_by_criteria():
    configured = Policy(max_age_s=10.0, max_jobs=100, max_output_bytes=1000, keep_latest=5)
    assert configured.narrowed() == configured
    assert configured.narrowed(keep_latest=0) == Policy(10.0, 100, 1000, 0)
    assert configured.narrowed(older_than_s=60.0) == Policy(60.0, None, None, 5)
    jobs = [{"id": str(i), "finished_at": float(i), "output_bytes": None} for i in range(3)]
    assert select(jobs, 3, Policy(None, None, None, 0), 10.0) == []


def test_auto_pruner_runs_after_a_poke(store, tmp_path):
    outputs = tmp_path / "outputs"
    ret = Retention(store, outputs, Policy(max_jobs=2, keep_latest=0))
    pruner = AutoPruner(ret, interval_s=3600, min_gap_s=0.01)
    pruner.start()
    try:
        ids = [finished_job(store, outputs) for _ in range(5)]
        done = threading.Event()
        for _ in range(600):  # poke until it has run since the jobs finished (60 s at most)
            pruner.poke(ids[-1])
            if store.count_jobs() <= 2:
                done.set()
                break
            threading.Event().wait(0.1)
        assert done.is_set() and [j["id"] for j in store.finished_jobs()] == ids[3:]
    finally:
        pruner.stop()


def test_cli_prunes_the_state_dir_when_no_daemon_runs(tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(state))
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    assert main(["jobs", "prune"]) == 0  # no store yet: nothing to do, nothing created
    assert "pruned 0 jobs" in capsys.readouterr().out and not (state / "jobs.db").exists()
    store = JobStore(state / "jobs.db")
    ids = [finished_job(store, state / "outputs") for _ in range(4)]
    store.close()
    assert main(["jobs", "prune", "--dry-run", "--max-jobs", "1", "--keep", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would prune 3 jobs") and all(i in out for i in ids[:3])
    assert main(["jobs", "prune", "--older-than", "0s", "--keep", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pruned"] == 3 and report["jobs"] == ids[:3] and report["kept_jobs"] == 1
    assert sorted(p.name for p in (state / "outputs").iterdir()) == [ids[3]]
    assert main(["jobs", "prune", "--older-than", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err
    assert main(["jobs", "prune", "--max-jobs", "-3"]) == 2


def test_a_detached_daemons_log_is_rotated_at_start_once_it_is_big(tmp_path):
    from orchestrator.server.daemon import rotate_log

    log = tmp_path / "daemon.log"
    rotate_log(log, max_bytes=100)  # none yet: nothing to do
    log.write_bytes(b"a" * 100)
    rotate_log(log, max_bytes=100)
    assert log.read_bytes() == b"a" * 100  # not over the limit: kept
    log.write_bytes(b"b" * 101)
    rotate_log(log, max_bytes=100)
    assert not log.exists() and (tmp_path / "daemon.log.1").read_bytes() == b"b" * 101
    log.write_bytes(b"c" * 200)
    rotate_log(log, max_bytes=100)
    assert (tmp_path / "daemon.log.1").read_bytes() == b"c" * 200  # one old log is kept, at most
