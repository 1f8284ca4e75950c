"""The agent's CLI: ``plan``, ``agent scores``, ``agent export``, ``agent eval``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM, make_catalog, make_templates, txt2img_doc

from agents.scores import ScoreTable
from graphs import Graph, validate
from orchestrator.cli import agent as agent_cli
from orchestrator.cli.main import main


@pytest.fixture()
def state(tmp_path, monkeypatch) -> Path:
    for key in list(__import__("os").environ):
        if key.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(key)
    host = SimpleNamespace(catalog=make_catalog(), templates=make_templates(), problems=[],
                           call_hook=lambda name: [])
    monkeypatch.setattr(agent_cli, "plugin_host", lambda settings: host)
    return tmp_path


def run(state: Path, *argv: str) -> int:
    return main(["--state-dir", str(state), *argv])


def test_plan_prints_the_graph_and_the_trace_and_writes_the_graph(state, capsys) -> None:
    out_file = state / "graph.json"
    assert run(state, "plan", "a wide panorama of a mountain lake at dawn", "-o", str(out_file)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["template"] == "panorama" and printed["trace"]["rounds"][0]["decision"] == "accept"
    graph = Graph.load(out_file)
    assert graph == Graph.from_dict(printed["graph"])
    validate(graph, make_catalog())


def test_plan_brief(state, capsys) -> None:
    assert run(state, "plan", "a red fox in the snow", "--brief", "--seed", "3") == 0
    out = capsys.readouterr().out
    assert out.startswith("planner: offline  template: txt2img")
    assert '"seed": 3' in out


def test_plan_with_an_llm_from_the_settings_and_the_environment(state, capsys, monkeypatch) -> None:
    with ScriptedLLM([{"mode": "compose", "graph": txt2img_doc(cond={"prompt": "a red fox"})},
                      {"accept": True}]) as llm:
        monkeypatch.setenv("ORCHESTRATOR_AGENT__BASE_URL", llm.base_url)
        monkeypatch.setenv("ORCHESTRATOR_AGENT__RETRIES", "0")
        monkeypatch.setenv("ORCHESTRATOR_LLM_API_KEY", "sk-cli")
        assert run(state, "plan", "a red fox", "--llm", "openai/scripted") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["trace"]["planner"] == "llm:openai/scripted" and printed["accepted"]
    assert [r["headers"]["Authorization"] for r in llm.requests] == ["Bearer sk-cli"] * 2
    assert "sk-cli" not in json.dumps(printed)


def test_plan_that_cannot_be_repaired_exits_1_with_the_errors(state, capsys, monkeypatch) -> None:
    broken = txt2img_doc(cond={"prompt": "a red fox"})
    broken["nodes"]["denoise"]["block"] = "sd.nope"
    with ScriptedLLM([{"mode": "compose", "graph": broken}], default={"accept": False}) as llm:
        monkeypatch.setenv("ORCHESTRATOR_AGENT__BASE_URL", llm.base_url)
        assert run(state, "plan", "a red fox", "--llm", "openai/scripted", "--rounds", "1",
                   "--json") == 1
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["errors"][0]["type"] == "unknown_block"
    assert len(printed["trace"]["rounds"]) == 2
    assert "no valid graph" in captured.err


def test_scores_and_export(state, capsys) -> None:
    assert run(state, "agent", "scores") == 0
    assert "no scored jobs yet" in capsys.readouterr().out
    with ScoreTable(state / "agent" / "scores.sqlite") as table:
        table.record("a fox", ["wildlife"], "txt2img", {"nodes": {}}, 0.8)
        table.record("a lake", ["landscapes"], "panorama", {"nodes": {}}, 0.6)
    assert run(state, "agent", "scores") == 0
    out = capsys.readouterr().out
    assert "wildlife" in out and "txt2img" in out and "0.800" in out
    assert run(state, "agent", "scores", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 2
    assert run(state, "agent", "export") == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["prompt"] for r in records] == ["a fox", "a lake"] and "exported 2" in captured.err
    assert run(state, "agent", "export", "-o", str(state / "train.jsonl")) == 0
    assert len((state / "train.jsonl").read_text().splitlines()) == 2


PROMPTS = [
    {"prompt": "a red fox in the snow", "labels": ["wildlife"], "template": "txt2img"},
    {"prompt": "a wide panorama of a mountain lake at dawn", "labels": ["landscapes", "wide"],
     "template": "panorama"},
    {"prompt": "portrait of an old fisherman, oil painting", "labels": ["people", "painting"]},
    {"prompt": "remove the bench from this photo", "labels": ["objects", "inpaint"],
     "template": "inpaint", "inputs": ["image", "mask"]},
]


def test_eval_prints_its_figures(state, capsys) -> None:
    path = state / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in PROMPTS) + "\n# a comment\n")
    assert run(state, "agent", "eval", str(path)) == 0
    out = capsys.readouterr().out
    assert "valid-graph rate:   100.0% (4/4)" in out
    assert "label accuracy:     100.0%" in out and "template accuracy:  100.0%" in out
    assert "mean repair rounds: 0.00" in out and "cost:               $0.000000" in out
    assert run(state, "agent", "eval", str(path), "--json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["valid_rate"] == 1.0 and summary["prompts"] == 4


def test_eval_with_a_scripted_llm_counts_rounds_tokens_and_failures(state, capsys, monkeypatch) -> None:
    good = {"mode": "compose", "labels": ["wildlife"], "graph": txt2img_doc(cond={"prompt": "a red fox"})}
    broken = json.loads(json.dumps(good))
    broken["graph"]["nodes"]["decode"]["inputs"]["latent"] = "cond.cond"
    script = [good, {"accept": True},                                   # prompt 1: 1 round
              broken, {"accept": True, "graph": good["graph"]},         # prompt 2: repaired, 1 round
              broken, {"accept": False}, {"accept": False}]             # prompt 3: never fixed
    path = state / "p.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": "a red fox", "labels": ["wildlife"]})
                              for _ in range(3)))
    with ScriptedLLM(script, usage=(10, 5)) as llm:
        monkeypatch.setenv("ORCHESTRATOR_AGENT__BASE_URL", llm.base_url)
        assert run(state, "agent", "eval", str(path), "--llm", "openai/scripted", "--rounds", "2",
                   "--json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["valid"] == 2 and summary["valid_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert summary["mean_repair_rounds"] == pytest.approx((1 + 1 + 2) / 3, abs=1e-3)
    assert summary["prompt_tokens"] == 7 * 10 and summary["label_accuracy"] == 1.0


def test_eval_of_a_missing_or_bad_file(state, capsys) -> None:
    assert run(state, "agent", "eval", str(state / "missing.jsonl")) == 1
    bad = state / "bad.jsonl"
    bad.write_text('{"no_prompt": 1}\n')
    assert run(state, "agent", "eval", str(bad)) == 1
    assert "expected an object with a 'prompt'" in capsys.readouterr().err
