"""The LLM stays the operator's choice: ``agent.llm`` picks from an allow-list, and each
model's key goes only to the server the operator configured for that model."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM, make_catalog, make_templates

from agents import daemon as agent_daemon
from agents.daemon import make_planner
from agents.errors import AgentError
from agents.llm import LLMClient, LLMConfig
from orchestrator.config import AgentSettings, ConfigError, load_settings


@pytest.fixture()
def host():
    return SimpleNamespace(catalog=make_catalog(), templates=make_templates(), problems=[],
                           call_hook=lambda name: [])


def settings(tmp_path: Path, **agent):
    return load_settings(config_file=None, env={}, overrides={"state_dir": tmp_path, "agent": agent})


def test_a_request_picks_only_names_on_the_allow_list() -> None:
    a = AgentSettings(llm="ollama/llama3.1", base_url="http://127.0.0.1:11434",
                      allowed_llms=["ollama/qwen2.5", {"name": "gpt", "model": "openai/gpt-4o-mini",
                                                       "api_key_env": "MY_OPENAI_KEY"}])
    env = {"ORCHESTRATOR_LLM_API_KEY": "main-secret", "MY_OPENAI_KEY": "openai-secret"}
    default = LLMConfig.for_request(a, None, env=env)
    assert (default.model, default.base_url, default.api_key) == (
        "ollama/llama3.1", "http://127.0.0.1:11434", "main-secret")
    assert LLMConfig.for_request(a, "ollama/llama3.1", env=env) == default
    assert LLMConfig.for_request(a, "offline", env=env) is None
    qwen = LLMConfig.for_request(a, "ollama/qwen2.5", env=env)
    assert (qwen.model, qwen.base_url, qwen.api_key) == ("ollama/qwen2.5", None, None)  # not the main key
    gpt = LLMConfig.for_request(a, "gpt", env=env)
    assert (gpt.model, gpt.base_url, gpt.api_key) == ("openai/gpt-4o-mini", None, "openai-secret")
    assert a.llm_names() == ["offline", "ollama/llama3.1", "ollama/qwen2.5", "gpt"]


@pytest.mark.parametrize("name", [
    "openai/gpt-4o",                                  # a provider the operator did not name
    "openai/x?api_base=http://evil.example",          # a base URL smuggled in the model string
    "ollama/llama3.1 ",                               # near misses are not matches
    "OLLAMA/LLAMA3.1",
    "http://127.0.0.1:9/v1",
    "gpt\x00",
    "",
])
def test_anything_else_is_refused_naming_agent_llm_without_secrets(name) -> None:
    a = AgentSettings(llm="ollama/llama3.1", allowed_llms=[{"name": "gpt", "model": "openai/gpt-4o-mini",
                                                            "api_key_env": "K"}])
    with pytest.raises(AgentError) as info:
        LLMConfig.for_request(a, name, env={"K": "s3cret", "ORCHESTRATOR_LLM_API_KEY": "s3cret"})
    d = info.value.to_dict()
    assert d["field"] == "agent.llm" and d["type"] == "config"
    assert "s3cret" not in str(d) and "evil" not in str(d)


def test_an_entry_with_a_server_but_no_key_never_gets_a_key_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "operator-openai-key")
    a = AgentSettings(allowed_llms=[{"name": "local", "model": "openai/local",
                                     "base_url": "http://127.0.0.1:1"}])
    client = LLMClient(LLMConfig.for_request(a, "local", env={}))
    options = client._request([{"role": "user", "content": "hi"}])
    assert options["api_key"] == "no-key" and options["api_base"] == "http://127.0.0.1:1"
    assert "operator-openai-key" not in str(options)


def test_the_operator_key_reaches_only_its_own_server(tmp_path, host) -> None:
    """Two scripted servers: the main LLM's gets the main key; an allow-listed one gets its own."""
    accept = {"mode": "template", "template": "txt2img", "accept": True}
    with ScriptedLLM(default=accept) as main, ScriptedLLM(default=accept) as other:
        s = settings(tmp_path, llm="openai/main", base_url=main.base_url, retries=0,
                     allowed_llms=[{"name": "other", "model": "openai/other", "base_url": other.base_url,
                                    "api_key_env": "OTHER_KEY"},
                                   {"name": "nokey", "model": "openai/nokey", "base_url": other.base_url}])
        import os
        old = {k: os.environ.get(k) for k in ("ORCHESTRATOR_LLM_API_KEY", "OTHER_KEY")}
        os.environ.update({"ORCHESTRATOR_LLM_API_KEY": "main-key", "OTHER_KEY": "other-key"})
        try:
            plan = make_planner(s, host)
            plan("a red fox", {"llm": None, "rounds": 0})
            plan("a red fox", {"llm": "other", "rounds": 0})
            plan("a red fox", {"llm": "nokey", "rounds": 0})
            with pytest.raises(AgentError) as info:
                plan("a red fox", {"llm": "openai/anything", "rounds": 0})
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert info.value.to_dict()["field"] == "agent.llm"
    main_auth = {r["headers"].get("Authorization") for r in main.requests}
    other_auth = [r["headers"].get("Authorization") for r in other.requests]
    assert main.requests and main_auth == {"Bearer main-key"}
    assert "Bearer other-key" in other_auth and "Bearer no-key" in other_auth
    assert not any("main-key" in str(a) for a in other_auth)
    assert {r["body"]["model"] for r in other.requests} == {"other", "nokey"}


def test_the_planner_cache_is_bounded(tmp_path, host, monkeypatch) -> None:
    monkeypatch.setattr(agent_daemon, "MAX_PLANNERS", 3)
    built = []
    real = agent_daemon.build_planner

    def counting(*args, **kwargs):
        built.append(kwargs.get("llm"))
        return real(*args, **kwargs)

    monkeypatch.setattr(agent_daemon, "build_planner", counting)
    plan = make_planner(settings(tmp_path), host)
    for rounds in range(0, 11):
        plan("a red fox", {"rounds": rounds})
    assert len(built) == 11
    plan("a red fox", {"rounds": 10})  # still held: not built again
    assert len(built) == 11
    plan("a red fox", {"rounds": 0})  # long evicted: built again
    assert len(built) == 12


def test_a_bad_allow_list_entry_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError):
        settings(tmp_path, allowed_llms=[{"name": "x", "headers": {"X": "y"}}])


def test_an_answer_nested_too_deep_is_a_bad_answer() -> None:
    from agents.llm import parse_json_object

    data, error = parse_json_object("[" * 100_000 + "]" * 100_000)
    assert data is None and error.type == "bad_answer"
