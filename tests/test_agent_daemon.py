"""The daemon's entry to the agent: ``agents.daemon.make_planner(settings, host)``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM, make_catalog, make_templates, txt2img_doc

from agents.daemon import make_planner
from agents.errors import AgentError
from graphs import Graph, validate
from orchestrator.config import load_settings


@pytest.fixture()
def host():
    return SimpleNamespace(catalog=make_catalog(), templates=make_templates(), problems=[],
                           call_hook=lambda name: [("p", [{"name": "plugin-model", "family": "sd1"}])])


def settings(tmp_path: Path, **agent):
    return load_settings(config_file=None, env={},
                         overrides={"state_dir": tmp_path, "agent": agent})


def test_the_daemon_gets_a_graph_and_the_rounds(tmp_path, host) -> None:
    plan = make_planner(settings(tmp_path), host)
    options = {"llm": None, "rounds": 3, "width": 128, "height": 64, "seed": 4, "template": None}
    doc, rounds = plan("a red fox in the snow", options)
    graph = Graph.from_dict(doc)
    validate(graph, host.catalog)
    assert graph.nodes["denoise"].params["seed"] == 4
    assert graph.meta["agent"]["template"] == "txt2img" and graph.meta["agent"]["outcome"] == "accepted"
    assert [r["decision"] for r in rounds] == ["accept"]
    json.dumps([doc, rounds])
    assert (tmp_path / "agent" / "scores.sqlite").is_file()  # the table the daemon's scores teach


def test_a_per_job_llm_and_a_failure_with_errors(tmp_path, host) -> None:
    broken = txt2img_doc(cond={"prompt": "a red fox"})
    broken["nodes"]["denoise"]["block"] = "sd.nope"
    with ScriptedLLM([{"mode": "compose", "graph": broken}], default={"accept": False}) as llm:
        plan = make_planner(settings(tmp_path, retries=0, allowed_llms=[
            {"name": "scripted", "model": "openai/scripted", "base_url": llm.base_url}]), host)
        with pytest.raises(AgentError) as info:
            plan("a red fox", {"llm": "scripted", "rounds": 1})
    assert info.value.to_dict()["errors"][0]["type"] == "unknown_block"
    assert len(llm.requests) == 2
