"""LLM access through litellm against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM

from agents.errors import AgentError
from agents.llm import LLMClient, LLMConfig, parse_json_object


@pytest.fixture(scope="module")
def server():
    with ScriptedLLM() as llm:
        yield llm


def client(llm: ScriptedLLM, **kw) -> LLMClient:
    cfg = dict(model="openai/scripted", base_url=llm.base_url, api_key="sk-test", timeout_s=5.0,
               retries=2, backoff_s=0.0)
    cfg.update(kw)
    return LLMClient(LLMConfig(**cfg))


MESSAGES = [{"role": "system", "content": "answer in JSON"}, {"role": "user", "content": "hi"}]


def test_json_answer_is_decoded_and_tokens_counted(server: ScriptedLLM) -> None:
    llm = server.reset([{"accept": True}], usage=(120, 30))
    c = client(llm)
    answer = c.complete_json(MESSAGES)
    assert answer.data == {"accept": True} and answer.error is None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.calls) == (120, 30, 1)
    assert c.usage.total_tokens == 150
    body = llm.requests[0]["body"]
    assert body["model"] == "scripted"
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"] == MESSAGES
    assert llm.requests[0]["headers"]["Authorization"] == "Bearer sk-test"


def test_fenced_json_is_accepted_and_prose_is_a_bad_answer(server: ScriptedLLM) -> None:
    llm = server.reset(['```json\n{"a": 1}\n```', "Sure! Here is your graph: none", "[1, 2]"])
    c = client(llm)
    fenced, prose, array = (c.complete_json(MESSAGES) for _ in range(3))
    assert fenced.data == {"a": 1}
    assert prose.data is None and prose.error is not None and prose.error.type == "bad_answer"
    assert array.data is None and "not an object" in array.error.message


def test_transient_failures_are_retried_within_the_bound(server: ScriptedLLM) -> None:
    llm = server.reset([(500, "overloaded"), (503, "busy"), {"ok": 1}])
    c = client(llm, retries=2)
    answer = c.complete_json(MESSAGES)
    assert answer.data == {"ok": 1}
    assert answer.usage.attempts == 3 and len(llm.requests) == 3


def test_a_server_that_keeps_failing_fails_after_the_bound_with_an_llm_error(server: ScriptedLLM) -> None:
    llm = server.reset(default=(500, "down"))
    c = client(llm, retries=1)
    with pytest.raises(AgentError) as info:
        c.complete_json(MESSAGES)
    assert info.value.type == "llm" and info.value.details["attempts"] == 2
    assert len(llm.requests) == 2  # no hidden retries inside the SDK


def test_a_bad_key_is_not_retried(server: ScriptedLLM) -> None:
    llm = server.reset(default=(401, "invalid api key"))
    c = client(llm, retries=3)
    with pytest.raises(AgentError) as info:
        c.complete_json(MESSAGES)
    assert info.value.type == "llm" and "not retried" in info.value.message
    assert len(llm.requests) == 1


def test_requests_time_out(server: ScriptedLLM) -> None:
    llm = server.reset(default={"late": True}, delay=3.0)
    c = client(llm, timeout_s=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(AgentError) as info:
        c.complete_json(MESSAGES)
    assert info.value.type == "llm"
    assert time.monotonic() - started < 2.5


def test_answers_cannot_redirect_requests_or_change_credentials() -> None:
    with ScriptedLLM() as evil, ScriptedLLM() as good:
        hostile = {"api_base": evil.base_url, "base_url": evil.base_url, "api_key": "stolen",
                   "model": "openai/evil", "extra_headers": {"Authorization": "Bearer stolen"},
                   "graph": {"nodes": {}}}
        good.script = [hostile, hostile, {"accept": True}]
        c = client(good)
        for _ in range(3):
            c.complete_json([{"role": "user", "content": json.dumps(hostile)}])
    assert evil.requests == []
    assert len(good.requests) == 3
    assert {r["headers"]["Authorization"] for r in good.requests} == {"Bearer sk-test"}
    assert {r["body"]["model"] for r in good.requests} == {"scripted"}
    assert all(set(r["body"]) <= {"model", "messages", "temperature", "max_tokens", "response_format"}
               for r in good.requests)


def test_the_key_never_shows_in_the_config_repr() -> None:
    cfg = LLMConfig(model="openai/x", api_key="sk-secret")
    assert "sk-secret" not in repr(cfg)


def test_cost_is_accounted_from_litellms_local_price_map(server: ScriptedLLM) -> None:
    llm = server.reset([{"a": 1}], usage=(1000, 1000))
    c = LLMClient(LLMConfig(model="openai/gpt-4o-mini", base_url=llm.base_url, api_key="sk-test",
                            retries=0))
    answer = c.complete_json(MESSAGES)
    assert answer.usage.cost_usd > 0
    assert c.usage.cost_usd == pytest.approx(answer.usage.cost_usd)


def test_an_unpriced_model_costs_zero(server: ScriptedLLM) -> None:
    llm = server.reset([{"a": 1}])
    answer = client(llm).complete_json(MESSAGES)
    assert answer.usage.cost_usd == 0.0


def test_litellm_mock_response_scripts_answers_without_a_server() -> None:
    c = LLMClient(LLMConfig(model="openai/mocked", retries=0), mock_responses=['{"x": 1}', "nope"])
    assert c.complete_json(MESSAGES).data == {"x": 1}
    assert c.complete_json(MESSAGES).error.type == "bad_answer"


def test_config_from_settings_reads_the_key_from_the_named_environment_variable() -> None:
    settings = SimpleNamespace(llm="ollama/llama3.1", base_url="http://127.0.0.1:11434",
                               api_key_env="MY_KEY", timeout_s=12.0, retries=1, temperature=0.0)
    cfg = LLMConfig.from_settings(settings, env={"MY_KEY": "k1"})
    assert (cfg.model, cfg.base_url, cfg.api_key, cfg.timeout_s, cfg.retries) == (
        "ollama/llama3.1", "http://127.0.0.1:11434", "k1", 12.0, 1)
    assert LLMConfig.from_settings(SimpleNamespace(llm=None)) is None
    assert LLMConfig.from_settings(SimpleNamespace(llm=None), model="openai/x", env={}).model == "openai/x"


def test_parse_json_object_reports_where_the_json_breaks() -> None:
    data, error = parse_json_object('{"nodes": {"a": }')
    assert data is None and "line 1" in error.message


def test_an_own_openai_compatible_server_without_a_key_gets_a_placeholder(server, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = server.reset([{"a": 1}])
    LLMClient(LLMConfig(model="openai/local", base_url=llm.base_url, retries=0)).complete_json(MESSAGES)
    assert llm.requests[0]["headers"]["Authorization"] == "Bearer no-key"
