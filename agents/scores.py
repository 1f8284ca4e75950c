"""The score table that learns: label x template (x model) -> count and mean score, in SQLite.

Two sources teach it, each a record (prompt, labels, template, model, graph, score, source):

- ``rating``: the user's rating of a job's outputs (``POST /jobs/{id}/rating``, the client's
  ``job.rate(stars)``, ``orchestrator rate JOB STARS``, the dashboard's stars), 1..5 stars
  mapped to ``0..1`` by :func:`stars_to_score`;
- ``scorer``: an ONNX scorer's output (``agent.scorer``), normalised to ``0..1``.

A job has at most one record per source: rating it again replaces its rating (the cells are
recomputed from the records), so a rating is idempotent per job. Each cell is the mean of its
records: per ``(label, template)`` over every model (what the planner ranks templates by) and
per ``(label, template, model)`` (what the user's models earned; ``agent scores`` shows both).

The planner ranks templates by these means shrunk towards a prior (:mod:`agents.choose`), and
balances exploiting the best against trying the others with UCB1 (:func:`explore`): each
candidate's shrunk mean gets the bonus ``EXPLORE_C * sqrt(2 ln N / (n + PRIOR_WEIGHT))``, ``n``
the ratings of that template for the prompt's labels and ``N`` those of every candidate.
Before any rating (``N = 0``) nothing changes: the priors decide. Only candidates within
``EXPLORE_MARGIN`` of the best are re-ordered, so exploring never picks a template that does
not fit the prompt (a panorama for a portrait); a candidate that was rated often and well
keeps its place, one tried rarely gets its turn. The rule is deterministic (no RNG), so the
same table gives the same plan.

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
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    label TEXT NOT NULL, template TEXT NOT NULL, count INTEGER NOT NULL, mean REAL NOT NULL,
    PRIMARY KEY (label, template));
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, job TEXT, prompt TEXT NOT NULL,
    labels TEXT NOT NULL, template TEXT, graph TEXT NOT NULL, score REAL NOT NULL);
CREATE TABLE IF NOT EXISTS model_scores (
    label TEXT NOT NULL, template TEXT NOT NULL, model TEXT NOT NULL, count INTEGER NOT NULL,
    mean REAL NOT NULL, PRIMARY KEY (label, template, model));
"""
# columns added since the first table files: added on open, old records read as a scorer's
_COLUMNS = {"model": "TEXT", "source": "TEXT NOT NULL DEFAULT 'scorer'"}
SOURCES = ("rating", "scorer")
STARS = (1, 5)  # a rating's range: 1 star is score 0, 5 stars score 1
PRIOR_WEIGHT = 2.0  # as agents.choose: the prior is worth this many ratings
EXPLORE_C = 0.2  # UCB1's exploration weight (scores are 0..1)
EXPLORE_MARGIN = 0.15  # only candidates this close to the best (by shrunk mean) are re-ordered


def stars_to_score(stars: float) -> float:
    """A 1..5 star rating as a ``0..1`` score; ``ValueError`` outside 1..5.

    >>> stars_to_score(1), stars_to_score(4), stars_to_score(5)
    (0.0, 0.75, 1.0)
    """
    lo, hi = STARS
    if isinstance(stars, bool) or not isinstance(stars, (int, float)) or not lo <= stars <= hi:
        raise ValueError(f"a rating is {lo}..{hi} stars, got {stars!r}")
    return (float(stars) - lo) / (hi - lo)


def graph_model(graph: dict[str, Any]) -> str | None:
    """The model a planned graph runs on: its ``meta.model``, else the first node's ``model``."""
    meta = graph.get("meta") if isinstance(graph.get("meta"), dict) else {}
    if isinstance(meta.get("model"), str):
        return meta["model"]
    nodes = graph.get("nodes") if isinstance(graph.get("nodes"), dict) else {}
    for node in nodes.values():
        ref = (node.get("params") or {}).get("model") if isinstance(node, dict) else None
        if isinstance(ref, dict):
            ref = ref.get("name")
        if isinstance(ref, str) and ref:
            return ref
    return None


def explore(ranking: list[dict[str, Any]], cells: Mapping[tuple[str, str], tuple[int, float]],
            labels: Iterable[str], *, c: float = EXPLORE_C, margin: float = EXPLORE_MARGIN
            ) -> list[dict[str, Any]]:
    """``ranking`` (best first, each ``{"template", "score", ...}``) re-ordered by UCB1 among
    the candidates within ``margin`` of the best available one; each entry gets its ``ucb``
    value and ``ratings`` count. Unchanged while none of them was rated for ``labels``."""
    labels = list(labels)
    if not ranking or not labels:
        return ranking
    first = next((r for r in ranking if r.get("available", True)), ranking[0])
    top = float(first["score"])
    close = [r for r in ranking if r.get("available", True) and float(r["score"]) >= top - margin]
    counts = {r["template"]: sum(cells.get((label, r["template"]), (0, 0.0))[0] for label in labels)
              for r in close}
    total = sum(counts.values())
    if total == 0:
        return ranking
    for r in close:
        n = counts[r["template"]]
        r["ratings"] = n
        r["ucb"] = round(float(r["score"]) + c * math.sqrt(2 * math.log(total) / (n + PRIOR_WEIGHT)), 4)
    order = {id(r): i for i, r in enumerate(ranking)}
    ordered = sorted(close, key=lambda r: (-r["ucb"], order[id(r)]))
    chosen = {id(r) for r in close}
    slots = iter(ordered)
    return [next(slots) if id(r) in chosen else r for r in ranking]


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
            have = {r[1] for r in self._conn.execute("PRAGMA table_info(records)")}
            for name, kind in _COLUMNS.items():
                if name not in have:  # a table file from before ratings: its records are a scorer's
                    self._conn.execute(f"ALTER TABLE records ADD COLUMN {name} {kind}")

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
        model: str | None = None,
        source: str = "scorer",
    ) -> int:
        """Keep one scored job and update its labels' cells for ``template`` (and ``model``);
        the record id. A job's earlier record of the same ``source`` is replaced."""
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score {score!r} is outside 0..1; normalise the scorer's output")
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
        labels = sorted({str(label) for label in labels})
        model = model if model is not None else graph_model(graph)
        with self._lock, self._conn:
            touched: set[tuple[str, str, str | None]] = set()
            if job is not None:
                for old_labels, old_template, old_model in self._conn.execute(
                        "SELECT labels, template, model FROM records WHERE job = ? AND source = ?",
                        (job, source)).fetchall():
                    if old_template:
                        touched |= {(label, old_template, old_model) for label in json.loads(old_labels)}
                self._conn.execute("DELETE FROM records WHERE job = ? AND source = ?", (job, source))
            cur = self._conn.execute(
                "INSERT INTO records (created, job, prompt, labels, template, graph, score, model, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), job, prompt, json.dumps(labels), template, json.dumps(graph), score,
                 model, source),
            )
            if template:
                touched |= {(label, template, model) for label in labels}
            for label, tmpl, mdl in sorted(touched, key=lambda t: (t[0], t[1], t[2] or "")):
                self._recompute(label, tmpl, mdl)
            return int(cur.lastrowid or 0)

    def _recompute(self, label: str, template: str, model: str | None) -> None:
        """One cell (and its model cell) as the mean of its records; gone when none is left."""
        base = ("FROM records r, json_each(r.labels) j WHERE r.template = ? AND j.value = ?")
        count, mean = self._conn.execute(f"SELECT COUNT(*), AVG(r.score) {base}",
                                         (template, label)).fetchone()
        if count:
            self._conn.execute("INSERT OR REPLACE INTO scores (label, template, count, mean) "
                               "VALUES (?, ?, ?, ?)", (label, template, count, mean))
        else:
            self._conn.execute("DELETE FROM scores WHERE label = ? AND template = ?", (label, template))
        if model is None:
            return
        count, mean = self._conn.execute(f"SELECT COUNT(*), AVG(r.score) {base} AND r.model = ?",
                                         (template, label, model)).fetchone()
        if count:
            self._conn.execute("INSERT OR REPLACE INTO model_scores (label, template, model, count, mean) "
                               "VALUES (?, ?, ?, ?, ?)", (label, template, model, count, mean))
        else:
            self._conn.execute("DELETE FROM model_scores WHERE label = ? AND template = ? AND model = ?",
                               (label, template, model))

    def record_plan(self, plan: Any, score: float, *, job: str | None = None) -> int:
        """Record a scored :class:`agents.planner.Plan` (its prompt, labels, template, graph)."""
        return self.record(plan.prompt, plan.labels, plan.template, plan.graph.to_dict(), score,
                           job=job)

    def record_graph(self, graph: dict[str, Any], score: float, *, job: str | None = None,
                     source: str = "scorer") -> int:
        """Record a scored planned graph by what its ``meta`` says (``prompt``, ``labels``,
        ``template``: the planner writes them), for a caller that kept only the graph."""
        meta = graph.get("meta") or {}
        prompt = meta.get("prompt")
        if not isinstance(prompt, str):
            raise ValueError("the graph's meta has no 'prompt': it was not planned by the agent")
        labels = meta.get("labels") if isinstance(meta.get("labels"), list) else []
        template = meta.get("template") if isinstance(meta.get("template"), str) else None
        return self.record(prompt, labels, template, graph, score, job=job, source=source)

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

    def model_cells(self) -> dict[tuple[str, str, str], tuple[int, float]]:
        """Every model cell: ``{(label, template, model): (count, mean)}``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT label, template, model, count, mean FROM model_scores").fetchall()
        return {(r[0], r[1], r[2]): (int(r[3]), float(r[4])) for r in rows}

    def model_rows(self) -> list[dict[str, Any]]:
        """The model cells as rows sorted by label, template, then mean (best first)."""
        cells = sorted(self.model_cells().items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1][1], kv[0][2]))
        return [{"label": label, "template": template, "model": model, "count": count,
                 "mean": round(mean, 4)} for (label, template, model), (count, mean) in cells]

    def model_score(self, labels: Iterable[str], model: str) -> float:
        """What ``model`` earned for ``labels``, over every template: the mean of its records
        with any of the labels, shrunk towards 0.5 by :data:`PRIOR_WEIGHT` (0.5 when it was never
        rated for them). The planner ranks the user's checkpoints of one family by it."""
        wanted = sorted({str(label) for label in labels})
        if not wanted:
            return 0.5
        marks = ",".join("?" * len(wanted))
        with self._lock:
            count, total = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(score), 0) FROM records r WHERE r.model = ? AND r.template "
                f"IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(r.labels) j WHERE j.value IN ({marks}))",
                (model, *wanted)).fetchone()
        return (PRIOR_WEIGHT * 0.5 + float(total)) / (PRIOR_WEIGHT + int(count))

    def sources(self) -> dict[str, int]:
        """How many records each source gave: ``{"rating": n, "scorer": m}``."""
        with self._lock:
            rows = self._conn.execute("SELECT source, COUNT(*) FROM records GROUP BY source").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def rows(self) -> list[dict[str, Any]]:
        """The table as rows sorted by label then mean (best first)."""
        cells = sorted(self.cells().items(), key=lambda kv: (kv[0][0], -kv[1][1], kv[0][1]))
        return [{"label": label, "template": template, "count": count, "mean": round(mean, 4)}
                for (label, template), (count, mean) in cells]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every scored record, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, created, job, prompt, labels, template, graph, score, model, source "
                "FROM records ORDER BY id").fetchall()
        for r in rows:
            yield {"id": r[0], "created": r[1], "job": r[2], "prompt": r[3],
                   "labels": json.loads(r[4]), "template": r[5], "graph": json.loads(r[6]),
                   "score": r[7], "model": r[8], "source": r[9]}

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every record as one JSON line (prompt, labels, template, graph, score); how many."""
        n = 0
        for rec in self.records():
            out.write(json.dumps({k: rec[k] for k in ("prompt", "labels", "template", "graph", "score",
                                                       "job")}) + "\n")
            n += 1
        return n
