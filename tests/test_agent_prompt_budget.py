"""The LLM prompt fits a local model: against a scripted OpenAI-compatible server on 127.0.0.1,
with the real catalog and template library, select mode is one call whose messages and answer
fit in 4k tokens; repair stays within the bound; limits hold on what the LLM writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM

from agents.context import PlanningContext
from agents.errors import AgentError
from agents.evaluate import evaluate, load_prompts
from agents.llm import LLMClient, LLMConfig
from agents.planner import Planner
from agents.prompts import SELECT_PROMPT_TOKENS, planner_messages
from agents.tokens import CONTEXT_TOKENS, count_tokens, estimate_tokens

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "a red fox in the snow",
    "portrait of an old fisherman, oil painting, 2:3",
    "paint my photo in the style of this van gogh painting",
    "a cat on the left and a dog on the right, illustration",
    "富士山と桜、浮世絵風",
    "a dog " * 60 + "in a park",
]


@pytest.fixture(scope="module")
def host():
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings

    return plugin_host(load_settings(config_file=False, env={}, overrides={}))


@pytest.fixture(scope="module")
def server():
    with ScriptedLLM() as llm:
        yield llm


@pytest.fixture()
def ctx(host) -> PlanningContext:
    return PlanningContext.build(host.catalog, host.templates)


def planner(ctx: PlanningContext, llm: ScriptedLLM, rounds: int = 2, fallback: bool = True,
            **config) -> Planner:
    cfg = LLMConfig(model="openai/scripted", base_url=llm.base_url, api_key="sk-test", retries=0,
                    backoff_s=0.0, timeout_s=20.0, **config)
    return Planner(ctx, llm=LLMClient(cfg), rounds=rounds, fallback_offline=fallback)


def call_tokens(request: dict) -> tuple[int, int]:
    """(estimated tokens of the messages, max_tokens asked for the answer) of one request."""
    body = request["body"]
    return estimate_tokens(body["messages"]), int(body["max_tokens"])


def select_answer(body: dict) -> dict:
    """A model that picks the first candidate its messages show (a real reading of the prompt)."""
    system = body["messages"][0]["content"]
    first = system.split("Candidates", 1)[1].split("\n- ", 1)[1].split(" ", 1)[0]
    return {"mode": "select", "labels": [], "template": first}


@pytest.mark.parametrize("prompt", PROMPTS, ids=range(len(PROMPTS)))
def test_select_mode_is_one_call_within_4k_tokens(ctx, server, prompt) -> None:
    server.reset([select_answer], default={"accept": False, "problems": ["no critic call expected"]})
    images = {"image": "in.png", "style": "style.png"} if "style of this" in prompt else None
    plan = planner(ctx, server).plan(prompt, images=images)
    assert len(server.requests) == 1, "a valid select answer needs no critic call"
    assert plan.mode == "select" and plan.accepted and plan.rounds == 0
    prompt_tokens, answer_tokens = call_tokens(server.requests[0])
    assert prompt_tokens <= SELECT_PROMPT_TOKENS
    assert prompt_tokens + answer_tokens <= CONTEXT_TOKENS
    messages = server.requests[0]["body"]["messages"]
    counted = count_tokens(messages)  # litellm's tokenizer, where it works offline
    if counted is not None:
        assert counted <= prompt_tokens  # the estimate over-counts: what it passes fits
    system = messages[0]["content"]
    assert '{"block":' not in system and '"params":{"model"' not in system  # no node JSON, only names
    assert plan.template in system and prompt.strip()[:40] in messages[1]["content"]


def test_select_messages_carry_inputs_and_learned_scores(ctx) -> None:
    from agents.scores import ScoreTable

    scores = ScoreTable()
    for i in range(3):
        scores.record("a fox", ["wildlife"], "hires_fix", {}, 0.9, job=f"j{i}", source="rating")
    ctx.scores = scores
    p = Planner(ctx)
    request = p.request("a red fox in the snow")
    from agents.choose import rank_templates

    system = planner_messages(request, ctx, rank_templates(request.labels, ctx))[0]["content"]
    line = next(x for x in system.splitlines() if x.startswith("- hires_fix"))
    assert "wildlife" in line and "(n=3)" in line
    request = p.request("make this picture look like an oil painting")
    system = planner_messages(request, ctx, rank_templates(request.labels, ctx))[0]["content"]
    line = next(x for x in system.splitlines() if x.startswith("- img2img"))
    assert "inputs: image" in line
    from agents.prompts import template_inputs

    assert set(template_inputs(ctx.templates["style_transfer"])) >= {"image", "style"}
    assert set(template_inputs(ctx.templates["inpaint"])) >= {"image", "mask"}


def test_the_whole_library_would_not_fit(ctx) -> None:
    """The figure the select prompt replaces: every block schema and template graph."""
    from agents.prompts import describe_catalog, describe_templates

    before = estimate_tokens(describe_catalog(ctx) + describe_templates(ctx))
    assert before > 3 * SELECT_PROMPT_TOKENS


def test_a_broken_compose_answer_is_repaired_within_the_bound(ctx, server) -> None:
    doc = ctx.templates["txt2img"].graph.to_dict()
    broken = json.loads(json.dumps(doc))
    first = next(iter(broken["nodes"]))
    broken["nodes"][first]["block"] = "sd.encode_promptt"
    server.reset([{"mode": "compose", "labels": ["wildlife"], "graph": broken},
                  {"accept": True, "problems": ["fixed the block id"], "graph": doc}])
    plan = planner(ctx, server).plan("a red fox in the snow")
    assert plan.accepted and plan.rounds == 1 and len(server.requests) == 2
    for request in server.requests:
        prompt_tokens, answer_tokens = call_tokens(request)
        assert prompt_tokens + answer_tokens <= CONTEXT_TOKENS
    critic = server.requests[1]["body"]["messages"]
    assert "sd.encode_promptt" in critic[1]["content"] and "unknown_block" in critic[1]["content"]
    # the critic sees the blocks the graph uses (and the namespace of the unknown one), not all 70
    assert "- sd.encode_prompt:" in critic[0]["content"] and "- image.load:" not in critic[0]["content"]


def test_messages_that_cannot_fit_fail_clearly_and_fall_back_offline(ctx, server) -> None:
    server.reset([], default={"mode": "select", "template": "txt2img"})
    with pytest.raises(AgentError) as info:
        planner(ctx, server, context_tokens=900, fallback=False).plan("a red fox in the snow")
    err = info.value.to_dict()
    assert err["type"] == "llm" and err["field"] == "context_tokens" and err["bound"] == 900
    assert server.requests == []  # nothing was sent
    plan = planner(ctx, server, context_tokens=900).plan("a red fox in the snow")
    assert plan.planner == "offline" or "context" in json.dumps(plan.trace["notes"])


def test_limits_hold_on_llm_settings(ctx, server) -> None:
    from orchestrator.config import Limits
    from orchestrator.runtime.limits import check_limits

    ctx.limits = lambda graph: check_limits(graph, Limits(), ctx.catalog)  # as the daemon passes it
    server.reset([{"mode": "select", "template": "txt2img",
                   "settings": {"width": 16384, "height": 16384, "steps": 999, "seed": -5}}],
                 default={"accept": True})
    try:
        plan = planner(ctx, server).plan("a red fox in the snow")
    except AgentError as exc:  # refused: with the limit named
        assert "limit" in json.dumps(exc.to_dict())
        return
    assert check_limits(plan.graph, Limits(), ctx.catalog) == []


def test_limits_hold_on_an_llm_graph_that_reads_files(ctx, server) -> None:
    doc = ctx.templates["img2img"].graph.to_dict()
    load = next(n for n in doc["nodes"].values() if n["block"] == "image.load")
    load["params"]["path"] = "/etc/passwd"
    server.reset([{"mode": "compose", "labels": ["image-to-image"], "graph": doc}],
                 default={"accept": True})
    try:
        plan = planner(ctx, server).plan("make this picture look like an oil painting",
                                         images={"image": "photo.png"})
    except AgentError as exc:
        assert "/etc/passwd" not in exc.message
        return
    assert "/etc/passwd" not in json.dumps(plan.graph.to_dict())


def test_eval_with_a_scripted_llm_reports_tokens_per_plan(ctx, server, tmp_path) -> None:
    records = [r for r in load_prompts(ROOT / "agents" / "evalsets" / "prompts.jsonl")
               if not r.get("inputs")][:12]
    server.reset([], default=select_answer)
    report = evaluate(planner(ctx, server), records)
    s = report.summary()
    assert s["prompts"] == 12 and s["valid"] == 12 and s["calls"] == 12  # one call a plan
    assert 0 < s["est_tokens_per_plan_max"] <= CONTEXT_TOKENS
    assert s["est_call_tokens_max"] <= CONTEXT_TOKENS
    assert "estimated tokens:" in report.format()


def test_the_context_bound_is_a_setting() -> None:
    from orchestrator.config import load_settings

    def config(value: str | None) -> LLMConfig:
        env = {"ORCHESTRATOR_AGENT__LLM": "ollama/llama3.1"}
        if value is not None:
            env["ORCHESTRATOR_AGENT__CONTEXT_TOKENS"] = value
        cfg = LLMConfig.from_settings(load_settings(config_file=False, env=env, overrides={}).agent)
        assert cfg is not None
        return cfg

    assert config(None).context_tokens == CONTEXT_TOKENS == 4096
    assert config("8192").context_tokens == 8192 and config("0").context_tokens is None
    from orchestrator.config import ConfigError

    with pytest.raises(ConfigError, match="context_tokens"):
        config("-1")


def test_compose_blocks_are_retrieved_not_the_whole_catalog(ctx) -> None:
    from agents.choose import rank_templates
    from agents.prompts import retrieve_blocks

    p = Planner(ctx)
    request = p.request("a knight on a horse, then upscale it with an onnx upscaler model")
    ranking = rank_templates(request.labels, ctx)
    blocks = retrieve_blocks(request, ctx, [r["template"] for r in ranking[:2]])
    first = ctx.templates[ranking[0]["template"]]
    assert {n.block for n in first.graph.nodes.values()} <= set(blocks)  # the candidate's own
    assert "image.upscale_model" in blocks or "onnx.run" in blocks  # by the prompt's words
    assert len(blocks) <= 24 < len(ctx.catalog)
    system = planner_messages(request, ctx, ranking)[0]["content"]
    shown = [line.split()[1] for line in system.split("Blocks for compose", 1)[1].splitlines()[1:]]
    assert shown == blocks[:len(shown)] and len(shown) < len(ctx.catalog)
