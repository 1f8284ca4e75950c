"""The score table that learns: label x template -> count and mean score, in SQLite.

Every scored job adds a record (prompt, labels, template, graph, score) and updates, for
each of its labels, the running mean of its template. The planner ranks templates by
these means, starting from a prior given by the template's own labels, so its choices
improve with use. Scores are in ``0..1`` (a scorer's output, normalised).

>>> table = ScoreTable()  # in memory; ScoreTable(path) keeps it in a file
>>> table.record("a red fox", ["wildlife", "text-to-image"], "txt2img", {"nodes": {}}, 0.8)
1
>>> table.record("a wolf", ["wildlife"], "txt2img", {"nodes": {}}, 0.6)
2
>>> table.stats("wildlife", "txt2img")
(2, 0.7)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    label TEXT NOT NULL, template TEXT NOT NULL, count INTEGER NOT NULL, mean REAL NOT NULL,
    PRIMARY KEY (label, template));
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, job TEXT, prompt TEXT NOT NULL,
    labels TEXT NOT NULL, template TEXT, graph TEXT NOT NULL, score REAL NOT NULL);
"""


class ScoreTable:
    """Label x template -> (count, mean score), with every scored record kept for export."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path) if self.path else ":memory:",
                                     timeout=10, check_same_thread=False)
        with self._lock, self._conn:
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScoreTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        prompt: str,
        labels: Iterable[str],
        template: str | None,
        graph: dict[str, Any],
        score: float,
        *,
        job: str | None = None,
    ) -> int:
        """Keep one scored job and update its labels' means for ``template``; the record id."""
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score {score!r} is outside 0..1; normalise the scorer's output")
        labels = sorted({str(label) for label in labels})
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO records (created, job, prompt, labels, template, graph, score) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), job, prompt, json.dumps(labels), template, json.dumps(graph), score),
            )
            if template:
                for label in labels:
                    self._conn.execute(
                        "INSERT INTO scores (label, template, count, mean) VALUES (?, ?, 1, ?) "
                        "ON CONFLICT (label, template) DO UPDATE SET "
                        "mean = mean + (excluded.mean - mean) / (count + 1), count = count + 1",
                        (label, template, score),
                    )
            return int(cur.lastrowid or 0)

    def record_plan(self, plan: Any, score: float, *, job: str | None = None) -> int:
        """Record a scored :class:`agents.planner.Plan` (its prompt, labels, template, graph)."""
        return self.record(plan.prompt, plan.labels, plan.template, plan.graph.to_dict(), score,
                           job=job)

    def record_graph(self, graph: dict[str, Any], score: float, *, job: str | None = None) -> int:
        """Record a scored planned graph by what its ``meta`` says (``prompt``, ``labels``,
        ``template``: the planner writes them), for a caller that kept only the graph."""
        meta = graph.get("meta") or {}
        prompt = meta.get("prompt")
        if not isinstance(prompt, str):
            raise ValueError("the graph's meta has no 'prompt': it was not planned by the agent")
        return self.record(prompt, meta.get("labels") or [], meta.get("template"), graph, score,
                           job=job)

    def stats(self, label: str, template: str) -> tuple[int, float] | None:
        """``(count, mean)`` for one cell, ``None`` when nothing was scored there."""
        with self._lock:
            row = self._conn.execute("SELECT count, mean FROM scores WHERE label = ? AND template = ?",
                                     (label, template)).fetchone()
        return (int(row[0]), round(float(row[1]), 6)) if row else None

    def cells(self) -> dict[tuple[str, str], tuple[int, float]]:
        """Every cell: ``{(label, template): (count, mean)}``."""
        with self._lock:
            rows = self._conn.execute("SELECT label, template, count, mean FROM scores").fetchall()
        return {(r[0], r[1]): (int(r[2]), float(r[3])) for r in rows}

    def rows(self) -> list[dict[str, Any]]:
        """The table as rows sorted by label then mean (best first)."""
        cells = sorted(self.cells().items(), key=lambda kv: (kv[0][0], -kv[1][1], kv[0][1]))
        return [{"label": label, "template": template, "count": count, "mean": round(mean, 4)}
                for (label, template), (count, mean) in cells]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every scored record, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, created, job, prompt, labels, template, graph, score FROM records "
                "ORDER BY id").fetchall()
        for r in rows:
            yield {"id": r[0], "created": r[1], "job": r[2], "prompt": r[3],
                   "labels": json.loads(r[4]), "template": r[5], "graph": json.loads(r[6]),
                   "score": r[7]}

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every record as one JSON line (prompt, labels, template, graph, score); how many."""
        n = 0
        for rec in self.records():
            out.write(json.dumps({k: rec[k] for k in ("prompt", "labels", "template", "graph", "score",
                                                       "job")}) + "\n")
            n += 1
        return n
