"""ComfyUI prompt ids and our job ids: a small SQLite table beside the job store.

ComfyUI clients name a prompt by a UUID string, often one they chose themselves
(``POST /prompt`` with ``prompt_id``, as ComfyUI's own websocket example does). Our jobs
have ids of their own; this index maps one to the other, durably (the file lives in the
state directory, written before ``POST /prompt`` answers), and keeps what ComfyUI shows
that our store does not: the queue number, the client id, the prompt's output node ids,
and whether ``POST /history`` hid the entry. It also remembers the file name a client
uploaded an image under (``upload_names``): the input folder stores it under a name derived
from its content, and a client that then names its own file in ``LoadImage`` (or ``/view``)
gets the latest upload of that name.

>>> import tempfile, os
>>> ix = PromptIndex(os.path.join(tempfile.mkdtemp(), "comfy.sqlite"))
>>> ix.add("p-1", "job1", client_id="c", outputs=["9"])
1
>>> ix.job("p-1"), ix.prompt("job1").number, ix.prompt("job1").outputs
('job1', 1, ['9'])
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT UNIQUE NOT NULL,
    job_id TEXT UNIQUE NOT NULL,
    client_id TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    hidden INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_names (
    subfolder TEXT NOT NULL,
    name TEXT NOT NULL,
    stored TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (subfolder, name)
);
"""


@dataclass(frozen=True)
class PromptRecord:
    """One prompt submitted through ComfyUI's API."""

    number: int
    prompt_id: str
    job_id: str
    client_id: str | None
    outputs: list[str] = field(default_factory=list)  # ComfyUI ids of its output nodes
    hidden: bool = False


class PromptIndex:
    """Thread-safe map between ComfyUI prompt ids and job ids (a SQLite file, WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, prompt_id: str, job_id: str, *, client_id: str | None = None,
            outputs: list[str] | None = None) -> int:
        """Record a new prompt; its queue number (or the existing one's, for a known pair)."""
        with self._lock:
            row = self._db.execute("SELECT number FROM prompts WHERE prompt_id = ? AND job_id = ?",
                                   (prompt_id, job_id)).fetchone()
            if row is not None:
                return int(row[0])
            cur = self._db.execute(
                "INSERT INTO prompts (prompt_id, job_id, client_id, outputs, created_at) "
                "VALUES (?,?,?,?,?)", (prompt_id, job_id, client_id, json.dumps(outputs or []),
                                       time.time()))
            return int(cur.lastrowid or 0)

    def job(self, prompt_id: str) -> str | None:
        """The job id of a prompt id, or None."""
        rec = self.by_prompt(prompt_id)
        return rec.job_id if rec is not None else None

    def by_prompt(self, prompt_id: str) -> PromptRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM prompts WHERE prompt_id = ?", (prompt_id,)).fetchone()
        return _record(row) if row is not None else None

    def prompt(self, job_id: str) -> PromptRecord | None:
        """The prompt record of a job id, or None (a job submitted through our own API)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM prompts WHERE job_id = ?", (job_id,)).fetchone()
        return _record(row) if row is not None else None

    def recent(self, limit: int, *, offset: int = 0, include_hidden: bool = False) -> list[PromptRecord]:
        """The newest prompts first."""
        sql = "SELECT * FROM prompts" + ("" if include_hidden else " WHERE hidden = 0")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY number DESC LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
        return [_record(r) for r in rows]

    def hide(self, prompt_ids: list[str] | None) -> int:
        """Hide prompts from the history (all of them when ``prompt_ids`` is None)."""
        with self._lock:
            if prompt_ids is None:
                return self._db.execute("UPDATE prompts SET hidden = 1 WHERE hidden = 0").rowcount
            n = 0
            for i in range(0, len(prompt_ids), 400):
                chunk = prompt_ids[i:i + 400]
                n += self._db.execute(
                    f"UPDATE prompts SET hidden = 1 WHERE prompt_id IN ({','.join('?' * len(chunk))})",
                    chunk).rowcount
            return n

    def set_upload_name(self, subfolder: str, name: str, stored: str) -> None:
        """Remember that the client's ``subfolder/name`` is the stored input ``stored`` (latest wins)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO upload_names (subfolder, name, stored, created_at) "
                             "VALUES (?,?,?,?)", (subfolder, name, stored, time.time()))

    def upload_name(self, subfolder: str, name: str) -> str | None:
        """The stored input a client's ``subfolder/name`` stands for, or None."""
        with self._lock:
            row = self._db.execute("SELECT stored FROM upload_names WHERE subfolder = ? AND name = ?",
                                   (subfolder, name)).fetchone()
        return str(row[0]) if row is not None else None

    def forget(self, job_ids: set[str]) -> None:
        """Drop the rows of jobs the store no longer has (pruned)."""
        ids = sorted(job_ids)
        with self._lock:
            for i in range(0, len(ids), 400):
                chunk = ids[i:i + 400]
                self._db.execute(f"DELETE FROM prompts WHERE job_id IN ({','.join('?' * len(chunk))})",
                                 chunk)


def _record(row: sqlite3.Row) -> PromptRecord:
    return PromptRecord(number=int(row["number"]), prompt_id=row["prompt_id"], job_id=row["job_id"],
                        client_id=row["client_id"], outputs=list(json.loads(row["outputs"])),
                        hidden=bool(row["hidden"]))
