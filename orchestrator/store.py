"""The job store: one SQLite file (WAL), the single source of truth for jobs.

A job is written before the daemon answers its submission, and every state change,
event and output is committed as it happens, so a daemon killed at any moment restarts
with nothing lost: :meth:`JobStore.recover` re-queues what was running (bounded by the
attempt count) and leaves the rest as it was.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import JobError
from orchestrator.protocol import FINAL_STATES, JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    name TEXT,
    prompt TEXT,
    request TEXT NOT NULL,
    graph TEXT,
    trace TEXT NOT NULL DEFAULT '[]',
    errors TEXT NOT NULL DEFAULT '[]',
    timings TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    idem_key TEXT UNIQUE,
    body_hash TEXT,
    score REAL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, seq);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS outputs (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    node TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, name)
);
"""

ACTIVE = (JobState.PLANNING.value, JobState.RUNNING.value)


class IdempotencyConflict(JobError):
    """The same ``Idempotency-Key`` was sent with a different body."""

    type = "idempotency_conflict"


class QueueFull(JobError):
    """``max_queued`` jobs are waiting already."""

    type = "queue_full"


class JobStore:
    """Thread-safe access to the SQLite job database at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- jobs ------------------------------------------------------------------------------

    def create(
        self,
        *,
        kind: str,
        request: dict[str, Any],
        priority: int = 0,
        name: str | None = None,
        prompt: str | None = None,
        graph: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        body_hash: str | None = None,
        max_queued: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Write a new queued job; ``(job, True)``, or ``(existing, False)`` for a repeated key.

        With ``max_queued``, refuse (:class:`QueueFull`) when that many jobs wait already: the
        count and the insert are one transaction, so a burst cannot overshoot the bound.
        """
        with self._tx() as db:
            if idempotency_key is not None:
                row = db.execute("SELECT * FROM jobs WHERE idem_key = ?", (idempotency_key,)).fetchone()
                if row is not None:
                    if row["body_hash"] != body_hash:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {idempotency_key!r} was used for job {row['id']} "
                            "with a different request body",
                            field="Idempotency-Key", value=idempotency_key, job=row["id"],
                        )
                    return _job(row), False
            if max_queued is not None:
                waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?",
                                     (JobState.QUEUED.value,)).fetchone()[0]
                if waiting >= max_queued:
                    raise QueueFull(f"{max_queued} jobs are waiting; try again later")
            job_id = uuid.uuid4().hex[:16]
            db.execute(
                "INSERT INTO jobs (id, state, priority, kind, name, prompt, request, graph, "
                "created_at, idem_key, body_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (job_id, JobState.QUEUED.value, priority, kind, name, prompt, json.dumps(request),
                 json.dumps(graph) if graph is not None else None, time.time(),
                 idempotency_key, body_hash),
            )
            self._event(db, job_id, {"event": "queued"})
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row), True

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def list(self, state: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        sql = "SELECT * FROM jobs"
        args: list[Any] = []
        if state is not None:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        out = {s.value: 0 for s in JobState}
        out.update({r["state"]: r["n"] for r in rows})
        return out

    def claim_next(self) -> dict[str, Any] | None:
        """Take the highest-priority, oldest queued job and mark it started (attempts + 1)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE state = ? ORDER BY priority DESC, seq ASC LIMIT 1",
                (JobState.QUEUED.value,),
            ).fetchone()
            if row is None:
                return None
            state = JobState.PLANNING if row["kind"] == "prompt" and row["graph"] is None \
                else JobState.RUNNING
            db.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ? WHERE id = ?",
                (state.value, time.time(), row["id"]),
            )
            self._event(db, row["id"], {"event": state.value, "attempt": row["attempts"] + 1})
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return _job(row)

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job (``graph``, ``trace``, ``errors``, ``timings`` as JSON data)."""
        cols, args = [], []
        for key, value in fields.items():
            if key in ("graph", "trace", "errors", "timings"):
                value = json.dumps(value)
            elif key == "state":
                value = JobState(value).value
            cols.append(f"{key} = ?")
            args.append(value)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {', '.join(cols)} WHERE id = ?", [*args, job_id])

    def finish(self, job_id: str, state: JobState, *, errors: list[dict[str, Any]] | None = None,
               timings: dict[str, float] | None = None) -> None:
        """Move a job to a final state, with its errors, and record the ``done`` event."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, errors = ?, timings = ? WHERE id = ?",
                (state.value, time.time(), json.dumps(errors or []), json.dumps(timings or {}),
                 job_id),
            )
            self._event(db, job_id, {"event": "done", "state": state.value, "errors": errors or []})

    def requeue(self, job_id: str, *, count_attempt: bool) -> None:
        """Put a started job back in the queue (after an interrupted run)."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, started_at = NULL, attempts = attempts - ? WHERE id = ?",
                (JobState.QUEUED.value, 0 if count_attempt else 1, job_id),
            )
            self._event(db, job_id, {"event": "queued", "requeued": True})

    def request_cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued job at once; flag a started one. Returns the job, or None."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row["state"] == JobState.QUEUED.value:
                db.execute("UPDATE jobs SET state = ?, finished_at = ?, cancel_requested = 1 "
                           "WHERE id = ?", (JobState.CANCELLED.value, time.time(), job_id))
                self._event(db, job_id, {"event": "done", "state": JobState.CANCELLED.value,
                                         "errors": []})
            elif row["state"] not in FINAL_STATES:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        return bool(row and row[0])

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """After a restart: re-queue jobs that were started, fail those out of attempts."""
        requeued, failed = [], []
        with self._tx() as db:
            rows = db.execute(
                f"SELECT id, attempts, cancel_requested FROM jobs WHERE state IN {ACTIVE}"
            ).fetchall()
            for row in rows:
                if row["cancel_requested"]:
                    db.execute("UPDATE jobs SET state = ?, finished_at = ? WHERE id = ?",
                               (JobState.CANCELLED.value, time.time(), row["id"]))
                    self._event(db, row["id"], {"event": "done", "state": "cancelled", "errors": []})
                elif row["attempts"] >= max_attempts:
                    err = {"type": "crashed", "node": None, "field": None,
                           "message": f"the daemon stopped {row['attempts']} times while running "
                                      f"this job; giving up after {max_attempts} attempts"}
                    db.execute("UPDATE jobs SET state = ?, finished_at = ?, errors = ? WHERE id = ?",
                               (JobState.FAILED.value, time.time(), json.dumps([err]), row["id"]))
                    self._event(db, row["id"], {"event": "done", "state": "failed", "errors": [err]})
                    failed.append(row["id"])
                else:
                    db.execute("UPDATE jobs SET state = ?, started_at = NULL WHERE id = ?",
                               (JobState.QUEUED.value, row["id"]))
                    self._event(db, row["id"], {"event": "queued", "recovered": True})
                    requeued.append(row["id"])
        return requeued, failed

    # -- events ----------------------------------------------------------------------------

    def _event(self, db: sqlite3.Connection, job_id: str, data: dict[str, Any]) -> int:
        row = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?",
                         (job_id,)).fetchone()
        seq = int(row[0])
        db.execute("INSERT INTO events (job_id, seq, ts, data) VALUES (?,?,?,?)",
                   (job_id, seq, time.time(), json.dumps(data, default=str)))
        return seq

    def add_event(self, job_id: str, data: dict[str, Any]) -> int:
        with self._tx() as db:
            return self._event(db, job_id, data)

    def events_after(self, job_id: str, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, ts, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (job_id, after, limit),
            ).fetchall()
        return [{"id": r["seq"], "ts": r["ts"], **json.loads(r["data"])} for r in rows]

    # -- outputs ---------------------------------------------------------------------------

    def add_output(self, job_id: str, name: str, node: str, path: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO outputs (job_id, name, node, path, created_at) "
                       "VALUES (?,?,?,?,?)", (job_id, name, node, path, time.time()))

    def outputs(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, node, path FROM outputs WHERE job_id = ? ORDER BY name", (job_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _job(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for key in ("request", "graph", "trace", "errors", "timings"):
        if d.get(key) is not None:
            d[key] = json.loads(d[key])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return d
