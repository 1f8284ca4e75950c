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
PROGRESS_EVENTS = ("step", "tile")  # many per node: capped per job (the newest are kept)
_PROGRESS_SQL = "json_extract(data, '$.event') IN ('step', 'tile')"


class IdempotencyConflict(JobError):
    """The same ``Idempotency-Key`` was sent with a different body."""

    type = "idempotency_conflict"


class QueueFull(JobError):
    """``max_queued`` jobs are waiting already."""

    type = "queue_full"


class JobStore:
    """Thread-safe access to the SQLite job database at ``path``."""

    def __init__(self, path: str | Path, *, max_progress_events: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_progress_events = max_progress_events
        self._progress: dict[str, int] = {}  # job id -> its step/tile events in the table
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "output_bytes" not in columns:  # a store from before retention: measured lazily
            self._db.execute("ALTER TABLE jobs ADD COLUMN output_bytes INTEGER")
        if "rating" not in columns:  # a store from before ratings: no job is rated yet
            self._db.execute("ALTER TABLE jobs ADD COLUMN rating REAL")
            self._db.execute("ALTER TABLE jobs ADD COLUMN rated_at REAL")

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

    def rate(self, job_id: str, stars: float) -> tuple[dict[str, Any], float | None] | None:
        """Set a job's rating (1..5 stars, checked by the caller); ``(job, previous rating)``,
        or ``None`` when there is no such job. Rating again replaces the rating."""
        with self._tx() as db:
            row = db.execute("SELECT rating FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET rating = ?, rated_at = ? WHERE id = ?", (stars, time.time(), job_id))
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(job), row["rating"]

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
        if data.get("event") in PROGRESS_EVENTS and self.max_progress_events is not None:
            self._cap_progress(db, job_id)
        elif data.get("event") == "done":
            self._progress.pop(job_id, None)
        return seq

    def _cap_progress(self, db: sqlite3.Connection, job_id: str) -> None:
        """Keep the newest ``max_progress_events`` step/tile events of a job (others all stay).

        Trimmed in batches (a quarter over the cap), so a long job costs one DELETE per
        quarter-cap events; sequence numbers never go back, so resuming streams are unaffected.
        """
        cap = int(self.max_progress_events or 0)
        count = self._progress.get(job_id)
        if count is None:
            count = int(db.execute(
                f"SELECT COUNT(*) FROM events WHERE job_id = ? AND {_PROGRESS_SQL}", (job_id,)
            ).fetchone()[0])
        else:
            count += 1
        if count > cap + max(1, cap // 4):
            db.execute(
                f"DELETE FROM events WHERE job_id = ? AND seq IN (SELECT seq FROM events WHERE "
                f"job_id = ? AND {_PROGRESS_SQL} ORDER BY seq DESC LIMIT -1 OFFSET ?)",
                (job_id, job_id, cap))
            count = cap
        self._progress[job_id] = count

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

    # -- retention -------------------------------------------------------------------------

    def finished_jobs(self) -> list[dict[str, Any]]:
        """Every finished job, oldest first: ``id``, ``finished_at``, ``output_bytes`` (None: not
        measured yet)."""
        final = tuple(sorted(FINAL_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, COALESCE(finished_at, created_at) AS finished_at, output_bytes "
                f"FROM jobs WHERE state IN ({','.join('?' * len(final))}) "
                "ORDER BY COALESCE(finished_at, created_at), seq", final).fetchall()
        return [dict(r) for r in rows]

    def count_jobs(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def set_output_bytes(self, sizes: dict[str, int]) -> None:
        """Record the measured size of finished jobs' output folders."""
        with self._tx() as db:
            db.executemany("UPDATE jobs SET output_bytes = ? WHERE id = ?",
                           [(n, job_id) for job_id, n in sizes.items()])

    def known_ids(self, ids: list[str]) -> set[str]:
        """The ones of ``ids`` that are jobs in the store."""
        out: set[str] = set()
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                rows = self._db.execute(
                    f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                out.update(r[0] for r in rows)
        return out

    def delete_jobs(self, ids: list[str]) -> list[str]:
        """Delete finished jobs with their events and outputs rows, in one transaction.

        A job that is not finished (any more) is left alone; returns the ids deleted. The
        idempotency key goes with the job's row, so the key can be used again.
        """
        final = tuple(sorted(FINAL_STATES))
        deleted: list[str] = []
        with self._tx() as db:
            for i in range(0, len(ids), 400):
                chunk = ids[i:i + 400]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT id FROM jobs WHERE id IN ({marks}) AND state IN "
                    f"({','.join('?' * len(final))})", [*chunk, *final]).fetchall()
                found = {r[0] for r in rows}
                gone = [job_id for job_id in chunk if job_id in found]  # in the order asked
                if not gone:
                    continue
                marks = ",".join("?" * len(gone))
                db.execute(f"DELETE FROM events WHERE job_id IN ({marks})", gone)
                db.execute(f"DELETE FROM outputs WHERE job_id IN ({marks})", gone)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", gone)
                deleted += gone
        for job_id in deleted:
            self._progress.pop(job_id, None)
        return deleted

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
