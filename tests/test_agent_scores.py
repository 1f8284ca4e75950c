"""The score table: running means per label and template, kept on disk, exported as JSONL."""

from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import make_catalog, make_templates

from agents.choose import rank_templates
from agents.context import PlanningContext
from agents.labels import Labels
from agents.planner import Planner
from agents.scores import ScoreTable


def test_means_update_per_label_and_template(tmp_path) -> None:
    table = ScoreTable(tmp_path / "scores.sqlite")
    table.record("a fox", ["wildlife", "photo-realistic"], "txt2img", {"nodes": {}}, 0.5)
    table.record("a wolf", ["wildlife"], "txt2img", {"nodes": {}}, 1.0)
    table.record("a wolf", ["wildlife"], "hires_fix", {"nodes": {}}, 0.25)
    assert table.stats("wildlife", "txt2img") == (2, 0.75)
    assert table.stats("photo-realistic", "txt2img") == (1, 0.5)
    assert table.stats("wildlife", "panorama") is None
    rows = table.rows()
    assert rows[0] == {"label": "photo-realistic", "template": "txt2img", "count": 1, "mean": 0.5}
    assert [r["template"] for r in rows if r["label"] == "wildlife"] == ["txt2img", "hires_fix"]
    table.close()
    with ScoreTable(tmp_path / "scores.sqlite") as again:  # it is on disk
        assert again.stats("wildlife", "txt2img") == (2, 0.75)


def test_scores_outside_0_to_1_are_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        ScoreTable().record("p", ["x"], "t", {}, 7.5)


def test_export_writes_one_jsonl_record_per_scored_job() -> None:
    table = ScoreTable()
    graph = {"format": "orchestrator.graph/1", "nodes": {"a": {"block": "x.y"}}}
    table.record("a fox", ["wildlife"], "txt2img", graph, 0.8, job="job-1")
    table.record("a lake", ["landscapes"], None, graph, 0.4)
    out = io.StringIO()
    assert table.export_jsonl(out) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"prompt": "a fox", "labels": ["wildlife"], "template": "txt2img",
                        "graph": graph, "score": 0.8, "job": "job-1"}
    assert lines[1]["template"] is None
    assert table.stats("landscapes", "None") is None  # a job without template teaches no cell


def test_concurrent_records_all_count() -> None:
    table = ScoreTable()
    threads = [threading.Thread(target=lambda: [table.record("p", ["l"], "t", {}, 0.5)
                                                for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert table.stats("l", "t") == (100, 0.5)


def test_ranking_starts_from_template_labels_and_learns() -> None:
    table = ScoreTable()
    ctx = PlanningContext.build(make_catalog(), make_templates(), scores=table)
    labels = Labels(subjects=["landscapes"], formats=["wide"])
    first = rank_templates(labels, ctx)
    assert first[0]["template"] == "panorama" and first[0]["score"] == 0.6
    assert {r["template"] for r in first} == {"txt2img", "hires_fix", "panorama"}  # text-to-image only
    for _ in range(6):
        table.record("p", ["landscapes", "wide"], "hires_fix", {}, 0.95)
        table.record("p", ["landscapes", "wide"], "panorama", {}, 0.3)
    learned = rank_templates(labels, ctx)
    assert learned[0]["template"] == "hires_fix"


def test_a_plan_records_its_own_score() -> None:
    table = ScoreTable()
    ctx = PlanningContext.build(make_catalog(), make_templates(), scores=table)
    plan = Planner(ctx).plan("a red fox in the snow")
    table.record_plan(plan, 0.7, job="j")
    (rec,) = list(table.records())
    assert rec["template"] == "txt2img" and rec["labels"] == plan.labels and rec["job"] == "j"
    assert table.stats("wildlife", "txt2img") == (1, 0.7)


def test_a_planned_graph_can_be_recorded_from_its_meta_alone() -> None:
    table = ScoreTable()
    ctx = PlanningContext.build(make_catalog(), make_templates(), scores=table)
    doc = Planner(ctx).plan("a wide panorama of a mountain lake at dawn").graph.to_dict()
    table.record_graph(doc, 0.9, job="j2")
    assert table.stats("wide", "panorama") == (1, 0.9)
    with pytest.raises(ValueError, match="no 'prompt'"):
        table.record_graph({"nodes": {}}, 0.5)
